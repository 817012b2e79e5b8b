package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/actors/session"
)

// quick is a config whose deadlines stay out of the way of tests that do not test them.
var quick = WSConfig{HeartbeatInterval: time.Minute, IdentifyTimeout: 5 * time.Second, WriteTimeout: 2 * time.Second}

// TestHelloThenIdentify: a user registered and logged in over REST connects, gets Hello exactly
// as the golden frame has it (contract defaults), identifies and is answered.
func TestHelloThenIdentify(t *testing.T) {
	g := newGatewayServer(t, WSConfig{}, nil)
	e := &edge{url: g.http}
	const pw = "a fine password"
	if code, eb, _ := e.do(t, call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": "alice", "password": pw})}); code != 201 {
		t.Fatalf("register: %d %+v", code, eb)
	}
	_, csr := csrPEM(t, "alice@a.test", "laptop")
	code, eb, raw := e.do(t, call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": pw, "csr": csr})})
	if code != 201 {
		t.Fatalf("login: %d %+v", code, eb)
	}
	var login struct{ Token string }
	_ = json.Unmarshal(raw, &login)

	c := g.dial(t)
	hello := c.read()
	golden, _ := os.ReadFile("testdata/frames/s2c-op01-hello.json")
	if !bytes.Equal(hello.raw, bytes.TrimSpace(golden)) {
		t.Fatalf("Hello %s, want the golden %s", hello.raw, golden)
	}
	c.send(fmt.Sprintf(`{"n":"core","op":2,"d":{"token":%q}}`, login.Token))
	c.send(`{"n":"core","op":"0","d":{}}`) // as polyproto-rs writes it
	if ack := c.read(); string(ack.raw) != `{"n":"core","op":7,"d":[],"s":1}` {
		t.Fatalf("ACK %s", ack.raw)
	}
	// The trailing slash polyproto-rs adds to every route reaches the gateway too.
	ws, _, err := websocket.DefaultDialer.Dial(g.url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = ws.Close()
}

// TestCloseCodes: each way a client can break the contract ends its connection with the
// contract's close code.
func TestCloseCodes(t *testing.T) {
	cfg := quick
	cfg.IdentifyTimeout = 300 * time.Millisecond
	g := newGatewayServer(t, cfg, nil)
	token := g.login(t, "alice@a.test", "laptop")
	identify := fmt.Sprintf(`{"n":"core","op":2,"d":{"token":%q}}`, token)
	cases := []struct {
		name     string
		identify bool     // identify first
		frames   []string // then send these
		binary   []byte
		code     int
	}{
		{name: "bad token", frames: []string{`{"op":2,"d":{"token":"YWxpY2VAYS50ZXN0.forged"}}`}, code: 4004},
		{name: "malformed token", frames: []string{`{"op":2,"d":{"token":"!!!"}}`}, code: 4004},
		{name: "frame before identify", frames: []string{`{"op":0,"d":{}}`}, code: 4003},
		{name: "subscribe before identify", frames: []string{`{"op":8,"d":{"action":"subscribe","service":"chat"}}`}, code: 4003},
		{name: "identify timeout", code: 4003},
		{name: "second identify", identify: true, frames: []string{identify}, code: 4005},
		{name: "unknown opcode", identify: true, frames: []string{`{"op":42,"d":{}}`}, code: 4001},
		{name: "server opcode from the client", identify: true, frames: []string{`{"op":"1","d":{}}`}, code: 4001},
		{name: "bad JSON", identify: true, frames: []string{`{"op":0,"d":`}, code: 4002},
		{name: "bad JSON before identify", frames: []string{`hello`}, code: 4002},
		{name: "bad heartbeat", identify: true, frames: []string{`{"op":0,"d":{"from":"x","to":1}}`}, code: 4002},
		{name: "oversize frame", identify: true, frames: []string{`{"op":0,"d":{"pad":"` + strings.Repeat("x", 16<<10) + `"}}`}, code: 4002},
		{name: "binary frame", identify: true, binary: []byte(`{"op":0}`), code: 4002},
		{name: "namespace not subscribed", identify: true, frames: []string{`{"n":"chat","op":0,"d":{}}`}, code: 4002},
		{name: "range never sent", identify: true, frames: []string{`{"op":0,"d":{"from":0,"to":9}}`}, code: 4007},
		{name: "except outside the range", identify: true, frames: []string{`{"op":0,"d":{"from":0,"to":1,"except":[2]}}`}, code: 4007},
		{name: "rate limit (contract numbers)", identify: true, frames: repeat(`{"op":0,"d":{}}`, 25), code: 4008},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := g.dial(t)
			if tc.identify {
				c.identify(token)
			} else {
				c.expect("core", 1)
			}
			for _, f := range tc.frames {
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
					break // the server may close before the last one
				}
			}
			if tc.binary != nil {
				c.ws.WriteMessage(websocket.BinaryMessage, tc.binary)
			}
			c.closed(tc.code)
		})
	}
	// A chat frame from a subscribed client names no client opcode: 4001.
	c := g.dial(t)
	c.identify(token)
	c.subscribe("chat")
	c.expect("chat", 0)
	c.send(`{"n":"chat","op":0,"d":{}}`)
	c.closed(4001)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestHeartbeats: every heartbeat is acknowledged; an except list gets those frames again inside
