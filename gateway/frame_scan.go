package gateway

// scanner validates and skips JSON values in place, so that DecodeFrame can find the envelope's
// members and keep "d" as a slice of the input without building anything. It follows RFC 8259
// as encoding/json does (no check of UTF-8 inside strings, as encoding/json accepts it too).
type scanner struct {
	b     []byte
	i     int
	depth int
}

// maxDepth bounds nesting: payloads this server reads are shallow, and a bound keeps a hostile
// frame of 16 KiB of '[' from costing more than a few microseconds.
const maxDepth = 128

func (s *scanner) fail(msg string) error { return &FrameError{Offset: s.i, Msg: msg} }

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// value skips one JSON value starting at s.i.
func (s *scanner) value() error {
	if s.i >= len(s.b) {
		return s.fail("unexpected end of frame")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, _, _, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return s.fail("want a JSON value")
}

func (s *scanner) object() error {
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deeply")
	}
	s.i++ // '{'
	s.space()
	if s.eat('}') {
		s.depth--
		return nil
	}
	for {
		s.space()
		if _, _, _, err := s.str(); err != nil {
			return err
		}
		s.space()
		if !s.eat(':') {
			return s.fail("want ':' after a member name")
		}
		s.space()
		if err := s.value(); err != nil {
			return err
		}
		s.space()
		if s.eat('}') {
			s.depth--
			return nil
		}
		if !s.eat(',') {
			return s.fail("want ',' or '}' in an object")
		}
	}
}

func (s *scanner) array() error {
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deeply")
	}
	s.i++ // '['
	s.space()
	if s.eat(']') {
		s.depth--
		return nil
	}
	for {
		s.space()
		if err := s.value(); err != nil {
			return err
		}
		s.space()
		if s.eat(']') {
			s.depth--
			return nil
		}
		if !s.eat(',') {
			return s.fail("want ',' or ']' in an array")
		}
	}
}

// str skips a string and returns the bounds of its contents (without quotes) and whether it
// has escapes.
func (s *scanner) str() (start, end int, escaped bool, err error) {
	if !s.eat('"') {
		return 0, 0, false, s.fail("want a string")
	}
	start = s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			end = s.i
			s.i++
			return start, end, escaped, nil
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return 0, 0, false, s.fail("unterminated escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				for k := 0; k < 4; k++ {
					if s.i >= len(s.b) || !isHex(s.b[s.i]) {
						return 0, 0, false, s.fail("bad \\u escape")
					}
					s.i++
				}
			default:
				return 0, 0, false, s.fail("bad escape")
			}
		case c < 0x20:
			return 0, 0, false, s.fail("control character in a string")
		default:
			s.i++
		}
	}
	return 0, 0, false, s.fail("unterminated string")
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return s.fail("bad number")
	}
	if s.eat('.') {
		if s.digits() == 0 {
			return s.fail("bad number fraction")
		}
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return s.fail("bad number exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.fail("bad literal")
	}
	s.i += len(word)
	return nil
}
