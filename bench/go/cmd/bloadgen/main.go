// Command bloadgen drives a broadcast workload against one server.
//
// It opens -receivers connections to -recv (the room; the server answers each
// with "joined"), then one to -send, and broadcasts in lockstep: broadcast i
// ("i T " then 'x' up to -size bytes, T the send time in ns) goes out once
// every receiver has got broadcast i-1. Receivers check order and record
// latency. After -warmup it prints "start" (with -sync it then waits for a
// line on stdin), after -duration "stop", both between two broadcasts, then
// closes the connections and prints one JSON line. With -compress the
// receivers offer permessage-deflate (gorilla offers it without context
// takeover only) and fail unless the server accepts; wire_bytes counts the
// bytes the receivers read from their sockets during the measured window.
// See bench/README.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"wstrio/bench/internal/wsload"
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
	WireBytes      int64   `json:"wire_bytes"`
	Compressed     bool    `json:"compressed"`
	Errors         int64   `json:"errors"`
	FirstError     string  `json:"first_error,omitempty"`
}

type options struct {
	recvURL, sendURL          string
	receivers, size, parallel int
	warmup, duration, timeout time.Duration
	syncStart, compress       bool
}

// countingConn counts the bytes read from a socket.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

type runner struct {
	base      time.Time
	phase     atomic.Int32
	delivered atomic.Int64 // receipts of every broadcast so far, all phases
	target    atomic.Int64 // delivered value at which the current broadcast is complete
	complete  chan struct{}
	wire      atomic.Int64 // bytes the receivers read from their sockets
	errors    wsload.Errors
	timeout   time.Duration
}

// window is what the sender measured: round times (ns), broadcasts, CPU.
type window struct {
	rounds           []int64
	warm, measured   int64
	wire, wireStart  int64
	elapsed          time.Duration
	cpu, cpuStart    float64
	warmupEnd, start time.Time
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
		if r.phase.Load() == wsload.PhaseStop {
			deadline = 2 * time.Second // closing: the server's close frame is due
		}
		_ = conn.SetReadDeadline(time.Now().Add(deadline))
		kind, reader, err := conn.NextReader()
		if err != nil {
			if r.phase.Load() == wsload.PhaseStop {
				return // closed after the run
			}
			r.errors.Fail(fmt.Errorf("receiver read: %w", err))
			return
		}
		n, err := wsload.ReadBody(reader, buf)
		if err != nil {
			r.errors.Fail(fmt.Errorf("receiver read body: %w", err))
			return
		}
		now := time.Since(r.base).Nanoseconds()
		seq, sent, ok := parseHeader(buf[:n])
		if kind != websocket.TextMessage || n != size || !ok {
			r.errors.Fail(fmt.Errorf("bad broadcast: type %d, %d bytes, %q", kind, n, buf[:wsload.Min(n, 32)]))
			return
		}
		if seq != next {
			r.errors.Fail(fmt.Errorf("broadcast %d arrived, expected %d (lost or reordered)", seq, next))
			return
		}
		next++
		if r.phase.Load() == wsload.PhaseMeasure {
			latencies = append(latencies, now-sent)
		}
		if r.delivered.Add(1) == r.target.Load() {
			r.complete <- struct{}{}
		}
	}
}

// dialAll opens n connections to url, at most parallel at a time, and waits
// for the server's "joined" on each.
func dialAll(dialer *websocket.Dialer, url string, n, parallel int, timeout time.Duration, compress bool) ([]*websocket.Conn, error) {
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
			conn, resp, err := dialer.Dial(url, nil)
			if err != nil {
				errs[i] = fmt.Errorf("receiver %d: dial: %w", i, err)
				return
			}
			conns[i] = conn
			extensions := resp.Header.Get("Sec-WebSocket-Extensions")
			if compress && !strings.Contains(extensions, "permessage-deflate") {
				errs[i] = fmt.Errorf("receiver %d: compression offered, not accepted (%q)", i, extensions)
				return
			}
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

// betweenBroadcasts moves the phase on when its time has come; called when
// every receiver has got broadcast seq-1.
func (r *runner) betweenBroadcasts(o *options, seq int64, w *window) {
	switch r.phase.Load() {
	case wsload.PhaseWarmup:
		if time.Now().After(w.warmupEnd) {
			fmt.Println("start")
			if o.syncStart {
				if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
					fmt.Fprintf(os.Stderr, "bloadgen: stdin: %v\n", err)
					os.Exit(1)
				}
			}
			r.phase.Store(wsload.PhaseMeasure)
			w.wireStart = r.wire.Load()
			w.warm = seq
			w.cpuStart = wsload.CPUSeconds()
			w.start = time.Now()
		}
	case wsload.PhaseMeasure:
		if time.Since(w.start) >= o.duration {
			w.elapsed = time.Since(w.start)
			w.cpu = wsload.CPUSeconds() - w.cpuStart
			w.measured = seq - w.warm
			w.wire = r.wire.Load() - w.wireStart
			r.phase.Store(wsload.PhaseStop)
			fmt.Println("stop")
		}
	}
}

