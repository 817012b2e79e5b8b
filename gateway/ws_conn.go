package gateway

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/actors/session"
)

// conn is one WebSocket connection: a reader goroutine that decodes client frames and tells the
// session, and a writer goroutine that drains the bounded queue the session fills (Send). It is
// the session's Outbox. Shaped after gorilla's examples/chat/client.go, with two changes for
// idle connections, which are most of them: the queue is a slice that is nil while idle instead
// of a channel whose 256 slots every connection would carry, and the writer runs only while
// there is something to write (frames, a ping, the close handshake) and exits when the queue is
// empty, so an idle connection holds one goroutine stack, not two. There is never more than one
// writer at a time: whoever finds none running starts it, under mu.
type conn struct {
	w    *WS
	ws   *websocket.Conn
	cork *corkConn // the TCP connection under ws, for writing queued frames together
	sess *session.Ref

	mu     sync.Mutex
	queue  [][]byte // frames the writer has not taken yet, oldest first
	closed bool     // the connection is ending: Send drops frames
	code   int      // the close code: ours, or the client's (1006: it dropped)
	reason string
	byPeer bool

	writing bool        // a writer goroutine is running
	pingDue bool        // the ping timer fired: the writer sends a ping
	ping    *time.Timer // every PingInterval while the connection lives

	readerDone chan struct{}
	// alive counts the reader and the close handshake still to come: the last to finish
	// cleans up.
	alive atomic.Int32
}

func newConn(w *WS, ws *websocket.Conn) *conn {
	return &conn{w: w, ws: ws, readerDone: make(chan struct{})}
}

func (c *conn) start(sess *session.Ref) {
	c.sess = sess
	c.alive.Store(2)
	c.mu.Lock()
	c.ping = time.AfterFunc(c.w.cfg.PingInterval, c.pingTimer)
	c.mu.Unlock()
	go c.readLoop()
}

// kick starts the writer unless one runs; call with mu held, then `if start { go c.writeLoop() }`.
func (c *conn) kickLocked() (start bool) {
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

func (c *conn) pingTimer() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.pingDue = true
	start := c.kickLocked()
	c.ping.Reset(c.w.cfg.PingInterval)
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// Send queues an encoded frame. False when QueueFrames are already waiting: the session then
// closes with 4009. Once the connection is ending frames are dropped (the session learns of the
// end from Disconnected, and keeps the frames for a Resume).
func (c *conn) Send(frame []byte) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true
	}
	if len(c.queue) >= c.w.cfg.QueueFrames {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, frame)
	start := c.kickLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return true
}

// Close ends the connection with a close frame carrying code, after the frames already queued
// (but for 4009: a client too slow to take them would only delay its close frame).
func (c *conn) Close(code int, reason string) { c.end(code, reason, false) }

// end records how the connection ends; only the first call counts. The writer (started here if
// none runs) then does the close handshake.
func (c *conn) end(code int, reason string, byPeer bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.code, c.reason, c.byPeer = true, code, reason, byPeer
	if byPeer || code == session.CloseTimeout {
		c.queue = nil
	}
	if c.ping != nil {
		c.ping.Stop()
	}
	start := c.kickLocked()
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

func (c *conn) pop() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.popLocked()
}

func (c *conn) popLocked() ([]byte, bool) {
	if len(c.queue) == 0 {
		return nil, false
	}
	f := c.queue[0]
	c.queue[0] = nil
	if c.queue = c.queue[1:]; len(c.queue) == 0 {
		c.queue = nil
	}
	return f, true
}

func (c *conn) readLoop() {
	defer func() {
		close(c.readerDone)
		c.exit()
	}()
	cfg := &c.w.cfg
	_ = c.ws.SetReadDeadline(time.Now().Add(cfg.ReadTimeout))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(cfg.ReadTimeout)) })
	limit := newBucket(cfg.RateFrames, cfg.RateBurst, cfg.RateWindow, time.Now())
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.ending() {
			continue // after our close frame only the client's answer matters; gorilla skips the rest
		}
		now := time.Now()
		_ = c.ws.SetReadDeadline(now.Add(cfg.ReadTimeout))
		if !limit.allow(now) {
			c.Close(session.CloseRateLimited, "rate limited")
			continue
		}
		if typ != websocket.TextMessage {
			c.Close(session.CloseInvalidPayload, "frames are JSON text")
			continue
		}
		msg, err := c.readFrame(r)
		if err != nil {
			if errors.Is(err, ErrInvalidFrame) {
				c.Close(session.CloseInvalidPayload, err.Error())
				continue
			}
			c.readFailed(err)
			return
		}
		c.sess.Tell(msg)
	}
}

