package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/polyproto-chat/server/events"
)

// A subscription hands over at most subscribeBatch events per call, and reports progress after
// looking at scanLimit events even if its filter matched none of them.
const (
	subscribeBatch = 512
	scanLimit      = 8192
)

// Store is an in-memory events.Store. The zero value is not usable; call New.
type Store struct {
	now func() time.Time

	mu      sync.RWMutex
	log     []events.RecordedEvent // log[i] has position i+1
	streams map[string][]int       // stream -> indexes into log, one per revision
	heads   map[string]events.Hash
	changed chan struct{} // closed and replaced on every append
	closed  bool
}

// New returns an empty store. now may be nil (time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, streams: map[string][]int{}, heads: map[string]events.Hash{}, changed: make(chan struct{})}
}

func (s *Store) Append(ctx context.Context, stream string, expected events.ExpectedRevision, evs ...events.Event) (events.AppendResult, error) {
	if err := events.ValidateAppend(stream, evs); err != nil {
		return events.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return events.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return events.AppendResult{}, events.ErrClosed
	}
	revs := s.streams[stream]
	last, exists := uint64(len(revs))-1, len(revs) > 0
	if !expected.Check(last, exists) {
		return events.AppendResult{}, &events.WrongRevisionError{Stream: stream, Expected: expected, Actual: last, Exists: exists}
	}
	prev := s.heads[stream]
	now := s.now()
	sealed := make([]events.RecordedEvent, len(evs))
	for i := range evs {
		rec, err := events.Seal(stream, uint64(len(revs)+i), prev, now, &evs[i])
		if err != nil {
			return events.AppendResult{}, err
		}
		rec.Position = events.Position(len(s.log) + i + 1)
		prev = events.HashOf(&rec)
		sealed[i] = rec
	}
	for _, rec := range sealed {
		revs = append(revs, len(s.log))
		s.log = append(s.log, rec)
	}
	s.streams[stream], s.heads[stream] = revs, prev
	close(s.changed)
	s.changed = make(chan struct{})
	end := sealed[len(sealed)-1]
	return events.AppendResult{Revision: end.Revision, Position: end.Position}, nil
}

func (s *Store) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, limit int) ([]events.RecordedEvent, error) {
	if err := events.ValidateRead(stream, limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, events.ErrClosed
	}
	revs := s.streams[stream]
	if len(revs) == 0 {
		return nil, fmt.Errorf("%s: %w", stream, events.ErrStreamNotFound)
	}
	var out []events.RecordedEvent
	if dir == events.Forwards {
		for r := from; r < uint64(len(revs)) && len(out) < limit; r++ {
			out = append(out, s.log[revs[r]])
		}
		return out, nil
	}
	r := min(from, uint64(len(revs)-1))
	for ; len(out) < limit; r-- {
		out = append(out, s.log[revs[r]])
		if r == 0 {
			break
		}
	}
	return out, nil
}

func (s *Store) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter, handle func(events.Batch) error) error {
	if err := filter.Validate(); err != nil {
		return err
	}
	next := int(from) // index into log of the next event to look at, = the checkpoint
	caughtUp, skipped := false, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			return events.ErrClosed
		}
		batch := make([]events.RecordedEvent, 0, min(subscribeBatch, len(s.log)-min(next, len(s.log))))
		for ; next < len(s.log) && len(batch) < subscribeBatch && skipped < scanLimit; next++ {
			if filter.Match(s.log[next].Stream, s.log[next].Type) {
				batch = append(batch, s.log[next])
			} else {
				skipped++
			}
		}
		atHead, changed := next >= len(s.log), s.changed
		s.mu.RUnlock()

		checkpoint := events.Position(next)
		switch {
		// Once live, progress over skipped events is reported at the head too, so a narrow
		// subscriber's checkpoint reaches the head (callers wait for positions).
		case len(batch) > 0 || skipped >= scanLimit || caughtUp && atHead && skipped > 0:
			skipped = 0
			if err := handle(events.Batch{Events: batch, Checkpoint: checkpoint}); err != nil {
				return err
			}
		case atHead && !caughtUp:
			caughtUp, skipped = true, 0
			if err := handle(events.Batch{Checkpoint: checkpoint, CaughtUp: true}); err != nil {
				return err
			}
		case atHead:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
		}
	}
}

func (s *Store) Head(ctx context.Context) (events.Position, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, events.ErrClosed
	}
	return events.Position(len(s.log)), nil
}

// Close wakes subscribers; they return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.changed)
	}
	return nil
}
