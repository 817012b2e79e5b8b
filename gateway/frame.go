package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/polyproto-chat/server/events"
)

// Frame is one gateway frame, {"n": namespace, "op": opcode, "d": payload, "s": sequence}
// (docs/PROTOCOL.md section 4).
type Frame struct {
	N    string          // namespace; "core" when the frame has none
	Op   int             // opcode, 0-65535
	S    uint64          // sequence number; clients send none
	HasS bool            // whether the frame carried "s"
	D    json.RawMessage // the payload exactly as sent; nil when absent. Decoded frames alias their input.
}

// ErrInvalidFrame is what every decoding error matches (errors.Is): the connection closes with
// 4002 invalid payload.
var ErrInvalidFrame = errors.New("invalid frame")

// FrameError says where and why a frame or its payload does not decode.
type FrameError struct {
	Offset int // byte offset in the frame, -1 inside a payload
	Msg    string
}

func (e *FrameError) Error() string {
	if e.Offset < 0 {
		return "invalid frame: " + e.Msg
	}
	return fmt.Sprintf("invalid frame at byte %d: %s", e.Offset, e.Msg)
}

func (e *FrameError) Is(target error) bool { return target == ErrInvalidFrame }

// maxOp: opcodes are uint16 in the spec.
const maxOp = 1<<16 - 1

// DecodeFrame reads one client frame: exactly one JSON object, whitespace around it allowed.
// "op" and "s" may be numbers or decimal strings (polyproto-rs sends strings); "n" defaults to
// "core"; other members are ignored; "d" is kept raw, aliasing b, so b must not change while
// the frame is in use. It allocates nothing for the namespaces "core" and "chat".
func DecodeFrame(b []byte) (Frame, error) {
	f := Frame{N: "core"}
	sc := scanner{b: b}
	sc.space()
	if !sc.eat('{') {
		return f, sc.fail("want a JSON object")
	}
	hasOp := false
	sc.space()
	if !sc.eat('}') {
		for {
			sc.space()
			ks, ke, kesc, err := sc.str()
			if err != nil {
				return f, err
			}
			sc.space()
			if !sc.eat(':') {
				return f, sc.fail("want ':' after a member name")
			}
			sc.space()
			vs := sc.i
			if err := sc.value(); err != nil {
				return f, err
			}
			val := b[vs:sc.i]
			switch key(b[ks:ke], kesc) {
			case "n":
				if f.N, err = namespace(val, vs); err != nil {
					return f, err
				}
			case "op":
				op, err := parseNumber(val)
				if err != nil || op > maxOp {
					return f, &FrameError{Offset: vs, Msg: "op must be an opcode 0-65535, as a number or a decimal string"}
				}
				f.Op, hasOp = int(op), true
			case "s":
				if f.S, err = parseNumber(val); err != nil {
					return f, &FrameError{Offset: vs, Msg: "s must be a non-negative integer, as a number or a decimal string"}
				}
				f.HasS = true
			case "d":
				f.D = json.RawMessage(val)
			}
			sc.space()
			if sc.eat('}') {
				break
			}
			if !sc.eat(',') {
				return f, sc.fail("want ',' or '}' after a member")
			}
		}
	}
	sc.space()
	if sc.i != len(b) {
		return f, sc.fail("data after the frame")
	}
	if !hasOp {
		return f, &FrameError{Offset: 0, Msg: "op is missing"}
	}
	return f, nil
}

// key is a member name; the known ones compare without allocating.
func key(raw []byte, escaped bool) string {
	if escaped {
		return unescape(raw)
	}
	switch string(raw) {
	case "n":
		return "n"
	case "op":
		return "op"
	case "s":
		return "s"
	case "d":
		return "d"
	}
	return "" // an unknown member: ignored
}

// unescape decodes the contents of a JSON string that has escapes (rare in frames).
func unescape(raw []byte) string {
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	_ = json.Unmarshal(q, &s) // the scanner has validated it
	return s
}

// namespace reads "n": a string of 2-64 of [a-z0-9_-] (core 8.2), or null for "core".
func namespace(val []byte, off int) (string, error) {
	if string(val) == "null" {
		return "core", nil
	}
	if len(val) < 2 || val[0] != '"' {
		return "", &FrameError{Offset: off, Msg: "n must be a string"}
	}
	raw := val[1 : len(val)-1]
	var n string
	switch string(raw) {
	case "core":
		return "core", nil
	case "chat":
		return "chat", nil
	}
	for _, c := range raw {
		if c == '\\' {
			n = unescape(raw)
			break
		}
	}
	if n == "" {
		n = string(raw)
	}
	if !validNamespace(n) {
		return "", &FrameError{Offset: off, Msg: "n must be 2-64 of [a-z0-9_-]"}
	}
	return n, nil
}

