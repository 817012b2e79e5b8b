package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// TestGatewayHeartbeatsAndACKs: heartbeats report exactly what arrived (gaps as except), op 11
// is answered at once although the interval is a minute, frames above a gap wait for it, frames
// an ACK re-sends are delivered once, and what an ACK does not re-send stops blocking delivery.
// Every heartbeat is answered by the next op 7, as the server does.
func TestGatewayHeartbeatsAndACKs(t *testing.T) {
	fg := newFakeGateway(t)
	_, g, fc := connectFake(t, fg, "", GatewayOptions{Services: []string{"chat"}})

	fc.send(nsCore, opServiceACK, map[string]any{"action": "subscribe", "service": "chat", "success": true}) // 1
	fc.send(nsChat, opDispatch, ready("10"))                                                                 // 2
	lost := fc.lose()                                                                                        // 3
	fc.send(nsChat, opDispatch, msg("12"))                                                                   // 4
	fc.send(nsChat, opDispatch, msg("13"))                                                                   // 5
	heartbeat(t, fc, "0-6 except [3]")                                                                       // op 11 is 6
	expectEvents(t, g, "service subscribe chat true", "ready 10")

	// The ACK re-sends 3; 4 and 5 were held for it. The next range reaches back to the re-sent
	// 3: it was received in this interval.
	fc.send(nsCore, opHeartbeatACK, []any{wire(nsChat, opDispatch, msg("11"), at(lost))}) // 7
	expectEvents(t, g, "MESSAGE_CREATE 11", "MESSAGE_CREATE 12", "MESSAGE_CREATE 13")
	heartbeat(t, fc, "3-8")

	// A server that re-sends again (it "should expect that a client requests these events yet
	// another time") causes no duplicates; duplicates are not reported as received.
	fc.send(nsCore, opHeartbeatACK, []any{
		wire(nsChat, opDispatch, msg("11"), at(3)), wire(nsChat, opDispatch, msg("12"), at(4)),
	}) // 9
	fc.send(nsChat, opDispatch, msg("14")) // 10
	heartbeat(t, fc, "9-11")
	expectEvents(t, g, "MESSAGE_CREATE 14")
	if got := g.Cursor(); got != "14" {
		t.Errorf("Cursor() = %q, want 14", got)
	}

	// Two gaps, both filled by the ACK, oldest first.
	fc.send(nsCore, opHeartbeatACK, []any{}) // 12
	fc.lose()                                // 13
	fc.lose()                                // 14
	fc.send(nsChat, opDispatch, msg("17"))   // 15
	heartbeat(t, fc, "12-16 except [13 14]")
	fc.send(nsCore, opHeartbeatACK, []any{
		wire(nsChat, opDispatch, msg("15"), at(13)), wire(nsChat, opDispatch, msg("16"), at(14)),
	}) // 17
	expectEvents(t, g, "MESSAGE_CREATE 15", "MESSAGE_CREATE 16", "MESSAGE_CREATE 17")
	heartbeat(t, fc, "13-18")

	// A lost frame the server does not keep (an op 11, say) is not in the ACK: it is settled,
	// and what waited behind it is delivered.
	fc.send(nsCore, opHeartbeatACK, []any{}) // 19
	fc.lose()                                // 20
	fc.send(nsChat, opDispatch, msg("18"))   // 21
	heartbeat(t, fc, "19-22 except [20]")
	fc.send(nsCore, opHeartbeatACK, []any{}) // 23
	expectEvents(t, g, "MESSAGE_CREATE 18")
	heartbeat(t, fc, "20-24")
	if got := g.Cursor(); got != "18" {
		t.Errorf("Cursor() = %q, want 18", got)
	}
}

func heartbeat(t *testing.T, fc *fakeConn, want string) {
	t.Helper()
	if got := fc.heartbeat(); got != want {
		t.Fatalf("heartbeat %q, want %q", got, want)
	}
}

