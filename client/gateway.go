package client

// The gateway part of the SDK: one live WebSocket connection to GET /.p2/core/v1/gateway per
// Gateway (PROTOCOL.md section 4), which reconnects and resumes by itself.
//
// Files: gateway.go holds the API and the connect/reconnect loop, gateway_conn.go one
// connection's reader and writer, gateway_seq.go the sequence bookkeeping behind heartbeats,
// deduplication and in-order delivery, gateway_frames.go the wire format and event payloads,
// gateway_store.go the resume point kept in the keystore.
//
// Unlike the REST part, the gateway retries on its own when GatewayOptions.Reconnect is set:
// a live connection is a long-running thing, and resuming is part of the protocol.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/identity"
)

const (
	// eventBuffer is how many events wait for the application before the reader stops reading
	// the socket. The server then queues for us and, past its own limit, closes with the
	// resumable 4009: slowness costs a resume, never a lost event.
	eventBuffer = 64
	// maxServerFrame bounds one inbound frame. An op 10 replay carries up to the server's resume
	// limit (1,000 events) in one frame, so this is far above the 16 KiB the server accepts.
	maxServerFrame = 16 << 20
	// handshakeTimeout bounds dialing and the wait for Hello when the caller's context has none.
	handshakeTimeout = 10 * time.Second
	// writeTimeout bounds one frame write; a peer that does not take 4 KiB in 10 s is gone.
	writeTimeout = 10 * time.Second
	// readSlack is added to two heartbeat intervals to give the read deadline: the server
	// answers every heartbeat, so that long without a frame means a dead connection.
	readSlack = 5 * time.Second
	// closeGrace is how long Close waits for the server to echo the close frame.
	closeGrace = time.Second
	// Reconnect backoff: exponential from reconnectBase, capped, with jitter so that the
	// clients of a restarted server do not all come back in the same instant.
	reconnectBase = 250 * time.Millisecond
	reconnectCap  = 30 * time.Second
)

// Close codes (core 3.2.5).
const (
	CloseUnknownError     = 4000
	CloseUnknownOpcode    = 4001
	CloseInvalidPayload   = 4002
	CloseNotAuthenticated = 4003
	CloseInvalidAuth      = 4004
	CloseAlreadyAuth      = 4005
	CloseInvalidSequence  = 4007
	CloseRateLimited      = 4008
	CloseTimeout          = 4009
	CloseUnresumeable     = 4010

	closeNormal   = websocket.CloseNormalClosure
	closeAbnormal = websocket.CloseAbnormalClosure // no close frame: a network error
)

// GatewayOptions configure Connect. The zero value connects once, subscribes to nothing and does
// not reconnect.
type GatewayOptions struct {
	// Services are the service channels to subscribe after Identify, e.g. {"chat"}. They are
	// subscribed again after a fresh Identify, not after a Resume, which keeps them.
	Services []string
	// Dialer dials the WebSocket; nil means one with a 10 s handshake timeout that uses the
	// TLS settings of the Client's HTTP transport, if it has any.
	Dialer *websocket.Dialer
	// Logger receives connection-level lines (never tokens); nil uses the Client's logger.
	Logger *slog.Logger
	// Reconnect resumes automatically after a drop with a resumable close code or a network
	// error, with capped backoff and jitter, and Identifies afresh when the server answers a
	// Resume with 4010.
	Reconnect bool
	// ResumeFrom makes the first connection Resume from this point instead of Identifying, so a
	// restarted program gets what it missed (see Client.StoredResumePoint). nil Identifies.
	ResumeFrom *ResumePoint
}

// ResumePoint is where a gateway session can be resumed: the last server frame delivered and the
// last chat cursor. S is only meaningful while the server still holds that connection's frames;
// otherwise it replays its log after Cursor.
type ResumePoint struct {
	S      uint64 `json:"s"`
	Cursor string `json:"cursor"`
}

// Event is one thing that happened on the gateway; exactly one field is set.
type Event struct {
	Ready           *Ready                  // chat READY
	Dispatch        *Dispatch               // any other chat dispatch
	NewSession      *NewSession             // core op 3: another session of the actor logged in
	CertInvalidated *identity.CacheableCert // core op 4: a cert of the actor was revoked (unverified)
	Service         *ServiceAck             // core op 9: answer to a subscribe or unsubscribe
	Resumed         bool                    // a resume succeeded; what was missed came before it
	Resync          *Resync                 // RESYNC_REQUIRED: reload state over REST
	Closed          *CloseInfo              // a connection closed
}