func validNamespace(n string) bool {
	if len(n) < 2 || len(n) > 64 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseNumber reads a non-negative integer written as a JSON number without fraction or
// exponent, or as a string of 1-20 decimal digits. val is a whole JSON value.
func parseNumber(val []byte) (uint64, error) {
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	if len(val) == 0 || len(val) > 20 {
		return 0, errNotANumber
	}
	var n uint64
	for _, c := range val {
		if c < '0' || c > '9' {
			return 0, errNotANumber
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, errNotANumber
		}
		n = n*10 + d
	}
	return n, nil
}

var errNotANumber = errors.New("not a non-negative integer")

// Encoding. The server writes op and s as JSON numbers and members in the contract's order.

const (
	encN  = `{"n":`
	encOp = `,"op":`
	encD  = `,"d":`
	encS  = `,"s":`
	encT  = `{"t":`
	encC  = `,"c":"`
)

// EncodeFrame returns the wire form of a server frame in one allocation. d must be valid JSON
// (nil is written as null).
func EncodeFrame(namespace string, op int, s uint64, d []byte) []byte {
	size := len(encN) + quotedLen(namespace) + len(encOp) + 5 + len(encD) + max(len(d), 4) + len(encS) + 20 + 1
	return AppendFrame(make([]byte, 0, size), namespace, op, s, d)
}

// AppendFrame appends the wire form of a server frame to dst.
func AppendFrame(dst []byte, namespace string, op int, s uint64, d []byte) []byte {
	dst = append(dst, encN...)
	dst = appendString(dst, namespace)
	dst = append(dst, encOp...)
	dst = strconv.AppendInt(dst, int64(op), 10)
	dst = append(dst, encD...)
	dst = appendRaw(dst, d)
	dst = append(dst, encS...)
	dst = strconv.AppendUint(dst, s, 10)
	return append(dst, '}')
}

// EncodeDispatch returns, in one allocation, a service dispatch frame (op 0) whose payload is
// {"t": event, "c": "<cursor>", "d": data}; "c" is left out unless withCursor.
func EncodeDispatch(namespace string, s uint64, event string, cursor events.Position, withCursor bool, data []byte) []byte {
	size := len(encN) + quotedLen(namespace) + len(encOp) + 1 + len(encD) + len(encT) + quotedLen(event) +
		len(encC) + 21 + len(encD) + max(len(data), 4) + 1 + len(encS) + 20 + 1
	return AppendDispatch(make([]byte, 0, size), namespace, s, event, cursor, withCursor, data)
}

// AppendDispatch appends the wire form of EncodeDispatch to dst.
func AppendDispatch(dst []byte, namespace string, s uint64, event string, cursor events.Position, withCursor bool, data []byte) []byte {
	dst = append(dst, encN...)
	dst = appendString(dst, namespace)
	dst = append(dst, encOp...)
	dst = append(dst, '0')
	dst = append(dst, encD...)
	dst = append(dst, encT...)
	dst = appendString(dst, event)
	if withCursor {
		dst = append(dst, encC...)
		dst = strconv.AppendUint(dst, uint64(cursor), 10)
		dst = append(dst, '"')
	}
	dst = append(dst, encD...)
	dst = appendRaw(dst, data)
	dst = append(dst, '}')
	dst = append(dst, encS...)
	dst = strconv.AppendUint(dst, s, 10)
	return append(dst, '}')
}

// Append appends f as a server would write it.
func (f Frame) Append(dst []byte) []byte { return AppendFrame(dst, f.N, f.Op, f.S, f.D) }

func appendRaw(dst, d []byte) []byte {
	if len(d) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, d...)
}

// appendString writes s as a JSON string. Namespaces and event names never need escaping;
// anything else goes through encoding/json.
func appendString(dst []byte, s string) []byte {
	if plain(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(s)
	return append(dst, q...)
}

func quotedLen(s string) int {
	if plain(s) {
		return len(s) + 2
	}
	return 2*len(s) + 2 // a guess; a longer result only costs a reallocation
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
