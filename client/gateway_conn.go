package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// One connection has one reader (the Gateway's run goroutine, in serve) and one writer goroutine
// (writer.run), as gorilla/websocket requires: at most one concurrent reader and one concurrent
// writer. Control frames (pong, close echo) go through WriteControl, which may run alongside.

// maxEarlyFrames bounds the frames buffered while a Resume is unanswered (see serve).
const maxEarlyFrames = 64

// errClosing ends serve when the application closed the Gateway.
var errClosing = errors.New("gateway closed")

// connState is the reader-side state of one connection.
type connState struct {
	conn     *websocket.Conn
	w        *writer
	resuming bool    // Resume sent, op 10 not yet received
	early    []frame // frames that came before op 10
	progress bool    // the server accepted us: a frame past the handshake arrived
}

// serve runs one connection until it ends and says how it ended, whether it got anywhere (which
// resets the reconnect backoff) and whether a Resume was still unanswered.
func (g *Gateway) serve(conn *websocket.Conn, interval time.Duration, resuming bool) (info CloseInfo, progress, unanswered bool) {
	w := &writer{
		g: g, conn: conn, interval: interval,
		out: make(chan []byte, 16), beat: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	g.mu.Lock()
	g.w = w
	g.seq.newConnection()
	g.mu.Unlock()
	go w.run()

	cs := &connState{conn: conn, w: w, resuming: resuming}
	info = g.read(cs, 2*interval+readSlack)

	g.mu.Lock()
	g.w = nil
	g.mu.Unlock()
	close(w.stop)
	<-w.done
	if g.closing() && !w.closeSent {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(closeNormal, ""), time.Now().Add(writeTimeout))
	}
	conn.Close()
	return info, cs.progress, cs.resuming
}

// read is the reader loop of one connection.
func (g *Gateway) read(cs *connState, timeout time.Duration) CloseInfo {
	for {
		// Set the deadline before looking at quit: Close sets a short one after closing quit,
		// and must not be overtaken by ours.
		_ = cs.conn.SetReadDeadline(time.Now().Add(timeout))
		if g.closing() {
			return CloseInfo{Code: closeNormal}
		}
		_, data, err := cs.conn.ReadMessage()
		if err != nil {
			if isTimeout(err) && !g.closing() {
				err = fmt.Errorf("no frame from the server in %v: %w", timeout, err)
			}
			return closeInfo(err)
		}
		f, err := decodeFrame(data)
		if err != nil {
			// Without a trustworthy s the frame cannot be acknowledged; the next heartbeat's
			// except asks for it again if it had one.
			g.log.Warn("gateway: undecodable frame skipped", "err", err)
			continue
		}
		if err := g.receive(cs, f); err != nil {
			if errors.Is(err, errClosing) {
				return CloseInfo{Code: closeNormal}
			}
			// Our side gave up on the sequence; the server still holds what we lack, so the
			// close is an unknown error (4000), which leaves the session resumable.
			g.log.Warn("gateway: dropping connection", "err", err)
			_ = cs.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(CloseUnknownError, "client sequence error"), time.Now().Add(writeTimeout))
			return CloseInfo{Code: CloseUnknownError, Reason: "client sequence error", Resumable: true, Err: err}
		}
	}
}

// receive handles one frame off the socket.
func (g *Gateway) receive(cs *connState, f frame) error {
	beat := f.is(nsCore, opHeartbeatRequest)
	if !cs.resuming {
		return g.take(cs, f, beat)
	}
	if f.is(nsCore, opResumed) {
		cs.resuming, cs.progress = false, true
		if err := g.resumed(f); err != nil {
			return err
		}
		early := cs.early
		cs.early = nil
		for _, e := range early {
			// Heartbeat requests among them were answered when they came.
			if err := g.take(cs, e, false); err != nil {
				return err
			}
		}
		return nil
	}
	if beat {
		// Answered at once, with an empty heartbeat while the tracker is paused; the frame's
		// s is recorded after op 10, and a later range covers it.
		cs.w.heartbeatNow()
	}
	// Only op 10 tells which numbering the server continues; keep anything else until then.
	if len(cs.early) >= maxEarlyFrames {
		return fmt.Errorf("%d frames before the answer to Resume", len(cs.early))
	}
	cs.early = append(cs.early, f)
	return nil
}