// TestGatewayHeartbeatTimer: without op 11, heartbeats come on the Hello's interval.
func TestGatewayHeartbeatTimer(t *testing.T) {
	fg := newFakeGateway(t)
	c := newClient(t, fg.srv.URL, "")
	s := testSession(t, testRoot(t, "a.test"), mustFID(t, "alice@a.test"), "s1", fg.srv.URL)
	_, fc := connectAs(t, c, s, GatewayOptions{}, fg, func(fc *fakeConn) {
		fc.helloEvery(50 * time.Millisecond)
		fc.expect(opIdentify)
	})
	if got, want := fc.expectHeartbeat(), "0-0"; got != want {
		t.Fatalf("first heartbeat %q, want %q", got, want)
	}
	if got, want := fc.expectHeartbeat(), "none"; got != want {
		t.Fatalf("heartbeat after a quiet interval %q, want %q", got, want)
	}
}

// TestGatewayResumeContinued: the server drops the connection; the SDK resumes with the last s,
// the token and the cursor, and of the frames op 10 re-sends delivers only the ones it lacked.
func TestGatewayResumeContinued(t *testing.T) {
	fg := newFakeGateway(t)
	s, g, fc := connectFake(t, fg, "", GatewayOptions{Services: []string{"chat"}, Reconnect: true})
	fc.send(nsCore, opServiceACK, map[string]any{"action": "subscribe", "service": "chat", "success": true}) // 1
	fc.send(nsChat, opDispatch, ready("10"))                                                                 // 2
	fc.lose()                                                                                                // 3
	fc.send(nsChat, opDispatch, msg("12"))                                                                   // 4: held for 3
	fc.lose()                                                                                                // 5: an op 7, which the server does not keep
	fc.closeWith(CloseTimeout, "slow reader")
	expectEvents(t, g, "service subscribe chat true", "ready 10", "closed 4009 resumable")

	fc2 := fg.accept(t)
	fc2.hello()
	var r resumePayload
	decodeStrict(t, fc2.expect(opResume).D, &r)
	if want := (resumePayload{S: 2, Token: s.Token, Cursor: "10"}); r != want {
		t.Fatalf("resume %+v, want %+v", r, want)
	}
	// The old numbering continues: op 10 is 6 and re-sends 3 and 4 (which the client held),
	// not 5.
	fc2.sendAt(6, nsCore, opResumed, []any{
		wire(nsChat, opDispatch, msg("11"), at(3)), wire(nsChat, opDispatch, msg("12"), at(4)),
	})
	fc2.send(nsChat, opDispatch, msg("13")) // 7
	expectEvents(t, g, "MESSAGE_CREATE 11", "MESSAGE_CREATE 12", "resumed", "MESSAGE_CREATE 13")
	// No second subscribe after a resume: the next thing the client sends is the heartbeat,
	// whose range covers both connections, which share one numbering.
	heartbeat(t, fc2, "0-8")
	if got := g.Cursor(); got != "13" {
		t.Errorf("Cursor() = %q, want 13", got)
	}
}

// TestGatewayHeartbeatRequestWhileResuming: an op 11 before the answer to Resume is answered at
// once, with an empty heartbeat (the numbering is not known yet), and only once.
func TestGatewayHeartbeatRequestWhileResuming(t *testing.T) {
	fg := newFakeGateway(t)
	_, g, fc := connectFake(t, fg, "", GatewayOptions{Services: []string{"chat"}, Reconnect: true})
	fc.send(nsChat, opDispatch, ready("10")) // 1
	fc.closeWith(CloseUnknownError, "")
	expectEvents(t, g, "ready 10", "closed 4000 resumable")

	fc2 := fg.accept(t)
	fc2.hello()
	fc2.expect(opResume)
	fc2.sendAt(3, nsCore, opHeartbeatRequest, map[string]any{})
	if got := fc2.expectHeartbeat(); got != "none" {
		t.Fatalf("heartbeat before op 10: %q, want none", got)
	}
	fc2.sendAt(2, nsCore, opResumed, []any{})
	expectEvents(t, g, "resumed")
	fc2.sendAt(4, nsChat, opDispatch, msg("11"))
	expectEvents(t, g, "MESSAGE_CREATE 11")
	heartbeat(t, fc2, "0-5")
}

