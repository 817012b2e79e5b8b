package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/polyproto-chat/server/events"
)

const (
	// maxBatch bounds one handle call; a batch is what the subscription had already buffered.
	maxBatch = 512
	// pumpBuffer is how many subscription messages may wait for the handler.
	pumpBuffer = 1024
	// searchWindow and checkpointMultiplier are the filter options of every subscription (the
	// client's MaxSearchWindow and CheckpointInterval). The server looks at up to searchWindow
	// records per catch-up read, and sends a checkpoint after every searchWindow*checkpointMultiplier
	// records it looked at, matching or not: in catch-up after the read that crosses the interval,
	// live at the record that completes it. 32 is the client's default window; the client's default
	// multiplier (1) would make the server report every 32 records, which floods a broad
	// subscription with checkpoints; 4096 keeps a narrow one from rescanning much after a restart.
	searchWindow         = 32
	checkpointMultiplier = 128
)

// logPos is a KurrentDB $all position, ordered by commit then prepare position like the server does.
type logPos struct{ commit, prepare uint64 }

func (a logPos) before(b logPos) bool {
	return a.commit < b.commit || a.commit == b.commit && a.prepare < b.prepare
}

// checkpointOf maps a position up to which the server says it has processed $all (a checkpoint)
// to an events.Position P such that every event at or before P was processed. An event written
// over gRPC is at (p, p), so a checkpoint (c, q) with q >= c covers the event at c. One with q < c
// does not, by the server's order: the server sends such checkpoints at the start of a catch-up
// read, (c, 0), and although it has looked at the record at c by then, we do not rely on it and
// say c-1. Resuming from c-1 at worst hands over the event at c again.
func checkpointOf(p logPos) (events.Position, bool) {
	if p.commit == math.MaxUint64 { // "no position"
		return 0, false
	}
	if p.prepare < p.commit {
		return events.Position(p.commit - 1), true
	}
	return events.Position(p.commit), true
}

// SubscribeAll follows $all from (after) position from; see the package documentation for the
// filter mapping, for how the CaughtUp batch is found and where checkpoints come from.
func (s *Store) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter, handle func(events.Batch) error) error {
	if err := filter.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.current(); err != nil {
		return err
	}
	// The head is read before subscribing: everything stored "when it started" is at or before it.
	last, empty, err := s.allHead(ctx)
	if err != nil {
		return err
	}
	start := logPos{uint64(from), uint64(from)}
	caughtUp := empty || !start.before(last)

	opts := kurrentdb.SubscribeToAllOptions{
		From:               kurrentdb.Start{},
		Filter:             subscriptionFilter(filter),
		MaxSearchWindow:    searchWindow,
		CheckpointInterval: checkpointMultiplier,
	}
	if from > 0 {
		opts.From = kurrentdb.Position{Commit: uint64(from), Prepare: uint64(from)}
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sub *kurrentdb.Subscription
	err = s.call(func(c *kurrentdb.Client) error {
		var err error
		sub, err = c.SubscribeToAll(subCtx, opts)
		return err
	})
	if err != nil {
		return s.subscriptionEnded(ctx, err)
	}

	// One goroutine blocks in Recv; the loop below can then watch ctx and batch what is buffered.
	msgs := make(chan *kurrentdb.SubscriptionEvent, pumpBuffer)
	stop, pumped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pumped)
		for {
			m := sub.Recv()
			select {
			case msgs <- m:
			case <-stop:
				return
			}
			if m.SubscriptionDropped != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		_ = sub.Close()
		<-pumped
	}()

	// cp: every event at or before it has been handed over or skipped (by the server's filter or
	// ours); it never decreases. reported is the Checkpoint of the last batch.
	cp, reported := from, from
	send := func(b events.Batch) error {
		b.Checkpoint, reported = cp, cp
		return handle(b)
	}
	advance := func(p logPos) {
		if c, ok := checkpointOf(p); ok {
			cp = max(cp, c)
		}
	}

	if caughtUp {
		if err := send(events.Batch{CaughtUp: true}); err != nil {
			return err
		}
	}
	var next *kurrentdb.SubscriptionEvent // a message taken out of msgs that ended a batch
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := next
		next = nil
		if m == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case m = <-msgs:
			}
		}
		reached := false // this message shows that everything up to last has been handed over
		passed := false  // this message may have moved cp over events the filter skipped
		switch {
		case m.EventAppeared != nil:
			var batch []events.RecordedEvent
			for {
				e := m.EventAppeared.OriginalEvent()
				if e != nil {
					if !strings.HasPrefix(e.StreamID, "$") {
						batch = append(batch, recorded(e))
					}
					// An event we drop ('$' stream) is passed over all the same.
					if e.Position.Commit != math.MaxUint64 {
						cp = max(cp, events.Position(e.Position.Commit))
					}
					if !caughtUp && !(logPos{e.Position.Commit, e.Position.Prepare}).before(last) {
						reached = true
						break // end the batch here so the CaughtUp batch follows right after
					}
				}
				if len(batch) >= maxBatch {
					break
				}
				select {
				case m = <-msgs:
				default:
					m = nil
				}
				if m == nil {
					break
				}
				if m.EventAppeared == nil {
					next = m
					break
				}
			}
			// Without events (only '$' streams) the move of cp waits for the next batch.
			if len(batch) > 0 {
				if err := send(events.Batch{Events: batch}); err != nil {
					return err
				}
			}
		case m.CheckPointReached != nil:
			p := logPos{m.CheckPointReached.Commit, m.CheckPointReached.Prepare}
			if _, ok := checkpointOf(p); ok {
				reached = !p.before(last)
				advance(p)
				passed = true
			}
		case m.CaughtUp != nil:
			reached = true
			if p := m.CaughtUp.Position; p != nil {
				advance(logPos{p.Commit, p.Prepare})
				passed = true
			}
		case m.SubscriptionDropped != nil:
			return s.subscriptionEnded(ctx, m.SubscriptionDropped.Error)
		case m.FellBehind != nil:
		default:
			// The client returns a message with no field set for a CaughtUp or FellBehind
			// without timestamp (subscriptions.go, Subscription.Recv). Before we are caught up
			// it can only be CaughtUp: a subscription falls behind only after it was live.
			reached = true
		}
		switch {
		case reached && !caughtUp:
			// The server has handed over everything up to its own end of $all, which is at or
			// after the head we read before subscribing (see doc.go).
			caughtUp = true
			if !empty {
				cp = max(cp, events.Position(last.commit))
			}
			if err := send(events.Batch{CaughtUp: true}); err != nil {
				return err
			}
		case passed && cp > reported:
			// A checkpoint (or a repeated CaughtUp) moved cp over events the filter skipped.
			if err := send(events.Batch{}); err != nil {
				return err
			}
		}
	}
}