// CloseInfo describes the end of one connection.
type CloseInfo struct {
	Code      int    // WebSocket close code; 1006 when the connection broke without one
	Reason    string // the close frame's text
	Resumable bool   // the code allows a Resume (core 3.2.5), or it was a network error
	Final     bool   // no reconnect follows: Events is closed after this event
	Err       error  // the network or protocol error behind a 1006, or a failed reconnect
}

// Gateway is one live gateway connection of a Session, reconnecting and resuming by itself. Its
// methods are safe for concurrent use.
type Gateway struct {
	token     string
	url       string
	client    *Client
	fid       identity.FID
	sessionID string
	server    string
	dialer    *websocket.Dialer
	log       *slog.Logger
	reconnect bool

	events    chan Event
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the connection loop has ended
	closeOnce sync.Once
	ctx       context.Context // cancelled by Close: bounds reconnect dials
	cancel    context.CancelFunc

	mu        sync.Mutex
	seq       seqTracker
	point     ResumePoint // what has been delivered: Resume's cursor and the persisted point
	persisted ResumePoint
	services  []string
	w         *writer // the live connection's writer; nil between connections
}

// Connect opens a gateway connection for s at the server that issued its token, reads Hello, and
// Identifies (or Resumes from opts.ResumeFrom) and subscribes to opts.Services. ctx bounds only
// this first handshake; the Gateway then lives until Close or, without Reconnect, until the
// connection ends. A token the server refuses shows up as a Closed event with code 4004.
func (c *Client) Connect(ctx context.Context, s *Session, opts GatewayOptions) (*Gateway, error) {
	if err := checkSession(s); err != nil {
		return nil, fmt.Errorf("client: gateway: %w", err)
	}
	for _, svc := range opts.Services {
		if svc == "" {
			return nil, errors.New("client: gateway: empty service name")
		}
	}
	u, err := gatewayURL(s.Server)
	if err != nil {
		return nil, fmt.Errorf("client: gateway of %s: %w", s.FID, err)
	}
	g := &Gateway{
		token: s.Token, url: u, client: c, fid: s.FID, sessionID: s.SessionID, server: s.Server,
		dialer: opts.Dialer, log: opts.Logger, reconnect: opts.Reconnect,
		events: make(chan Event, eventBuffer), quit: make(chan struct{}), done: make(chan struct{}),
		services: slices.Clone(opts.Services),
	}
	if g.dialer == nil {
		g.dialer = c.defaultDialer()
	}
	if g.log == nil {
		g.log = c.log
	}
	g.log = g.log.With("fid", s.FID.String(), "session_id", s.SessionID, "server", s.Server)
	resume := opts.ResumeFrom != nil
	if resume {
		g.seq.resumeFrom(opts.ResumeFrom.S)
		g.point, g.persisted = *opts.ResumeFrom, *opts.ResumeFrom
	}
	conn, interval, err := g.open(ctx, resume)
	if err != nil {
		return nil, fmt.Errorf("client: gateway of %s: %w", s.FID, err)
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	go g.run(conn, interval, resume)
	return g, nil
}

// Events delivers the gateway's events in order. It is closed when the gateway ends for good:
// after a Final Closed event, or after Close.
func (g *Gateway) Events() <-chan Event { return g.events }

// Cursor is the chat cursor of the last dispatch put on Events: where a Resume continues from
// the event log. Dispatches still unread on Events are behind it, so a program that stops
// before reading them and resumes from here later does not get them again; such a program
// keeps the cursor of the last Dispatch it handled (Dispatch.Cursor) instead.
func (g *Gateway) Cursor() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.point.Cursor
}

// Subscribe asks for service channel svc on the live connection (core op 8); the answer is a
// Service event. It also adds svc to what a fresh Identify subscribes. After a Resync, subscribing
// to "chat" again yields a fresh READY. Between connections it fails: retry after Resumed.
func (g *Gateway) Subscribe(ctx context.Context, svc string) error {
	if svc == "" {
		return errors.New("client: gateway subscribe: empty service name")
	}
	b, err := encodeFrame(nsCore, opServiceChannel, servicePayload{Action: "subscribe", Service: svc})
	if err != nil {
		return fmt.Errorf("client: gateway subscribe %q: %w", svc, err)
	}
	g.mu.Lock()
	if !slices.Contains(g.services, svc) {
		g.services = append(g.services, svc)
	}
	w := g.w
	g.mu.Unlock()
	if w == nil {
		return fmt.Errorf("client: gateway subscribe %q: not connected", svc)
	}
	if err := w.send(ctx, b); err != nil {
		return fmt.Errorf("client: gateway subscribe %q: %w", svc, err)
	}
	return nil
}

