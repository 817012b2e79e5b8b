package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/polyproto-chat/server/internal/pebblelog"

	"github.com/polyproto-chat/server/events"
)

const (
	// maxRound bounds the appends committed together, so one round's latency stays bounded.
	maxRound = 1024
	// maxCachedHeads bounds the sequencer's cache of stream heads; a miss costs one Pebble read.
	maxCachedHeads = 1 << 18
	// A subscription hands over at most this much per call, and reports progress (an empty
	// batch with a checkpoint) after its filter skipped scanLimit records, so that a narrow
	// subscriber over a long log neither holds a read lock long nor rescans after a restart.
	subscribeBatch      = 512
	subscribeBatchBytes = 4 << 20
	scanLimit           = 8192
)

// Options configure Open. The zero value is usable.
type Options struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // clock for recorded_at; nil: time.Now
}

// Store is the Pebble-backed events.Store.
type Store struct {
	db   *pebble.DB
	log  *slog.Logger
	now  func() time.Time
	reqs chan *appendRequest
	quit chan struct{} // closed by Close: the sequencer stops
	done chan struct{} // closed when the sequencer has stopped

	// Owned by the sequencer goroutine.
	next    events.Position // position of the next event
	heads   map[string]head
	pending map[string]head // heads moved in the current round

	mu      sync.Mutex
	durable events.Position // last synced position; readers never look past it
	changed chan struct{}   // closed and replaced whenever durable moves, or on Close
	closed  bool
	failed  error // a failed commit poisons the store: nothing after it may be acknowledged

	// Reads hold it shared, Close exclusively, so Pebble is never closed under a reader.
	readers sync.RWMutex
}

type appendRequest struct {
	ctx      context.Context
	stream   string
	expected events.ExpectedRevision
	evs      []events.Event
	done     chan appendOutcome // buffered; written exactly once
}

type appendOutcome struct {
	res events.AppendResult
	err error
}

// Open opens or creates the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("event store: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{
		Logger:       pebblelog.Logger{Log: log.With("component", "pebble")},
		MemTableSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("event store: open %s: %w", dir, err)
	}
	last, err := lastPosition(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("event store: %s: %w", dir, err)
	}
	s := &Store{
		db: db, log: log, now: now,
		reqs:    make(chan *appendRequest, maxRound),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		next:    last + 1,
		heads:   map[string]head{},
		pending: map[string]head{},
		durable: last,
		changed: make(chan struct{}),
	}
	go s.sequence()
	log.Debug("event store open", "dir", dir, "position", uint64(last))
	return s, nil
}

func lastPosition(db *pebble.DB) (events.Position, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixGlobal}, UpperBound: []byte{prefixGlobal + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	if len(it.Key()) != 9 {
		return 0, fmt.Errorf("corrupt global key %x", it.Key())
	}
	return events.Position(binary.BigEndian.Uint64(it.Key()[1:])), nil
}

func (s *Store) Append(ctx context.Context, stream string, expected events.ExpectedRevision, evs ...events.Event) (events.AppendResult, error) {
	if err := events.ValidateAppend(stream, evs); err != nil {
		return events.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return events.AppendResult{}, err
	}
	req := &appendRequest{ctx: ctx, stream: stream, expected: expected, evs: evs, done: make(chan appendOutcome, 1)}
	select {
	case s.reqs <- req:
	case <-s.quit:
		return events.AppendResult{}, events.ErrClosed
	case <-ctx.Done():
		return events.AppendResult{}, ctx.Err()
	}
	select {
	case o := <-req.done:
		return o.res, o.err
	case <-ctx.Done():
		// The append may still land; the caller was never told it did.
		return events.AppendResult{}, ctx.Err()
	case <-s.done:
		select {
		case o := <-req.done:
			return o.res, o.err
		default:
			return events.AppendResult{}, events.ErrClosed
		}
	}
}

// sequence is the only writer. See the package comment.
func (s *Store) sequence() {
	defer close(s.done)
	round := make([]*appendRequest, 0, maxRound)
	for {
		select {
		case <-s.quit:
			for {
				select {
				case r := <-s.reqs:
					r.done <- appendOutcome{err: events.ErrClosed}
				default:
					return
				}
			}
		case r := <-s.reqs:
			round = append(round[:0], r)
		}
	fill:
		for len(round) < maxRound {
			select {
			case r := <-s.reqs:
				round = append(round, r)
			default:
				break fill
			}
		}
		s.commit(round)
		clear(round) // drop references to answered requests
	}
}

