package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/federation"
	"github.com/polyproto-chat/server/identity"
)

// gatewayServer is a real server on 127.0.0.1:0 as the binary wires it: REST edge and WebSocket
// gateway on one mux, real account actors over a memory store, a fake Replayer.
type gatewayServer struct {
	http     string // http://host:port
	url      string // ws://host:port/.p2/core/v1/gateway
	ws       *WS
	accounts *actors.Kind
	store    *memory.Store
	replay   *fakeReplayer
	logs     *logCapture
}

// newGatewayServer starts a server with cfg (Actors and Replayer are filled in). A non-nil store
// is shared with an earlier server, as after a restart.
func newGatewayServer(t *testing.T, cfg WSConfig, store *memory.Store, edgeOpts ...func(*Config)) *gatewayServer {
	t.Helper()
	if store == nil {
		store = memory.New(nil)
	}
	logs := &logCapture{}
	log := slog.New(logs)
	sys := actors.NewSystem(actors.Config{})
	accounts, err := sys.Kind(account.KindName, account.Producer(store, nil), actors.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := identity.NewRoot("a.test", time.Now().Add(-time.Minute), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	ecfg := Config{Domain: "a.test", Root: root, Accounts: accounts,
		Certs:     federation.NewCerts(federation.CertsConfig{Timeout: 200 * time.Millisecond}),
		PublicURL: func() string { return srv.URL }}
	for _, o := range edgeOpts {
		o(&ecfg)
	}
	edge, err := New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatewayServer{accounts: accounts, store: store, replay: &fakeReplayer{head: 42}, logs: logs}
	cfg.Actors, cfg.Replayer, cfg.Logger = sys, g.replay, log
	if g.ws, err = NewWS(edge, cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/.p2/", edge.Handler())
	mux.Handle("/.well-known/", edge.Handler())
	g.ws.Mount(mux)
	srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close() // REST first; upgraded connections are the gateway's
		if err := g.ws.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
		_ = sys.Shutdown(ctx)
	})
	g.http = srv.URL
	g.url = "ws" + strings.TrimPrefix(srv.URL, "http") + GatewayPath
	return g
}

// login registers fid (if needed) and opens an ID-Cert session for it directly on its account
// actor, as the REST login does after checking the password; it returns the session token.
func (g *gatewayServer) login(t *testing.T, fid, sessionID string) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if _, err := g.accounts.Request(ctx, fid, account.Register{FID: fid, PasswordHash: "$argon2id$test", At: now}); err != nil && !errors.Is(err, account.ErrAlreadyRegistered) {
		t.Fatal(err)
	}
	token, hash := newToken(fid)
	cert := account.CertData{Serial: rand.Uint64N(1<<62) + 1, SessionID: sessionID, DER: []byte{1},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}
	if _, err := g.accounts.Request(ctx, fid, account.IssueCert{Cert: cert, TokenHash: hash, At: now}); err != nil {
		t.Fatal(err)
	}
	return token
}

type fakeReplayer struct {
	mu        sync.Mutex
	head      events.Position
	ds        []session.Dispatch
	truncated bool
	calls     []events.Position // the cursors asked for
}

func (r *fakeReplayer) Replay(_ context.Context, _ account.Principal, after events.Position, _ int) ([]session.Dispatch, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, after)
	return r.ds, r.truncated, nil
}

func (r *fakeReplayer) Ready(context.Context, account.Principal) (session.Ready, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return session.Ready{Cursor: r.head}, nil
}

func (r *fakeReplayer) set(ds []session.Dispatch, truncated bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ds, r.truncated = ds, truncated
}

// client is a test client on a real gorilla dialer.
type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func (g *gatewayServer) dial(t *testing.T) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(g.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return &client{t: t, ws: ws}
}

// wire is a server frame as a client reads it.
type wire struct {
	N   string          `json:"n"`
	Op  int             `json:"op"`
	S   uint64          `json:"s"`
	D   json.RawMessage `json:"d"`
	raw []byte
}

// chat is the payload of a chat dispatch.
type chat struct {
	T string          `json:"t"`
	C string          `json:"c"`
	D json.RawMessage `json:"d"`
}

func (w wire) chat(t *testing.T) chat {
	t.Helper()
	var c chat
	if err := json.Unmarshal(w.D, &c); err != nil || w.N != "chat" {
		t.Fatalf("not a chat dispatch: %s", w.raw)
	}
	return c
}

func (w wire) frames(t *testing.T) []wire {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(w.D, &raws); err != nil {
		t.Fatalf("not a frame list: %s", w.raw)
	}
	out := []wire{}
	for _, r := range raws {
		var in wire
		if err := json.Unmarshal(r, &in); err != nil {
			t.Fatal(err)
		}
		in.raw = r
		out = append(out, in)
	}
	return out
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send %s: %v", frame, err)
	}
}

func (c *client) read() wire {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	w.raw = b
	return w
}

func (c *client) expect(n string, op int) wire {
	c.t.Helper()
	w := c.read()
	if w.N != n || w.Op != op {
		c.t.Fatalf("got %s, want %s op %d", w.raw, n, op)
	}
	return w
}

// closed reads until the connection ends and checks the close code.
func (c *client) closed(code int) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.ws.ReadMessage()
		if err == nil {
			continue // frames queued before the close
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			c.t.Fatalf("connection ended with %v (after %s), want close %d", err, b, code)
		}
		return
	}
}

// hello reads Hello and identifies; a heartbeat's ACK proves the Identify was handled.
func (c *client) identify(token string) {
	c.t.Helper()
	c.expect("core", 1)
	c.send(fmt.Sprintf(`{"n":"core","op":2,"d":{"token":%q}}`, token))
	c.send(`{"n":"core","op":0,"d":{}}`)
	c.expect("core", 7)
}

func (c *client) subscribe(service string) wire {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"n":"core","op":8,"d":{"action":"subscribe","service":%q}}`, service))
	return c.expect("core", 9)
}

// logCapture keeps the records of the gateway's logger, for what a test cannot see on the wire.
type logCapture struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}

// has reports whether a record with msg and every attribute of want was logged.
func (h *logCapture) has(msg string, want map[string]any) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if fmt.Sprint(r[k]) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func eventsPos(n uint64) events.Position { return events.Position(n) }
