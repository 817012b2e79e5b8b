package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/events"
)

// takeoverTimeout bounds the wait for an old session's state on Resume. It answers at once
// unless it stopped in the meantime, and then nothing will answer.
const takeoverTimeout = 2 * time.Second

// sessionActor is the state machine of one gateway connection. Everything the connection sends
// goes through it, numbered in order; it never blocks on the connection (Outbox.Send only
// queues), only on the calls an Identify, Resume or subscribe needs.
type sessionActor struct {
	reg *Registry
	cfg *Config
	out Outbox
	log *slog.Logger

	self    *actor.PID
	started bool
	timer   *time.Timer

	principal account.Principal
	token     string // foreign sessions only: checked again when the home server's answer ages
	entry     *entry // non-nil once identified: the Registry knows the session
	sent      *window
	clock     clock
	subs      uint32 // service channels subscribed (serviceBit)
	last      mark   // newest chat dispatch the client has been sent

	attached bool // the connection is up and frames go out
	closing  bool // a close was asked of the connection: nothing more goes out
	stopping bool
}

func (a *sessionActor) Receive(ctx actor.Context) {
	msg := ctx.Message()
	if _, ok := msg.(*actor.Stopped); ok {
		a.stopped()
		return
	}
	if a.stopping {
		return
	}
	switch m := msg.(type) {
	case *actor.Started:
		a.start(ctx)
	case Identify:
		if a.listening() {
			a.identify(m)
		}
	case Resume:
		if a.listening() {
			a.resume(m)
		}
	case Heartbeat:
		if a.listening() && a.authenticated() {
			a.heartbeat(m)
		}
	case ServiceChannel:
		if a.listening() && a.authenticated() {
			a.serviceChannel(m)
		}
	case Unknown:
		if a.listening() && a.authenticated() {
			a.unknown(m)
		}
	case Dispatch:
		a.deliver(m)
	case closeRequest:
		a.closeConn(m.code, m.reason)
	case Disconnected:
		a.disconnected(m)
	case tick:
		a.tick()
	case takeover:
		a.handOver(m)
	}
}

func (a *sessionActor) start(ctx actor.Context) {
	if a.started {
		// A restart after a panic: the state may be half changed, so the connection ends here
		// (resumable: the client resumes from its cursor).
		a.log.Error("gateway session crashed")
		a.closeConn(CloseUnknownError, "internal error")
		a.stop()
		return
	}
	a.started, a.self = true, ctx.Self()
	now := a.cfg.Now()
	a.clock.identifyBy = now.Add(a.cfg.IdentifyTimeout)
	root, self := a.reg.root, a.self
	a.timer = time.AfterFunc(a.cfg.IdentifyTimeout, func() { root.Send(self, tick{}) })
	a.emit(nsCore, opHello, a.reg.hello)
}

func (a *sessionActor) stopped() {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.entry != nil {
		a.reg.remove(a.entry)
	}
	a.stopping = true
}

func (a *sessionActor) stop() {
	if !a.stopping {
		a.stopping = true
		a.reg.root.Stop(a.self)
	}
}

// listening: client frames still count. Frames that were in flight when the session closed
// the connection are ignored.
func (a *sessionActor) listening() bool { return a.attached && !a.closing }

// authenticated closes with 4003 if the client has not identified yet.
func (a *sessionActor) authenticated() bool {
	if a.entry == nil {
		a.closeConn(CloseNotAuthenticated, "identify first")
		return false
	}
	return true
}

func (a *sessionActor) identify(m Identify) {
	if a.entry != nil {
		a.closeConn(CloseAlreadyAuth, "already identified")
		return
	}
	p, ok := a.authenticate(m.Token)
	if !ok {
		return
	}
	a.identified(p, m.Token)
	a.reg.add(a.entry)
	a.log.Debug("gateway session identified")
}