// Close ends the gateway: it sends a normal close (1000) on the live connection, stops
// reconnecting, waits for its goroutines and persists the resume point. Events still buffered
// stay readable; then Events is closed. Close is idempotent.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		close(g.quit)
		g.cancel()
	})
	<-g.done
	return nil
}

func (g *Gateway) closing() bool {
	select {
	case <-g.quit:
		return true
	default:
		return false
	}
}

// run is the reader goroutine of every connection in turn, and the reconnect loop between them.
func (g *Gateway) run(conn *websocket.Conn, interval time.Duration, resuming bool) {
	defer close(g.done)
	defer close(g.events)
	defer g.persist()
	attempt := 0
	for {
		info, progressed, unanswered := g.serve(conn, interval, resuming)
		g.persist()
		if g.closing() {
			// The application closed us and may not be reading any more: never block on it.
			select {
			case g.events <- Event{Closed: &CloseInfo{Code: closeNormal, Final: true}}:
			default:
			}
			return
		}
		// 4010 in answer to our Resume means "Identify afresh" (core 3.2.4). On a running
		// connection it means another connection resumed this session: it is theirs now, and
		// taking it back would only start a tug of war.
		fresh := info.Code == CloseUnresumeable && unanswered
		retry := g.reconnect && (info.Resumable || fresh)
		info.Final = !retry
		g.log.Info("gateway connection closed", "code", info.Code, "reason", info.Reason,
			"resumable", info.Resumable, "reconnect", retry, "err", info.Err)
		if !g.deliver(Event{Closed: &info}) || !retry {
			return
		}
		resuming = !fresh
		if progressed {
			attempt = 0
		}
		for {
			if !g.sleep(backoff(attempt)) {
				return
			}
			attempt++
			var err error
			conn, interval, err = g.open(g.ctx, resuming)
			if err == nil {
				break
			}
			if g.closing() {
				return
			}
			if permanent(err) {
				g.deliver(Event{Closed: &CloseInfo{Code: closeAbnormal, Final: true, Err: err}})
				return
			}
			g.log.Warn("gateway reconnect failed", "attempt", attempt, "err", err)
		}
	}
}

// deliver hands ev to the application, waiting for room: backpressure, never a silent drop.
// It gives up only when the gateway is being closed.
func (g *Gateway) deliver(ev Event) bool {
	select {
	case g.events <- ev:
		return true
	case <-g.quit:
		return false
	}
}

func (g *Gateway) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.quit:
		return false
	}
}

// backoff is the wait before reconnect attempt n: exponential, capped, with jitter in [d/2, d].
func backoff(attempt int) time.Duration {
	d := reconnectCap
	if attempt < 20 {
		d = min(reconnectBase<<attempt, reconnectCap)
	}
	return d/2 + rand.N(d/2+1)
}