func (s *Store) commit(round []*appendRequest) {
	outcomes := make([]appendOutcome, len(round))
	s.mu.Lock()
	failed := s.failed
	s.mu.Unlock()
	if failed != nil {
		for _, r := range round {
			r.done <- appendOutcome{err: failed}
		}
		return
	}

	b := s.db.NewBatch()
	defer b.Close()
	clear(s.pending)
	first, now := s.next, s.now()
	for i, r := range round {
		outcomes[i] = s.stage(b, r, now)
	}
	if s.next > first {
		if err := b.Commit(pebble.Sync); err != nil {
			// Pebble may or may not have written the batch: the only safe answer is to
			// acknowledge nothing from now on. Restarting the process recovers a prefix.
			err = fmt.Errorf("event store: commit failed, store unusable until restart: %w", err)
			s.log.Error("commit failed", "err", err)
			s.mu.Lock()
			s.failed = err
			s.mu.Unlock()
			for i := range outcomes {
				if outcomes[i].err == nil {
					outcomes[i] = appendOutcome{err: err}
				}
			}
		} else {
			if len(s.heads) > maxCachedHeads {
				clear(s.heads)
			}
			for stream, h := range s.pending {
				s.heads[stream] = h
			}
			s.publish(s.next - 1)
		}
	}
	for i, r := range round {
		r.done <- outcomes[i]
	}
}

// stage checks one append against the heads and adds it to the batch.
func (s *Store) stage(b *pebble.Batch, r *appendRequest, now time.Time) appendOutcome {
	if err := r.ctx.Err(); err != nil {
		return appendOutcome{err: err}
	}
	h, exists, err := s.head(r.stream)
	if err != nil {
		return appendOutcome{err: err}
	}
	if !r.expected.Check(h.rev, exists) {
		return appendOutcome{err: &events.WrongRevisionError{Stream: r.stream, Expected: r.expected, Actual: h.rev, Exists: exists}}
	}
	rev := uint64(0)
	if exists {
		rev = h.rev + 1
	}
	recs := make([]events.RecordedEvent, len(r.evs))
	prev := h.hash
	for i := range r.evs {
		rec, err := events.Seal(r.stream, rev+uint64(i), prev, now, &r.evs[i])
		if err != nil {
			return appendOutcome{err: err}
		}
		prev = events.HashOf(&rec)
		recs[i] = rec
	}
	var pos [8]byte
	for i := range recs {
		recs[i].Position = s.next
		s.next++
		binary.BigEndian.PutUint64(pos[:], uint64(recs[i].Position))
		_ = b.Set(globalKey(recs[i].Position), encodeRecord(&recs[i]), nil)
		_ = b.Set(streamKey(r.stream, recs[i].Revision), pos[:], nil)
	}
	last := recs[len(recs)-1]
	h = head{rev: last.Revision, hash: prev}
	_ = b.Set(headKey(r.stream), encodeHead(h), nil)
	s.pending[r.stream] = h
	return appendOutcome{res: events.AppendResult{Revision: last.Revision, Position: last.Position}}
}

// head returns the stream's last revision and hash as of the current round.
func (s *Store) head(stream string) (head, bool, error) {
	if h, ok := s.pending[stream]; ok {
		return h, true, nil
	}
	if h, ok := s.heads[stream]; ok {
		return h, true, nil
	}
	v, closer, err := s.db.Get(headKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return head{}, false, nil
	}
	if err != nil {
		return head{}, false, fmt.Errorf("read head of %s: %w", stream, err)
	}
	defer closer.Close()
	h, err := decodeHead(v)
	if err != nil {
		return head{}, false, fmt.Errorf("head of %s: %w", stream, err)
	}
	s.heads[stream] = h
	return h, true, nil
}

func (s *Store) publish(durable events.Position) {
	s.mu.Lock()
	s.durable = durable
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// watch returns the durable position and a channel closed when it next moves.
func (s *Store) watch() (events.Position, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, events.ErrClosed
	}
	return s.durable, s.changed, nil
}

func (s *Store) Head(ctx context.Context) (events.Position, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	durable, _, err := s.watch()
	return durable, err
}