// readFrame reads one message through a bound of MaxFrame bytes (so an oversize frame closes
// with 4002, not with gorilla's 1009) and decodes it. The buffer goes back to the pool at once:
// nothing decoded refers to it.
func (c *conn) readFrame(r io.Reader) (any, error) {
	bp := c.w.readBufs.Get().(*[]byte)
	defer c.w.readBufs.Put(bp)
	buf := *bp
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			f, err := DecodeFrame(buf[:n])
			if err != nil {
				return nil, err
			}
			return ClientMessage(f)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, &FrameError{Offset: c.w.cfg.MaxFrame, Msg: fmt.Sprintf("frame over %d bytes", c.w.cfg.MaxFrame)}
}

func (c *conn) readFailed(err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce): // gorilla has answered the client's close frame
		c.end(ce.Code, ce.Text, true)
	case errors.As(err, &ne) && ne.Timeout():
		c.end(session.CloseTimeout, "nothing received in time", false)
		return // the writer tries to say so
	default:
		c.end(1006, "", true)
	}
	_ = c.ws.NetConn().Close() // unblocks a writer stuck on a client that is gone
}

func (c *conn) ending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// writeLoop writes until there is nothing left to write, then exits; once the connection is
// ending it does the close handshake instead and counts as finished.
func (c *conn) writeLoop() {
	cfg := &c.w.cfg
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			c.closeHandshake()
			c.exit()
			return
		}
		f, ok := c.popLocked()
		var more [][]byte
		if ok && len(c.queue) > 0 && c.cork != nil {
			more, c.queue = c.queue[:min(len(c.queue), maxBatch-1)], c.queue[min(len(c.queue), maxBatch-1):]
			if len(c.queue) == 0 {
				c.queue = nil
			}
		}
		ping := c.pingDue
		c.pingDue = false
		if !ok && !ping {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if ping {
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
				c.writeFailed(err)
				continue // closed now: the next round does the close handshake
			}
		}
		if ok {
			_ = c.ws.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
			if err := c.writeFrames(f, more); err != nil {
				c.writeFailed(err)
			}
		}
	}
}

// maxBatch bounds the frames written in one system call.
const maxBatch = 64

// writeFrames writes f, then more in the same system call when there are more.
func (c *conn) writeFrames(f []byte, more [][]byte) error {
	if len(more) == 0 {
		return c.ws.WriteMessage(websocket.TextMessage, f)
	}
	c.cork.cork()
	err := c.ws.WriteMessage(websocket.TextMessage, f)
	for _, m := range more {
		if err != nil {
			break
		}
		err = c.ws.WriteMessage(websocket.TextMessage, m)
	}
	if uerr := c.cork.uncork(); err == nil {
		err = uerr
	}
	return err
}

// writeFailed: a client that does not take a frame within WriteTimeout is too slow (4009, by
// the server); any other error means it is gone.
func (c *conn) writeFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, websocket.ErrCloseSent) {
		c.end(session.CloseTimeout, "too slow: a frame was not taken in time", false)
	} else {
		c.end(1006, "", true)
	}
	_ = c.ws.NetConn().Close()
}

// closeHandshake sends what was queued and the close frame, all within one WriteTimeout, then
// waits up to CloseTimeout for the client's answer before dropping the TCP connection.
func (c *conn) closeHandshake() {
	c.mu.Lock()
	code, reason, byPeer := c.code, c.reason, c.byPeer
	c.mu.Unlock()
	if byPeer {
		_ = c.ws.NetConn().Close()
		return
	}
	deadline := time.Now().Add(c.w.cfg.WriteTimeout)
	_ = c.ws.SetWriteDeadline(deadline)
	for {
		f, ok := c.pop()
		if !ok {
			break
		}
		if err := c.ws.WriteMessage(websocket.TextMessage, f); err != nil {
			_ = c.ws.NetConn().Close()
			return
		}
	}
	if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, closeReason(reason)), deadline); err != nil {
		_ = c.ws.NetConn().Close()
		return
	}
	t := time.NewTimer(c.w.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-c.readerDone:
	case <-t.C:
	}
	_ = c.ws.NetConn().Close()
}

// closeReason fits a reason into a close frame (123 bytes), cut at a character boundary.
func closeReason(s string) string {
	const room = 123
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= room {
		return s
	}
	i := room
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// exit: the last goroutine to end tells the session and lets the connection go.
func (c *conn) exit() {
	if c.alive.Add(-1) > 0 {
		return
	}
	_ = c.ws.Close()
	c.mu.Lock()
	code, reason, byServer := c.code, c.reason, !c.byPeer
	c.queue = nil
	c.mu.Unlock()
	c.sess.Tell(session.Disconnected{Code: code, ByServer: byServer})
	c.w.log.Debug("gateway connection closed", "code", code, "by_server", byServer, "reason", reason)
	c.w.forget(c)
}