// subscriptionEnded maps the end of a subscription that neither we nor the handler chose.
func (s *Store) subscriptionEnded(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if s.isClosed() {
		return fmt.Errorf("kurrentdb: subscription to $all: %w", events.ErrClosed)
	}
	if err == nil {
		err = errors.New("no reason given")
	}
	return fmt.Errorf("kurrentdb: subscription to $all dropped: %w", err)
}

// Head is the commit position of the last record of $all (system records included: any position
// at or after every acknowledged append will do).
func (s *Store) Head(ctx context.Context) (events.Position, error) {
	last, empty, err := s.allHead(ctx)
	if err != nil || empty {
		return 0, err
	}
	return events.Position(last.commit), nil
}

// allHead returns the position of the last record in $all (of any stream, system ones included);
// empty is true when $all has none.
func (s *Store) allHead(ctx context.Context) (last logPos, empty bool, err error) {
	empty = true
	err = s.call(func(c *kurrentdb.Client) error {
		empty = true
		rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1)
		if err != nil {
			return err
		}
		defer rs.Close()
		for {
			ev, err := recvRead(rs)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if e := ev.OriginalEvent(); e != nil {
				last, empty = logPos{e.Position.Commit, e.Position.Prepare}, false
			}
		}
	})
	if err != nil {
		return logPos{}, true, s.fail(ctx, err, "subscription to $all: read the head of $all")
	}
	return last, empty, nil
}

// subscriptionFilter maps our filter to the server's. KurrentDB filters on one property at a time,
// like events.Filter. Without a filter we still exclude system events (types starting with '$');
// events of '$'-streams that pass a filter are dropped by SubscribeAll itself.
func subscriptionFilter(f events.Filter) *kurrentdb.SubscriptionFilter {
	switch {
	case len(f.StreamPrefixes) > 0:
		return &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: f.StreamPrefixes}
	case len(f.EventTypes) > 0:
		// Exact type names: the server's event-type prefixes would also match longer names.
		quoted := make([]string, len(f.EventTypes))
		for i, t := range f.EventTypes {
			quoted[i] = regexp.QuoteMeta(t)
		}
		return &kurrentdb.SubscriptionFilter{Type: kurrentdb.EventFilterType, Regex: "^(?:" + strings.Join(quoted, "|") + ")$"}
	}
	return kurrentdb.ExcludeSystemEventsFilter()
}
