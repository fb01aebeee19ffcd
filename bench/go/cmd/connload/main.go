// Command connload opens WebSocket connections for bench/connections.py.
//
// -mode=idle: opens -conns connections to -url (-parallel at a time), each
// with a goroutine that reads (so pings are answered), prints "open", waits
// for a line on stdin, closes them all (close handshakes) and prints one JSON
// line.
//
// -mode=cycle: -parallel workers each open a connection, do the close
// handshake, close it, and start again. After -warmup it prints "start",
// counts the cycles that complete during -duration, prints "stop", lets the
// workers finish their cycle and prints one JSON line. See bench/README.md.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"wstrio/bench/internal/wsload"
)

type result struct {
	Mode           string  `json:"mode"`
	Connections    int     `json:"connections,omitempty"`
	Cycles         int64   `json:"cycles"`
	WarmupCycles   int64   `json:"warmup_cycles"`
	Seconds        float64 `json:"seconds"`
	LoadgenCPUSecs float64 `json:"loadgen_cpu_seconds"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
}

// idle opens n connections, reports "open", waits for stdin, closes them.
func idle(dialer *websocket.Dialer, url string, n, parallel int) result {
	var errs wsload.Errors
	conns := make([]*websocket.Conn, n)
	slots := make(chan struct{}, parallel)
	var dialing, reading sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		dialing.Add(1)
		slots <- struct{}{}
		go func(i int) {
			defer dialing.Done()
			defer func() { <-slots }()
			conn, _, err := dialer.Dial(url, nil)
			if err != nil {
				errs.Fail(fmt.Errorf("connection %d: dial: %w", i, err))
				return
			}
			conns[i] = conn
			reading.Add(1)
			go func() { // answers pings; ends with the server's close frame or an error
				defer reading.Done()
				for {
					if _, _, err := conn.NextReader(); err != nil {
						return
					}
				}
			}()
		}(i)
	}
	dialing.Wait()
	elapsed := time.Since(start)
	cpu := wsload.CPUSeconds()
	fmt.Println("open")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		errs.Fail(fmt.Errorf("stdin: %w", err))
	}
	closing := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, conn := range conns {
		if conn != nil {
			_ = conn.WriteControl(websocket.CloseMessage, closing, time.Now().Add(time.Second))
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
	}
	reading.Wait()
	for _, conn := range conns {
		if conn != nil {
			conn.Close()
		}
	}
	return result{
		Mode: "idle", Connections: n, Seconds: elapsed.Seconds(), LoadgenCPUSecs: cpu,
		Errors: errs.Count(), FirstError: errs.First(),
	}
}

// cycle runs open-close cycles on parallel workers for warmup + duration.
func cycle(dialer *websocket.Dialer, url string, parallel int, warmup, duration time.Duration) result {
	var errs wsload.Errors
	var phase atomic.Int32
	var counted, warm atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for phase.Load() != wsload.PhaseStop {
				conn, _, err := dialer.Dial(url, nil)
				if err != nil {
					errs.Fail(fmt.Errorf("dial: %w", err))
					time.Sleep(10 * time.Millisecond) // do not spin on a refusing server
					continue
				}
				wsload.CloseHandshake(conn) // close frame, then read until the server's close and EOF
				conn.Close()
				switch phase.Load() {
				case wsload.PhaseWarmup:
					warm.Add(1)
				case wsload.PhaseMeasure:
					counted.Add(1)
				}
			}
		}()
	}
	time.Sleep(warmup)
	cpuStart := wsload.CPUSeconds()
	start := time.Now()
	phase.Store(wsload.PhaseMeasure)
	fmt.Println("start")
	time.Sleep(duration)
	phase.Store(wsload.PhaseStop)
	elapsed := time.Since(start)
	cpu := wsload.CPUSeconds() - cpuStart
	fmt.Println("stop")
	wg.Wait()
	return result{
		Mode: "cycle", Cycles: counted.Load(), WarmupCycles: warm.Load(), Seconds: elapsed.Seconds(),
		LoadgenCPUSecs: cpu, Errors: errs.Count(), FirstError: errs.First(),
	}
}

func main() {
	mode := flag.String("mode", "idle", "idle or cycle")
	url := flag.String("url", "ws://127.0.0.1:7777/ws/echo", "endpoint")
	conns := flag.Int("conns", 1000, "idle: connections to open")
	parallel := flag.Int("parallel", 16, "idle: dials at a time; cycle: workers")
	warmup := flag.Duration("warmup", time.Second, "cycle: warm-up before the measured window")
	duration := flag.Duration("duration", 3*time.Second, "cycle: measured window")
	timeout := flag.Duration("timeout", 10*time.Second, "handshake deadline")
	flag.Parse()

	dialer := websocket.Dialer{HandshakeTimeout: *timeout, ReadBufferSize: 4096, WriteBufferSize: 4096}
	var out result
	switch *mode {
	case "idle":
		out = idle(&dialer, *url, *conns, *parallel)
	case "cycle":
		out = cycle(&dialer, *url, *parallel, *warmup, *duration)
	default:
		fmt.Fprintf(os.Stderr, "connload: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	wsload.PrintJSON(out)
	if out.Errors > 0 {
		os.Exit(1)
	}
}