// open dials, reads Hello and sends Identify (with the subscribes) or Resume. On success the
// connection is ready for serve; the tracker knows which numbering to expect.
func (g *Gateway) open(ctx context.Context, resume bool) (*websocket.Conn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	conn, resp, err := g.dialer.DialContext(ctx, g.url, nil)
	if err != nil {
		return nil, 0, dialError(g.url, resp, err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	interval, err := g.handshake(ctx, conn, resume)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	return conn, interval, nil
}

func (g *Gateway) handshake(ctx context.Context, conn *websocket.Conn, resume bool) (time.Duration, error) {
	conn.SetReadLimit(maxServerFrame)
	deadline, _ := ctx.Deadline()
	_ = conn.SetReadDeadline(deadline)
	_ = conn.SetWriteDeadline(deadline)
	defer func() {
		_ = conn.SetReadDeadline(time.Time{})
		_ = conn.SetWriteDeadline(time.Time{})
	}()

	_, data, err := conn.ReadMessage()
	if err != nil {
		return 0, fmt.Errorf("wait for hello: %w", err)
	}
	hello, err := decodeFrame(data)
	if err != nil {
		return 0, err
	}
	if !hello.is(nsCore, opHello) {
		return 0, fmt.Errorf("first frame is %v, want hello", hello)
	}
	ms, err := helloInterval(hello.d)
	if err != nil {
		return 0, err
	}
	interval := time.Duration(min(ms, uint64(24*time.Hour/time.Millisecond))) * time.Millisecond

	var out [][]byte
	what := "identify"
	g.mu.Lock()
	if resume {
		what = "resume"
		b, err := encodeFrame(nsCore, opResume, resumePayload{S: g.seq.last(), Token: g.token, Cursor: g.point.Cursor})
		if err != nil {
			g.mu.Unlock()
			return 0, err
		}
		out = append(out, b)
		g.seq.paused = true
	} else {
		b, err := encodeFrame(nsCore, opIdentify, identifyPayload{Token: g.token})
		if err != nil {
			g.mu.Unlock()
			return 0, err
		}
		out = append(out, b)
		for _, svc := range g.services {
			b, err := encodeFrame(nsCore, opServiceChannel, servicePayload{Action: "subscribe", Service: svc})
			if err != nil {
				g.mu.Unlock()
				return 0, err
			}
			out = append(out, b)
		}
		g.seq.reset()
		if hello.hasS {
			_, _ = g.seq.accept(hello) // s 0 of a fresh numbering: always in the window
			g.point.S = hello.s
		}
	}
	g.mu.Unlock()
	for _, b := range out {
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			return 0, fmt.Errorf("send %s: %w", what, err)
		}
	}
	g.log.Debug("gateway connected", "resume", resume, "heartbeat_interval", interval)
	return interval, nil
}

// gatewayURL maps a server's base URL to its gateway's WebSocket URL.
func gatewayURL(server string) (string, error) {
	base, err := normalizeBase(server)
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + corePrefix + "/gateway", nil
}

// defaultDialer shares the TLS settings of the Client's HTTP transport, so a Client made for a
// server with a private CA reaches its gateway too.
func (c *Client) defaultDialer() *websocket.Dialer {
	d := &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: handshakeTimeout}
	if t, ok := c.http.Transport.(*http.Transport); ok && t.TLSClientConfig != nil {
		d.TLSClientConfig = t.TLSClientConfig.Clone()
	}
	return d
}

// handshakeError is a refused upgrade: the server answered HTTP instead of switching protocols.
type handshakeError struct {
	url string
	err *Error
}

func (e *handshakeError) Error() string { return fmt.Sprintf("dial %s: %v", e.url, e.err) }
func (e *handshakeError) Unwrap() error { return e.err }

func dialError(u string, resp *http.Response, err error) error {
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		var body []byte
		if resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, maxResponse))
			resp.Body.Close()
		}
		return &handshakeError{url: u, err: decodeError(resp.StatusCode, body)}
	}
	return fmt.Errorf("dial %s: %w", u, err)
}

// permanent tells reconnect failures that retrying cannot fix: the server refused the upgrade
// with a client error (no gateway there, or a proxy that forbids it), other than timeouts and
// rate limits.
func permanent(err error) bool {
	var he *handshakeError
	if !errors.As(err, &he) {
		return false
	}
	s := he.err.Status
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// closeInfo classifies how a connection ended.
func closeInfo(err error) CloseInfo {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != closeAbnormal {
		return CloseInfo{Code: ce.Code, Reason: ce.Text, Resumable: resumableCode(ce.Code)}
	}
	// gorilla reports a connection that ended without a close frame as a CloseError 1006 with
	// the I/O error as text; it is a network error like any other.
	return CloseInfo{Code: closeAbnormal, Resumable: true, Err: err}
}

// resumableCode says whether a close code allows a Resume. The polyproto codes follow core 3.2.5
// (4009 counts as resumable because only the server sends it to us). Of the RFC 6455 codes, a
// server going away or failing is worth resuming; a normal close is the server's decision to end
// the session, and the others say something is wrong with what we sent.
func resumableCode(code int) bool {
	switch code {
	case CloseUnknownError, CloseUnknownOpcode, CloseInvalidPayload, CloseInvalidSequence, CloseTimeout:
		return true
	case websocket.CloseGoingAway, closeAbnormal, websocket.CloseInternalServerErr,
		websocket.CloseServiceRestart, websocket.CloseTryAgainLater, websocket.CloseTLSHandshake:
		return true
	}
	return false
}

// isTimeout reports a read deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
