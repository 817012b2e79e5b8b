package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/polyproto-chat/server/identity"
)

// The gateway's wire format (PROTOCOL.md section 4): every frame is {"n", "op", "d", "s"}. Our
// server writes op and s as numbers, but polyproto-rs writes strings and the spec types the
// heartbeat numbers as strings, so the SDK reads both, as the server does.

// Namespaces of the envelope's "n".
const (
	nsCore = "core"
	nsChat = "chat"
)

// Core opcodes (n = "core").
const (
	opHeartbeat        = 0
	opHello            = 1
	opIdentify         = 2
	opNewSession       = 3
	opCertInvalidation = 4
	opResume           = 5
	opHeartbeatACK     = 7
	opServiceChannel   = 8
	opServiceACK       = 9
	opResumed          = 10
	opHeartbeatRequest = 11
)

// opDispatch is the only opcode of the chat channel: {"t": type, "c": cursor, "d": payload}.
const opDispatch = 0

// Chat dispatch types the SDK turns into their own events; the rest arrive as Dispatch.
const (
	dispatchReady  = "READY"
	dispatchResync = "RESYNC_REQUIRED"
)

// frame is one decoded server frame. hasS tells "s": 0 from no "s" at all: frames replayed from
// the event log inside op 10 may come without one.
type frame struct {
	n    string
	op   int
	d    json.RawMessage
	s    uint64
	hasS bool
}

func (f frame) is(n string, op int) bool { return f.n == n && f.op == op }

// String names a frame for logs and test failures without its payload.
func (f frame) String() string {
	if !f.hasS {
		return fmt.Sprintf("%s/%d", f.n, f.op)
	}
	return fmt.Sprintf("%s/%d s=%d", f.n, f.op, f.s)
}