// identified records p as the session's actor; the caller registers a.entry. The session ends
// with its ID-Cert, and a foreign one checks its token again when the home server's last "not
// revoked" answer runs out, as a REST request with the token would.
func (a *sessionActor) identified(p account.Principal, token string) {
	a.principal = p
	a.entry = &entry{fid: p.FID, sessionID: p.SessionID, pid: a.self}
	a.log = a.cfg.Logger.With("fid", p.FID, "session_id", p.SessionID)
	a.clock.identified, a.clock.lastBeat, a.clock.certEnd = true, a.cfg.Now(), p.NotAfter
	a.recheckAfter(p, token)
	a.rearm()
}

func (a *sessionActor) recheckAfter(p account.Principal, token string) {
	a.clock.recheckAt, a.token = time.Time{}, ""
	if p.Foreign {
		// Not sooner than minRecheck: an answer that is already stale must not make a loop.
		a.clock.recheckAt, a.token = later(p.StatusValidUntil, a.cfg.Now().Add(minRecheck)), token
	}
}

// minRecheck is the least time between two checks of a foreign session's token.
const minRecheck = 5 * time.Second

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// recheck checks a foreign session's token again; authenticate closes the connection if it
// no longer passes.
func (a *sessionActor) recheck() {
	if p, ok := a.authenticate(a.token); ok {
		a.principal = p
		a.recheckAfter(p, a.token)
	}
}

// authenticate checks a token, closing the connection if it does not pass.
func (a *sessionActor) authenticate(token string) (account.Principal, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.CallTimeout)
	defer cancel()
	p, err := a.cfg.Auth.Authenticate(ctx, token)
	switch {
	case err == nil:
		return p, true
	case errors.Is(err, ErrInvalidToken):
		a.closeConn(CloseInvalidAuth, "invalid token")
	default:
		a.log.Warn("gateway: checking a token failed", "err", err)
		a.closeConn(CloseUnknownError, "could not check the token, try again")
	}
	return p, false
}

// resume continues an old session (docs/PROTOCOL.md section 4, Resume): from its frames if they
// are still in this process, else from the event log after the client's cursor.
func (a *sessionActor) resume(m Resume) {
	if a.entry != nil {
		a.closeConn(CloseAlreadyAuth, "already identified")
		return
	}
	p, ok := a.authenticate(m.Token)
	if !ok {
		return
	}
	a.identified(p, m.Token)
	// Registered before anything is read, so what happens meanwhile waits in the mailbox and
	// nothing falls between the old state (or the replay) and the live deliveries.
	if old := a.reg.replace(a.entry); old != nil {
		if h, ok := a.takeOver(old); ok && m.HasS {
			if frames, ok := h.sent.after(m.S); ok {
				a.sent, a.last = h.sent, h.last
				a.setSubs(h.subs)
				a.emit(nsCore, opResumed, a.encodeList(frames))
				a.log.Debug("gateway session resumed", "from", m.S, "frames", len(frames))
				return
			}
		}
	}
	if !m.HasCursor {
		a.closeConn(CloseUnresumeable, "nothing to resume from: identify afresh")
		return
	}
	a.replay(m.Cursor)
}

// takeOver asks the old session for its state; it stops once it has answered.
func (a *sessionActor) takeOver(old *entry) (handover, bool) {
	reply := make(chan handover, 1)
	a.reg.root.Send(old.pid, takeover{reply: reply})
	t := time.NewTimer(takeoverTimeout)
	defer t.Stop()
	select {
	case h := <-reply:
		return h, true
	case <-t.C:
		return handover{}, false
	}
}

func (a *sessionActor) handOver(m takeover) {
	m.reply <- handover{sent: a.sent, subs: a.subs, last: a.last}
	a.sent = nil // the resuming session owns it now
	a.entry = nil
	if a.attached && !a.closing {
		a.out.Close(CloseUnresumeable, "this session was resumed on another connection")
	}
	a.closing, a.attached = true, false
	a.stop()
}

