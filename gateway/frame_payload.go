package gateway

import (
	"bytes"
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
// acknowledges nothing. Every connection sends one per interval, so it is read with the frame
// scanner in place rather than through encoding/json (which costs 11 allocations a heartbeat);
// only a non-empty except list allocates. d was already checked to be valid JSON by DecodeFrame.
func decodeHeartbeat(d json.RawMessage) (session.Heartbeat, error) {
	var hb session.Heartbeat
	if len(d) == 0 || string(d) == "null" {
		return hb, nil
	}
	if d[0] != '{' {
		return hb, badHeartbeat("d is not an object")
	}
	hasFrom, hasTo := false, false
	it := members{sc: scanner{b: d, i: 1}}
	for {
		name, val, ok, err := it.next()
		if err != nil {
			return session.Heartbeat{}, err
		}
		if !ok {
			break
		}
		if string(val) == "null" {
			continue
		}
		switch string(name) {
		case "from":
			hb.From, err = parseNumber(val)
			hasFrom = true
		case "to":
			hb.To, err = parseNumber(val)
			hasTo = true
		case "except":
			hb.Except, err = numberList(val)
		}
		if err != nil {
			return session.Heartbeat{}, badHeartbeat(string(name) + " must hold non-negative integers, as numbers or decimal strings")
		}
	}
	if hasFrom != hasTo {
		return session.Heartbeat{}, badHeartbeat("a heartbeat has both from and to, or neither")
	}
	hb.HasRange = hasFrom
	return hb, nil
}

func badHeartbeat(msg string) error {
	return &FrameError{Offset: -1, Msg: `Heartbeat needs {"from", "to", "except"?}: ` + msg}
}

// members walks the members of a JSON object (valid JSON, the scanner just past its '{').
type members struct {
	sc   scanner
	done bool
}

// next returns the next member's name (unescaped) and raw value; ok is false after the last.
func (m *members) next() (name, val []byte, ok bool, err error) {
	sc := &m.sc
	if m.done {
		return nil, nil, false, nil
	}
	sc.space()
	if sc.i == 1 && sc.eat('}') { // empty object
		m.done = true
		return nil, nil, false, nil
	}
	sc.space()
	ks, ke, kesc, err := sc.str()
	if err != nil {
		return nil, nil, false, err
	}
	name = sc.b[ks:ke]
	if kesc {
		name = []byte(unescape(name))
	}
	sc.space()
	if !sc.eat(':') {
		return nil, nil, false, sc.fail("want ':' after a member name")
	}
	sc.space()
	vs := sc.i
	if err := sc.value(); err != nil {
		return nil, nil, false, err
	}
	val = sc.b[vs:sc.i]
	sc.space()
	switch {
	case sc.eat('}'):
		m.done = true
	case !sc.eat(','):
		return nil, nil, false, sc.fail("want ',' or '}' in an object")
	}
	return name, val, true, nil
}

// numberList reads a JSON array of numbers or decimal strings (valid JSON, starting with '[').
func numberList(arr []byte) ([]uint64, error) {
	if len(arr) == 0 || arr[0] != '[' {
		return nil, errNotANumber
	}
	sc := scanner{b: arr, i: 1}
	sc.space()
	if sc.eat(']') {
		return nil, nil
	}
	out := make([]uint64, 0, 1+bytes.Count(arr, []byte{','}))
	for {
		sc.space()
		vs := sc.i
		if err := sc.value(); err != nil {
			return nil, err
		}
		n, err := parseNumber(arr[vs:sc.i])
		if err != nil {
			return nil, err
		}
		out = append(out, n)
		sc.space()
		if sc.eat(']') {
			return out, nil
		}
		if !sc.eat(',') {
			return nil, errNotANumber
		}
	}
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
