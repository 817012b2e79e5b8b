package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/internal/servertest"
)

// TestGatewayEndToEnd runs the real server binary, as cmd/p2chat's tests do, and goes through
// the SDK's public API only: register, log in, connect with chat, get READY; then the connection
// breaks under the client and the SDK resumes it with the server.
func TestGatewayEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	base := startServerBinary(t, "a.test")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c, err := client.New(base, client.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "alice", "correct horse battery"); err != nil {
		t.Fatalf("Register: %v", err)
	}
	s, err := c.Login(ctx, "alice", "correct horse battery", "")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}

	// Every connection the SDK dials is recorded, so the test can break it.
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	dialer := &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
			return conn, err
		},
	}
	g, err := c.Connect(ctx, s, client.GatewayOptions{Services: []string{"chat"}, Dialer: dialer, Reconnect: true})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer g.Close()

	ev := nextEvent(t, g)
	if ev.Service == nil || !ev.Service.Success || ev.Service.Service != "chat" {
		t.Fatalf("first event %+v, want a successful chat subscribe", ev)
	}
	ev = nextEvent(t, g)
	if ev.Ready == nil {
		t.Fatalf("second event %+v, want READY", ev)
	}
	if ev.Ready.FID != s.FID || ev.Ready.SessionID != s.SessionID || ev.Ready.Cursor == "" {
		t.Errorf("READY %+v, want %s session %s with a cursor", ev.Ready, s.FID, s.SessionID)
	}
	if g.Cursor() != ev.Ready.Cursor {
		t.Errorf("Cursor() = %q, want READY's %q", g.Cursor(), ev.Ready.Cursor)
	}

	// Break the connection: the server keeps the session for a Resume, which continues it.
	mu.Lock()
	conns[0].Close()
	mu.Unlock()
	ev = nextEvent(t, g)
	if ev.Closed == nil || !ev.Closed.Resumable || ev.Closed.Final {
		t.Fatalf("after the break: %+v, want a resumable Closed", ev)
	}
	ev = nextEvent(t, g)
	if !ev.Resumed {
		t.Fatalf("after the reconnect: %+v (closed: %+v), want Resumed", ev, ev.Closed)
	}

	// Subscribing again on the resumed connection: the server still has chat for it.
	if err := g.Subscribe(ctx, "chat"); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if ev = nextEvent(t, g); ev.Service == nil || !ev.Service.Success {
		t.Fatalf("after Subscribe: %+v, want a successful service ACK", ev)
	}

	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	p, err := c.StoredResumePoint(s)
	if err != nil || p == nil || p.Cursor != g.Cursor() {
		t.Errorf("StoredResumePoint = %+v, %v; want cursor %q", p, err, g.Cursor())
	}
}

func nextEvent(t *testing.T, g *client.Gateway) client.Event {
	t.Helper()
	select {
	case ev, ok := <-g.Events():
		if !ok {
			t.Fatal("Events closed")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return client.Event{}
}

// startServerBinary builds the server and runs it for domain on 127.0.0.1:0 with the memory
// store until the test ends, and returns its base URL.
func startServerBinary(t *testing.T, domain string) string {
	t.Helper()
	bin, err := servertest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, bin, "-data-dir", t.TempDir(), "-domain", domain, "-store", "memory")
}
