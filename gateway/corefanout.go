package gateway

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/identity"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Sessions is where core events go: the node-local registry of live gateway sessions
// (session.Registry).
type Sessions interface {
	Deliver(fid string, d session.Dispatch)
	DeliverExcept(fid, sessionID string, d session.Dispatch)
	Close(fid, sessionID string, code int, reason string)
}

// CoreEvents turns an actor's account events into core gateway frames (core 4.4, 6.1.4): a new
// session is announced to the actor's other sessions (op 3), a revoked cert to all of them
// (op 4), and the revoked session's own connections are closed (4004). The same translation
// serves live fan-out (Committed) and Resume from the log (Replayer).
type CoreEvents struct {
	Root     *identity.Root
	CacheTTL time.Duration
	Sessions Sessions
	Now      func() time.Time
	Logger   *slog.Logger
}

// Committed is account.Config.Committed: it runs in the account actor and must not block.
func (c *CoreEvents) Committed(fid string, evs []proto.Message) {
	for _, ev := range evs {
		d, except, ok := c.dispatch(ev)
		if !ok {
			continue
		}
		c.Sessions.DeliverExcept(fid, except, d)
		if r, ok := ev.(*eventsv1.SessionRevoked); ok {
			c.Sessions.Close(fid, r.GetSessionId(), session.CloseInvalidAuth, "certificate invalidated")
		}
	}
}

// dispatch is what an account event looks like on the gateway, and which session must not get
// it (the one it is about). ok is false for events clients are not told about.
func (c *CoreEvents) dispatch(ev proto.Message) (d session.Dispatch, except string, ok bool) {
	switch e := ev.(type) {
	case *eventsv1.IdCertIssued:
		data, _ := json.Marshal(map[string]string{"cert": certPEM(e.GetCertDer())})
		return session.Dispatch{Namespace: "core", Op: session.OpNewSession, Data: data}, e.GetSessionId(), true
	case *eventsv1.ForeignSessionStarted:
		data, _ := json.Marshal(map[string]string{"cert": certPEM(e.GetCertDer())})
		return session.Dispatch{Namespace: "core", Op: session.OpNewSession, Data: data}, e.GetSessionId(), true
	case *eventsv1.SessionRevoked:
		cert, err := identity.ParseIDCert(e.GetCertDer())
		if err != nil || cert.Domain != c.Root.Cert.Domain {
			// A foreign actor's cert: its home server vouches for it, not us; the session is
			// still closed, but there is nothing of ours to sign.
			return session.Dispatch{}, "", false
		}
		at := e.GetRevokedAt().AsTime()
		now := c.Now()
		data, _ := json.Marshal(identity.SignCacheable(c.Root, cert, &at, now, now.Add(c.CacheTTL)))
		return session.Dispatch{Namespace: "core", Op: session.OpActorCertInvalidation, Data: data}, "", true
	}
	return session.Dispatch{}, "", false
}

func certPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// Replayer finds in the event log what an actor's gateway session missed: the core events of
// its account (sessions started and certs revoked) and the chat events of the guilds and
// channels it may see, merged in log order.
type Replayer struct {
	Store events.Store
	Core  *CoreEvents
	Chat  *ChatEvents // nil: core events only
	// MaxScan bounds the chat events one Resume reads looking for the actor's; past it the
	// client re-syncs. Zero: 100,000.
	MaxScan int
}

// Ready is READY's chat state (session.Replayer).
func (r *Replayer) Ready(ctx context.Context, p account.Principal) (session.Ready, error) {
	if r.Chat == nil {
		head, err := r.Store.Head(ctx)
		return session.Ready{Cursor: head}, err
	}
	guilds, cursor, err := r.Chat.Ready(ctx, p.FID)
	return session.Ready{Cursor: cursor, Guilds: guilds}, err
}

// Replay returns at most limit dispatches for p after the cursor, oldest first; truncated says
// more were missed, and the client must re-sync instead.
func (r *Replayer) Replay(ctx context.Context, p account.Principal, after events.Position, limit int) ([]session.Dispatch, bool, error) {
	var core []session.Dispatch
	for rec, err := range events.ReadFrom(ctx, r.Store, account.Stream(p.FID), 0) {
		if err != nil {
			return nil, false, err
		}
		if rec.Position <= after {
			continue
		}
		msg, err := events.Decode(&rec)
		if err != nil {
			return nil, false, err
		}
		d, except, ok := r.Core.dispatch(msg)
		if !ok || except == p.SessionID {
			continue
		}
		if len(core) == limit {
			return nil, true, nil
		}
		d.Cursor = rec.Position
		core = append(core, d)
	}
	if r.Chat == nil {
		return core, false, nil
	}
	maxScan := r.MaxScan
	if maxScan <= 0 {
		maxScan = 100_000
	}
	chat, truncated, err := r.Chat.replay(ctx, p.FID, after, limit, maxScan)
	if err != nil || truncated {
		return nil, truncated, err
	}
	// Core frames carry no cursor on the wire (their position only places them in the merge).
	out := mergeByCursor(core, chat)
	if len(out) > limit {
		return nil, true, nil
	}
	return out, false, nil
}

// mergeByCursor merges two lists ordered by log position.
func mergeByCursor(a, b []session.Dispatch) []session.Dispatch {
	out := make([]session.Dispatch, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Cursor <= b[0].Cursor {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
