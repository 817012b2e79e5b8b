// Package storetest is the one behaviour suite every events.Store implementation passes.
// Each store's own test file calls Run with a Harness; nothing here is store-specific.
//
// Stream names carry a random per-run category, so the suite can also run against a
// long-lived shared server (a real KurrentDB) without seeing its own earlier runs.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/polyproto-chat/server/events"
)

// Harness tells the suite how to get stores of one implementation.
type Harness struct {
	// New prepares a fresh backing location (a directory, a server) and returns a function
	// that opens a store on it. Opening again after Close must show everything written
	// before, unless Volatile. The location may hold other data (a shared server).
	New func(t *testing.T) (open func() (events.Store, error))
	// Volatile stores keep nothing across Close (the memory store); the reopen case skips.
	Volatile bool
	// ContiguousPositions: global positions of a fresh location are exactly 1, 2, 3, ...
	ContiguousPositions bool
	// ProgressAtHead: a live subscription whose filter skips everything new still reports a
	// checkpoint at the head at once, not only after a window of skipped events. Callers that
	// wait for a position (the chat fan-out's lookups) rely on it; KurrentDB reports progress
	// in windows only.
	ProgressAtHead bool
}

// Run runs the whole suite, each case on a fresh location.
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"AppendAndReadForwards", testAppendAndReadForwards},
		{"ReadBackwards", testReadBackwards},
		{"StreamNotFound", testStreamNotFound},
		{"ExpectedRevision", testExpectedRevision},
		{"AtomicMultiEventAppend", testAtomicMultiEventAppend},
		{"ConcurrentWritersOneWinnerPerRevision", testConcurrentWriters},
		{"ConcurrentStreamsGlobalOrder", testConcurrentStreamsGlobalOrder},
		{"SubscribeCatchUpThenLive", testSubscribeCatchUpThenLive},
		{"SubscribeSeamUnderLoad", testSubscribeSeamUnderLoad},
		{"ResubscribeFromCheckpoint", testResubscribeFromCheckpoint},
		{"SubscribeFilters", testSubscribeFilters},
		{"SubscribeHandlerError", testSubscribeHandlerError},
		{"CheckpointPassesFilteredEvents", testCheckpointPassesFilteredEvents},
		{"CheckpointReachesHead", testCheckpointReachesHead},
		{"ContextCancellation", testContextCancellation},
		{"LargeEvents", testLargeEvents},
		{"InvalidInput", testInvalidInput},
		{"EnvelopeAndHashChain", testEnvelopeAndHashChain},
		{"Head", testHead},
		{"ReopenKeepsEverything", testReopen},
		{"ClosedStore", testClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "ReopenKeepsEverything" && h.Volatile {
				t.Skip("this store keeps nothing across Close by design")
			}
			if c.name == "CheckpointReachesHead" && !h.ProgressAtHead {
				t.Skip("this store reports progress over skipped events in windows only")
			}
			open := h.New(t)
			s, err := open()
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			f := &fixture{h: h, open: open, store: s, cat: randomCategory()}
			t.Cleanup(func() { _ = f.store.Close() })
			c.fn(t, f)
		})
	}
}

type fixture struct {
	h     Harness
	open  func() (events.Store, error)
	store events.Store
	cat   string // this run's stream category, unique per case
}

// stream names a stream of this case.
func (f *fixture) stream(id string) string { return f.cat + "-" + id }

// prefix selects every stream of this case.
func (f *fixture) prefix() events.Filter { return events.Filter{StreamPrefixes: []string{f.cat + "-"}} }

func randomCategory() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return "t" + string(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ev makes an event whose payload names what it is, so reads can be checked by content.
func ev(payload string) events.Event {
	return events.Event{Type: "test.Payload", Data: []byte(payload)}
}

func evs(prefix string, n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = ev(fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func mustAppend(t *testing.T, s events.Store, stream string, exp events.ExpectedRevision, e ...events.Event) events.AppendResult {
	t.Helper()
	res, err := s.Append(ctxT(t), stream, exp, e...)
	if err != nil {
		t.Fatalf("append %d events to %s (%s): %v", len(e), stream, exp, err)
	}
	return res
}

func mustRead(t *testing.T, s events.Store, stream string, dir events.Direction, from uint64, limit int) []events.RecordedEvent {
	t.Helper()
	out, err := s.ReadStream(ctxT(t), stream, dir, from, limit)
	if err != nil {
		t.Fatalf("read %s %s from %d limit %d: %v", stream, dir, from, limit, err)
	}
	return out
}

// checkPayloads compares the data of events with want.
func checkPayloads(t *testing.T, got []events.RecordedEvent, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), payloads(got), len(want), want)
	}
	for i := range got {
		if string(got[i].Data) != want[i] {
			t.Fatalf("event %d: got %q, want %q (all: %v)", i, got[i].Data, want[i], payloads(got))
		}
	}
}