// replay answers a Resume from the event log: a client that resumes with a cursor was
// subscribed to chat, and stays so unless it missed too much.
func (a *sessionActor) replay(after events.Position) {
	a.setSubs(a.subs | serviceBit(nsChat))
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.CallTimeout)
	ds, truncated, err := a.cfg.Replayer.Replay(ctx, a.principal, after, a.cfg.ResumeLimit)
	cancel()
	if err != nil {
		a.log.Warn("gateway: replay for a resume failed", "cursor", after, "err", err)
		a.closeConn(CloseUnknownError, "could not replay missed events, try again")
		return
	}
	// The replayed frames are numbered and kept, but go out only inside op 10.
	var frames []frame
	if truncated {
		a.setSubs(a.subs &^ serviceBit(nsChat))
		reason, _ := json.Marshal(map[string]string{"reason": "more events were missed than a resume replays; reload over REST and subscribe again"})
		frames = append(frames, a.sent.push(dispatchFrame(nsChat, eventResyncRequired, 0, false, reason)))
	} else {
		a.last = mark{pos: after, part: wholeEvent}
		frames = make([]frame, 0, len(ds))
		for _, d := range ds {
			frames = append(frames, a.sent.push(frameOf(d)))
			if d.Namespace == nsChat && d.Cursor != 0 {
				a.last = a.last.max(markOf(d))
			}
		}
	}
	a.emit(nsCore, opResumed, a.encodeList(frames))
	a.log.Debug("gateway session resumed from the log", "cursor", after, "events", len(ds), "truncated", truncated)
}

func (a *sessionActor) heartbeat(m Heartbeat) {
	frames, err := a.sent.ack(m)
	if err != nil {
		a.closeConn(CloseInvalidSequence, err.Error())
		return
	}
	a.clock.lastBeat, a.clock.requested = a.cfg.Now(), false
	a.emit(nsCore, opHeartbeatACK, a.encodeList(frames))
	a.rearm()
}

type serviceACK struct {
	Action  string `json:"action"`
	Service string `json:"service"`
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
}

type ready struct {
	SessionID string          `json:"session_id"`
	FID       string          `json:"fid"`
	Guilds    json.RawMessage `json:"guilds"`
	Channels  []struct{}      `json:"channels"`
	Groups    []struct{}      `json:"groups"`
}

func (a *sessionActor) serviceChannel(m ServiceChannel) {
	bit := serviceBit(m.Service)
	ack := serviceACK{Action: m.Action, Service: m.Service}
	switch {
	case m.Action != "subscribe" && m.Action != "unsubscribe":
		a.closeConn(CloseInvalidPayload, "action must be subscribe or unsubscribe")
		return
	case bit == 0:
		ack.Error = "unknown service"
	case m.Action == "unsubscribe":
		if a.subs&bit == 0 {
			ack.Error = "not subscribed"
		} else {
			a.setSubs(a.subs &^ bit)
			ack.Success = true
		}
	case a.subs&bit != 0:
		ack.Success = true // already subscribed; READY went out then
	default:
		// Subscribed before asking for READY: a delivery racing the question is then either at or
		// before READY's cursor (dropped as already covered) or after it.
		a.setSubs(a.subs | bit)
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.CallTimeout)
		rd, err := a.cfg.Replayer.Ready(ctx, a.principal)
		cancel()
		if err != nil {
			a.log.Warn("gateway: reading the chat state for READY failed", "err", err)
			a.setSubs(a.subs &^ bit)
			ack.Error = "service unavailable, try again"
			break
		}
		ack.Success = true
		a.emit(nsCore, opServiceChannelACK, mustJSON(ack))
		a.last = mark{pos: rd.Cursor, part: wholeEvent}
		if rd.Guilds == nil {
			rd.Guilds = json.RawMessage("[]")
		}
		r := ready{SessionID: a.principal.SessionID, FID: a.principal.FID, Guilds: rd.Guilds, Channels: []struct{}{}, Groups: []struct{}{}}
		a.send(dispatchFrame(nsChat, eventReady, rd.Cursor, true, mustJSON(r)))
		return
	}
	a.emit(nsCore, opServiceChannelACK, mustJSON(ack))
}