// take records a frame in the sequence and delivers what is now in order. With beat (an op 11)
// the heartbeat is asked for as soon as the frame is recorded, so it includes it, and before
// anything is delivered: delivery may wait for the application, the heartbeat must not.
func (g *Gateway) take(cs *connState, f frame, beat bool) error {
	cs.progress = true
	var ready []frame
	var err error
	if f.hasS {
		g.mu.Lock()
		if f.is(nsCore, opHeartbeatACK) || f.is(nsCore, opResumed) {
			// Re-sent frames keep their original s; they fill gaps, and any we already have
			// are dropped by the tracker. A stray op 10 outside a resume is read the same way.
			ready, err = g.acceptInner(f)
			if err == nil && f.op == opHeartbeatACK {
				ready = append(ready, g.seq.settleAsked()...)
			}
		}
		if err == nil {
			var more []frame
			more, err = g.seq.accept(f)
			ready = append(ready, more...)
		}
		g.mu.Unlock()
	} else {
		ready = []frame{f}
	}
	if beat {
		cs.w.heartbeatNow()
	}
	for _, r := range ready {
		if herr := g.handle(r); herr != nil {
			return herr
		}
	}
	return err
}

// acceptInner feeds the frames inside an op 7 (or op 10 that continues our numbering) to the
// tracker. The caller holds g.mu.
func (g *Gateway) acceptInner(f frame) ([]frame, error) {
	inner, err := decodeFrameList(f.d)
	if err != nil {
		g.log.Warn("gateway: undecodable re-sent frames", "op", f.op, "err", err)
		return nil, nil
	}
	var ready []frame
	for _, in := range inner {
		if !in.hasS || in.is(nsCore, opHeartbeatACK) || in.is(nsCore, opResumed) {
			// No recursion (core 3.2.3.8), and a re-sent frame without s cannot be placed.
			g.log.Warn("gateway: re-sent frame skipped", "frame", in.String())
			continue
		}
		more, err := g.seq.accept(in)
		if err != nil {
			return ready, err
		}
		ready = append(ready, more...)
	}
	return ready, nil
}

// resumed handles the op 10 that answers our Resume. The server either continued the old
// connection's numbering (its frames were still in the process: op 10's own s is past anything we
// have, and the re-sent frames keep their s) or replayed its log and started a fresh numbering at
// the Resumed frame, whose replayed dispatches carry no s of ours. The first kind is deduplicated
// by s like an ACK; the second is delivered as it is, since the server picked it by cursor.
func (g *Gateway) resumed(f frame) error {
	inner, err := decodeFrameList(f.d)
	if err != nil {
		// The replay is lost to us; resuming again asks for it again.
		return fmt.Errorf("resumed: %w", err)
	}
	g.mu.Lock()
	g.seq.paused = false
	// In a continuation op 10's s is past everything the old connection sent, and the frames
	// it carries lie between our Resume's s and its own. Anything else (s 0 or none on the
	// replayed frames, a Resumed frame numbered 1) is a fresh numbering. A server that also
	// re-sent the frame named in Resume would read as fresh and repeat that one frame: a
	// duplicate, which beats dropping frames by mistaking a fresh numbering for ours.
	continued := f.hasS && f.s >= g.seq.top
	for _, in := range inner {
		if !in.hasS || in.s < g.seq.next || in.s >= f.s {
			continued = false
		}
	}
	var ready []frame
	if continued {
		for _, in := range inner {
			more, aerr := g.seq.accept(in)
			if aerr != nil {
				err = aerr
				break
			}
			ready = append(ready, more...)
		}
		if err == nil {
			// What op 10 left out between our s and its own, the server does not keep.
			ready = append(ready, g.seq.settleUpTo(f.s)...)
			more, aerr := g.seq.accept(f)
			ready, err = append(ready, more...), aerr
		}
	} else {
		g.seq.restartAt(f.s)
		g.point.S = f.s
		// The replayed frames' s, if any, belong to no numbering of ours, except when the
		// server numbered them on from the Resumed frame (s+1, s+2, ...): then they count as
		// received, or the next heartbeat would ask for them again.
		ready = make([]frame, len(inner))
		next := f.s + 1
		for i, in := range inner {
			ready[i] = in
			if in.hasS && in.s == next {
				_, _ = g.seq.mark(next) // in order on a fresh tracker: never held, never out of window
				next++
				continue
			}
			ready[i].hasS = false
		}
	}
	g.mu.Unlock()
	g.log.Info("gateway resumed", "continued", continued, "replayed", len(inner))
	for _, r := range ready {
		if herr := g.handle(r); herr != nil {
			return herr
		}
	}
	if err != nil {
		return err
	}
	if !g.deliver(Event{Resumed: true}) {
		return errClosing
	}
	return nil
}