func payloads(es []events.RecordedEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		if len(e.Data) > 40 {
			out[i] = fmt.Sprintf("<%d bytes>", len(e.Data))
		} else {
			out[i] = string(e.Data)
		}
	}
	return out
}

func names(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func testAppendAndReadForwards(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("a")
	r1 := mustAppend(t, s, a, events.NoStream{}, evs("a", 3)...)
	if r1.Revision != 2 {
		t.Fatalf("revision after 3 events = %d, want 2", r1.Revision)
	}
	r2 := mustAppend(t, s, a, events.Exact(2), ev("a3"))
	if r2.Revision != 3 || r2.Position <= r1.Position {
		t.Fatalf("second append: %+v after %+v: revision must be 3 and position grow", r2, r1)
	}
	if f.h.ContiguousPositions && (r1.Position != 3 || r2.Position != 4) {
		t.Fatalf("positions %d, %d on a fresh store, want 3, 4", r1.Position, r2.Position)
	}

	all := mustRead(t, s, a, events.Forwards, 0, 100)
	checkPayloads(t, all, "a0", "a1", "a2", "a3")
	for i, e := range all {
		if e.Stream != a || e.Revision != uint64(i) || e.Type != "test.Payload" {
			t.Fatalf("event %d: stream %q revision %d type %q", i, e.Stream, e.Revision, e.Type)
		}
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("positions not increasing: %d then %d", all[i-1].Position, e.Position)
		}
	}
	if all[3].Position != r2.Position {
		t.Fatalf("read position %d, append said %d", all[3].Position, r2.Position)
	}
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 1, 2), "a1", "a2")
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 3, 100), "a3")
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 4, 100))
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 1000, 100))
}

func testReadBackwards(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("a")
	mustAppend(t, s, a, events.NoStream{}, evs("a", 5)...)
	checkPayloads(t, mustRead(t, s, a, events.Backwards, events.End, 100), "a4", "a3", "a2", "a1", "a0")
	checkPayloads(t, mustRead(t, s, a, events.Backwards, events.End, 2), "a4", "a3")
	checkPayloads(t, mustRead(t, s, a, events.Backwards, 2, 100), "a2", "a1", "a0")
	checkPayloads(t, mustRead(t, s, a, events.Backwards, 0, 100), "a0")
	checkPayloads(t, mustRead(t, s, a, events.Backwards, 3, 1), "a3")
	// Past the end backwards starts at the last event.
	checkPayloads(t, mustRead(t, s, a, events.Backwards, 99, 2), "a4", "a3")
}

func testStreamNotFound(t *testing.T, f *fixture) {
	for _, dir := range []events.Direction{events.Forwards, events.Backwards} {
		_, err := f.store.ReadStream(ctxT(t), f.stream("missing"), dir, 0, 10)
		if !errors.Is(err, events.ErrStreamNotFound) {
			t.Fatalf("read missing stream %s: err = %v, want ErrStreamNotFound", dir, err)
		}
	}
}

