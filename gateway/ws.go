package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/session"
)

// GatewayPath is where the WebSocket gateway is served (docs/PROTOCOL.md section 4).
const GatewayPath = "/.p2/core/v1/gateway"

// WSConfig configures the WebSocket gateway. Zero durations and limits pick the contract's
// numbers (docs/PROTOCOL.md section 4); tests shorten them.
type WSConfig struct {
	Actors   *actors.System   // the session actors live here
	Replayer session.Replayer // what Resume and READY read from the event log
	Logger   *slog.Logger     // nil: the edge's

	MaxFrame     int           // largest inbound frame; zero: 16 KiB
	QueueFrames  int           // outbound frames queued per connection; zero: 256
	WriteTimeout time.Duration // a frame not taken by the client within it closes with 4009; zero: 10 s
	PingInterval time.Duration // WebSocket pings; zero: 30 s
	// ReadTimeout: a connection from which nothing (not even a pong) arrives for this long is
	// dropped. Zero: two ping intervals.
	ReadTimeout  time.Duration
	CloseTimeout time.Duration // wait for the client's answer to a close frame; zero: 1 s

	// Rate limit: a token bucket of RateBurst frames refilled so that no RateWindow holds more
	// than RateFrames frames. Zero: 60 frames per 30 s, bursts of 20.
	RateFrames int
	RateWindow time.Duration
	RateBurst  int

	HeartbeatInterval time.Duration // zero: 30 s
	IdentifyTimeout   time.Duration // zero: 10 s
	ResumeWindow      time.Duration // how long a dropped session waits for Resume here; zero: 2 min
	ResumeLimit       int           // events a Resume replays at most (--resume-limit); zero: 1,000
	KeepFrames        int           // frames kept for except and Resume; zero: 1,024
	Now               func() time.Time
}

func (c WSConfig) withDefaults() WSConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&c.MaxFrame, 16<<10)
	defInt(&c.QueueFrames, 256)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.PingInterval, 30*time.Second)
	def(&c.ReadTimeout, 2*c.PingInterval)
	def(&c.CloseTimeout, time.Second)
	defInt(&c.RateFrames, 60)
	def(&c.RateWindow, 30*time.Second)
	defInt(&c.RateBurst, 20)
	c.RateBurst = min(c.RateBurst, c.RateFrames)
	return c
}

// WS is the WebSocket gateway: it upgrades connections, runs one reader and one writer goroutine
// per connection and gives each a session actor (actors/session), which decides everything the
// protocol decides.
type WS struct {
	cfg      WSConfig
	log      *slog.Logger
	sessions *session.Registry
	upgrader websocket.Upgrader
	readBufs sync.Pool // *[]byte of MaxFrame+1: a frame being read; idle connections hold none

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewWS builds the gateway over edge, whose token check Identify and Resume use.
func NewWS(edge *Server, cfg WSConfig) (*WS, error) {
	if edge == nil || cfg.Actors == nil || cfg.Replayer == nil {
		return nil, errors.New("gateway: NewWS needs the edge, Actors and a Replayer")
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = edge.log
	}
	sessions, err := session.NewRegistry(session.Config{
		Actors: cfg.Actors.Actors(), Auth: tokenAuth{edge}, Replayer: cfg.Replayer, Encoder: codec{}, Logger: log,
		HeartbeatInterval: cfg.HeartbeatInterval, IdentifyTimeout: cfg.IdentifyTimeout, ResumeWindow: cfg.ResumeWindow,
		ResumeLimit: cfg.ResumeLimit, KeepFrames: cfg.KeepFrames, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	w := &WS{cfg: cfg, log: log, sessions: sessions, conns: map[*conn]struct{}{}}
	w.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Small buffers and a shared write buffer pool, because most connections are idle: the
		// read buffer is the one per-connection buffer that stays (client frames are small;
		// larger ones are read past it), the write buffer is only borrowed while writing.
		ReadBufferSize:  512,
		WriteBufferSize: 1024,
		WriteBufferPool: &sync.Pool{},
		// Authentication is by token in Identify, never by cookie, so any Origin may connect.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(rw http.ResponseWriter, r *http.Request, status int, reason error) {
			writeJSON(rw, status, ErrorBody{Code: "P2_CORE_BAD_REQUEST", Message: reason.Error()})
		},
	}
	maxFrame := cfg.MaxFrame
	w.readBufs.New = func() any { b := make([]byte, maxFrame+1); return &b }
	return w, nil
}

// Mount serves the gateway on mux at GatewayPath, with and without a trailing slash
// (polyproto-rs adds one to every route).
func (w *WS) Mount(mux *http.ServeMux) {
	mux.Handle("GET "+GatewayPath, w)
	mux.Handle("GET "+GatewayPath+"/{$}", w)
}

// Sessions is the registry fan-out sources deliver to.
func (w *WS) Sessions() *session.Registry { return w.sessions }

// ServeHTTP upgrades the request and starts the connection's goroutines, then returns, so the
// request's memory is not held for the life of the connection.
func (w *WS) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		writeJSON(rw, http.StatusServiceUnavailable, ErrorBody{Code: "P2_CORE_UNAVAILABLE", Message: "the server is shutting down"})
		return
	}
	cw := &corkingWriter{ResponseWriter: rw}
	ws, err := w.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := newConn(w, ws)
	c.cork = cw.conn
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(session.CloseGoingAway, "the server is shutting down"), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	w.conns[c] = struct{}{}
	w.wg.Add(1)
	w.mu.Unlock()
	c.start(w.sessions.Start(c))
}

// Shutdown closes every connection with 1001 going away, waits for them to end (at most until
// ctx ends, then drops the rest), and stops every session. Call it after http.Server.Shutdown
// has stopped new connections: that one does not wait for upgraded connections.
func (w *WS) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	conns := make([]*conn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	for _, c := range conns {
		c.Close(session.CloseGoingAway, "the server is shutting down")
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			_ = c.ws.NetConn().Close()
		}
		<-done
		err = fmt.Errorf("gateway: connections still closing at shutdown: %w", ctx.Err())
	}
	w.sessions.Shutdown()
	return err
}

func (w *WS) forget(c *conn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
	w.wg.Done()
}
