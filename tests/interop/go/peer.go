// The gorilla/websocket peer of wstrio's interop matrix (tests/interop), built offline in GOPATH
// mode against Debian's golang-github-gorilla-websocket-dev (/usr/share/gocode).
//
//	peer client BASE PREFIX   run the checks against the server at BASE (ws://host:port) and
//	                          print one JSON object per check, as every client of the matrix does
//	peer server               serve the peer routes on 127.0.0.1, print {"port": N}, and stop
//	                          when standard input closes
//
// Both sides enable compression (gorilla negotiates permessage-deflate without context takeover)
// and read messages of up to 16 MiB.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	maxMessage  = 16 << 20
	stepTimeout = 30 * time.Second
	// for the pong of a ping sent right after the 101
	atOnceTimeout = 5 * time.Second
	ping          = "interop-ping"
	pongText      = "pong received"
	subprotocol   = "chat.v1"
)

var (
	sizes  = []int{0, 125, 126, 65536, 1 << 20, 16 << 20}
	closes = []struct {
		code   int
		reason string
	}{{1000, ""}, {1001, "going away"}, {4000, "bye ✓"}}
	offer = []string{"x.unknown", subprotocol}
)

type record map[string]interface{}

// payload is the message of a kind and size every client of the matrix sends: text of exactly
// size UTF-8 bytes ("é✓ab" repeated, then "x"s), or bytes counting 0..250 over and over.
func payload(kind string, size int) []byte {
	var out bytes.Buffer
	if kind == "text" {
		for i := 0; i < size/7; i++ {
			out.WriteString("é✓ab")
		}
		for i := 0; i < size%7; i++ {
			out.WriteByte('x')
		}
		return out.Bytes()
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i % 251)
	}
	return data
}

func messageType(kind string) int {
	if kind == "text" {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}

func verdict(kind string, sent []byte, gotType int, got []byte) string {
	switch {
	case gotType != messageType(kind) && kind == "text":
		return "binary instead of text"
	case gotType != messageType(kind):
		return "text instead of binary"
	case !bytes.Equal(sent, got):
		return fmt.Sprintf("different content (%d bytes)", len(got))
	}
	return "ok"
}

// closeOf is the code and reason of a connection's end, from the error a read returned.
func closeOf(err error) record {
	var closeErr *websocket.CloseError
	if errors.As(err, &closeErr) {
		return record{"code": closeErr.Code, "reason": closeErr.Text}
	}
	return record{"error": err.Error()}
}

// readUntilClose reads (answering pings) until the connection ends; the end's code and reason.
func readUntilClose(conn *websocket.Conn) record {
	conn.SetReadDeadline(time.Now().Add(stepTimeout))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			return closeOf(err)
		}
	}
}

// closeWith sends a close frame and waits for the peer's answer.
func closeWith(conn *websocket.Conn, code int, reason string) error {
	message := websocket.FormatCloseMessage(code, reason)
	if err := conn.WriteControl(websocket.CloseMessage, message, time.Now().Add(stepTimeout)); err != nil {
		return err
	}
	readUntilClose(conn)
	return nil
}

// ---- client ----

type client struct {
	base, prefix string
}

func (c client) dial(path string, protocols []string) (*websocket.Conn, string, error) {
	dialer := websocket.Dialer{
		HandshakeTimeout:  10 * time.Second,
		EnableCompression: true,
		Subprotocols:      protocols,
	}
	conn, response, err := dialer.Dial(c.base+path, nil)
	if err != nil {
		return nil, "", err
	}
	conn.SetReadLimit(maxMessage)
	conn.SetReadDeadline(time.Now().Add(stepTimeout))
	return conn, response.Header.Get("Sec-WebSocket-Extensions"), nil
}