func (s *Store) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, limit int) ([]events.RecordedEvent, error) {
	if err := events.ValidateRead(stream, limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.readers.RLock()
	defer s.readers.RUnlock()
	durable, _, err := s.watch()
	if err != nil {
		return nil, err
	}
	lower, upper := streamBounds(stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Close()
	if !it.First() || binary.BigEndian.Uint64(it.Value()) > uint64(durable) {
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		return nil, fmt.Errorf("%s: %w", stream, events.ErrStreamNotFound)
	}

	var ok bool
	step := it.Next
	switch {
	case dir == events.Forwards:
		ok = it.SeekGE(streamKey(stream, from))
	case from >= math.MaxUint64-1:
		ok, step = it.Last(), it.Prev
	default:
		ok, step = it.SeekLT(streamKey(stream, from+1)), it.Prev
	}
	var out []events.RecordedEvent
	for ; ok && len(out) < limit; ok = step() {
		pos := events.Position(binary.BigEndian.Uint64(it.Value()))
		if pos > durable {
			if dir == events.Forwards {
				break // later revisions are later positions
			}
			continue
		}
		e, err := s.get(pos)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	return out, nil
}

func (s *Store) get(pos events.Position) (events.RecordedEvent, error) {
	v, closer, err := s.db.Get(globalKey(pos))
	if err != nil {
		return events.RecordedEvent{}, fmt.Errorf("position %d: %w", pos, err)
	}
	defer closer.Close()
	return decodeRecord(pos, v)
}

func (s *Store) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter, handle func(events.Batch) error) error {
	if err := filter.Validate(); err != nil {
		return err
	}
	next, caughtUp, skipped := from+1, false, 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		durable, changed, err := s.watch()
		if err != nil {
			return err
		}
		if next <= durable {
			batch, after, n, err := s.scan(next, durable, filter, scanLimit-skipped)
			if err != nil {
				return err
			}
			next, skipped = after, skipped+n
			// Once live, progress over skipped events is reported at the durable end too, so a
			// narrow subscriber's checkpoint reaches the head (callers wait for positions).
			if len(batch) > 0 || skipped >= scanLimit || caughtUp && after > durable && skipped > 0 {
				skipped = 0
				if err := handle(events.Batch{Events: batch, Checkpoint: next - 1}); err != nil {
					return err
				}
			}
			continue
		}
		if !caughtUp {
			caughtUp, skipped = true, 0
			if err := handle(events.Batch{Checkpoint: next - 1, CaughtUp: true}); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// scan reads matching events from next up to durable, at most subscribeBatch of them (or
// subscribeBatchBytes) and skipping at most maxSkip. It returns them, the position to continue
// from and how many it skipped.
func (s *Store) scan(next, durable events.Position, filter events.Filter, maxSkip int) ([]events.RecordedEvent, events.Position, int, error) {
	s.readers.RLock()
	defer s.readers.RUnlock()
	if _, _, err := s.watch(); err != nil {
		return nil, next, 0, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: globalKey(next), UpperBound: globalKey(durable + 1)})
	if err != nil {
		return nil, next, 0, fmt.Errorf("subscribe: %w", err)
	}
	defer it.Close()
	batch := make([]events.RecordedEvent, 0, min(subscribeBatch, int(durable-next)+1))
	size, skipped := 0, 0
	for ok := it.First(); ok && len(batch) < subscribeBatch && size < subscribeBatchBytes && skipped < maxSkip; ok = it.Next() {
		pos := events.Position(binary.BigEndian.Uint64(it.Key()[1:]))
		stream, typ, rest, err := recordHeader(it.Value())
		if err != nil {
			return nil, next, skipped, fmt.Errorf("subscribe: position %d: %w", pos, err)
		}
		next = pos + 1
		if !filter.Match(stream, typ) {
			skipped++
			continue
		}
		e, err := decodeRest(pos, stream, typ, rest)
		if err != nil {
			return nil, next, skipped, fmt.Errorf("subscribe: %w", err)
		}
		batch = append(batch, e)
		size += len(e.Data) + len(e.Metadata)
	}
	if err := it.Error(); err != nil {
		return nil, next, skipped, fmt.Errorf("subscribe: %w", err)
	}
	return batch, next, skipped, nil
}

// Close stops accepting appends, lets the round being committed finish, answers queued
// appends with ErrClosed, ends subscriptions and closes Pebble.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.changed)
	s.mu.Unlock()

	close(s.quit)
	<-s.done
	s.readers.Lock()
	defer s.readers.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("event store: close: %w", err)
	}
	return nil
}