// broadcast runs the lockstep broadcasts through sender to n receivers.
func (r *runner) broadcast(sender *websocket.Conn, n int64, o *options) window {
	w := window{warmupEnd: time.Now().Add(o.warmup)}
	payload := make([]byte, o.size)
	for seq := int64(0); ; seq++ {
		r.betweenBroadcasts(o, seq, &w)
		if r.phase.Load() == wsload.PhaseStop || r.errors.Count() > 0 {
			return w
		}
		r.target.Store(n * (seq + 1))
		sentAt := time.Since(r.base).Nanoseconds()
		head := strconv.AppendInt(payload[:0], seq, 10)
		head = append(head, ' ')
		head = strconv.AppendInt(head, sentAt, 10)
		head = append(head, ' ')
		for i := len(head); i < o.size; i++ {
			payload[i] = 'x'
		}
		_ = sender.SetWriteDeadline(time.Now().Add(o.timeout))
		if err := sender.WriteMessage(websocket.TextMessage, payload); err != nil {
			r.errors.Fail(fmt.Errorf("sender write: %w", err))
			return w
		}
		select {
		case <-r.complete:
			if r.phase.Load() == wsload.PhaseMeasure {
				w.rounds = append(w.rounds, time.Since(r.base).Nanoseconds()-sentAt)
			}
		case <-time.After(o.timeout):
			r.errors.Fail(fmt.Errorf("broadcast %d: %d of %d receipts after %v",
				seq, r.delivered.Load()-n*seq, n, o.timeout))
		}
	}
}

// closeAll closes the sender, then the receivers, whose goroutines are still
// reading (gorilla allows one reader): the close frames go from here, and
// each goroutine reads its reply.
func closeAll(sender *websocket.Conn, conns []*websocket.Conn, receiving *sync.WaitGroup) {
	wsload.CloseHandshake(sender) // first, so the server reports while every receiver is still a member
	sender.Close()
	closing := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	for _, conn := range conns {
		_ = conn.WriteControl(websocket.CloseMessage, closing, time.Now().Add(time.Second))
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	}
	receiving.Wait()
	for _, conn := range conns {
		conn.Close()
	}
}

func parseFlags() *options {
	o := &options{}
	flag.StringVar(&o.recvURL, "recv", "ws://127.0.0.1:7777/ws/room", "receivers' endpoint")
	flag.StringVar(&o.sendURL, "send", "ws://127.0.0.1:7777/ws/send", "sender's endpoint")
	flag.IntVar(&o.receivers, "receivers", 500, "receiving connections")
	flag.IntVar(&o.size, "size", 64, "text message size in bytes (at least 32)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before the measured window")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured window (whole broadcasts)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of one broadcast and of setup steps")
	flag.IntVar(&o.parallel, "dial-parallel", 16, "receivers dialled at a time")
	flag.BoolVar(&o.syncStart, "sync", false, "after printing start, wait for a line on stdin")
	flag.BoolVar(&o.compress, "compress", false, "receivers offer permessage-deflate and require it")
	flag.Parse()
	if o.size < 32 {
		fmt.Fprintln(os.Stderr, "bloadgen: -size must be at least 32")
		os.Exit(2)
	}
	return o
}

func main() {
	o := parseFlags()
	r := &runner{base: time.Now(), complete: make(chan struct{}, 1), timeout: o.timeout}
	dialer := websocket.Dialer{
		HandshakeTimeout: o.timeout,
		ReadBufferSize:   wsload.Max(o.size, 4096),
		WriteBufferSize:  wsload.Max(o.size, 4096), // one frame per message
	}
	recvDialer := dialer // the sender's connection is not counted, nor compressed
	recvDialer.EnableCompression = o.compress
	recvDialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{conn, &r.wire}, nil
	}
	setup := time.Now()
	conns, err := dialAll(&recvDialer, o.recvURL, o.receivers, o.parallel, o.timeout, o.compress)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bloadgen: %v\n", err)
		os.Exit(1)
	}
	sender, _, err := dialer.Dial(o.sendURL, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bloadgen: sender: dial: %v\n", err)
		os.Exit(1)
	}
	setupSeconds := time.Since(setup).Seconds()

	latencies := make([][]int64, len(conns))
	var receiving sync.WaitGroup
	for i, conn := range conns {
		receiving.Add(1)
		go r.receive(conn, o.size, &receiving, &latencies[i])
	}
	w := r.broadcast(sender, int64(len(conns)), o)
	if r.phase.Load() != wsload.PhaseStop { // failed: still print start/stop so the harness goes on
		if r.phase.Load() == wsload.PhaseWarmup {
			fmt.Println("start")
		}
		r.phase.Store(wsload.PhaseStop)
		fmt.Println("stop")
	}
	closeAll(sender, conns, &receiving)

	var all []int64
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	sort.Slice(w.rounds, func(i, j int) bool { return w.rounds[i] < w.rounds[j] })
	out := result{
		Receivers:      len(conns),
		Size:           o.size,
		Broadcasts:     w.measured,
		Deliveries:     int64(len(all)),
		Seconds:        w.elapsed.Seconds(),
		LatencyP50us:   percentile(all, 0.50),
		LatencyP90us:   percentile(all, 0.90),
		LatencyP99us:   percentile(all, 0.99),
		RoundP50us:     percentile(w.rounds, 0.50),
		RoundP99us:     percentile(w.rounds, 0.99),
		LoadgenCPUSecs: w.cpu,
		WarmupRounds:   w.warm,
		SetupSeconds:   setupSeconds,
		WireBytes:      w.wire,
		Compressed:     o.compress,
		Errors:         r.errors.Count(),
		FirstError:     r.errors.First(),
	}
	if len(all) > 0 {
		out.LatencyMaxus = float64(all[len(all)-1]) / 1e3
	}
	wsload.PrintJSON(out)
	if out.Errors > 0 {
		os.Exit(1)
	}
}
