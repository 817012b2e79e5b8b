package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/polyproto-chat/server/events"
)

var (
	errCaughtUp         = errors.New("caught up")          // ends a subscription that only had to catch up
	errRebuildRequested = errors.New("rebuild requested")  // ends a subscription to start again from 0
	errSubscriptionEnd  = errors.New("subscription ended") // SubscribeAll returned nil, which it should not
)

// worker drives one projection. The fields after own belong to whoever holds own (Run's goroutine
// for that projection, or a Rebuild running in its caller), and to that holder's subscription
// goroutine while it runs; the holder waits for it before touching them again.
type worker struct {
	p       Projection
	name    string
	version uint64
	filter  events.Filter
	src     subscriber
	db      *DB
	log     *slog.Logger
	m       projectionMetrics
	minWait time.Duration
	maxWait time.Duration
	after   func(time.Duration) <-chan time.Time
	now     func() time.Time

	own      chan struct{}   // capacity 1: holding it is the right to write this projection
	requests chan chan error // rebuild requests to Run's goroutine; the reply comes once caught up

	pos           uint64 // checkpoint
	wipeNeeded    bool
	untilCaughtUp bool // a Rebuild in the caller's goroutine: stop at the caught-up signal
	announced     bool // "caught up" logged since the last (re)start
	failures      int
	lastErr       error
	waiters       []chan error
	writer        Writer
	cpKey, cpBuf  []byte

	mu       sync.Mutex // guards st and advanced, read from any goroutine
	st       Status
	advanced chan struct{} // closed and replaced whenever st.Position moves
}

func newWorker(cfg *Config, p Projection, name string, filter events.Filter, m projectionMetrics) *worker {
	w := &worker{
		p: p, name: name, version: versionOf(p), filter: filter,
		src: cfg.Events, db: cfg.DB, m: m,
		log:     cfg.Logger.With("projection", name),
		minWait: cfg.MinBackoff, maxWait: cfg.MaxBackoff, after: cfg.After, now: cfg.Now,
		own:      make(chan struct{}, 1),
		requests: make(chan chan error),
		writer:   Writer{Reader: Reader{db: cfg.DB, prefix: dataPrefix(name)}},
		cpKey:    checkpointKey(name),
	}
	w.st = Status{Name: name, Version: w.version}
	return w
}

// run is Run's goroutine for this projection.
func (w *worker) run(ctx context.Context) {
	select {
	case w.own <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-w.own }()
	// Caught up means caught up by this Run's subscription, not by an earlier one.
	w.announced = false
	w.m.caughtUp.Set(0)
	w.update(func(s *Status) { s.CaughtUp = false })
	err := w.loop(ctx, w.requests)
	for _, c := range w.waiters {
		c <- fmt.Errorf("rebuild %s: runner stopped: %w", w.name, err)
	}
	w.waiters = nil
}

// rebuildHere is a Rebuild done by the caller, which holds own.
func (w *worker) rebuildHere(ctx context.Context) error {
	w.startRebuild()
	w.untilCaughtUp, w.lastErr = true, nil
	defer func() { w.untilCaughtUp = false }()
	if err := w.loop(ctx, nil); err != nil {
		return fmt.Errorf("rebuild %s: %w", w.name, errors.Join(err, w.lastErr))
	}
	return nil
}

