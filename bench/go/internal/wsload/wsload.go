// Package wsload holds what both load generators share: the run's phases,
// error counting, the process's CPU time, reading one message into a buffer,
// the close handshake and the JSON result line.
package wsload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// The phases of a run: warm-up, the measured window, then stopping.
const (
	PhaseWarmup int32 = iota
	PhaseMeasure
	PhaseStop
)

// Errors counts failures from any goroutine and keeps the first one's text.
type Errors struct {
	count atomic.Int64
	once  sync.Once
	first string
}

// Fail counts err (and keeps its text if it is the first).
func (e *Errors) Fail(err error) {
	e.count.Add(1)
	e.once.Do(func() { e.first = err.Error() })
}

// Count is the number of failures so far.
func (e *Errors) Count() int64 { return e.count.Load() }

// First is the text of the first failure ("" if none); read it once the
// goroutines that fail have finished.
func (e *Errors) First() string { return e.first }

// CPUSeconds is this process's user + system CPU time.
func CPUSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

// ReadBody reads one message's body into buf, which is one byte longer than
// the longest message expected, and returns its length.
func ReadBody(reader io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(reader, buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("got %d+ bytes, err %v", n, err)
	}
	return n, nil
}

// CloseHandshake sends a normal close frame and waits (a second at most) for
// the server's; only for a connection that no other goroutine reads.
func CloseHandshake(conn *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}

// PrintJSON prints v as one JSON line on stdout.
func PrintJSON(v any) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

// Max is the larger of a and b.
func Max(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// Min is the smaller of a and b.
func Min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
