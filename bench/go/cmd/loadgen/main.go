// Command loadgen drives WebSocket echo round trips against one server.
//
// Each of -conns connections to -url sends one binary message of -size bytes,
// waits for the echo, checks it, repeats. After -warmup it prints "start",
// counts the round trips that complete during -duration, prints "stop", closes
// the connections and prints one JSON line. See bench/README.md.
package main

import (
	"bytes"
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
	phase   atomic.Int32
	counted atomic.Int64
	warm    atomic.Int64
	errors  wsload.Errors
	timeout time.Duration
}

// roundTrips runs sequential echo round trips on conn until the stop phase.
func (r *runner) roundTrips(conn *websocket.Conn, size int, seed byte) {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i) ^ seed
	}
	echo := make([]byte, size+1)
	for r.phase.Load() != wsload.PhaseStop {
		deadline := time.Now().Add(r.timeout)
		_ = conn.SetWriteDeadline(deadline)
		_ = conn.SetReadDeadline(deadline)
		if err := conn.WriteMessage(websocket.BinaryMessage, payload); err != nil {
			r.errors.Fail(fmt.Errorf("write: %w", err))
			return
		}
		kind, reader, err := conn.NextReader()
		if err != nil {
			r.errors.Fail(fmt.Errorf("read: %w", err))
			return
		}
		n, err := wsload.ReadBody(reader, echo)
		if err != nil {
			r.errors.Fail(fmt.Errorf("read body: %w", err))
			return
		}
		if kind != websocket.BinaryMessage || !bytes.Equal(echo[:n], payload) {
			r.errors.Fail(fmt.Errorf("bad echo: type %d, %d bytes", kind, n))
			return
		}
		switch r.phase.Load() {
		case wsload.PhaseWarmup:
			r.warm.Add(1)
		case wsload.PhaseMeasure:
			r.counted.Add(1)
		}
	}
	// Wait (briefly) for the server's close frame, so it closes cleanly.
	wsload.CloseHandshake(conn)
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
		WriteBufferSize: wsload.Max(*size, 4096),
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
	cpuStart := wsload.CPUSeconds()
	start := time.Now()
	r.phase.Store(wsload.PhaseMeasure)
	fmt.Println("start")
	time.Sleep(*duration)
	r.phase.Store(wsload.PhaseStop)
	elapsed := time.Since(start)
	cpu := wsload.CPUSeconds() - cpuStart
	fmt.Println("stop")
	wg.Wait()

	out := result{
		Connections:    *conns,
		Size:           *size,
		Messages:       r.counted.Load(),
		Seconds:        elapsed.Seconds(),
		LoadgenCPUSecs: cpu,
		Errors:         r.errors.Count(),
		FirstError:     r.errors.First(),
		WarmupMessages: r.warm.Load(),
	}
	wsload.PrintJSON(out)
	if out.Errors > 0 {
		os.Exit(1)
	}
}
