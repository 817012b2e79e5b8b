package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// wsClient is a bare gateway client: enough protocol to watch what the server sends.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	last uint64 // last s received
}

type wsFrame struct {
	N  string          `json:"n"`
	Op int             `json:"op"`
	S  uint64          `json:"s"`
	D  json.RawMessage `json:"d"`
}

func dialGateway(t *testing.T, s *Server) *wsClient {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/.p2/core/v1/gateway", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsClient{t: t, conn: conn}
	if f := c.next(); f.Op != 1 {
		t.Fatalf("first frame op %d, want Hello", f.Op)
	}
	return c
}

func (c *wsClient) send(op int, d any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(map[string]any{"n": "core", "op": op, "d": d}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) next() wsFrame {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f wsFrame
	if err := c.conn.ReadJSON(&f); err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	c.last = f.S
	return f
}

// chat subscribes to the chat channel and returns READY's cursor.
func (c *wsClient) chat() string {
	c.t.Helper()
	c.send(8, map[string]string{"action": "subscribe", "service": "chat"})
	if f := c.next(); f.Op != 9 {
		c.t.Fatalf("want op 9, got %d %s", f.Op, f.D)
	}
	f := c.next()
	var ready struct{ T, C string }
	if err := json.Unmarshal(f.D, &ready); err != nil || ready.T != "READY" || ready.C == "" {
		c.t.Fatalf("want READY with a cursor, got %s", f.D)
	}
	return ready.C
}

// closeCode reads until the server closes and returns its close code.
func (c *wsClient) closeCode() int {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

// TestGatewayAccountEvents: the actor's other sessions hear of a new session (op 3) and of a
// revoked cert (op 4, signed by the home server); the revoked session is closed with 4004; and a
// client that resumes after a server restart gets the New Session it missed from the event log.
func TestGatewayAccountEvents(t *testing.T) {
	dir := t.TempDir()
	srv, stop := start(t, dir, "-domain", "a.test")
	c, err := client.New("http://"+srv.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	if _, err := c.Register(ctx(t), "alice", pw); err != nil {
		t.Fatal(err)
	}
	laptop, err := c.Login(ctx(t), "alice", pw, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	a := dialGateway(t, srv)
	a.send(2, map[string]string{"token": laptop.Token})
	cursor := a.chat()

	phone, err := c.Login(ctx(t), "alice", pw, "phone")
	if err != nil {
		t.Fatal(err)
	}
	f := a.next()
	var ns struct{ Cert string }
	if err := json.Unmarshal(f.D, &ns); f.Op != 3 || err != nil {
		t.Fatalf("want op 3 New Session, got %d %s", f.Op, f.D)
	}
	if cert, err := identity.ParseIDCert([]byte(ns.Cert)); err != nil || cert.SessionID != "phone" {
		t.Fatalf("New Session cert: %v", err)
	}

	// The phone connects, then is revoked from the laptop.
	p := dialGateway(t, srv)
	p.send(2, map[string]string{"token": phone.Token})
	p.send(0, map[string]any{})
	if f := p.next(); f.Op != 7 {
		t.Fatalf("phone heartbeat: op %d", f.Op)
	}
	if err := c.Revoke(ctx(t), laptop, pw, "phone"); err != nil {
		t.Fatal(err)
	}
	f = a.next()
	var inv identity.CacheableCert
	if err := json.Unmarshal(f.D, &inv); f.Op != 4 || err != nil || inv.InvalidatedAt == nil {
		t.Fatalf("want op 4 with invalidatedAt, got %d %s", f.Op, f.D)
	}
	if _, err := inv.Verify(srvRoot(t, dir), time.Now()); err != nil {
		t.Fatalf("op 4 does not verify against the home server's root: %v", err)
	}
	if code := p.closeCode(); code != 4004 {
		t.Fatalf("revoked session closed with %d, want 4004", code)
	}

	// Resume from the log across a restart: the laptop, away since its READY, resumes with that
	// cursor and gets what it missed from the event log: the phone's New Session and revocation,
	// and the New Session of a tablet that logged in while the server was restarted.
	a.conn.Close()
	stop()
	srv, stop = start(t, dir, "-domain", "a.test")
	defer stop()
	c2, _ := client.New("http://"+srv.Addr(), client.Options{})
	if _, err := c2.Login(ctx(t), "alice", pw, "tablet"); err != nil {
		t.Fatal(err)
	}
	b := dialGateway(t, srv)
	b.send(5, map[string]any{"token": laptop.Token, "s": strconv.FormatUint(a.last, 10), "cursor": cursor})
	f = b.next()
	if f.Op != 10 {
		t.Fatalf("want op 10 Resumed, got %d %s", f.Op, f.D)
	}
	var missed []wsFrame
	if err := json.Unmarshal(f.D, &missed); err != nil {
		t.Fatalf("Resumed: %v: %s", err, f.D)
	}
	var got []string
	for _, m := range missed {
		switch m.Op {
		case 3:
			var ns struct{ Cert string }
			_ = json.Unmarshal(m.D, &ns)
			cert, err := identity.ParseIDCert([]byte(ns.Cert))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, "new:"+cert.SessionID)
		case 4:
			var inv identity.CacheableCert
			_ = json.Unmarshal(m.D, &inv)
			cert, err := identity.ParseIDCert([]byte(inv.IDCertPEM))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, "revoked:"+cert.SessionID)
		}
	}
	if want := "new:phone revoked:phone new:tablet"; strings.Join(got, " ") != want {
		t.Fatalf("missed while away: %q, want %q", strings.Join(got, " "), want)
	}
}

// srvRoot loads the root a server created in its data dir.
func srvRoot(t *testing.T, dir string) *identity.IDCert {
	t.Helper()
	r, err := identity.LoadOrCreateRoot(filepath.Join(dir, "identity"), "a.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r.Cert
}