func testExpectedRevision(t *testing.T, f *fixture) {
	s, a, b := f.store, f.stream("a"), f.stream("b")
	mustAppend(t, s, a, events.NoStream{}, ev("a0"))
	mustAppend(t, s, a, events.Exact(0), ev("a1"))
	mustAppend(t, s, a, events.Any{}, ev("a2"))
	mustAppend(t, s, b, events.Any{}, ev("b0"))

	conflicts := []struct {
		name     string
		stream   string
		expected events.ExpectedRevision
		actual   uint64
		exists   bool
	}{
		{"NoStream on existing", a, events.NoStream{}, 2, true},
		{"stale Exact", a, events.Exact(1), 2, true},
		{"future Exact", a, events.Exact(7), 2, true},
		{"Exact on missing", f.stream("c"), events.Exact(0), 0, false},
	}
	for _, c := range conflicts {
		_, err := s.Append(ctxT(t), c.stream, c.expected, ev("nope"))
		if !errors.Is(err, events.ErrWrongExpectedRevision) {
			t.Fatalf("%s: err = %v, want ErrWrongExpectedRevision", c.name, err)
		}
		var wr *events.WrongRevisionError
		if !errors.As(err, &wr) {
			t.Fatalf("%s: %T is not a *WrongRevisionError", c.name, err)
		}
		if wr.Exists != c.exists || (c.exists && wr.Actual != c.actual) {
			t.Fatalf("%s: error says exists=%v actual=%d, want exists=%v actual=%d", c.name, wr.Exists, wr.Actual, c.exists, c.actual)
		}
	}
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 0, 100), "a0", "a1", "a2")
	if _, err := s.ReadStream(ctxT(t), f.stream("c"), events.Forwards, 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
		t.Fatalf("a refused append created the stream: %v", err)
	}
}

func testAtomicMultiEventAppend(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("a")
	res := mustAppend(t, s, a, events.NoStream{}, evs("a", 10)...)
	got := mustRead(t, s, a, events.Forwards, 0, 100)
	checkPayloads(t, got, names("a", 0, 10)...)
	if got[9].Position != res.Position {
		t.Fatalf("last position %d, append said %d", got[9].Position, res.Position)
	}
	if f.h.ContiguousPositions {
		for i := range got {
			if got[i].Position != events.Position(i+1) {
				t.Fatalf("event %d at position %d", i, got[i].Position)
			}
		}
	}
	if _, err := s.Append(ctxT(t), a, events.Exact(3), evs("x", 5)...); !errors.Is(err, events.ErrWrongExpectedRevision) {
		t.Fatalf("conflicting batch: %v", err)
	}
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 0, 100), names("a", 0, 10)...)
}

// testConcurrentWriters: 50 writers race for each revision of one stream; exactly one wins.
func testConcurrentWriters(t *testing.T, f *fixture) {
	const writers, rounds = 50, 10
	s, a := f.store, f.stream("contended")
	for round := 0; round < rounds; round++ {
		var expected events.ExpectedRevision = events.NoStream{}
		if round > 0 {
			expected = events.Exact(uint64(round - 1))
		}
		var wins, conflicts atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				payload := fmt.Sprintf("r%d-w%d", round, w)
				_, err := s.Append(context.Background(), a, expected, ev(payload))
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(payload)
				case errors.Is(err, events.ErrWrongExpectedRevision):
					conflicts.Add(1)
				default:
					t.Errorf("round %d writer %d: %v", round, w, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("round %d: %d winners, %d conflicts; want 1 and %d", round, wins.Load(), conflicts.Load(), writers-1)
		}
		got := mustRead(t, s, a, events.Backwards, events.End, 1)
		if got[0].Revision != uint64(round) || string(got[0].Data) != winner.Load().(string) {
			t.Fatalf("round %d: head is %q@%d, winner was %q", round, got[0].Data, got[0].Revision, winner.Load())
		}
	}
	if n := len(mustRead(t, s, a, events.Forwards, 0, 1000)); n != rounds {
		t.Fatalf("stream has %d events, want %d", n, rounds)
	}
}

