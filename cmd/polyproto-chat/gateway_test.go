package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
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

// childServer runs the real main in a child process (see TestMain) on dir and returns its
// address and the process, which the test may kill.
func childServer(t *testing.T, dir string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "P2CHAT_TEST_MAIN=-listen 127.0.0.1:0 -domain a.test -data-dir "+dir)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := waitForLog(t, stderr, regexp.MustCompile(`serving" addr=(\S+)`))
	go io.Copy(io.Discard, stderr)
	return addr, cmd
}

// TestResumeAfterKill: the server is killed with SIGKILL while a client is away; after a restart
// on the same data dir the client resumes from its cursor and gets exactly what it missed, once.
func TestResumeAfterKill(t *testing.T) {
	dir := t.TempDir()
	addr, proc := childServer(t, dir)
	c, err := client.New("http://"+addr, client.Options{})
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
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/.p2/core/v1/gateway", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &wsClient{t: t, conn: conn}
	a.next() // Hello
	a.send(2, map[string]string{"token": laptop.Token})
	cursor := a.chat()
	// While the laptop is connected, a phone logs in: delivered live.
	if _, err := c.Login(ctx(t), "alice", pw, "phone"); err != nil {
		t.Fatal(err)
	}
	if f := a.next(); f.Op != 3 {
		t.Fatalf("want op 3, got %d", f.Op)
	}
	conn.Close()
	// Away: a tablet logs in (acknowledged, so durable), then the server is killed.
	if _, err := c.Login(ctx(t), "alice", pw, "tablet"); err != nil {
		t.Fatal(err)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()

	addr, _ = childServer(t, dir)
	conn, _, err = websocket.DefaultDialer.Dial("ws://"+addr+"/.p2/core/v1/gateway", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &wsClient{t: t, conn: conn}
	b.next() // Hello
	b.send(5, map[string]any{"token": laptop.Token, "s": a.last, "cursor": cursor})
	f := b.next()
	if f.Op != 10 {
		t.Fatalf("want op 10 Resumed, got %d %s", f.Op, f.D)
	}
	var missed []wsFrame
	if err := json.Unmarshal(f.D, &missed); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range missed {
		var ns struct{ Cert string }
		_ = json.Unmarshal(m.D, &ns)
		cert, err := identity.ParseIDCert([]byte(ns.Cert))
		if m.Op != 3 || err != nil {
			t.Fatalf("unexpected frame in Resumed: op %d %s", m.Op, m.D)
		}
		got = append(got, cert.SessionID)
	}
	// The cursor is READY's, from before the phone: the phone's New Session comes again (core
	// frames carry no cursor, docs/PROTOCOL.md section 4), then the tablet's, each once, in order.
	if strings.Join(got, " ") != "phone tablet" {
		t.Fatalf("Resumed carried New Session for %v, want [phone tablet]", got)
	}
	// And the connection goes on: a heartbeat is answered.
	b.send(0, map[string]any{})
	if f := b.next(); f.Op != 7 {
		t.Fatalf("after Resumed: op %d", f.Op)
	}
}
