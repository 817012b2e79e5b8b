package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Hash identifies one stored event and, through the prev_hash in its envelope, every event
// before it in its stream. It is SHA-256 over
//
//	"polyproto-chat/event/v1" || lp(stream) || u64be(revision) || lp(type) || lp(metadata) || lp(data)
//
// where lp(x) is the length of x as u32be followed by x. The global position is left out
// on purpose: it differs between stores, the chain must not.
type Hash [sha256.Size]byte

var hashDomain = []byte("polyproto-chat/event/v1")

// HashOf computes the Hash of a recorded event.
func HashOf(e *RecordedEvent) Hash {
	h := sha256.New()
	h.Write(hashDomain)
	var n [8]byte
	lp := func(b []byte) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(b)))
		h.Write(n[:4])
		h.Write(b)
	}
	lp([]byte(e.Stream))
	binary.BigEndian.PutUint64(n[:], e.Revision)
	h.Write(n[:])
	lp([]byte(e.Type))
	lp(e.Metadata)
	lp(e.Data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Seal builds the envelope of ev as the revision'th event of stream, following the event
// whose hash is prev, recorded at now. Every store calls it while holding the stream's head,
// so the chain is the same whichever store wrote it.
func Seal(stream string, revision uint64, prev Hash, now time.Time, ev *Event) (RecordedEvent, error) {
	id := ev.ID
	if id == uuid.Nil {
		id = uuid.New()
	}
	meta, err := proto.MarshalOptions{Deterministic: true}.Marshal(&eventsv1.Metadata{
		EventId:       id[:],
		ActorFid:      ev.ActorFID,
		SessionId:     ev.SessionID,
		RecordedAt:    timestamppb.New(now),
		CorrelationId: ev.CorrelationID,
		CausationId:   ev.CausationID,
		PrevHash:      prev[:],
		Reason:        ev.Reason,
	})
	if err != nil {
		return RecordedEvent{}, fmt.Errorf("seal %s@%d: %w", stream, revision, err)
	}
	return RecordedEvent{Stream: stream, Revision: revision, Type: ev.Type, Data: ev.Data, Metadata: meta}, nil
}

// ChainError reports the first event whose prev_hash does not match its predecessor.
type ChainError struct {
	Stream   string
	Revision uint64
	Reason   string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("hash chain of %s broken at revision %d: %s", e.Stream, e.Revision, e.Reason)
}

// Chain verifies a stream's events in order, one at a time. Start it with the hash of the
// event before the first one to be checked (the zero Hash when starting at revision 0).
type Chain struct {
	prev    Hash
	nextRev uint64
	started bool
}

// ChainFrom resumes verification after an event whose hash and revision are known.
func ChainFrom(prev Hash, revision uint64) *Chain {
	return &Chain{prev: prev, nextRev: revision + 1, started: true}
}

// Next checks e against the previous event and returns e's hash.
func (c *Chain) Next(e *RecordedEvent) (Hash, error) {
	if c.started && e.Revision != c.nextRev {
		return Hash{}, &ChainError{e.Stream, e.Revision, fmt.Sprintf("expected revision %d", c.nextRev)}
	}
	if !c.started && e.Revision != 0 {
		return Hash{}, &ChainError{e.Stream, e.Revision, "a chain without a known predecessor must start at revision 0"}
	}
	m, err := e.Meta()
	if err != nil {
		return Hash{}, &ChainError{e.Stream, e.Revision, err.Error()}
	}
	if !bytes.Equal(m.GetPrevHash(), c.prev[:]) {
		return Hash{}, &ChainError{e.Stream, e.Revision, "prev_hash does not match the previous event"}
	}
	h := HashOf(e)
	c.prev, c.nextRev, c.started = h, e.Revision+1, true
	return h, nil
}