// TestGatewayResumeFromLog: a server that lost the connection's frames replays its log in a
// fresh numbering. Ours numbers the replayed frames from 1 and the Resumed frame after them;
// the contract also allows replayed frames without an s of their own.
func TestGatewayResumeFromLog(t *testing.T) {
	tests := []struct {
		name          string
		inner         []*uint64 // s of the two replayed frames
		resumedS      uint64
		wantHeartbeat string
	}{
		{name: "numbered before Resumed", inner: []*uint64{at(1), at(2)}, resumedS: 3, wantHeartbeat: "3-5"},
		{name: "s 0", inner: []*uint64{at(0), at(0)}, resumedS: 1, wantHeartbeat: "1-3"},
		{name: "no s", inner: []*uint64{nil, nil}, resumedS: 1, wantHeartbeat: "1-3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fg := newFakeGateway(t)
			s, g, fc := connectFake(t, fg, "", GatewayOptions{Services: []string{"chat"}, Reconnect: true})
			fc.send(nsChat, opDispatch, ready("10")) // 1
			fc.send(nsChat, opDispatch, msg("11"))   // 2
			fc.send(nsChat, opDispatch, msg("12"))   // 3
			fc.closeWith(1001, "restarting")
			expectEvents(t, g, "ready 10", "MESSAGE_CREATE 11", "MESSAGE_CREATE 12", "closed 1001 resumable")

			fc2 := fg.accept(t)
			fc2.hello()
			var r resumePayload
			decodeStrict(t, fc2.expect(opResume).D, &r)
			if want := (resumePayload{S: 3, Token: s.Token, Cursor: "12"}); r != want {
				t.Fatalf("resume %+v, want %+v", r, want)
			}
			fc2.sendAt(tt.resumedS, nsCore, opResumed, []any{
				wire(nsChat, opDispatch, msg("13"), tt.inner[0]), wire(nsChat, opDispatch, msg("14"), tt.inner[1]),
			})
			fc2.send(nsChat, opDispatch, msg("15"))
			expectEvents(t, g, "MESSAGE_CREATE 13", "MESSAGE_CREATE 14", "resumed", "MESSAGE_CREATE 15")
			heartbeat(t, fc2, tt.wantHeartbeat)
			if got := g.Cursor(); got != "15" {
				t.Errorf("Cursor() = %q, want 15", got)
			}
		})
	}
}

// TestGatewayResync: past its replay limit the server answers a Resume with RESYNC_REQUIRED,
// which the SDK surfaces; a Subscribe afterwards goes out on the live connection.
func TestGatewayResync(t *testing.T) {
	fg := newFakeGateway(t)
	s, g, fc := connectFake(t, fg, "", GatewayOptions{Services: []string{"chat"}, Reconnect: true})
	fc.send(nsChat, opDispatch, ready("10")) // 1
	fc.closeWith(CloseUnknownError, "")
	expectEvents(t, g, "ready 10", "closed 4000 resumable")

	fc2 := fg.accept(t)
	fc2.hello()
	var r resumePayload
	decodeStrict(t, fc2.expect(opResume).D, &r)
	if want := (resumePayload{S: 1, Token: s.Token, Cursor: "10"}); r != want {
		t.Fatalf("resume %+v, want %+v", r, want)
	}
	// As our server numbers it: the RESYNC frame 1, the Resumed frame 2, which is also where
	// the old connection would have continued; the replayed s below ours tell them apart.
	fc2.sendAt(2, nsCore, opResumed, []any{
		wire(nsChat, opDispatch, map[string]any{"t": "RESYNC_REQUIRED", "d": map[string]string{"reason": "1500 events missed"}}, at(1)),
	})
	expectEvents(t, g, "resync 1500 events missed", "resumed")

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := g.Subscribe(ctx, "chat"); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	var sub servicePayload
	decodeStrict(t, fc2.expect(opServiceChannel).D, &sub)
	if sub != (servicePayload{Action: "subscribe", Service: "chat"}) {
		t.Fatalf("subscribe %+v", sub)
	}
	fc2.send(nsChat, opDispatch, ready("20"))
	expectEvents(t, g, "ready 20")
}

