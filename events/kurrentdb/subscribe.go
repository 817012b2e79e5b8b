package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
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
)

// logPos is a KurrentDB $all position, ordered by commit then prepare position like the server does.
type logPos struct{ commit, prepare uint64 }

func (a logPos) before(b logPos) bool {
	return a.commit < b.commit || a.commit == b.commit && a.prepare < b.prepare
}

// SubscribeAll follows $all from (after) position from; see the package documentation for the
// filter mapping and for how the caught-up empty batch is found.
func (s *Store) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter, handle func([]events.RecordedEvent) error) error {
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

	opts := kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}, Filter: subscriptionFilter(filter)}
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

	if caughtUp {
		if err := handle(nil); err != nil {
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
		switch {
		case m.EventAppeared != nil:
			var batch []events.RecordedEvent
			for {
				e := m.EventAppeared.OriginalEvent()
				if e != nil {
					if !strings.HasPrefix(e.StreamID, "$") {
						batch = append(batch, recorded(e))
					}
					if !caughtUp && !(logPos{e.Position.Commit, e.Position.Prepare}).before(last) {
						reached = true
						break // end the batch here so the empty batch follows right after
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
			if len(batch) > 0 {
				if err := handle(batch); err != nil {
					return err
				}
			}
		case m.CheckPointReached != nil:
			reached = !(logPos{m.CheckPointReached.Commit, m.CheckPointReached.Prepare}).before(last)
		case m.CaughtUp != nil:
			reached = true
		case m.SubscriptionDropped != nil:
			return s.subscriptionEnded(ctx, m.SubscriptionDropped.Error)
		case m.FellBehind != nil:
		default:
			// The client returns a message with no field set for a CaughtUp or FellBehind
			// without timestamp (subscriptions.go, Subscription.Recv). Before we are caught up
			// it can only be CaughtUp: a subscription falls behind only after it was live.
			reached = true
		}
		if reached && !caughtUp {
			caughtUp = true
			if err := handle(nil); err != nil {
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