// decodeFrame parses one server frame. A missing "n" means core; a missing "op" is an error.
func decodeFrame(data []byte) (frame, error) {
	var w struct {
		N  *string         `json:"n"`
		Op *flexUint       `json:"op"`
		D  json.RawMessage `json:"d"`
		S  *flexUint       `json:"s"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return frame{}, fmt.Errorf("gateway frame: %w", err)
	}
	if w.Op == nil {
		return frame{}, errors.New("gateway frame: no op")
	}
	if *w.Op > 0xffff {
		return frame{}, fmt.Errorf("gateway frame: op %d out of range", *w.Op)
	}
	f := frame{n: nsCore, op: int(*w.Op), d: w.D}
	if w.N != nil && *w.N != "" {
		f.n = *w.N
	}
	if w.S != nil {
		f.s, f.hasS = uint64(*w.S), true
	}
	return f, nil
}

// decodeFrameList parses the array of frames that op 7 and op 10 carry. An empty or null "d" is
// an empty list (the spec allows "d" to be empty, never absent).
func decodeFrameList(d json.RawMessage) ([]frame, error) {
	d = bytes.TrimSpace(d)
	if len(d) == 0 || string(d) == "null" {
		return nil, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(d, &raw); err != nil {
		return nil, fmt.Errorf("frame list: %w", err)
	}
	out := make([]frame, 0, len(raw))
	for i, r := range raw {
		f, err := decodeFrame(r)
		if err != nil {
			return nil, fmt.Errorf("frame list entry %d: %w", i, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// flexUint is an unsigned 64-bit number sent as a JSON number or a decimal string.
type flexUint uint64

func (u *flexUint) UnmarshalJSON(data []byte) error {
	s := string(bytes.TrimSpace(data))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an unsigned integer, got %.40s", data)
	}
	*u = flexUint(v)
	return nil
}

// helloInterval reads the heartbeat interval (ms) from a Hello payload, in either spelling.
func helloInterval(d json.RawMessage) (uint64, error) {
	var h struct {
		Snake *flexUint `json:"heartbeat_interval"`
		Camel *flexUint `json:"heartbeatInterval"`
	}
	if err := json.Unmarshal(d, &h); err != nil {
		return 0, fmt.Errorf("hello: %w", err)
	}
	v := h.Snake
	if v == nil {
		v = h.Camel
	}
	if v == nil || *v == 0 {
		return 0, errors.New("hello: no heartbeat interval")
	}
	return uint64(*v), nil
}

// clientFrame is what the SDK sends: no "s", which only server frames carry.
type clientFrame struct {
	N  string `json:"n"`
	Op int    `json:"op"`
	D  any    `json:"d"`
}

func encodeFrame(n string, op int, d any) ([]byte, error) {
	b, err := json.Marshal(clientFrame{N: n, Op: op, D: d})
	if err != nil {
		return nil, fmt.Errorf("encode %s op %d: %w", n, op, err)
	}
	return b, nil
}

// heartbeatRange is op 0's payload: the frames received since the last heartbeat, as [From, To]
// minus Except. Both bounds are omitted when there is nothing to report.
type heartbeatRange struct {
	From   *uint64  `json:"from,omitempty"`
	To     *uint64  `json:"to,omitempty"`
	Except []uint64 `json:"except,omitempty"`
}

type identifyPayload struct {
	Token string `json:"token"`
}

type resumePayload struct {
	S      uint64 `json:"s"`
	Token  string `json:"token"`
	Cursor string `json:"cursor,omitempty"`
}

type servicePayload struct {
	Action  string `json:"action"`
	Service string `json:"service"`
}

// Ready is the chat channel's first dispatch after a subscribe: who this session is and the state
// to start from. Guilds, channels and groups stay raw JSON until the chat part of the SDK types
// them (PROTOCOL.md section 5).
type Ready struct {
	SessionID string
	FID       identity.FID
	Guilds    []json.RawMessage
	Channels  []json.RawMessage
	Groups    []json.RawMessage
	Cursor    string // the resume point the server gave with READY
}

// Dispatch is any other chat dispatch, undecoded.
type Dispatch struct {
	Type   string          // "t", e.g. MESSAGE_CREATE
	Cursor string          // "c", opaque; "" when the dispatch carries none
	Data   json.RawMessage // "d"
}

// NewSession reports that another session of the same actor logged in (core op 3).
type NewSession struct {
	Cert *identity.IDCert
}

// ServiceAck is the server's answer to a subscribe or unsubscribe (core op 9).
type ServiceAck struct {
	Action  string `json:"action"`
	Service string `json:"service"`
	Success bool   `json:"success"`
	Error   string `json:"error,omitempty"`
}

// Resync says the server could not replay what this session missed (more than its resume limit):
// the application must reload its state over REST, then Subscribe again for a fresh READY.
type Resync struct {
	Reason string
}

// dispatchEnvelope is the chat op 0 payload.
type dispatchEnvelope struct {
	T string          `json:"t"`
	C string          `json:"c"`
	D json.RawMessage `json:"d"`
}

// decodeDispatch parses a chat dispatch into its event. READY and RESYNC_REQUIRED that do not
// decode are still delivered, as plain Dispatch, so that nothing the server sent disappears.
func decodeDispatch(d json.RawMessage) (Event, dispatchEnvelope, error) {
	var env dispatchEnvelope
	if err := json.Unmarshal(d, &env); err != nil {
		return Event{}, env, fmt.Errorf("chat dispatch: %w", err)
	}
	plain := Event{Dispatch: &Dispatch{Type: env.T, Cursor: env.C, Data: env.D}}
	switch env.T {
	case dispatchReady:
		r, err := decodeReady(env)
		if err != nil {
			return plain, env, err
		}
		return Event{Ready: r}, env, nil
	case dispatchResync:
		var p struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(env.D, &p); err != nil {
			return plain, env, fmt.Errorf("RESYNC_REQUIRED: %w", err)
		}
		return Event{Resync: &Resync{Reason: p.Reason}}, env, nil
	}
	return plain, env, nil
}

func decodeReady(env dispatchEnvelope) (*Ready, error) {
	var p struct {
		SessionID string            `json:"session_id"`
		FID       string            `json:"fid"`
		Guilds    []json.RawMessage `json:"guilds"`
		Channels  []json.RawMessage `json:"channels"`
		Groups    []json.RawMessage `json:"groups"`
	}
	if err := json.Unmarshal(env.D, &p); err != nil {
		return nil, fmt.Errorf("READY: %w", err)
	}
	fid, err := identity.ParseFID(p.FID)
	if err != nil {
		return nil, fmt.Errorf("READY: %w", err)
	}
	return &Ready{SessionID: p.SessionID, FID: fid, Guilds: p.Guilds, Channels: p.Channels,
		Groups: p.Groups, Cursor: env.C}, nil
}

// decodeNewSession parses core op 3. The cert is parsed against the ID-Cert profile but not
// verified: that needs the home server's root, which the application fetches if it cares.
func decodeNewSession(d json.RawMessage) (*NewSession, error) {
	var p struct {
		Cert string `json:"cert"`
	}
	if err := json.Unmarshal(d, &p); err != nil {
		return nil, fmt.Errorf("new session: %w", err)
	}
	cert, err := parseCertPEM(p.Cert)
	if err != nil {
		return nil, fmt.Errorf("new session: %w", err)
	}
	return &NewSession{Cert: cert}, nil
}

// decodeCertInvalidation parses core op 4, a CacheableIDCert; CacheableCert.Verify with the home
// root checks it.
func decodeCertInvalidation(d json.RawMessage) (*identity.CacheableCert, error) {
	var cc identity.CacheableCert
	if err := json.Unmarshal(d, &cc); err != nil {
		return nil, fmt.Errorf("certificate invalidation: %w", err)
	}
	if cc.IDCertPEM == "" {
		return nil, errors.New("certificate invalidation: no idCertPem")
	}
	return &cc, nil
}