func (a *sessionActor) unknown(m Unknown) {
	switch {
	case m.Namespace == nsCore:
		a.closeConn(CloseUnknownOpcode, "unknown opcode for a client")
	case a.subs&serviceBit(m.Namespace) != 0:
		a.closeConn(CloseUnknownOpcode, "unknown opcode in "+m.Namespace)
	default:
		a.closeConn(CloseInvalidPayload, "not subscribed to namespace "+m.Namespace)
	}
}

func (a *sessionActor) deliver(d Dispatch) {
	if a.entry == nil {
		return
	}
	if d.Namespace != nsCore && a.subs&serviceBit(d.Namespace) == 0 || !fresh(d, a.last) {
		return
	}
	if d.Namespace == nsChat && d.Cursor != 0 {
		a.last = a.last.max(markOf(d))
	}
	a.send(frameOf(d))
}

// emit numbers, records and sends a plain frame.
func (a *sessionActor) emit(namespace string, op int, d []byte) {
	a.send(plainFrame(namespace, op, d))
}

// send numbers and records f, and encodes and sends it if the connection is up. While the
// session waits for a Resume, frames are only recorded: they are encoded when re-sent.
func (a *sessionActor) send(f frame) {
	f = a.sent.push(f)
	if a.attached && !a.closing && !a.out.Send(f.encode(a.cfg.Encoder)) {
		a.closeConn(CloseTimeout, "too slow: the send queue is full")
	}
}

func (a *sessionActor) setSubs(subs uint32) {
	a.subs = subs
	if a.entry != nil {
		a.entry.subs.Store(subs)
	}
}

// closeConn closes the connection with code. An identified session closed with a resumable
// code waits for a Resume; any other ends.
func (a *sessionActor) closeConn(code int, reason string) {
	if a.attached && !a.closing {
		a.out.Close(code, reason)
		a.log.Debug("gateway session closing", "code", code, "reason", reason)
	}
	a.closing = true
	if a.entry != nil && Resumable(code) {
		a.detach()
		return
	}
	a.stop()
}

func (a *sessionActor) disconnected(m Disconnected) {
	if !a.attached {
		return // closeConn already decided
	}
	a.attached = false
	resumable := m.ByServer && Resumable(m.Code) || !m.ByServer && m.Code != closeNormal
	if a.entry != nil && resumable {
		a.detach()
		return
	}
	a.stop()
}

// detach keeps the session for ResumeWindow: deliveries are recorded for a Resume.
func (a *sessionActor) detach() {
	if !a.clock.detachedAt.IsZero() {
		return
	}
	a.attached = false
	a.clock.detachedAt = a.cfg.Now()
	a.entry.detached.Store(true)
	a.rearm()
}

func (a *sessionActor) tick() {
	switch act, _ := a.clock.due(a.cfg.Now()); act {
	case dueIdentify:
		a.closeConn(CloseNotAuthenticated, "no Identify or Resume in time")
	case dueRequest:
		a.clock.requested = true
		a.emit(nsCore, opHeartbeatRequest, []byte("{}"))
	case dueHeartbeat:
		a.closeConn(CloseTimeout, "no heartbeat in time")
	case dueResumeExpired:
		a.stop()
	case dueCertExpired:
		a.closeConn(CloseInvalidAuth, "the session's certificate expired")
	case dueRecheck:
		a.recheck()
	}
	if !a.stopping {
		a.rearm()
	}
}

// rearm sets the timer to the next deadline.
func (a *sessionActor) rearm() {
	now := a.cfg.Now()
	act, at := a.clock.due(now)
	switch {
	case act != dueNothing:
		a.timer.Reset(0)
	case at.IsZero():
		a.timer.Stop()
	default:
		a.timer.Reset(at.Sub(now))
	}
}

// encodeList encodes kept frames again, with their own s, as a JSON array (the "d" of op 7 and
// op 10): byte for byte what they were when first sent.
func (a *sessionActor) encodeList(frames []frame) []byte {
	enc := make([][]byte, len(frames))
	n := 2
	for i := range frames {
		enc[i] = frames[i].encode(a.cfg.Encoder)
		n += len(enc[i]) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, f := range enc {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	return append(b, ']')
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed struct types go here
	}
	return b
}