// TestGatewayUnresumeable: a Resume the server cannot honour (4010) becomes a fresh Identify with
// the subscribes, on a fresh numbering.
func TestGatewayUnresumeable(t *testing.T) {
	fg := newFakeGateway(t)
	s, g, fc := connectFake(t, fg, "", GatewayOptions{Services: []string{"chat"}, Reconnect: true})
	fc.send(nsChat, opDispatch, ready("10"))
	fc.closeWith(CloseInvalidSequence, "")
	expectEvents(t, g, "ready 10", "closed 4007 resumable")

	fc2 := fg.accept(t)
	fc2.hello()
	fc2.expect(opResume)
	fc2.closeWith(CloseUnresumeable, "gone")
	expectEvents(t, g, "closed 4010")

	fc3 := fg.accept(t)
	fc3.identify(s.Token, "chat")
	fc3.send(nsChat, opDispatch, ready("30")) // 1
	expectEvents(t, g, "ready 30")
	heartbeat(t, fc3, "0-2")
}

// TestGatewayFinalClose: close codes that allow no resume end the gateway, and so does any close
// without Reconnect.
func TestGatewayFinalClose(t *testing.T) {
	tests := []struct {
		code      int
		reconnect bool
		want      string
	}{
		{CloseNotAuthenticated, true, "closed 4003 final"},
		{CloseInvalidAuth, true, "closed 4004 final"},
		{CloseAlreadyAuth, true, "closed 4005 final"},
		{CloseRateLimited, true, "closed 4008 final"},
		{1000, true, "closed 1000 final"},
		{4999, true, "closed 4999 final"},
		{CloseTimeout, false, "closed 4009 resumable final"},
		{CloseUnresumeable, false, "closed 4010 final"},
		// 4010 on a running connection: the session was resumed elsewhere.
		{CloseUnresumeable, true, "closed 4010 final"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d reconnect %v", tt.code, tt.reconnect), func(t *testing.T) {
			fg := newFakeGateway(t)
			_, g, fc := connectFake(t, fg, "", GatewayOptions{Reconnect: tt.reconnect})
			fc.closeWith(tt.code, "bye")
			ev := next(t, g)
			if got := describe(ev); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if ev.Closed.Reason != "bye" {
				t.Errorf("reason %q, want bye", ev.Closed.Reason)
			}
			expectClosed(t, g)
			fg.noConnection(t, 2*reconnectBase)
		})
	}
}

// TestGatewayNetworkDrop: a connection that breaks without a close frame is resumed.
func TestGatewayNetworkDrop(t *testing.T) {
	fg := newFakeGateway(t)
	_, g, fc := connectFake(t, fg, "", GatewayOptions{Reconnect: true})
	fc.ws.NetConn().Close()
	ev := next(t, g)
	if got, want := describe(ev), "closed 1006 resumable"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if ev.Closed.Err == nil {
		t.Error("Closed.Err is nil for a network error")
	}
	fc2 := fg.accept(t)
	fc2.hello()
	var r resumePayload
	decodeStrict(t, fc2.expect(opResume).D, &r)
	if r.S != 0 || r.Cursor != "" {
		t.Errorf("resume %+v, want s 0 and no cursor", r)
	}
}

// TestGatewayBackpressure: an application that does not read stops the reader; nothing is lost.
func TestGatewayBackpressure(t *testing.T) {
	fg := newFakeGateway(t)
	_, g, fc := connectFake(t, fg, "", GatewayOptions{})
	const n = 10 * eventBuffer
	for i := range n {
		fc.send(nsChat, opDispatch, msg(itoa(i)))
	}
	time.Sleep(100 * time.Millisecond) // the reader fills the buffer and blocks
	for i := range n {
		ev := next(t, g)
		if ev.Dispatch == nil || ev.Dispatch.Cursor != itoa(i) {
			t.Fatalf("event %d: %s", i, describe(ev))
		}
	}
}