// loop runs subscriptions until ctx ends (or, when untilCaughtUp, until caught up), waiting a
// backoff after each failure. requests is nil when there is no Run to take rebuild requests.
func (w *worker) loop(ctx context.Context, requests <-chan chan error) error {
	for {
		err := w.session(ctx, requests)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case errors.Is(err, errCaughtUp):
			return nil
		case errors.Is(err, errRebuildRequested):
			continue
		case err == nil:
			err = errSubscriptionEnd
		}
		wait := w.failed(err)
		select {
		case <-w.after(wait):
		case reply := <-requests:
			w.queueRebuild(reply)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// session prepares the checkpoint and follows the store from it until something stops it.
func (w *worker) session(ctx context.Context, requests <-chan chan error) error {
	if err := w.prepare(); err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from := events.Position(w.pos)
	done := make(chan error, 1)
	go func() { done <- w.src.SubscribeAll(sctx, from, w.filter, w.handle) }()
	select {
	case err := <-done:
		return err
	case reply := <-requests:
		cancel()
		<-done // from here on the subscription no longer touches the worker
		w.queueRebuild(reply)
		return errRebuildRequested
	}
}

// prepare loads the checkpoint and wipes the read model if a rebuild is due. A wipe that fails
// stays due, so the retry does it again before applying anything.
func (w *worker) prepare() error {
	if !w.wipeNeeded {
		c, ok, err := w.db.readCheckpoint(w.name)
		if err != nil {
			return err
		}
		if ok && c.Version != w.version {
			w.log.Info("read-model version changed, rebuilding from position 0",
				"stored_version", c.Version, "version", w.version)
			w.startRebuild()
		} else {
			w.pos = c.Position
		}
	}
	if w.wipeNeeded {
		if err := w.db.wipe(w.name); err != nil {
			return err
		}
		w.log.Info("read model dropped, applying from position 0")
		w.wipeNeeded, w.pos = false, 0
	}
	w.m.position.Set(float64(w.pos))
	w.update(func(s *Status) { s.Position = events.Position(w.pos) })
	return nil
}

func (w *worker) queueRebuild(reply chan error) {
	w.waiters = append(w.waiters, reply)
	w.startRebuild()
}

func (w *worker) startRebuild() {
	w.wipeNeeded, w.announced = true, false
	w.m.caughtUp.Set(0)
	w.update(func(s *Status) { s.CaughtUp, s.Rebuilding = false, true })
}

// handle is the subscription's callback.
func (w *worker) handle(b events.Batch) error {
	// Delivery is at least once; the checkpoint makes application exactly once.
	batch := b.Events
	i := 0
	for i < len(batch) && uint64(batch[i].Position) <= w.pos {
		i++
	}
	batch = batch[i:]
	// An empty batch still moves the checkpoint past events the filter skipped, so a narrow
	// projection over a long log does not rescan it after a restart.
	if len(batch) > 0 || uint64(b.Checkpoint) > w.pos {
		n, err := w.commit(batch, max(events.Position(w.pos), b.Checkpoint))
		if err != nil && n > 0 {
			// Keep what precedes the failing event, so that the checkpoint (in Status too) stops
			// right before it and the retries start with it.
			if _, err2 := w.commit(batch[:n], batch[n-1].Position); err2 != nil {
				return errors.Join(err, err2)
			}
		}
		if err != nil {
			return err
		}
	}
	if b.CaughtUp {
		return w.caughtUp()
	}
	return nil
}

// commit applies batch and writes the checkpoint through in one Pebble batch. n is the index of
// the event whose Apply failed (or len(batch) on success, 0 if the commit itself failed).
//
// The commit does not wait for an fsync (pebble.NoSync): the read model can always be rebuilt
// from the durable event store, and its checkpoint is in the same batch as its rows, so a crash
// can only lose a tail of batches, rows and checkpoint together, which is then applied again.
func (w *worker) commit(batch []events.RecordedEvent, through events.Position) (n int, err error) {
	w.db.mu.RLock()
	defer w.db.mu.RUnlock()
	if w.db.closed {
		return 0, ErrClosed
	}
	b := w.db.pdb.NewIndexedBatch()
	defer b.Close()
	w.writer.batch = b
	defer func() { w.writer.batch = nil }()
	for i := range batch {
		if err := w.apply(&batch[i]); err != nil {
			return i, err
		}
	}
	w.cpBuf = checkpoint{Position: uint64(through), Version: w.version}.encode(w.cpBuf[:0])
	if err := b.Set(w.cpKey, w.cpBuf, nil); err != nil {
		return 0, fmt.Errorf("projection %s: write checkpoint: %w", w.name, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("projection %s: commit up to position %d: %w", w.name, through, err)
	}

	w.pos, w.failures = uint64(through), 0
	w.m.applied.Add(float64(len(batch)))
	w.m.position.Set(float64(w.pos))
	if len(batch) > 0 {
		if meta, err := batch[len(batch)-1].Meta(); err == nil && meta.GetRecordedAt() != nil {
			w.m.lag.Set(max(0, w.now().Sub(meta.GetRecordedAt().AsTime()).Seconds()))
		}
	}
	w.update(func(s *Status) {
		s.Position, s.Failures = through, 0
		s.Applied += uint64(len(batch))
	})
	return len(batch), nil
}

// apply calls the projection, turning a panic into an error: a projection bug hit by one event
// must show up as that event failing, not take the server down with every other read model.
func (w *worker) apply(e *events.RecordedEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("projection panicked", "position", e.Position, "stream", e.Stream,
				"revision", e.Revision, "panic", r, "stack", string(debug.Stack()))
			err = &ApplyError{w.name, e.Stream, e.Revision, e.Position, e.Type, fmt.Errorf("panic: %v", r)}
		}
	}()
	if err := w.p.Apply(&w.writer, *e); err != nil {
		return &ApplyError{w.name, e.Stream, e.Revision, e.Position, e.Type, err}
	}
	return nil
}

func (w *worker) caughtUp() error {
	w.failures = 0
	w.m.caughtUp.Set(1)
	w.m.lag.Set(0)
	w.update(func(s *Status) { s.CaughtUp, s.Rebuilding, s.Failures = true, false, 0 })
	if !w.announced {
		w.announced = true
		w.log.Info("projection caught up", "position", w.pos)
	}
	for _, c := range w.waiters {
		c <- nil
	}
	w.waiters = nil
	if w.untilCaughtUp {
		return errCaughtUp
	}
	return nil
}

// failed records a failure and returns how long to wait before the next attempt.
func (w *worker) failed(err error) time.Duration {
	w.failures++
	w.lastErr = err
	wait := backoff(w.failures, w.minWait, w.maxWait)
	w.m.errors.Inc()
	now := w.now()
	w.update(func(s *Status) { s.Failures, s.LastError, s.LastErrorAt = w.failures, err, now })
	w.log.Warn("projection failed, will retry", "position", w.pos, "attempt", w.failures,
		"retry_in", wait, "error", err)
	return wait
}

// backoff is lo·2^(attempt-1) capped at hi, then jittered to between half and all of it: the
// half kept fixed stops a retry storm from collapsing to immediate retries.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if shift := attempt - 1; shift < 32 && lo<<shift < hi && lo<<shift > 0 {
		d = lo << shift
	}
	return d/2 + rand.N(d/2+1)
}

func (w *worker) update(f func(*Status)) {
	w.mu.Lock()
	pos := w.st.Position
	f(&w.st)
	if w.st.Position != pos {
		if w.advanced != nil {
			close(w.advanced)
		}
		w.advanced = make(chan struct{})
	}
	w.mu.Unlock()
}

// reached reports whether the checkpoint is at or past pos, and else a channel closed when it
// next moves.
func (w *worker) reached(pos events.Position) (bool, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.st.Position >= pos {
		return true, nil
	}
	if w.advanced == nil {
		w.advanced = make(chan struct{})
	}
	return false, w.advanced
}

func (w *worker) status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}