func (c client) echo() (record, error) {
	conn, extensions, err := c.dial("/echo", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := record{"extensions": extensions}
	for _, kind := range []string{"text", "binary"} {
		verdicts := []string{}
		for _, size := range sizes {
			sent := payload(kind, size)
			if err := conn.WriteMessage(messageType(kind), sent); err != nil {
				return nil, err
			}
			gotType, got, err := conn.ReadMessage()
			if err != nil {
				return nil, err
			}
			verdicts = append(verdicts, verdict(kind, sent, gotType, got))
		}
		out[kind] = verdicts
	}
	return out, closeWith(conn, 1000, "")
}

func (c client) pingFromClient() (record, error) {
	conn, _, err := c.dial("/echo", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pongs := make(chan string, 1)
	conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	ended := make(chan record, 1)
	go func() { ended <- readUntilClose(conn) }() // control frames are handled while reading
	if err := conn.WriteControl(websocket.PingMessage, []byte(ping), time.Now().Add(stepTimeout)); err != nil {
		return nil, err
	}
	answered := false
	select {
	case data := <-pongs:
		answered = data == ping
	case <-time.After(stepTimeout):
	}
	message := websocket.FormatCloseMessage(1000, "")
	conn.WriteControl(websocket.CloseMessage, message, time.Now().Add(stepTimeout))
	<-ended
	return record{"answered": answered}, nil
}

func (c client) closeFromServer() (record, error) {
	seen := []record{}
	for _, end := range closes {
		query := url.Values{"code": {strconv.Itoa(end.code)}, "reason": {end.reason}}
		conn, _, err := c.dial("/close?"+query.Encode(), nil)
		if err != nil {
			return nil, err
		}
		seen = append(seen, readUntilClose(conn))
		conn.Close()
	}
	return record{"seen": seen}, nil
}

func (c client) closeFromClient() (record, error) {
	seen := []record{}
	for _, end := range closes {
		id := url.Values{"id": {fmt.Sprintf("%s-%d", c.prefix, end.code)}}.Encode()
		conn, _, err := c.dial("/observe?"+id, nil)
		if err != nil {
			return nil, err
		}
		if _, _, err := conn.ReadMessage(); err != nil { // "observing": the route runs
			return nil, err
		}
		err = closeWith(conn, end.code, end.reason)
		conn.Close()
		if err != nil {
			return nil, err
		}
		report, _, err := c.dial("/report?"+id, nil)
		if err != nil {
			return nil, err
		}
		_, text, err := report.ReadMessage()
		if err != nil {
			return nil, err
		}
		var observed record
		if err := json.Unmarshal(text, &observed); err != nil {
			return nil, err
		}
		seen = append(seen, observed)
		readUntilClose(report)
		report.Close()
	}
	return record{"seen": seen}, nil
}

func (c client) pingFromServer() (record, error) {
	return c.pingFrom("/ping", stepTimeout)
}

func (c client) pingAtOnce() (record, error) {
	return c.pingFrom("/ping-at-once", atOnceTimeout)
}

func (c client) pingFrom(path string, timeout time.Duration) (record, error) {
	conn, _, err := c.dial(path, nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if path == "/ping" {
		if err := conn.WriteMessage(websocket.TextMessage, []byte("ping me")); err != nil {
			return nil, err
		}
	}
	conn.SetReadDeadline(time.Now().Add(timeout))
	_, text, err := conn.ReadMessage() // the server's ping is answered inside ReadMessage
	if err != nil {
		return nil, err
	}
	return record{"text": string(text)}, closeWith(conn, 1000, "")
}

func (c client) subprotocol() (record, error) {
	conn, _, err := c.dial("/proto", offer)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_, text, err := conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	return record{"client": conn.Subprotocol(), "server": string(text)}, closeWith(conn, 1000, "")
}

func runClient(base, prefix string) {
	c := client{base, prefix}
	steps := []struct {
		name string
		run  func() (record, error)
	}{
		{"echo", c.echo},
		{"ping_from_client", c.pingFromClient},
		{"close_from_server", c.closeFromServer},
		{"close_from_client", c.closeFromClient},
		{"ping_from_server", c.pingFromServer},
		{"ping_at_once", c.pingAtOnce},
		{"subprotocol", c.subprotocol},
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetEscapeHTML(false)
	for _, step := range steps {
		out, err := step.run()
		if err != nil {
			out = record{"error": err.Error()}
		}
		out["check"] = step.name
		encoder.Encode(out)
	}
}

// ---- server ----

type book struct {
	mu   sync.Mutex
	seen map[string]record
	news map[string]chan struct{}
}

func (b *book) channel(id string) chan struct{} {
	if b.news[id] == nil {
		b.news[id] = make(chan struct{})
	}
	return b.news[id]
}

func (b *book) record(id string, end record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seen[id] = end
	close(b.channel(id))
}

func (b *book) wait(id string) (record, bool) {
	b.mu.Lock()
	news := b.channel(id)
	b.mu.Unlock()
	select {
	case <-news:
	case <-time.After(stepTimeout):
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[id], true
}

func runServer() {
	upgrader := websocket.Upgrader{
		EnableCompression: true,
		Subprotocols:      []string{subprotocol},
		CheckOrigin:       func(*http.Request) bool { return true },
	}
	observed := &book{seen: map[string]record{}, news: map[string]chan struct{}{}}
	handle := func(path string, serve func(*websocket.Conn, url.Values)) {
		http.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			conn, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			conn.SetReadLimit(maxMessage)
			serve(conn, r.URL.Query())
		})
	}
	handle("/echo", func(conn *websocket.Conn, _ url.Values) {
		for {
			kind, data, err := conn.ReadMessage()
			if err != nil || conn.WriteMessage(kind, data) != nil {
				return
			}
		}
	})
	handle("/close", func(conn *websocket.Conn, query url.Values) {
		code, _ := strconv.Atoi(query.Get("code"))
		closeWith(conn, code, query.Get("reason"))
	})
	handle("/observe", func(conn *websocket.Conn, query url.Values) {
		conn.WriteMessage(websocket.TextMessage, []byte("observing"))
		end := readUntilClose(conn)
		conn.Close() // the close answer is sent: the client may ask for the report now
		observed.record(query.Get("id"), end)
	})
	handle("/report", func(conn *websocket.Conn, query url.Values) {
		end, ok := observed.wait(query.Get("id"))
		if !ok {
			end = record{"error": "nothing observed"}
		}
		text, _ := json.Marshal(end)
		conn.WriteMessage(websocket.TextMessage, text)
		closeWith(conn, 1000, "")
	})
	pingRoute := func(atOnce bool) func(*websocket.Conn, url.Values) {
		return func(conn *websocket.Conn, _ url.Values) {
			conn.SetPongHandler(func(data string) error {
				if data != ping {
					return nil
				}
				return conn.WriteMessage(websocket.TextMessage, []byte(pongText))
			})
			if !atOnce { // the client's first message, then the ping
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
			conn.WriteControl(websocket.PingMessage, []byte(ping), time.Now().Add(stepTimeout))
			readUntilClose(conn)
		}
	}
	handle("/ping", pingRoute(false))
	handle("/ping-at-once", pingRoute(true))
	handle("/proto", func(conn *websocket.Conn, _ url.Values) {
		conn.WriteMessage(websocket.TextMessage, []byte(conn.Subprotocol()))
		readUntilClose(conn)
	})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("{\"port\": %d}\n", listener.Addr().(*net.TCPAddr).Port)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	http.Serve(listener, nil)
}

func main() {
	switch {
	case len(os.Args) == 4 && os.Args[1] == "client":
		runClient(os.Args[2], os.Args[3])
	case len(os.Args) == 2 && os.Args[1] == "server":
		runServer()
	default:
		fmt.Fprintln(os.Stderr, "usage: peer client BASE PREFIX | peer server")
		os.Exit(2)
	}
}