// TestGatewayCoreEvents: ops 3 and 4 become typed events; a malformed one is skipped, not fatal.
func TestGatewayCoreEvents(t *testing.T) {
	fg := newFakeGateway(t)
	root := testRoot(t, "a.test")
	other := testSession(t, root, mustFID(t, "alice@a.test"), "s2", fg.srv.URL)
	_, g, fc := connectFake(t, fg, "", GatewayOptions{})
	fc.send(nsCore, opNewSession, map[string]string{"cert": "not a cert"})
	fc.send(nsCore, opNewSession, map[string]string{"cert": other.Cert.PEM()})
	now := time.Now()
	cc := identity.SignCacheable(root, other.Cert, &now, now, now.Add(time.Hour))
	fc.send(nsCore, opCertInvalidation, cc)
	fc.send("mls", 0, map[string]string{})
	fc.send(nsChat, opDispatch, ready("1"))
	expectEvents(t, g, "new session s2", "cert invalidated", "ready 1")
}

// TestGatewayCloseAndStoredResumePoint: Close ends the connection with 1000 and leaves the resume
// point in the keystore, from which a later Connect resumes.
func TestGatewayCloseAndStoredResumePoint(t *testing.T) {
	fg := newFakeGateway(t)
	dir := t.TempDir()
	s, g, fc := connectFake(t, fg, dir, GatewayOptions{Services: []string{"chat"}})
	fc.send(nsChat, opDispatch, ready("10")) // 1
	fc.send(nsChat, opDispatch, msg("11"))   // 2
	expectEvents(t, g, "ready 10", "MESSAGE_CREATE 11")
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-fc.gone:
	case <-time.After(waitFor):
		t.Fatal("server side: connection still open after Close")
	}
	if fc.closeCode != 1000 {
		t.Errorf("close code %d, want 1000", fc.closeCode)
	}
	for ev := range g.Events() {
		if ev.Closed == nil || !ev.Closed.Final {
			t.Errorf("after Close: %s", describe(ev))
		}
	}

	c := newClient(t, fg.srv.URL, dir)
	p, err := c.StoredResumePoint(s)
	if err != nil || p == nil || *p != (ResumePoint{S: 2, Cursor: "11"}) {
		t.Fatalf("StoredResumePoint = %+v, %v; want s 2, cursor 11", p, err)
	}
	if all, err := c.StoredSessions(); err != nil || len(all) != 1 {
		t.Errorf("StoredSessions after a resume point was stored: %d, %v", len(all), err)
	}
	g2, fc2 := connectAs(t, c, s, GatewayOptions{ResumeFrom: p}, fg, func(fc *fakeConn) {
		fc.hello()
		var r resumePayload
		decodeStrict(t, fc.expect(opResume).D, &r)
		if want := (resumePayload{S: 2, Token: s.Token, Cursor: "11"}); r != want {
			t.Errorf("resume %+v, want %+v", r, want)
		}
	})
	fc2.sendAt(4, nsCore, opResumed, []any{wire(nsChat, opDispatch, msg("12"), at(3))})
	expectEvents(t, g2, "MESSAGE_CREATE 12", "resumed")
}

// TestGatewayConnectErrors: a refused upgrade is an *Error with the server's status; a first
// frame other than Hello is refused.
func TestGatewayConnectErrors(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "")
	s := testSession(t, testRoot(t, "a.test"), mustFID(t, "alice@a.test"), "s1", srv.URL)
	_, err := c.Connect(context.Background(), s, GatewayOptions{})
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Fatalf("Connect to a server without a gateway: %v, want an *Error with status 404", err)
	}

	fg := newFakeGateway(t)
	s.Server = fg.srv.URL
	res := make(chan error, 1)
	go func() {
		_, err := c.Connect(context.Background(), s, GatewayOptions{})
		res <- err
	}()
	fc := fg.accept(t)
	fc.send(nsChat, opDispatch, ready("1"))
	if err := <-res; err == nil {
		t.Fatal("Connect accepted a connection that did not start with Hello")
	}

	if _, err := c.Connect(context.Background(), &Session{}, GatewayOptions{}); err == nil {
		t.Error("Connect with an empty session succeeded")
	}
}

// TestGatewayURL maps base URLs to gateway URLs.
func TestGatewayURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":     "ws://127.0.0.1:8080/.p2/core/v1/gateway",
		"https://example.com/":      "wss://example.com/.p2/core/v1/gateway",
		"https://example.com/chat/": "wss://example.com/chat/.p2/core/v1/gateway",
	} {
		if got, err := gatewayURL(in); err != nil || got != want {
			t.Errorf("gatewayURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
