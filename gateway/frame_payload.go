package gateway

import (
	"encoding/json"

	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
)

// ClientMessage turns a decoded client frame into what its session is told. Payloads of the
// core opcodes a client sends are checked here; an error matches ErrInvalidFrame (close 4002).
// Every other frame becomes session.Unknown, which the session judges (4001, 4002 or 4003).
func ClientMessage(f Frame) (any, error) {
	if f.N != "core" {
		return session.Unknown{Namespace: f.N, Op: f.Op}, nil
	}
	switch f.Op {
	case 0:
		return decodeHeartbeat(f.D)
	case 2:
		var in struct {
			Token string `json:"token"`
		}
		if err := payload(f.D, &in, "Identify needs {\"token\": string}"); err != nil {
			return nil, err
		}
		return session.Identify{Token: in.Token}, nil
	case 5:
		var in struct {
			S      *number `json:"s"`
			Token  string  `json:"token"`
			Cursor cursor  `json:"cursor"`
		}
		if err := payload(f.D, &in, "Resume needs {\"s\", \"token\", \"cursor\"?}"); err != nil {
			return nil, err
		}
		m := session.Resume{Token: in.Token, Cursor: in.Cursor.pos, HasCursor: in.Cursor.set}
		if in.S != nil {
			m.S, m.HasS = uint64(*in.S), true
		}
		return m, nil
	case 8:
		var in struct {
			Action  string `json:"action"`
			Service string `json:"service"`
		}
		if err := payload(f.D, &in, "Service Channel needs {\"action\", \"service\"}"); err != nil {
			return nil, err
		}
		if in.Action != "subscribe" && in.Action != "unsubscribe" {
			return nil, &FrameError{Offset: -1, Msg: "action must be subscribe or unsubscribe"}
		}
		return session.ServiceChannel{Action: in.Action, Service: in.Service}, nil
	}
	return session.Unknown{Namespace: f.N, Op: f.Op}, nil
}

// decodeHeartbeat reads {"from", "to", "except"}; all absent (or d null) is a heartbeat that
// acknowledges nothing.
func decodeHeartbeat(d json.RawMessage) (session.Heartbeat, error) {
	var in struct {
		From   *number  `json:"from"`
		To     *number  `json:"to"`
		Except []number `json:"except"`
	}
	if len(d) > 0 && string(d) != "null" {
		if err := payload(d, &in, "Heartbeat needs {\"from\", \"to\", \"except\"?}"); err != nil {
			return session.Heartbeat{}, err
		}
	}
	if (in.From == nil) != (in.To == nil) {
		return session.Heartbeat{}, &FrameError{Offset: -1, Msg: "a heartbeat has both from and to, or neither"}
	}
	hb := session.Heartbeat{}
	if in.From != nil {
		hb.From, hb.To, hb.HasRange = uint64(*in.From), uint64(*in.To), true
	}
	if len(in.Except) > 0 {
		hb.Except = make([]uint64, len(in.Except))
		for i, s := range in.Except {
			hb.Except[i] = uint64(s)
		}
	}
	return hb, nil
}

// payload decodes the object d into v; unknown members are ignored (clients may extend them).
func payload(d json.RawMessage, v any, want string) error {
	if len(d) == 0 || d[0] != '{' {
		return &FrameError{Offset: -1, Msg: want}
	}
	if err := json.Unmarshal(d, v); err != nil {
		return &FrameError{Offset: -1, Msg: want + ": " + err.Error()}
	}
	return nil
}

// number is a non-negative integer sent as a JSON number or a decimal string (polyproto-rs
// sends strings).
type number uint64

func (n *number) UnmarshalJSON(b []byte) error {
	v, err := parseNumber(b)
	*n = number(v)
	return err
}

// cursor is a chat cursor: a decimal string (or number); "" and null mean none.
type cursor struct {
	pos events.Position
	set bool
}

func (c *cursor) UnmarshalJSON(b []byte) error {
	if string(b) == "null" || string(b) == `""` {
		*c = cursor{}
		return nil
	}
	v, err := parseNumber(b)
	*c = cursor{pos: events.Position(v), set: err == nil}
	return err
}

// codec is the frame codec as the sessions see it (session.Encoder).
type codec struct{}

func (codec) Frame(namespace string, op int, s uint64, d []byte) []byte {
	return EncodeFrame(namespace, op, s, d)
}

func (codec) Dispatch(namespace string, s uint64, event string, c events.Position, withCursor bool, data []byte) []byte {
	return EncodeDispatch(namespace, s, event, c, withCursor, data)
}