// testConcurrentStreamsGlobalOrder: many writers on their own streams; every acknowledged event
// is stored once, each stream in its order, and the global order agrees with every stream's order.
func testConcurrentStreamsGlobalOrder(t *testing.T, f *fixture) {
	const writers, perWriter = 16, 25
	s := f.store
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := f.stream(fmt.Sprintf("w%d", w))
			for i := 0; i < perWriter; i++ {
				var exp events.ExpectedRevision = events.Exact(uint64(i - 1))
				if i == 0 {
					exp = events.NoStream{}
				}
				if _, err := s.Append(context.Background(), stream, exp, ev(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Errorf("writer %d event %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got := collect(t, s, 0, f.prefix(), writers*perWriter)
	next := map[string]int{}
	for i, e := range got {
		if i > 0 && e.Position <= got[i-1].Position {
			t.Fatalf("global order broken at %d: %d after %d", i, e.Position, got[i-1].Position)
		}
		if int(e.Revision) != next[e.Stream] {
			t.Fatalf("%s: revision %d delivered, expected %d", e.Stream, e.Revision, next[e.Stream])
		}
		next[e.Stream]++
	}
	if f.h.ContiguousPositions && got[len(got)-1].Position != events.Position(len(got)) {
		t.Fatalf("last position %d after %d events: gap", got[len(got)-1].Position, len(got))
	}
}

// subscriber runs SubscribeAll in the background and records everything it is handed.
type subscriber struct {
	mu         sync.Mutex
	got        []events.RecordedEvent
	caughtUp   int // number of batches with CaughtUp set
	checkpoint events.Position
	more       chan struct{}
	done       chan error
	cancel     context.CancelFunc
}

func subscribe(t *testing.T, s events.Store, from events.Position, filter events.Filter) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := &subscriber{more: make(chan struct{}, 1), done: make(chan error, 1), cancel: cancel}
	go func() {
		sub.done <- s.SubscribeAll(ctx, from, filter, func(b events.Batch) error {
			sub.mu.Lock()
			// The Batch contract, checked on every delivery.
			switch {
			case b.CaughtUp && len(b.Events) > 0:
				t.Errorf("a CaughtUp batch carries %d events", len(b.Events))
			case b.CaughtUp && sub.caughtUp > 0:
				t.Errorf("CaughtUp set on a second batch")
			case b.Checkpoint < sub.checkpoint:
				t.Errorf("checkpoint went back from %d to %d", sub.checkpoint, b.Checkpoint)
			case len(b.Events) > 0 && b.Checkpoint < b.Events[len(b.Events)-1].Position:
				t.Errorf("checkpoint %d is before the batch's last event %d", b.Checkpoint, b.Events[len(b.Events)-1].Position)
			case len(b.Events) > 0 && b.Events[0].Position <= max(sub.checkpoint, from):
				t.Errorf("event at %d delivered again (checkpoint %d, from %d)", b.Events[0].Position, sub.checkpoint, from)
			}
			if b.CaughtUp {
				sub.caughtUp++
			}
			sub.checkpoint = b.Checkpoint
			sub.got = append(sub.got, b.Events...)
			sub.mu.Unlock()
			select {
			case sub.more <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	t.Cleanup(func() { sub.stop(t) })
	return sub
}

// waitFor waits until the subscriber holds n events and, if caughtUp, has seen the CaughtUp batch.
func (sub *subscriber) waitFor(t *testing.T, n int, caughtUp bool) []events.RecordedEvent {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		sub.mu.Lock()
		got, cu := append([]events.RecordedEvent(nil), sub.got...), sub.caughtUp
		sub.mu.Unlock()
		if len(got) > n {
			t.Fatalf("subscriber got %d events, want %d: %v", len(got), n, payloads(got))
		}
		if len(got) == n && (!caughtUp || cu > 0) {
			return got
		}
		select {
		case <-sub.more:
		case err := <-sub.done:
			t.Fatalf("subscription ended after %d of %d events: %v", len(got), n, err)
		case <-deadline:
			t.Fatalf("timed out with %d of %d events (caught up: %d)", len(got), n, cu)
		}
	}
}

func (sub *subscriber) stop(t *testing.T) error {
	sub.cancel()
	select {
	case err := <-sub.done:
		sub.done <- err // keep it for a second stop
		return err
	case <-time.After(10 * time.Second):
		t.Errorf("SubscribeAll did not return 10s after its context was cancelled")
		return nil
	}
}

// collect subscribes, waits for n events and stops.
func collect(t *testing.T, s events.Store, from events.Position, filter events.Filter, n int) []events.RecordedEvent {
	t.Helper()
	sub := subscribe(t, s, from, filter)
	got := sub.waitFor(t, n, true)
	sub.stop(t)
	return got
}

func testSubscribeCatchUpThenLive(t *testing.T, f *fixture) {
	s := f.store
	for i := 0; i < 10; i++ {
		mustAppend(t, s, f.stream(fmt.Sprint(i%3)), events.Any{}, ev(fmt.Sprint("old", i)))
	}
	sub := subscribe(t, s, 0, f.prefix())
	checkPayloads(t, sub.waitFor(t, 10, true), names("old", 0, 10)...)
	for i := 0; i < 10; i++ {
		mustAppend(t, s, f.stream(fmt.Sprint(i%3)), events.Any{}, ev(fmt.Sprint("new", i)))
	}
	got := sub.waitFor(t, 20, true)
	checkPayloads(t, got, append(names("old", 0, 10), names("new", 0, 10)...)...)
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.caughtUp != 1 {
		t.Fatalf("CaughtUp signalled %d times, want once", sub.caughtUp)
	}
}

// testSubscribeSeamUnderLoad starts a subscription while writers are appending, so the switch from
// catch-up to live happens under load; the subscriber must see every event exactly once, in order.
func testSubscribeSeamUnderLoad(t *testing.T, f *fixture) {
	const writers, perWriter = 4, 150
	s := f.store
	var wg sync.WaitGroup
	started := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if i == perWriter/3 && w == 0 {
					close(started)
				}
				if _, err := s.Append(context.Background(), f.stream(fmt.Sprint("w", w)), events.Any{}, ev(fmt.Sprintf("w%d-%d", w, i))); err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	<-started
	sub := subscribe(t, s, 0, f.prefix())
	wg.Wait()
	got := sub.waitFor(t, writers*perWriter, true)
	seen := map[string]bool{}
	for i, e := range got {
		if seen[string(e.Data)] {
			t.Fatalf("duplicate %q at %d", e.Data, i)
		}
		seen[string(e.Data)] = true
		if i > 0 && e.Position <= got[i-1].Position {
			t.Fatalf("order broken at %d", i)
		}
	}
	if f.h.ContiguousPositions {
		for i := 1; i < len(got); i++ {
			if got[i].Position != got[i-1].Position+1 {
				t.Fatalf("gap between positions %d and %d", got[i-1].Position, got[i].Position)
			}
		}
	}
}

func testResubscribeFromCheckpoint(t *testing.T, f *fixture) {
	s := f.store
	for i := 0; i < 30; i++ {
		mustAppend(t, s, f.stream(fmt.Sprint(i%4)), events.Any{}, ev(fmt.Sprint("e", i)))
	}
	first := collect(t, s, 0, f.prefix(), 30)
	checkpoint := first[11].Position
	rest := collect(t, s, checkpoint, f.prefix(), 18)
	checkPayloads(t, rest, names("e", 12, 30)...)
	for i := range rest {
		if rest[i].Position != first[12+i].Position {
			t.Fatalf("resubscribed event %d at position %d, first time %d", i, rest[i].Position, first[12+i].Position)
		}
	}
	// From the last position there is nothing, but caught-up is still signalled.
	collect(t, s, first[29].Position, f.prefix(), 0)
}

func testSubscribeFilters(t *testing.T, f *fixture) {
	s := f.store
	x, y := f.cat+"x", f.cat+"y"
	mustAppend(t, s, x+"-1", events.Any{}, ev("x1"))
	mustAppend(t, s, y+"-1", events.Any{}, events.Event{Type: "test.Other" + f.cat, Data: []byte("y1")})
	mustAppend(t, s, x+"-2", events.Any{}, events.Event{Type: "test.Other" + f.cat, Data: []byte("x2")})
	mustAppend(t, s, y+"-2", events.Any{}, ev("y2"))

	checkPayloads(t, collect(t, s, 0, events.Filter{StreamPrefixes: []string{x + "-"}}, 2), "x1", "x2")
	checkPayloads(t, collect(t, s, 0, events.Filter{StreamPrefixes: []string{x + "-", y + "-2"}}, 3), "x1", "x2", "y2")
	checkPayloads(t, collect(t, s, 0, events.Filter{EventTypes: []string{"test.Other" + f.cat}}, 2), "y1", "x2")
	collect(t, s, 0, events.Filter{StreamPrefixes: []string{f.cat + "nothing-"}}, 0)

	// The zero filter sees everything; this case's events appear among any others in order.
	var mine []events.RecordedEvent
	sub := subscribe(t, s, 0, events.Filter{})
	deadline := time.After(30 * time.Second)
	for len(mine) < 4 {
		select {
		case <-sub.more:
		case <-deadline:
			t.Fatalf("zero filter: got %v", payloads(mine))
		}
		sub.mu.Lock()
		mine = mine[:0]
		for _, e := range sub.got {
			if len(e.Stream) > len(f.cat) && e.Stream[:len(f.cat)] == f.cat {
				mine = append(mine, e)
			}
		}
		sub.mu.Unlock()
	}
	checkPayloads(t, mine, "x1", "y1", "x2", "y2")

	err := s.SubscribeAll(ctxT(t), 0, events.Filter{StreamPrefixes: []string{"a"}, EventTypes: []string{"b"}}, func(events.Batch) error { return nil })
	if !errors.Is(err, events.ErrInvalidFilter) {
		t.Fatalf("filter with both fields: %v, want ErrInvalidFilter", err)
	}
}

// testCheckpointPassesFilteredEvents: a subscriber whose filter matches almost nothing still
// learns how far the store has looked, during catch-up and live, so it need not rescan the log.
func testCheckpointPassesFilteredEvents(t *testing.T, f *fixture) {
	const perAppend, appends = 100, 100 // 10,000 events the filter skips, more than any sane scan window
	s := f.store
	noise := func(round int) events.AppendResult {
		var last events.AppendResult
		for i := 0; i < appends; i++ {
			last = mustAppend(t, s, f.stream(fmt.Sprintf("noise%d.%d", round, i%10)), events.Any{}, evs("n", perAppend)...)
		}
		return last
	}
	wanted := f.cat + "-wanted"
	first := mustAppend(t, s, wanted, events.NoStream{}, ev("w0"))
	head := noise(0)

	sub := subscribe(t, s, 0, events.Filter{StreamPrefixes: []string{wanted}})
	checkPayloads(t, sub.waitFor(t, 1, true), "w0")
	sub.mu.Lock()
	cp := sub.checkpoint
	sub.mu.Unlock()
	if cp < head.Position {
		t.Fatalf("caught up at checkpoint %d, but %d events the filter skipped end at %d", cp, appends*perAppend, head.Position)
	}
	if cp < first.Position {
		t.Fatalf("checkpoint %d before the delivered event %d", cp, first.Position)
	}

	// Live: more skipped events move the checkpoint too. A store may report progress in
	// windows, so only the first half of the new span must be passed.
	before := head.Position
	head = noise(1)
	halfway := before + (head.Position-before)/2
	deadline := time.After(30 * time.Second)
	for {
		sub.mu.Lock()
		cp = sub.checkpoint
		sub.mu.Unlock()
		if cp >= halfway {
			break
		}
		select {
		case <-sub.more:
		case <-deadline:
			t.Fatalf("live checkpoint stuck at %d while skipped events reach %d", cp, head.Position)
		}
	}
	mustAppend(t, s, wanted, events.Exact(0), ev("w1"))
	checkPayloads(t, sub.waitFor(t, 2, true), "w0", "w1")
}

// testCheckpointReachesHead: once live, a few events the filter skips move the checkpoint to
// them at once (ProgressAtHead).
func testCheckpointReachesHead(t *testing.T, f *fixture) {
	s := f.store
	wanted := f.stream("wanted")
	mustAppend(t, s, wanted, events.NoStream{}, ev("w0"))
	sub := subscribe(t, s, 0, events.Filter{StreamPrefixes: []string{wanted}})
	checkPayloads(t, sub.waitFor(t, 1, true), "w0")
	head := mustAppend(t, s, f.stream("noise"), events.NoStream{}, evs("n", 3)...)
	deadline := time.After(5 * time.Second)
	for {
		sub.mu.Lock()
		cp := sub.checkpoint
		sub.mu.Unlock()
		if cp >= head.Position {
			return
		}
		select {
		case <-sub.more:
		case <-deadline:
			t.Fatalf("live checkpoint stuck at %d; three skipped events end at %d", cp, head.Position)
		}
	}
}

func testSubscribeHandlerError(t *testing.T, f *fixture) {
	mustAppend(t, f.store, f.stream("a"), events.NoStream{}, evs("a", 3)...)
	boom := errors.New("handler failed")
	err := f.store.SubscribeAll(ctxT(t), 0, f.prefix(), func(b events.Batch) error {
		if len(b.Events) > 0 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("SubscribeAll returned %v, want the handler's error", err)
	}
}

func testContextCancellation(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("a")
	mustAppend(t, s, a, events.NoStream{}, ev("a0"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, a, events.Any{}, ev("late")); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with cancelled context: %v", err)
	}
	if _, err := s.ReadStream(ctx, a, events.Forwards, 0, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("read with cancelled context: %v", err)
	}
	if err := s.SubscribeAll(ctx, 0, f.prefix(), func(events.Batch) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("subscribe with cancelled context: %v", err)
	}
	// A live subscription returns promptly when its context ends.
	sub := subscribe(t, s, 0, f.prefix())
	sub.waitFor(t, 1, true)
	if err := sub.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("live subscription ended with %v, want context.Canceled", err)
	}
	// The refused append wrote nothing.
	checkPayloads(t, mustRead(t, s, a, events.Forwards, 0, 10), "a0")
}

func testLargeEvents(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("big")
	big := bytes.Repeat([]byte("0123456789abcdef"), events.MaxDataSize/16)
	big[len(big)-1] = 'Z'
	mustAppend(t, s, a, events.NoStream{}, events.Event{Type: "test.Big", Data: big})
	got := mustRead(t, s, a, events.Forwards, 0, 1)
	if !bytes.Equal(got[0].Data, big) {
		t.Fatalf("1 MiB event came back different (%d bytes)", len(got[0].Data))
	}
	live := collect(t, s, 0, f.prefix(), 1)
	if !bytes.Equal(live[0].Data, big) {
		t.Fatalf("1 MiB event delivered different (%d bytes)", len(live[0].Data))
	}
	tooBig := append(big, 'x')
	if _, err := s.Append(ctxT(t), a, events.Any{}, events.Event{Type: "test.Big", Data: tooBig}); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("event over MaxDataSize: %v, want ErrInvalidEvent", err)
	}
}

func testInvalidInput(t *testing.T, f *fixture) {
	s := f.store
	for _, name := range []string{"", "a", "$all", "$ce-x", "nodash", "Upper-1", "1abc-x", "-x", "x-", "a b-c", "ab-c d", "ab-c/d", "ab-\x00", "ab-é",
		"ab-" + string(bytes.Repeat([]byte("x"), events.MaxStreamLength))} {
		if _, err := s.Append(ctxT(t), name, events.Any{}, ev("x")); !errors.Is(err, events.ErrInvalidStream) {
			t.Errorf("append to %q: %v, want ErrInvalidStream", name, err)
		}
		if _, err := s.ReadStream(ctxT(t), name, events.Forwards, 0, 1); !errors.Is(err, events.ErrInvalidStream) {
			t.Errorf("read %q: %v, want ErrInvalidStream", name, err)
		}
	}
	a := f.stream("a")
	for _, e := range []events.Event{
		{Type: "", Data: []byte("x")},
		{Type: "$system", Data: []byte("x")},
		{Type: "has space"},
		{Type: "test.X", ActorFID: string(bytes.Repeat([]byte("a"), 300))},
	} {
		if _, err := s.Append(ctxT(t), a, events.Any{}, e); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("append %+v: %v, want ErrInvalidEvent", e.Type, err)
		}
	}
	if _, err := s.Append(ctxT(t), a, events.Any{}); !errors.Is(err, events.ErrInvalidEvent) {
		t.Errorf("append of nothing: %v, want ErrInvalidEvent", err)
	}
	for _, limit := range []int{0, -1, events.MaxReadLimit + 1} {
		if _, err := s.ReadStream(ctxT(t), a, events.Forwards, 0, limit); err == nil {
			t.Errorf("read with limit %d succeeded", limit)
		}
	}
	if _, err := s.ReadStream(ctxT(t), a, events.Forwards, 0, 1); !errors.Is(err, events.ErrStreamNotFound) {
		t.Errorf("refused appends created %s: %v", a, err)
	}
}

func testEnvelopeAndHashChain(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("chain")
	id := uuid.New()
	first := events.Event{ID: id, Type: "test.Payload", Data: []byte("p0"), ActorFID: "alice@example.com", SessionID: "s1", CorrelationID: "c1", CausationID: "k1"}
	before := time.Now().Add(-time.Minute)
	mustAppend(t, s, a, events.NoStream{}, first)
	mustAppend(t, s, a, events.Exact(0), evs("p", 3)[1:]...)
	mustAppend(t, s, a, events.Any{}, ev("p3"))
	got := mustRead(t, s, a, events.Forwards, 0, 10)
	checkPayloads(t, got, "p0", "p1", "p2", "p3")

	m, err := got[0].Meta()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.GetEventId(), id[:]) || m.GetActorFid() != "alice@example.com" || m.GetSessionId() != "s1" ||
		m.GetCorrelationId() != "c1" || m.GetCausationId() != "k1" {
		t.Fatalf("envelope not kept: %v", m)
	}
	if at := m.GetRecordedAt().AsTime(); at.Before(before) || at.After(time.Now().Add(time.Minute)) {
		t.Fatalf("recorded_at %v is not now", at)
	}
	if !bytes.Equal(m.GetPrevHash(), make([]byte, 32)) {
		t.Fatalf("first event's prev_hash = %x, want zeros", m.GetPrevHash())
	}
	ids := map[string]bool{}
	var chain events.Chain
	for _, e := range got {
		if _, err := chain.Next(&e); err != nil {
			t.Fatal(err)
		}
		m, _ := e.Meta()
		if len(m.GetEventId()) != 16 || ids[string(m.GetEventId())] {
			t.Fatalf("event %d: id %x missing or repeated", e.Revision, m.GetEventId())
		}
		ids[string(m.GetEventId())] = true
	}
	// Tampering with a stored payload breaks the chain at the next event.
	got[1].Data = []byte("edited")
	var again events.Chain
	for i, e := range got {
		_, err := again.Next(&e)
		if (err != nil) != (i == 2) {
			t.Fatalf("tampered chain, event %d: err = %v", i, err)
		}
		if err != nil {
			break
		}
	}
}

// testHead: Head is at or after every acknowledged append, and subscribing from it delivers
// exactly what is appended afterwards.
func testHead(t *testing.T, f *fixture) {
	s := f.store
	h0, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	res := mustAppend(t, s, f.stream("a"), events.NoStream{}, evs("a", 3)...)
	h1, err := s.Head(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if h1 < res.Position || h1 <= h0 {
		t.Fatalf("head %d after an append at %d (head before: %d)", h1, res.Position, h0)
	}
	if f.h.ContiguousPositions && h1 != res.Position {
		t.Fatalf("head %d, last event at %d", h1, res.Position)
	}
	sub := subscribe(t, s, h1, f.prefix())
	sub.waitFor(t, 0, true)
	mustAppend(t, s, f.stream("a"), events.Exact(2), ev("after"))
	checkPayloads(t, sub.waitFor(t, 1, true), "after")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Head(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Head with a cancelled context: %v", err)
	}
}

func testReopen(t *testing.T, f *fixture) {
	s := f.store
	for i := 0; i < 20; i++ {
		mustAppend(t, s, f.stream(fmt.Sprint(i%3)), events.Any{}, ev(fmt.Sprint("e", i)))
	}
	before := collect(t, s, 0, f.prefix(), 20)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s2, err := f.open()
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	f.store = s2
	after := collect(t, s2, 0, f.prefix(), 20)
	for i := range before {
		if before[i].Position != after[i].Position || before[i].Revision != after[i].Revision ||
			!bytes.Equal(before[i].Data, after[i].Data) || !bytes.Equal(before[i].Metadata, after[i].Metadata) {
			t.Fatalf("event %d differs after reopen", i)
		}
	}
	// Heads survive: exact revisions, positions and the hash chain continue.
	res := mustAppend(t, s2, f.stream("0"), events.Exact(6), ev("next"))
	if res.Revision != 7 || res.Position <= before[19].Position {
		t.Fatalf("append after reopen: %+v", res)
	}
	if f.h.ContiguousPositions && res.Position != before[19].Position+1 {
		t.Fatalf("position after reopen %d, want %d", res.Position, before[19].Position+1)
	}
	if _, err := s2.Append(ctxT(t), f.stream("1"), events.Exact(5), ev("stale")); !errors.Is(err, events.ErrWrongExpectedRevision) {
		t.Fatalf("stale append after reopen: %v", err)
	}
	var chain events.Chain
	for _, e := range mustRead(t, s2, f.stream("0"), events.Forwards, 0, 100) {
		if _, err := chain.Next(&e); err != nil {
			t.Fatal(err)
		}
	}
}

func testClosed(t *testing.T, f *fixture) {
	s, a := f.store, f.stream("a")
	mustAppend(t, s, a, events.NoStream{}, ev("a0"))
	sub := subscribe(t, s, 0, f.prefix())
	sub.waitFor(t, 1, true)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-sub.done:
		if err == nil {
			t.Fatalf("subscription ended without error on Close")
		}
		sub.done <- err
	case <-time.After(10 * time.Second):
		t.Fatalf("subscription still running 10s after Close")
	}
	if _, err := s.Append(ctxT(t), a, events.Any{}, ev("late")); err == nil {
		t.Fatalf("append after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
