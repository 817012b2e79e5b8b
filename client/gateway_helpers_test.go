package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitFor bounds every wait of the gateway tests; nothing in them should take more than a moment.
const waitFor = 5 * time.Second

// fakeGateway is a scripted gateway: the test drives each accepted connection frame by frame.
type fakeGateway struct {
	srv   *httptest.Server
	conns chan *fakeConn

	mu  sync.Mutex
	all []*fakeConn
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	fg := &fakeGateway{conns: make(chan *fakeConn, 16)}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.p2/core/v1/gateway", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("server side: upgrade: %v", err)
			return
		}
		fc := &fakeConn{t: t, ws: ws, in: make(chan clientMsg, 256), gone: make(chan struct{}), stop: make(chan struct{})}
		go fc.readLoop()
		fg.mu.Lock()
		fg.all = append(fg.all, fc)
		fg.mu.Unlock()
		fg.conns <- fc
	})
	fg.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		fg.srv.Close()
		fg.mu.Lock()
		defer fg.mu.Unlock()
		for _, c := range fg.all {
			close(c.stop)
			c.ws.Close()
			<-c.gone
		}
	})
	return fg
}

// accept waits for the client's next connection.
func (fg *fakeGateway) accept(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-fg.conns:
		return c
	case <-time.After(waitFor):
		t.Fatal("server side: no connection from the client")
		return nil
	}
}

// noConnection checks that the client does not come back within d.
func (fg *fakeGateway) noConnection(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-fg.conns:
		t.Fatal("server side: the client reconnected")
	case <-time.After(d):
	}
}

// clientMsg is one frame the client sent.
type clientMsg struct {
	N  string          `json:"n"`
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *uint64         `json:"s"`
}

type fakeConn struct {
	t    *testing.T
	ws   *websocket.Conn
	in   chan clientMsg
	gone chan struct{} // the client's side ended; closeCode says how
	stop chan struct{} // the test is over: stop handing on frames

	closeCode int
	s         uint64 // the s of the next frame
}

func (c *fakeConn) readLoop() {
	defer close(c.gone)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				c.closeCode = ce.Code
			}
			return
		}
		var m clientMsg
		if err := json.Unmarshal(data, &m); err != nil {
			c.t.Errorf("server side: client sent %q: %v", data, err)
			return
		}
		if m.S != nil {
			c.t.Errorf("server side: client frame carries s: %s", data)
		}
		select {
		case c.in <- m:
		case <-c.stop:
			return
		}
	}
}

// hello sends Hello (s 0) with a heartbeat interval so long that every heartbeat in a test is
// one the test asked for with op 11.
func (c *fakeConn) hello() { c.helloEvery(60 * time.Second) }

func (c *fakeConn) helloEvery(d time.Duration) {
	c.t.Helper()
	ms := d.Milliseconds()
	c.send(nsCore, opHello, map[string]any{"heartbeat_interval": ms, "heartbeatInterval": fmt.Sprint(ms)})
}

// send writes the next frame and returns its s.
func (c *fakeConn) send(n string, op int, d any) uint64 {
	c.t.Helper()
	s := c.s
	c.sendAt(s, n, op, d)
	return s
}

// sendAt writes a frame with s; later frames follow it.
func (c *fakeConn) sendAt(s uint64, n string, op int, d any) {
	c.t.Helper()
	c.s = s + 1
	c.write(wire(n, op, d, &s))
}

// lose numbers a frame that never reaches the client, as a lost frame would.
func (c *fakeConn) lose() uint64 {
	s := c.s
	c.s++
	return s
}

func (c *fakeConn) write(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(waitFor))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("server side: write: %v", err)
	}
}

func (c *fakeConn) closeWith(code int, reason string) {
	c.t.Helper()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(waitFor))
	c.ws.Close()
}

// recv is the client's next frame.
func (c *fakeConn) recv() clientMsg {
	c.t.Helper()
	select {
	case m := <-c.in:
		return m
	case <-c.gone:
		c.t.Fatalf("server side: connection ended (close code %d) while waiting for a frame", c.closeCode)
	case <-time.After(waitFor):
		c.t.Fatal("server side: no frame from the client")
	}
	return clientMsg{}
}

// expect is the client's next frame, which must be core op.
func (c *fakeConn) expect(op int) clientMsg {
	c.t.Helper()
	m := c.recv()
	if m.N != nsCore || m.Op != op {
		c.t.Fatalf("server side: got %s op %d %s, want core op %d", m.N, m.Op, m.D, op)
	}
	return m
}

// identify runs the server side of a fresh connection: Hello, Identify with token, and the
// subscribes of services.
func (c *fakeConn) identify(token string, services ...string) {
	c.t.Helper()
	c.hello()
	var id struct {
		Token string `json:"token"`
	}
	decodeStrict(c.t, c.expect(opIdentify).D, &id)
	if id.Token != token {
		c.t.Fatalf("server side: identify token %q, want %q", id.Token, token)
	}
	for _, svc := range services {
		var sub servicePayload
		decodeStrict(c.t, c.expect(opServiceChannel).D, &sub)
		if sub.Action != "subscribe" || sub.Service != svc {
			c.t.Fatalf("server side: got %+v, want subscribe %q", sub, svc)
		}
	}
}