// the ACK with their original s; an except of a frame never sent closes with 4007.
func TestHeartbeats(t *testing.T) {
	g := newGatewayServer(t, quick, nil)
	token := g.login(t, "alice@a.test", "laptop")
	c := g.dial(t)
	c.identify(token) // Hello 0, ACK 1
	reg := g.ws.Sessions()
	for i := range 3 { // s 2, 3, 4
		reg.Deliver("alice@a.test", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(fmt.Sprintf(`{"cert":"c%d"}`, i))})
	}
	var sent []wire
	for range 3 {
		sent = append(sent, c.expect("core", 3))
	}
	c.send(`{"n":"core","op":0,"d":{"from":"0","to":"4","except":["4","2"]}}`)
	ack := c.expect("core", 7)
	again := ack.frames(t)
	if ack.S != 5 || len(again) != 2 || !bytes.Equal(again[0].raw, sent[0].raw) || !bytes.Equal(again[1].raw, sent[2].raw) {
		t.Fatalf("ACK s=%d with %s, want frames 2 and 4 as first sent", ack.S, ack.D)
	}
	c.send(`{"n":"core","op":0,"d":{"from":0,"to":5}}`)
	if ack := c.expect("core", 7); ack.S != 6 || string(ack.D) != "[]" {
		t.Fatalf("plain ACK: %s", ack.raw)
	}
	c.send(`{"n":"core","op":0,"d":{"from":0,"to":6,"except":[9]}}`)
	c.closed(4007)
}

// TestHeartbeatTimeout: a client that stops heartbeating gets op 11 after 1.5 intervals and is
// closed with 4009 after 2.
func TestHeartbeatTimeout(t *testing.T) {
	cfg := quick
	cfg.HeartbeatInterval = 400 * time.Millisecond
	g := newGatewayServer(t, cfg, nil)
	c := g.dial(t)
	c.identify(g.login(t, "alice@a.test", "laptop"))
	start := time.Now()
	c.expect("core", 11)
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("Heartbeat Request after %s, want about 600ms", d)
	}
	c.closed(4009)
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("closed after %s, want about 800ms", d)
	}
	// Heartbeating in time keeps a connection open past the timeout.
	c = g.dial(t)
	c.identify(g.login(t, "alice@a.test", "phone"))
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		c.send(`{"op":0}`)
		c.expect("core", 7)
	}
}

// TestServiceChannel: subscribing chat answers op 9 and READY with a cursor; unknown services
// and unsubscribing what is not subscribed are refused with op 9.
func TestServiceChannel(t *testing.T) {
	g := newGatewayServer(t, quick, nil)
	c := g.dial(t)
	c.identify(g.login(t, "alice@a.test", "laptop"))
	if ack := c.subscribe("chat"); string(ack.D) != `{"action":"subscribe","service":"chat","success":true}` {
		t.Fatalf("op 9: %s", ack.raw)
	}
	ready := c.expect("chat", 0).chat(t)
	if ready.T != "READY" || ready.C != "42" || string(ready.D) != `{"session_id":"laptop","fid":"alice@a.test","guilds":[],"channels":[],"groups":[]}` {
		t.Fatalf("READY %+v %s", ready, ready.D)
	}
	if ack := c.subscribe("mls"); string(ack.D) != `{"action":"subscribe","service":"mls","success":false,"error":"unknown service"}` {
		t.Fatalf("unknown service: %s", ack.raw)
	}
	c.send(`{"op":8,"d":{"action":"unsubscribe","service":"chat"}}`)
	if ack := c.expect("core", 9); !bytes.Contains(ack.D, []byte(`"success":true`)) {
		t.Fatalf("unsubscribe: %s", ack.raw)
	}
	c.send(`{"op":8,"d":{"action":"unsubscribe","service":"chat"}}`)
	if ack := c.expect("core", 9); !bytes.Contains(ack.D, []byte(`"success":false,"error":"not subscribed"`)) {
		t.Fatalf("unsubscribe twice: %s", ack.raw)
	}
}

