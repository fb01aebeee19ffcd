// Command loadgen drives WebSocket echo round trips against one server.
//
// It opens -conns connections to -url, and each connection does sequential
// round trips: send one binary message of -size bytes, wait for the echo,
// check it, repeat. After -warmup it prints "start" on stdout, counts the
// round trips that complete during -duration, prints "stop", then closes the
// connections and prints one JSON line with the result. The harness
// (bench/echo.py) reads the server's CPU time when it sees "start" and "stop".
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

type result struct {
	Connections    int     `json:"connections"`
	Size           int     `json:"size"`
	Messages       int64   `json:"messages"`
	Seconds        float64 `json:"seconds"`
	LoadgenCPUSecs float64 `json:"loadgen_cpu_seconds"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
	WarmupMessages int64   `json:"warmup_messages"`
}

type runner struct {
	phase    atomic.Int32
	counted  atomic.Int64
	warm     atomic.Int64
	errors   atomic.Int64
	errOnce  sync.Once
	firstErr string
	timeout  time.Duration
}

func (r *runner) fail(err error) {
	r.errors.Add(1)
	r.errOnce.Do(func() { r.firstErr = err.Error() })
}

// roundTrips runs sequential echo round trips on conn until the stop phase.
func (r *runner) roundTrips(conn *websocket.Conn, size int, seed byte) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i) ^ seed
	}
	echo := make([]byte, size+1)
	for r.phase.Load() != phaseStop {
		deadline := time.Now().Add(r.timeout)
		_ = conn.SetWriteDeadline(deadline)
		_ = conn.SetReadDeadline(deadline)
		if err := conn.WriteMessage(websocket.BinaryMessage, payload); err != nil {
			r.fail(fmt.Errorf("write: %w", err))
			return
		}
		kind, reader, err := conn.NextReader()
		if err != nil {
			r.fail(fmt.Errorf("read: %w", err))
			return
		}
		n, err := io.ReadFull(reader, echo)
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			r.fail(fmt.Errorf("read body: got %d+ bytes, err %v", n, err))
			return
		}
		if kind != websocket.BinaryMessage || !bytes.Equal(echo[:n], payload) {
			r.fail(fmt.Errorf("bad echo: type %d, %d bytes", kind, n))
			return
		}
		switch r.phase.Load() {
		case phaseWarmup:
			r.warm.Add(1)
		case phaseMeasure:
			r.counted.Add(1)
		}
	}
	closing := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = conn.WriteControl(websocket.CloseMessage, closing, time.Now().Add(time.Second))
	// Wait (briefly) for the server's close frame, so it closes cleanly.
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:7777/ws/echo", "echo endpoint")
	conns := flag.Int("conns", 1, "concurrent connections")
	size := flag.Int("size", 16, "binary message size in bytes")
	warmup := flag.Duration("warmup", time.Second, "warm-up before the measured window")
	duration := flag.Duration("duration", 3*time.Second, "measured window")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of one round trip")
	flag.Parse()

	dialer := websocket.Dialer{
		HandshakeTimeout: *timeout,
		ReadBufferSize:   64 * 1024,
		// As large as the message, so gorilla sends each message as one frame.
		WriteBufferSize: max(*size, 4096),
	}
	clients := make([]*websocket.Conn, 0, *conns)
	for i := 0; i < *conns; i++ {
		conn, _, err := dialer.Dial(*url, nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: connection %d: %v\n", i, err)
			os.Exit(1)
		}
		defer conn.Close()
		clients = append(clients, conn)
	}

	r := &runner{timeout: *timeout}
	var wg sync.WaitGroup
	for i, conn := range clients {
		wg.Add(1)
		go func(conn *websocket.Conn, seed byte) {
			defer wg.Done()
			r.roundTrips(conn, *size, seed)
		}(conn, byte(i))
	}

	time.Sleep(*warmup)
	cpuStart := cpuSeconds()
	start := time.Now()
	r.phase.Store(phaseMeasure)
	fmt.Println("start")
	time.Sleep(*duration)
	r.phase.Store(phaseStop)
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpuStart
	fmt.Println("stop")
	wg.Wait()

	out := result{
		Connections:    *conns,
		Size:           *size,
		Messages:       r.counted.Load(),
		Seconds:        elapsed.Seconds(),
		LoadgenCPUSecs: cpu,
		Errors:         r.errors.Load(),
		FirstError:     r.firstErr,
		WarmupMessages: r.warm.Load(),
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	if out.Errors > 0 {
		os.Exit(1)
	}
}

func max(a, b int) int {
	if a > b {
		return a
	}
	return b
}
