package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Key helpers for read models. A projection's keys are bytes compared bytewise, so a key built from
// several parts must keep each part's order and must not let one part run into the next: "ab"+"c"
// and "a"+"bc" are different rows. These helpers encode parts so that comparing the encoded keys
// compares the parts one after the other.

// ErrBadKey is returned when a key does not decode as the parts asked for.
var ErrBadKey = errors.New("malformed read-model key")

// AppendString appends s, escaped and terminated so that the encodings of any two strings
// compare like the strings themselves and the part after s cannot be mistaken for part of it:
// 0x00 is written as 0x00 0xff, the end as 0x00 0x01.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xff)
			continue
		}
		dst = append(dst, s[i])
	}
	return append(dst, 0, 1)
}

// AppendUint64 appends v big-endian, so that numbers (positions, revisions, timestamps) sort.
func AppendUint64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// CutString decodes a string written by AppendString at the start of k and returns the rest of k.
func CutString(k []byte) (s string, rest []byte, err error) {
	var buf []byte
	for i := 0; i < len(k); i++ {
		if k[i] != 0 {
			continue
		}
		if i+1 == len(k) {
			break
		}
		switch k[i+1] {
		case 1:
			if buf == nil {
				return string(k[:i]), k[i+2:], nil
			}
			return string(append(buf, k[:i]...)), k[i+2:], nil
		case 0xff:
			buf = append(buf, k[:i+1]...)
			k = k[i+2:]
			i = -1
		default:
			return "", nil, fmt.Errorf("%w: bad escape 0x00 0x%02x", ErrBadKey, k[i+1])
		}
	}
	return "", nil, fmt.Errorf("%w: unterminated string", ErrBadKey)
}

// CutUint64 decodes a number written by AppendUint64 at the start of k and returns the rest of k.
func CutUint64(k []byte) (v uint64, rest []byte, err error) {
	if len(k) < 8 {
		return 0, nil, fmt.Errorf("%w: %d bytes left, want 8 for a number", ErrBadKey, len(k))
	}
	return binary.BigEndian.Uint64(k), k[8:], nil
}

// PrefixEnd returns the smallest key greater than every key starting with p, for use as the
// exclusive upper bound of a scan over p. It returns nil (no bound) if there is none, that is
// if p is empty or all 0xff.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