// TestRegistryDelivery: Deliver reaches the sessions of that FID subscribed to the namespace
// (core: all of them); DeliverExcept skips one ID-Cert session.
func TestRegistryDelivery(t *testing.T) {
	g := newGatewayServer(t, quick, nil)
	laptop, phone, bob := g.dial(t), g.dial(t), g.dial(t)
	laptop.identify(g.login(t, "alice@a.test", "laptop"))
	phone.identify(g.login(t, "alice@a.test", "phone"))
	bob.identify(g.login(t, "bob@a.test", "desk"))
	for _, c := range []*client{laptop, bob} {
		c.subscribe("chat")
		c.expect("chat", 0)
	}
	reg := g.ws.Sessions()
	reg.Deliver("alice@a.test", session.Dispatch{Namespace: "chat", Type: "MESSAGE_CREATE", Cursor: 43, Data: json.RawMessage(`{"id":"1"}`)})
	reg.Deliver("alice@a.test", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(`{"cert":"new"}`)})
	reg.DeliverExcept("alice@a.test", "phone", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(`{"cert":"phone's"}`)})

	if m := laptop.expect("chat", 0).chat(t); m.T != "MESSAGE_CREATE" || m.C != "43" || string(m.D) != `{"id":"1"}` {
		t.Fatalf("laptop: %+v", m)
	}
	laptop.expect("core", 3)
	laptop.expect("core", 3)
	phone.expect("core", 3)
	// Deliveries were queued before these heartbeats, so an ACK next means nothing else came.
	for _, c := range []*client{laptop, phone, bob} {
		c.send(`{"op":0}`)
		c.expect("core", 7)
	}
}

// resume sends op 5 on a fresh connection and returns its answer.
func resume(c *client, token string, s uint64, cursor string) {
	c.t.Helper()
	c.expect("core", 1)
	d := map[string]any{"token": token, "s": fmt.Sprint(s)} // s as a string, as polyproto-rs sends it
	if cursor != "" {
		d["cursor"] = cursor
	}
	b, _ := json.Marshal(map[string]any{"n": "core", "op": 5, "d": d})
	c.send(string(b))
}

func chatEvent(cursor uint64) session.Dispatch {
	return session.Dispatch{Namespace: "chat", Type: "MESSAGE_CREATE", Cursor: eventsPos(cursor), Data: json.RawMessage(fmt.Sprintf(`{"id":"%d"}`, cursor))}
}

// TestResumeInProcess: a dropped connection's session keeps what is delivered meanwhile; a
// Resume gets exactly the frames after its s, and the numbering continues.
func TestResumeInProcess(t *testing.T) {
	g := newGatewayServer(t, quick, nil)
	token := g.login(t, "alice@a.test", "laptop")
	reg := g.ws.Sessions()
	c := g.dial(t)
	c.identify(token) // 0, 1
	c.subscribe("chat")
	c.expect("chat", 0) // 2, 3
	reg.Deliver("alice@a.test", chatEvent(43))
	if w := c.expect("chat", 0); w.S != 4 {
		t.Fatalf("s = %d", w.S)
	}
	_ = c.ws.NetConn().Close() // the network drops: no close frame
	reg.Deliver("alice@a.test", chatEvent(44))
	reg.Deliver("alice@a.test", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(`{"cert":"x"}`)})

	c2 := g.dial(t)
	resume(c2, token, 4, "43")
	w := c2.expect("core", 10)
	missed := w.frames(t)
	if len(missed) != 2 || missed[0].S != 5 || missed[0].chat(t).C != "44" || missed[1].S != 6 || missed[1].Op != 3 || w.S != 7 {
		t.Fatalf("Resumed s=%d %s", w.S, w.D)
	}
	reg.Deliver("alice@a.test", chatEvent(45)) // still subscribed, numbering continues
	if w := c2.expect("chat", 0); w.S != 8 || w.chat(t).C != "45" {
		t.Fatalf("after resume: %s", w.raw)
	}
	if len(g.replay.calls) != 0 {
		t.Fatalf("the log was replayed although the frames were here: %v", g.replay.calls)
	}
}

