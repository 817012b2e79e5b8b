package session

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/events"
)

// What the session needs from around it. Each is declared here, next to its one user, so that
// this package never imports the gateway.

// Outbox is the connection as a session sees it (gateway's connection implements it).
type Outbox interface {
	Send(frame []byte) bool        // queue one encoded frame; false when the queue is full (the conn then closes with 4009)
	Close(code int, reason string) // close with a WebSocket close code
}

// Dispatch is one event for the client, already checked to be visible to this actor by whoever
// fans it out.
type Dispatch struct {
	Namespace string          // "core" or "chat"
	Op        int             // core opcode, or 0 (Dispatch) for chat
	Type      string          // chat event name (READY, MESSAGE_CREATE, ...); "" for core
	Cursor    events.Position // chat: the event's global position (the frame's "c"); 0 for none
	// Part numbers the dispatches one event makes for one actor (0, 1, ...): an event can mean
	// several things to one reader (a member removed and, to a moderator, a ban added), and
	// all of them are news, though they share a cursor.
	Part int
	// Data is the payload ("d" of core frames, the inner "d" of chat frames). It is read-only
	// once delivered: every session it reaches keeps this slice, not a copy, to encode the frame
	// again for a re-send, so one payload serves all of them. A producer must not change or reuse
	// it, and should not slice it out of a larger buffer, which would then be kept alive.
	Data json.RawMessage
}

// Replayer finds what an actor missed since a chat cursor (the lead implements it over the
// event log).
type Replayer interface {
	Replay(ctx context.Context, p account.Principal, after events.Position, limit int) (ds []Dispatch, truncated bool, err error)
	// Ready is the chat state of p's actor for READY: Guilds is a JSON array, exact at Cursor, so
	// a client resuming from Cursor misses nothing and every dispatch after it is news.
	Ready(ctx context.Context, p account.Principal) (Ready, error)
}

// Ready is what READY carries besides the session's own names.
type Ready struct {
	Cursor events.Position
	Guilds json.RawMessage // a JSON array; nil: []
}

// Authenticator resolves a session token (gateway's token check over the account actors).
type Authenticator interface {
	// Authenticate returns who the token speaks for. An error matching ErrInvalidToken means
	// the token is bad, revoked or expired (close 4004); any other error is an outage (4000).
	Authenticate(ctx context.Context, token string) (account.Principal, error)
}

// ErrInvalidToken is the error an Authenticator wraps for a token that must not be accepted.
var ErrInvalidToken = errors.New("invalid session token")

// Encoder writes server frames in the wire format (gateway's frame codec implements it).
type Encoder interface {
	// Frame is {"n": namespace, "op": op, "d": d, "s": s}.
	Frame(namespace string, op int, s uint64, d []byte) []byte
	// Dispatch is a service dispatch (op 0) whose "d" is {"t": event, "c": cursor, "d": data};
	// "c" is left out unless withCursor.
	Dispatch(namespace string, s uint64, event string, cursor events.Position, withCursor bool, data []byte) []byte
}

// Client frames, decoded by the gateway and told to the session in the order the client sent
// them (Ref.Tell).

// Identify is core op 2.
type Identify struct{ Token string }

// Resume is core op 5. HasS and HasCursor say which of S and Cursor the client sent.
type Resume struct {
	Token     string
	S         uint64
	HasS      bool
	Cursor    events.Position
	HasCursor bool
}

// Heartbeat is core op 0: the client received the server frames From..To (when HasRange) except
// those in Except.
type Heartbeat struct {
	From, To uint64
	HasRange bool
	Except   []uint64
}

// ServiceChannel is core op 8.
type ServiceChannel struct {
	Action  string // "subscribe" or "unsubscribe"
	Service string
}

// Unknown is any other client frame: a core opcode clients do not send, or a frame of another
// namespace. The session answers it with the right close code.
type Unknown struct {
	Namespace string
	Op        int
}

// Disconnected tells the session its connection is over. ByServer: the server closed it with
// Code; otherwise the client closed it (Code from its close frame) or it dropped (1006).
type Disconnected struct {
	Code     int
	ByServer bool
}

// Internal messages.
type (
	// tick wakes the session to check its deadlines (Identify, heartbeats, resume window).
	tick struct{}
	// closeRequest is Registry.Close.
	closeRequest struct {
		code   int
		reason string
	}
	// takeover asks a session to hand its state to a session resuming it, and stop.
	takeover struct{ reply chan handover }
	handover struct {
		sent *window
		subs uint32
		last mark
	}
)

// Close codes (core 3.2.5; docs/PROTOCOL.md section 4).
const (
	CloseGoingAway        = 1001 // the server shuts down
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

	closeNormal = 1000 // a client that closes with it is done: its session is not kept for Resume
)

// Core opcodes that fan-out sources send through the Registry (core 4.4 and 6.1.4).
const (
	OpNewSession            = 3
	OpActorCertInvalidation = 4
)

// Opcodes the session writes (clients' opcodes arrive decoded), namespaces and chat events.
const (
	opDispatch          = 0 // in a service namespace
	opHello             = 1
	opHeartbeatACK      = 7
	opServiceChannelACK = 9
	opResumed           = 10
	opHeartbeatRequest  = 11

	nsCore = "core"
	nsChat = "chat"

	eventReady          = "READY"
	eventResyncRequired = "RESYNC_REQUIRED"
)

// Resumable reports whether a close by the server with code lets the client Resume (core 3.2.5).
func Resumable(code int) bool {
	switch code {
	case CloseUnknownError, CloseUnknownOpcode, CloseInvalidPayload, CloseInvalidSequence, CloseTimeout:
		return true
	}
	return false
}