// heartbeat asks for a heartbeat (op 11) and returns it as "from-to except [...]".
func (c *fakeConn) heartbeat() string {
	c.t.Helper()
	c.send(nsCore, opHeartbeatRequest, map[string]any{})
	return c.expectHeartbeat()
}

func (c *fakeConn) expectHeartbeat() string {
	c.t.Helper()
	var hb struct {
		From   *flexUint  `json:"from"`
		To     *flexUint  `json:"to"`
		Except []flexUint `json:"except"`
	}
	decodeStrict(c.t, c.expect(opHeartbeat).D, &hb)
	return fmtRange(hb.From, hb.To, hb.Except)
}

func fmtRange(from, to *flexUint, except []flexUint) string {
	if from == nil && to == nil {
		return "none"
	}
	if from == nil || to == nil {
		return "half a range"
	}
	s := fmt.Sprintf("%d-%d", *from, *to)
	if len(except) > 0 {
		s += fmt.Sprintf(" except %v", except)
	}
	return s
}

func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("server side: %s: %v", data, err)
	}
}

// wire is a server frame as the server writes it; s nil leaves "s" out.
func wire(n string, op int, d any, s *uint64) map[string]any {
	m := map[string]any{"n": n, "op": op, "d": d}
	if s != nil {
		m["s"] = *s
	}
	return m
}

func at(s uint64) *uint64 { return &s }

// dispatch is a chat op 0 payload.
func dispatch(typ, cursor string, d any) map[string]any {
	return map[string]any{"t": typ, "c": cursor, "d": d}
}

// msg is a MESSAGE_CREATE dispatch whose cursor names it.
func msg(cursor string) map[string]any {
	return dispatch("MESSAGE_CREATE", cursor, map[string]string{"content": "m" + cursor})
}

func ready(cursor string) map[string]any {
	return dispatch("READY", cursor, map[string]any{"session_id": "s1", "fid": "alice@a.test",
		"guilds": []any{}, "channels": []any{}, "groups": []any{}})
}

// connectFake connects a Gateway of a fresh session to fg. The session is stored in dir when
// dir is not "".
func connectFake(t *testing.T, fg *fakeGateway, dir string, opts GatewayOptions) (*Session, *Gateway, *fakeConn) {
	t.Helper()
	c := newClient(t, fg.srv.URL, dir)
	s := testSession(t, testRoot(t, "a.test"), mustFID(t, "alice@a.test"), "s1", fg.srv.URL)
	if dir != "" {
		if err := c.keys.save(s); err != nil {
			t.Fatal(err)
		}
	}
	g, fc := connectAs(t, c, s, opts, fg, func(fc *fakeConn) { fc.identify(s.Token, opts.Services...) })
	return s, g, fc
}

// connectAs runs Connect while the server side plays script, and returns the Gateway and the
// server's end of the connection.
func connectAs(t *testing.T, c *Client, s *Session, opts GatewayOptions, fg *fakeGateway, script func(*fakeConn)) (*Gateway, *fakeConn) {
	t.Helper()
	type result struct {
		g   *Gateway
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		g, err := c.Connect(ctx, s, opts)
		res <- result{g, err}
	}()
	fc := fg.accept(t)
	script(fc)
	r := <-res
	if r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	t.Cleanup(func() { _ = r.g.Close() })
	return r.g, fc
}

// next is the gateway's next event.
func next(t *testing.T, g *Gateway) Event {
	t.Helper()
	select {
	case ev, ok := <-g.Events():
		if !ok {
			t.Fatal("Events closed")
		}
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event")
	}
	return Event{}
}

// expectEvents checks the next events by their summaries (see describe).
func expectEvents(t *testing.T, g *Gateway, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := describe(next(t, g)); got != w {
			t.Fatalf("event %d: got %s, want %s", i, got, w)
		}
	}
}

// expectClosed checks that Events is closed, after draining nothing.
func expectClosed(t *testing.T, g *Gateway) {
	t.Helper()
	select {
	case ev, ok := <-g.Events():
		if ok {
			t.Fatalf("got %s, want Events closed", describe(ev))
		}
	case <-time.After(waitFor):
		t.Fatal("Events not closed")
	}
}

// describe summarises an event for comparisons: "ready 10", "MESSAGE_CREATE 12",
// "closed 4009 resumable", "resumed", ...
func describe(ev Event) string {
	switch {
	case ev.Ready != nil:
		return "ready " + ev.Ready.Cursor
	case ev.Dispatch != nil:
		return ev.Dispatch.Type + " " + ev.Dispatch.Cursor
	case ev.Service != nil:
		return fmt.Sprintf("service %s %s %v", ev.Service.Action, ev.Service.Service, ev.Service.Success)
	case ev.NewSession != nil:
		return "new session " + ev.NewSession.Cert.SessionID
	case ev.CertInvalidated != nil:
		return "cert invalidated"
	case ev.Resumed:
		return "resumed"
	case ev.Resync != nil:
		return "resync " + ev.Resync.Reason
	case ev.Closed != nil:
		s := fmt.Sprintf("closed %d", ev.Closed.Code)
		if ev.Closed.Resumable {
			s += " resumable"
		}
		if ev.Closed.Final {
			s += " final"
		}
		return s
	}
	return "empty event"
}
