// Command bloadgen drives a broadcast workload against one server.
//
// It opens -receivers connections to -recv (the room: the server answers each
// with one text message "joined" once that connection is a member), then one
// connection to -send (the sender: the server broadcasts every message it gets
// there to the room). The sender works in lockstep: it sends broadcast i, a
// text message of -size bytes that starts with "i T " (T: the send time in
// nanoseconds since this process started) padded with 'x', then waits until
// every receiver has got it before it sends broadcast i+1. Receivers check
// that broadcasts arrive whole and in order (none lost), and record the
// latency from just before the sender's write to just after their read.
//
// After -warmup it prints "start" on stdout, between two broadcasts, and (with
// -sync) waits for a line on stdin before it goes on; the harness
// (bench/broadcast.py) reads the server's CPU time in between, while the
// server is idle. It then runs whole broadcasts until -duration has passed,
// prints "stop" (again between two broadcasts), closes the sender and then the
// receivers (close handshakes), and prints one JSON line with the result.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
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
	Receivers      int     `json:"receivers"`
	Size           int     `json:"size"`
	Broadcasts     int64   `json:"broadcasts"`
	Deliveries     int64   `json:"deliveries"`
	Seconds        float64 `json:"seconds"`
	LatencyP50us   float64 `json:"latency_p50_us"`
	LatencyP90us   float64 `json:"latency_p90_us"`
	LatencyP99us   float64 `json:"latency_p99_us"`
	LatencyMaxus   float64 `json:"latency_max_us"`
	RoundP50us     float64 `json:"round_p50_us"`
	RoundP99us     float64 `json:"round_p99_us"`
	LoadgenCPUSecs float64 `json:"loadgen_cpu_seconds"`
	WarmupRounds   int64   `json:"warmup_broadcasts"`
	SetupSeconds   float64 `json:"setup_seconds"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
}

type runner struct {
	base      time.Time
	phase     atomic.Int32
	delivered atomic.Int64 // receipts of every broadcast so far, all phases
	target    atomic.Int64 // delivered value at which the current broadcast is complete
	complete  chan struct{}
	errors    atomic.Int64
	errOnce   sync.Once
	firstErr  string
	timeout   time.Duration
}

func (r *runner) fail(err error) {
	r.errors.Add(1)
	r.errOnce.Do(func() { r.firstErr = err.Error() })
}

// parseHeader reads "SEQ NANOS " from the start of a broadcast.
func parseHeader(b []byte) (seq, nanos int64, ok bool) {
	fields := [2]int64{}
	i := 0
	for f := 0; f < 2; f++ {
		start := i
		var v int64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			v = v*10 + int64(b[i]-'0')
			i++
		}
		if i == start || i >= len(b) || b[i] != ' ' {
			return 0, 0, false
		}
		i++
		fields[f] = v
	}
	return fields[0], fields[1], true
}

// receive reads broadcasts on conn until the stop phase (or an error), and
// returns the latencies (ns) of those received in the measure phase.
func (r *runner) receive(conn *websocket.Conn, size int, done *sync.WaitGroup, out *[]int64) {
	defer done.Done()
	buf := make([]byte, size+1)
	var next int64
	latencies := make([]int64, 0, 1024)
	defer func() { *out = latencies }()
	for {
		deadline := r.timeout
		if r.phase.Load() == phaseStop {
			deadline = 2 * time.Second // closing: the server's close frame is due
		}
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		kind, reader, err := conn.NextReader()
		if err != nil {
			if r.phase.Load() == phaseStop {
				return // closed after the run
			}
			r.fail(fmt.Errorf("receiver read: %w", err))
			return
		}
		n, err := io.ReadFull(reader, buf)
		if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			r.fail(fmt.Errorf("receiver read body: got %d+ bytes, err %v", n, err))
			return
		}
		now := time.Since(r.base).Nanoseconds()
		seq, sent, ok := parseHeader(buf[:n])
		if kind != websocket.TextMessage || n != size || !ok {
			r.fail(fmt.Errorf("bad broadcast: type %d, %d bytes, %q", kind, n, buf[:min(n, 32)]))
			return
		}
		if seq != next {
			r.fail(fmt.Errorf("broadcast %d arrived, expected %d (lost or reordered)", seq, next))
			return
		}
		next++
		if r.phase.Load() == phaseMeasure {
			latencies = append(latencies, now-sent)
		}
		if r.delivered.Add(1) == r.target.Load() {
			r.complete <- struct{}{}
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

// dialAll opens n connections to url, at most parallel at a time, and waits
// for the server's "joined" on each.
func dialAll(dialer *websocket.Dialer, url string, n, parallel int, timeout time.Duration) ([]*websocket.Conn, error) {
	conns := make([]*websocket.Conn, n)
	errs := make([]error, n)
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		slots <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-slots }()
			conn, _, err := dialer.Dial(url, nil)
			if err != nil {
				errs[i] = fmt.Errorf("receiver %d: dial: %w", i, err)
				return
			}
			conns[i] = conn
			_ = conn.SetReadDeadline(time.Now().Add(timeout))
			kind, data, err := conn.ReadMessage()
			if err != nil || kind != websocket.TextMessage || string(data) != "joined" {
				errs[i] = fmt.Errorf("receiver %d: wanted \"joined\", got %q (%v)", i, data, err)
			}
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
			return nil, err
		}
	}
	return conns, nil
}

// closeConn does the close handshake (bounded by one second); only for a
// connection no other goroutine reads.
func closeConn(conn *websocket.Conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := conn.NextReader(); err != nil {
			break
		}
	}
	conn.Close()
}

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1e3
}

func main() {
	recvURL := flag.String("recv", "ws://127.0.0.1:7777/ws/room", "receivers' endpoint")
	sendURL := flag.String("send", "ws://127.0.0.1:7777/ws/send", "sender's endpoint")
	receivers := flag.Int("receivers", 500, "receiving connections")
	size := flag.Int("size", 64, "text message size in bytes (at least 32)")
	warmup := flag.Duration("warmup", time.Second, "warm-up before the measured window")
	duration := flag.Duration("duration", 3*time.Second, "measured window (whole broadcasts)")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of one broadcast and of setup steps")
	parallel := flag.Int("dial-parallel", 16, "receivers dialled at a time")
	syncStart := flag.Bool("sync", false, "after printing start, wait for a line on stdin")
	flag.Parse()
	if *size < 32 {
		fmt.Fprintln(os.Stderr, "bloadgen: -size must be at least 32")
		os.Exit(2)
	}

	r := &runner{base: time.Now(), complete: make(chan struct{}, 1), timeout: *timeout}
	dialer := websocket.Dialer{
		HandshakeTimeout: *timeout,
		ReadBufferSize:   max(*size, 4096),
		WriteBufferSize:  max(*size, 4096), // one frame per message
	}
	setup := time.Now()
	conns, err := dialAll(&dialer, *recvURL, *receivers, *parallel, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bloadgen: %v\n", err)
		os.Exit(1)
	}
	sender, _, err := dialer.Dial(*sendURL, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bloadgen: sender: dial: %v\n", err)
		os.Exit(1)
	}
	setupSeconds := time.Since(setup).Seconds()

	latencies := make([][]int64, len(conns))
	var receiving sync.WaitGroup
	for i, conn := range conns {
		receiving.Add(1)
		go r.receive(conn, *size, &receiving, &latencies[i])
	}

	payload := make([]byte, *size)
	n := int64(len(conns))
	var rounds []int64
	var seq, warmRounds, measured int64
	var start time.Time
	var cpuStart, cpu float64
	var elapsed time.Duration
	warmupEnd := time.Now().Add(*warmup)
	stdin := bufio.NewReader(os.Stdin)
	for ; ; seq++ {
		// Between broadcasts: every receiver has got broadcast seq-1.
		switch r.phase.Load() {
		case phaseWarmup:
			if time.Now().After(warmupEnd) {
				fmt.Println("start")
				if *syncStart {
					if _, err := stdin.ReadString('\n'); err != nil {
						fmt.Fprintf(os.Stderr, "bloadgen: stdin: %v\n", err)
						os.Exit(1)
					}
				}
				r.phase.Store(phaseMeasure)
				warmRounds = seq
				cpuStart = cpuSeconds()
				start = time.Now()
			}
		case phaseMeasure:
			if time.Since(start) >= *duration {
				elapsed = time.Since(start)
				cpu = cpuSeconds() - cpuStart
				measured = seq - warmRounds
				r.phase.Store(phaseStop)
				fmt.Println("stop")
			}
		}
		if r.phase.Load() == phaseStop || r.errors.Load() > 0 {
			break
		}
		r.target.Store(n * (seq + 1))
		sentAt := time.Since(r.base).Nanoseconds()
		head := strconv.AppendInt(payload[:0], seq, 10)
		head = append(head, ' ')
		head = strconv.AppendInt(head, sentAt, 10)
		head = append(head, ' ')
		for i := len(head); i < *size; i++ {
			payload[i] = 'x'
		}
		_ = sender.SetWriteDeadline(time.Now().Add(*timeout))
		if err := sender.WriteMessage(websocket.TextMessage, payload); err != nil {
			r.fail(fmt.Errorf("sender write: %w", err))
			break
		}
		select {
		case <-r.complete:
			if r.phase.Load() == phaseMeasure {
				rounds = append(rounds, time.Since(r.base).Nanoseconds()-sentAt)
			}
		case <-time.After(*timeout):
			r.fail(fmt.Errorf("broadcast %d: %d of %d receipts after %v",
				seq, r.delivered.Load()-n*seq, n, *timeout))
		}
	}
	if r.phase.Load() != phaseStop { // failed: still print start/stop so the harness goes on
		if r.phase.Load() == phaseWarmup {
			fmt.Println("start")
		}
		r.phase.Store(phaseStop)
		fmt.Println("stop")
	}

	closeConn(sender) // first, so the server reports while every receiver is still a member
	// Each receiver's goroutine is still reading (gorilla allows one reader):
	// send the close frame from here, and let that goroutine read the reply.
	closing := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, conn := range conns {
		_ = conn.WriteControl(websocket.CloseMessage, closing, time.Now().Add(time.Second))
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	}
	receiving.Wait()
	for _, conn := range conns {
		conn.Close()
	}

	var all []int64
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	sort.Slice(rounds, func(i, j int) bool { return rounds[i] < rounds[j] })
	out := result{
		Receivers:      len(conns),
		Size:           *size,
		Broadcasts:     measured,
		Deliveries:     int64(len(all)),
		Seconds:        elapsed.Seconds(),
		LatencyP50us:   percentile(all, 0.50),
		LatencyP90us:   percentile(all, 0.90),
		LatencyP99us:   percentile(all, 0.99),
		RoundP50us:     percentile(rounds, 0.50),
		RoundP99us:     percentile(rounds, 0.99),
		LoadgenCPUSecs: cpu,
		WarmupRounds:   warmRounds,
		SetupSeconds:   setupSeconds,
		Errors:         r.errors.Load(),
		FirstError:     r.firstErr,
	}
	if len(all) > 0 {
		out.LatencyMaxus = float64(all[len(all)-1]) / 1e3
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

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
