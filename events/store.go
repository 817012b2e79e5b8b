package events

import (
	"context"
	"fmt"
	"math"
)

// Store is an append-only log of streams with a global order.
//
// Stream revisions start at 0 for the first event of a stream. Global positions are
// strictly increasing over all streams; Position 0 is "before the first event".
type Store interface {
	// Append writes evs to the end of stream atomically, if the stream is at the expected
	// revision. It returns only after the events are durable; a nil error is the acknowledgement.
	// A conflict returns an error matching ErrWrongExpectedRevision and writes nothing.
	Append(ctx context.Context, stream string, expected ExpectedRevision, evs ...Event) (AppendResult, error)

	// ReadStream returns up to limit events of stream starting at revision from (inclusive),
	// in the given direction. From may be End to start at the last event when reading backwards.
	// A stream without events returns ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, dir Direction, from uint64, limit int) ([]RecordedEvent, error)

	// SubscribeAll calls handle with batches of the events whose position is greater than from
	// and which match filter, in global order: first those already stored (catch-up), then new
	// ones as they become durable (live), with no gap and no duplicate between the two.
	// Exactly one batch has CaughtUp set: the first one after everything stored when the
	// subscription started has been handed over; it carries no events. Batches without events
	// may also arrive to report progress over events the filter skipped (see Batch.Checkpoint).
	//
	// It returns when ctx ends (with ctx.Err()), when handle returns an error (with that error),
	// or when the store fails. Delivery is at least once across subscriptions: a subscriber that
	// stores the checkpoint of the last batch it handled and subscribes again from it misses nothing.
	SubscribeAll(ctx context.Context, from Position, filter Filter, handle func(Batch) error) error

	// Head returns the position of the last record in the store (0 when it is empty): every
	// append acknowledged before the call is at or before it. A reader that has handled
	// everything up to Head and then follows SubscribeAll(Head) misses nothing.
	Head(ctx context.Context) (Position, error)

	// Close releases the store. Appends in flight either complete or fail; none is half written.
	Close() error
}

// Position is a place in the global order of a store. Positions of the embedded and memory stores
// are contiguous (1, 2, 3, ...); those of KurrentDB are log offsets with gaps.
type Position uint64

// Batch is one delivery of SubscribeAll.
type Batch struct {
	Events []RecordedEvent // matching events in global order; may be empty
	// Checkpoint: every event at or before this position has been either delivered or skipped
	// by the filter, so subscribing again from it misses nothing. It never decreases and is at
	// least the position of the last event in Events. With a narrow filter over a long log it
	// moves on while Events stays empty, which saves a subscriber from rescanning the log.
	Checkpoint Position
	CaughtUp   bool // see SubscribeAll
}

// AppendResult tells where the last appended event landed.
type AppendResult struct {
	Revision uint64   // stream revision of the last event written
	Position Position // global position of the last event written
}

// Direction of a stream read.
type Direction int

const (
	Forwards Direction = iota
	Backwards
)

func (d Direction) String() string {
	if d == Backwards {
		return "backwards"
	}
	return "forwards"
}

// End, as the from argument of a backwards read, means "the last event of the stream".
const End uint64 = math.MaxUint64

// MaxReadLimit bounds one ReadStream call; page through longer streams.
const MaxReadLimit = 4096

// ExpectedRevision is the optimistic-concurrency condition of an append:
// Any{}, NoStream{} or Exact(revision of the stream's last event).
type ExpectedRevision interface {
	// Check reports whether a stream whose last revision is last (exists=false: no events yet)
	// satisfies the expectation.
	Check(last uint64, exists bool) bool
	fmt.Stringer
}

// Any accepts whatever state the stream is in.
type Any struct{}

// NoStream accepts only a stream that has no events yet.
type NoStream struct{}

// Exact accepts only a stream whose last event has this revision.
type Exact uint64

func (Any) Check(uint64, bool) bool                 { return true }
func (NoStream) Check(_ uint64, exists bool) bool   { return !exists }
func (e Exact) Check(last uint64, exists bool) bool { return exists && uint64(e) == last }

func (Any) String() string      { return "any" }
func (NoStream) String() string { return "no stream" }
func (e Exact) String() string  { return fmt.Sprintf("revision %d", uint64(e)) }

// Filter selects events for SubscribeAll. The zero Filter selects every event.
// At most one of its fields may be set (KurrentDB filters on one property at a time).
type Filter struct {
	StreamPrefixes []string // events of streams whose name starts with one of these
	EventTypes     []string // events of exactly these types
}

// Validate rejects a filter that sets both fields.
func (f Filter) Validate() error {
	if len(f.StreamPrefixes) > 0 && len(f.EventTypes) > 0 {
		return fmt.Errorf("%w: stream prefixes and event types both set", ErrInvalidFilter)
	}
	return nil
}

// Match reports whether an event of this stream and type passes the filter.
func (f Filter) Match(stream, eventType string) bool {
	switch {
	case len(f.StreamPrefixes) > 0:
		for _, p := range f.StreamPrefixes {
			if len(stream) >= len(p) && stream[:len(p)] == p {
				return true
			}
		}
		return false
	case len(f.EventTypes) > 0:
		for _, t := range f.EventTypes {
			if t == eventType {
				return true
			}
		}
		return false
	}
	return true
}
