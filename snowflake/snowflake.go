// Package snowflake makes the 64-bit, time-ordered IDs of chat objects (guilds, channels, roles,
// messages; DESIGN.md section 6): the guild and channel actors take one for every object they
// create, so ids sort by creation time and history pages by id. In JSON an ID is a decimal string,
// because JavaScript numbers lose precision above 2^53.
//
// Layout, most significant bit first: 1 bit zero, 41 bits of milliseconds since 2025-01-01 UTC
// (enough until 2094), 10 bits of node id (a server in a cluster), 12 bits of sequence within the
// millisecond.
package snowflake

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Epoch is the zero of an ID's clock.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	nodeBits = 10
	seqBits  = 12
	timeBits = 41
	// MaxNode is the largest node id.
	MaxNode = 1<<nodeBits - 1
	maxSeq  = 1<<seqBits - 1
	maxMs   = 1<<timeBits - 1
)

// ID is one snowflake. The zero ID is never generated and means "none".
type ID uint64

// Time is when the ID was made, to the millisecond.
func (id ID) Time() time.Time {
	return Epoch.Add(time.Duration(id>>(nodeBits+seqBits)) * time.Millisecond)
}

// Node is the node that made the ID.
func (id ID) Node() int { return int(id>>seqBits) & MaxNode }

func (id ID) String() string { return strconv.FormatUint(uint64(id), 10) }

// MarshalJSON writes the ID as a decimal string.
func (id ID) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, id.String()), nil
}

// ErrInvalid: not a snowflake.
var ErrInvalid = errors.New("invalid id")

// UnmarshalJSON reads a decimal string; a bare JSON number is accepted too, as long as it is an
// exact integer (clients in languages with 64-bit integers send them).
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Parse reads a decimal ID: digits only, no sign, no leading zeros, not zero, top bit clear.
func Parse(s string) (ID, error) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrInvalid, s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	return ID(v), nil
}

// Generator makes IDs for one node. Safe for concurrent use.
type Generator struct {
	node uint64
	now  func() time.Time

	mu   sync.Mutex
	last int64  // ms of the last ID
	seq  uint64 // sequence of the last ID within last
}

// NewGenerator makes IDs for node (0..MaxNode). now may be nil (time.Now).
func NewGenerator(node int, now func() time.Time) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("snowflake: node %d out of range 0-%d", node, MaxNode)
	}
	if now == nil {
		now = time.Now
	}
	return &Generator{node: uint64(node), now: now, last: -1}, nil
}

// Next returns an ID greater than every ID this generator returned before. If the clock goes
// back, it keeps counting from the last millisecond it used; if more than 4,096 IDs are taken
// within one millisecond, it borrows the next one. Either way ids stay unique and ordered, and
// run at most briefly ahead of the clock.
func (g *Generator) Next() ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().Sub(Epoch).Milliseconds()
	if ms < 0 {
		ms = 0
	}
	switch {
	case ms > g.last:
		g.last, g.seq = ms, 0
	case g.seq < maxSeq:
		g.seq++
	default:
		g.last, g.seq = g.last+1, 0
	}
	if g.last > maxMs {
		panic("snowflake: clock past 2094") // an invariant no configuration can reach before then
	}
	return ID(uint64(g.last)<<(nodeBits+seqBits) | g.node<<seqBits | g.seq)
}