// handle turns one in-order frame into its event, if it has one, and delivers it. The resume
// point moves first, so that Cursor agrees with the event as soon as the application has it;
// only the reader moves it, so a delivery cut short by Close can put it back.
func (g *Gateway) handle(f frame) error {
	ev, cursor, ok := g.eventFor(f)
	g.mu.Lock()
	prev := g.point
	if f.hasS && f.s >= g.point.S {
		g.point.S = f.s
	}
	if cursor != "" {
		g.point.Cursor = cursor
	}
	g.mu.Unlock()
	if ok && !g.deliver(ev) {
		g.mu.Lock()
		g.point = prev
		g.mu.Unlock()
		return errClosing
	}
	return nil
}

// eventFor maps a frame to its event and the chat cursor it carries. Frames without an event
// (heartbeat traffic, a second Hello, unknown namespaces) are logged, not delivered.
func (g *Gateway) eventFor(f frame) (Event, string, bool) {
	switch {
	case f.n == nsChat && f.op == opDispatch:
		ev, env, err := decodeDispatch(f.d)
		if err != nil {
			g.log.Warn("gateway: malformed chat dispatch", "type", env.T, "err", err)
			if ev.Dispatch == nil {
				return Event{}, "", false
			}
		}
		return ev, env.C, true
	case f.is(nsCore, opNewSession):
		ns, err := decodeNewSession(f.d)
		if err != nil {
			g.log.Warn("gateway: malformed new session", "err", err)
			return Event{}, "", false
		}
		return Event{NewSession: ns}, "", true
	case f.is(nsCore, opCertInvalidation):
		cc, err := decodeCertInvalidation(f.d)
		if err != nil {
			g.log.Warn("gateway: malformed certificate invalidation", "err", err)
			return Event{}, "", false
		}
		return Event{CertInvalidated: cc}, "", true
	case f.is(nsCore, opServiceACK):
		var ack ServiceAck
		if err := json.Unmarshal(f.d, &ack); err != nil {
			g.log.Warn("gateway: malformed service ACK", "err", err)
			return Event{}, "", false
		}
		return Event{Service: &ack}, "", true
	case f.is(nsCore, opHello), f.is(nsCore, opHeartbeatACK), f.is(nsCore, opResumed), f.is(nsCore, opHeartbeatRequest):
		return Event{}, "", false
	}
	g.log.Debug("gateway: frame without an event", "frame", f.String())
	return Event{}, "", false
}

// writer owns one connection's writes: heartbeats on a ticker and on request, and queued frames.
type writer struct {
	g        *Gateway
	conn     *websocket.Conn
	interval time.Duration
	out      chan []byte
	beat     chan struct{} // a pending heartbeat request (op 11); one is enough
	stop     chan struct{} // closed by serve when the connection is over
	done     chan struct{}

	closeSent bool // the close frame of Close went out; read by serve after done
}

// heartbeatNow asks for a heartbeat without resetting the ticker (core 3.2.3.9).
func (w *writer) heartbeatNow() {
	select {
	case w.beat <- struct{}{}:
	default:
	}
}

// send queues a frame, waiting for room.
func (w *writer) send(ctx context.Context, b []byte) error {
	select {
	case w.out <- b:
		return nil
	case <-w.done:
		return errors.New("connection closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-w.stop:
			return
		case <-w.g.quit:
			// An orderly close: tell the server, then give it closeGrace to echo before the
			// reader's read fails on the deadline.
			_ = w.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeNormal, ""), time.Now().Add(writeTimeout))
			w.closeSent = true
			_ = w.conn.SetReadDeadline(time.Now().Add(closeGrace))
			return
		case <-tick.C:
			err = w.heartbeat()
			w.g.persist()
		case <-w.beat:
			err = w.heartbeat()
		case b := <-w.out:
			err = w.write(b)
		}
		if err != nil {
			// Closing the socket fails the reader's read, which ends the connection there.
			w.g.log.Debug("gateway write failed", "err", err)
			w.conn.Close()
			return
		}
	}
}

func (w *writer) heartbeat() error {
	w.g.mu.Lock()
	hb := w.g.seq.heartbeat()
	w.g.mu.Unlock()
	b, err := encodeFrame(nsCore, opHeartbeat, hb)
	if err != nil {
		return err
	}
	return w.write(b)
}

func (w *writer) write(b []byte) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.conn.WriteMessage(websocket.TextMessage, b)
}