// TestResumeFromTheLog: a fresh process on the same store has no frames; a Resume with a cursor
// gets what the Replayer finds after it, then live events past the last one.
func TestResumeFromTheLog(t *testing.T) {
	first := newGatewayServer(t, quick, nil)
	token := first.login(t, "alice@a.test", "laptop")
	g := newGatewayServer(t, quick, first.store) // "after a restart"
	g.replay.set([]session.Dispatch{chatEvent(50), chatEvent(51)}, false)
	c := g.dial(t)
	resume(c, token, 9, "49") // s=9 of a connection this process never had
	w := c.expect("core", 10)
	got := w.frames(t)
	if len(got) != 2 || got[0].chat(t).C != "50" || got[1].chat(t).C != "51" || got[0].S != 1 || got[1].S != 2 || w.S != 3 {
		t.Fatalf("Resumed s=%d %s", w.S, w.D)
	}
	if fmt.Sprint(g.replay.calls) != "[49]" {
		t.Fatalf("replayed after %v, want [49]", g.replay.calls)
	}
	reg := g.ws.Sessions()
	reg.Deliver("alice@a.test", chatEvent(51)) // already replayed: dropped
	reg.Deliver("alice@a.test", chatEvent(52))
	if w := c.expect("chat", 0); w.chat(t).C != "52" || w.S != 4 {
		t.Fatalf("live after replay: %s", w.raw)
	}

	// Too much missed: a single RESYNC_REQUIRED, and chat is no longer subscribed. (Another
	// ID-Cert session: a Resume with the same token would take over the session above.)
	g.replay.set(nil, true)
	c = g.dial(t)
	resume(c, g.login(t, "alice@a.test", "phone"), 0, "1")
	w = c.expect("core", 10)
	if got := w.frames(t); len(got) != 1 || got[0].chat(t).T != "RESYNC_REQUIRED" || !bytes.Contains(got[0].chat(t).D, []byte(`"reason"`)) {
		t.Fatalf("truncated replay: %s", w.D)
	}
	reg.Deliver("alice@a.test", chatEvent(53))
	c.send(`{"op":0}`)
	c.expect("core", 7)

	// No cursor and no frames here: 4010. A bad token: 4004.
	c = g.dial(t)
	resume(c, g.login(t, "alice@a.test", "tablet"), 3, "")
	c.closed(4010)
	c = g.dial(t)
	resume(c, "YWxpY2VAYS50ZXN0.forged", 3, "1")
	c.closed(4004)
}

// TestSlowConsumer: a client that never reads is closed with 4009 within a bounded time while
// another client on the same server keeps getting its deliveries promptly.
func TestSlowConsumer(t *testing.T) {
	cfg := quick
	cfg.WriteTimeout = 500 * time.Millisecond
	g := newGatewayServer(t, cfg, nil)
	slow, fast := g.dial(t), g.dial(t)
	slow.identify(g.login(t, "slow@a.test", "laptop"))
	fast.identify(g.login(t, "fast@a.test", "laptop"))
	reg := g.ws.Sessions()

	var (
		mu      sync.Mutex
		worst   time.Duration
		got     int
		fastErr error
	)
	done := make(chan struct{})
	go func() { // the fast client reads all the time
		defer close(done)
		for {
			_ = fast.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := fast.ws.ReadMessage()
			if err != nil {
				mu.Lock()
				fastErr = err
				mu.Unlock()
				return
			}
			var w wire
			_ = json.Unmarshal(b, &w)
			var d struct{ Sent int64 }
			_ = json.Unmarshal(w.D, &d)
			mu.Lock()
			worst = max(worst, time.Since(time.Unix(0, d.Sent)))
			got++
			n := got
			mu.Unlock()
			if n == 20 {
				return
			}
		}
	}()

	pad := strings.Repeat("x", 4<<10)
	start := time.Now()
	closed := func() bool { return g.logs.has("gateway connection closed", map[string]any{"code": 4009}) }
	delivered, fastSent := 0, 0
	for !closed() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the slow client is still open after %d frames", delivered)
		}
		for range 200 {
			reg.Deliver("slow@a.test", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(`{"pad":"` + pad + `"}`)})
			delivered++
		}
		if fastSent < 20 {
			reg.Deliver("fast@a.test", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(fmt.Sprintf(`{"Sent":%d}`, time.Now().UnixNano()))})
			fastSent++
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("slow client closed after %d frames (%s)", delivered, time.Since(start).Round(time.Millisecond))
	for fastSent < 20 {
		reg.Deliver("fast@a.test", session.Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(fmt.Sprintf(`{"Sent":%d}`, time.Now().UnixNano()))})
		fastSent++
		time.Sleep(20 * time.Millisecond)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if got != 20 || fastErr != nil {
		t.Fatalf("the other client got %d of 20 frames (%v)", got, fastErr)
	}
	if worst > 2*time.Second {
		t.Fatalf("the other client waited up to %s for a frame", worst)
	}
	t.Logf("the other client's worst latency: %s", worst)
	// The slow client finds its connection gone once it reads again.
	_ = slow.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := slow.ws.ReadMessage(); err != nil {
			break
		}
	}
}

// TestShutdown: connections get 1001 going away; new ones are refused.
func TestShutdown(t *testing.T) {
	g := newGatewayServer(t, quick, nil)
	c := g.dial(t)
	c.identify(g.login(t, "alice@a.test", "laptop"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.ws.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.closed(1001)
	_, resp, err := websocket.DefaultDialer.Dial(g.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial after shutdown: %v", err)
	}
}
