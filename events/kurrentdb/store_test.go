package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/storetest"
)

// TestStore runs the shared suite against the stand-in: it tests our mapping onto the client and
// the protocol as we model it (standin_test.go), not compatibility with a real server.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) func() (events.Store, error) {
			srv := startStandin(t, standinOptions{})
			return func() (events.Store, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return Open(ctx, srv.url(), nil)
			}
		},
	})
}

// TestStoreRealServer runs the same suite against the server named by KURRENTDB_CONNECTION_STRING.
func TestStoreRealServer(t *testing.T) {
	conn := os.Getenv("KURRENTDB_CONNECTION_STRING")
	if conn == "" {
		t.Skip("KURRENTDB_CONNECTION_STRING not set: no real KurrentDB server here; the stand-in run above tests our mapping, not server compatibility")
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) func() (events.Store, error) {
			return func() (events.Store, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return Open(ctx, conn, nil)
			}
		},
	})
}

// The tests below talk to the stand-in directly. They cover what is specific to this adapter:
// the hash chain across processes, the error text we parse, the caught-up detection without
// CaughtUp, how server checkpoints become batch checkpoints, system streams, the client's panics
// and its self-closing.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func ev(typ, data string) events.Event {
	return events.Event{Type: typ, Data: []byte(data), ActorFID: "alice@example.com"}
}

func mustAppend(t *testing.T, st events.Store, stream string, exp events.ExpectedRevision, evs ...events.Event) events.AppendResult {
	t.Helper()
	res, err := st.Append(testCtx(t), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %s %v: %v", stream, exp, err)
	}
	return res
}

func readAll(t *testing.T, st events.Store, stream string) []events.RecordedEvent {
	t.Helper()
	var out []events.RecordedEvent
	for e, err := range events.ReadFrom(testCtx(t), st, stream, 0) {
		if err != nil {
			t.Fatalf("read %s: %v", stream, err)
		}
		out = append(out, e)
	}
	return out
}

// verifyChain checks revisions, positions and the hash chain of a whole stream.
func verifyChain(t *testing.T, st events.Store, stream string, want int) {
	t.Helper()
	evs := readAll(t, st, stream)
	if len(evs) != want {
		t.Fatalf("%s has %d events, want %d", stream, len(evs), want)
	}
	var c events.Chain
	for i := range evs {
		if i > 0 && evs[i].Position <= evs[i-1].Position {
			t.Fatalf("%s@%d: position %d not after %d", stream, i, evs[i].Position, evs[i-1].Position)
		}
		if _, err := c.Next(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func wantWrong(t *testing.T, err error, exists bool, actual uint64) {
	t.Helper()
	var w *events.WrongRevisionError
	if !errors.As(err, &w) || !errors.Is(err, events.ErrWrongExpectedRevision) {
		t.Fatalf("err = %v, want a WrongRevisionError", err)
	}
	if w.Exists != exists || (exists && w.Actual != actual) {
		t.Fatalf("WrongRevisionError exists=%v actual=%d, want exists=%v actual=%d", w.Exists, w.Actual, exists, actual)
	}
}

func TestAppendAndRead(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	id := uuid.New()
	first := ev("test.A", "zero")
	first.ID = id
	r1 := mustAppend(t, st, "channel-1", events.NoStream{}, first, ev("test.B", "one"), ev("test.A", "two"))
	r2 := mustAppend(t, st, "channel-1", events.Exact(2), ev("test.A", "three"), ev("test.B", ""))
	if r1.Revision != 2 || r2.Revision != 4 || r2.Position <= r1.Position || r1.Position == 0 {
		t.Fatalf("results %+v %+v", r1, r2)
	}
	verifyChain(t, st, "channel-1", 5)

	ctx := testCtx(t)
	fwd, err := st.ReadStream(ctx, "channel-1", events.Forwards, 1, 2)
	if err != nil || len(fwd) != 2 || fwd[0].Revision != 1 || fwd[1].Revision != 2 || string(fwd[0].Data) != "one" || fwd[1].Position != r1.Position {
		t.Fatalf("forwards: %v %+v", err, fwd)
	}
	back, err := st.ReadStream(ctx, "channel-1", events.Backwards, events.End, 2)
	if err != nil || len(back) != 2 || back[0].Revision != 4 || back[1].Revision != 3 || back[0].Position != r2.Position {
		t.Fatalf("backwards: %v %+v", err, back)
	}
	clamped, err := st.ReadStream(ctx, "channel-1", events.Backwards, 100, 1)
	if err != nil || len(clamped) != 1 || clamped[0].Revision != 4 {
		t.Fatalf("backwards past the end: %v %+v", err, clamped)
	}
	past, err := st.ReadStream(ctx, "channel-1", events.Forwards, 5, 10)
	if err != nil || past == nil || len(past) != 0 {
		t.Fatalf("forwards past the end: %v %#v", err, past)
	}
	if _, err := st.ReadStream(ctx, "channel-2", events.Forwards, 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
		t.Fatalf("missing stream: %v", err)
	}
	if _, err := st.ReadStream(ctx, "channel-1", events.Forwards, 0, events.MaxReadLimit+1); err == nil {
		t.Fatal("limit above MaxReadLimit accepted")
	}
	if _, err := st.Append(ctx, "$system", events.Any{}, ev("t", "")); !errors.Is(err, events.ErrInvalidStream) {
		t.Fatalf("system stream: %v", err)
	}

	// What the server holds: our event id, our type, binary content, our envelope.
	m, err := fwd[0].Meta()
	if err != nil {
		t.Fatal(err)
	}
	if srv.eventID("channel-1", 1) != uuid.UUID(m.GetEventId()) || srv.eventID("channel-1", 0) != id {
		t.Fatalf("event ids differ: server %v, envelope %x", srv.eventID("channel-1", 1), m.GetEventId())
	}
	if ct := srv.contentType("channel-1", 0); ct != "application/octet-stream" {
		t.Fatalf("content type %q", ct)
	}
}

func TestConflicts(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	a, b := openStandin(t, srv), openStandin(t, srv) // two processes
	ctx := testCtx(t)
	mustAppend(t, a, "group-1", events.NoStream{}, ev("test.A", "a0"))

	_, err := a.Append(ctx, "group-1", events.NoStream{}, ev("test.A", "x"))
	wantWrong(t, err, true, 0)
	writes := srv.appendCount()
	_, err = a.Append(ctx, "group-1", events.Exact(7), ev("test.A", "x"))
	wantWrong(t, err, true, 0)
	_, err = a.Append(ctx, "group-2", events.Exact(0), ev("test.A", "x"))
	wantWrong(t, err, false, 0)
	if srv.appendCount() != writes {
		t.Fatal("a refused append was written")
	}

	// b moves the stream; a's cache still says revision 0. The server refuses a's append and
	// its answer names the actual revision.
	mustAppend(t, b, "group-1", events.Exact(0), ev("test.A", "b1"), ev("test.A", "b2"))
	_, err = a.Append(ctx, "group-1", events.Exact(0), ev("test.A", "x"))
	wantWrong(t, err, true, 2)
	// Any from a stale cache: conflict, re-read, retry.
	mustAppend(t, b, "group-1", events.Exact(2), ev("test.A", "b3"))
	res := mustAppend(t, a, "group-1", events.Any{}, ev("test.A", "a4"))
	if res.Revision != 4 {
		t.Fatalf("any: revision %d", res.Revision)
	}
	mustAppend(t, b, "group-1", events.Exact(4), ev("test.A", "b5"))
	verifyChain(t, a, "group-1", 6)

	// Without the server's text in the error, the actual revision is read.
	err = a.wrongRevision(ctx, "group-9", fmt.Errorf("x: %w", errors.New("y")))
	wantWrong(t, err, false, 0)
}

func TestConcurrentAny(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	stores := []*Store{openStandin(t, srv), openStandin(t, srv)}
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[w%2]
			for i := 0; i < each; i++ {
				if _, err := st.Append(context.Background(), "channel-hot", events.Any{}, ev("test.A", fmt.Sprint(w, i))); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	verifyChain(t, stores[0], "channel-hot", writers*each)
}

func TestReopen(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "actor-1", events.NoStream{}, ev("test.A", "0"), ev("test.A", "1"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(testCtx(t), "actor-1", events.Any{}, ev("test.A", "x")); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := st.ReadStream(testCtx(t), "actor-1", events.Forwards, 0, 1); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := st.SubscribeAll(testCtx(t), 0, events.Filter{}, func(events.Batch) error { return nil }); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	again := openStandin(t, srv)
	mustAppend(t, again, "actor-1", events.Exact(1), ev("test.A", "2")) // chains to a head it never cached
	verifyChain(t, again, "actor-1", 3)
}

// collector gathers what a subscription hands over and checks the Batch contract on every batch.
type collector struct {
	t         *testing.T
	mu        sync.Mutex
	got       []events.RecordedEvent
	caughtAt  int             // len(got) when the CaughtUp batch came; -1 before
	caughtCP  events.Position // Checkpoint of the CaughtUp batch
	caughtUps int
	cp        events.Position // Checkpoint of the last batch
	progress  []progressBatch // batches without events and without CaughtUp
	notify    chan struct{}
}

type progressBatch struct {
	checkpoint events.Position
	live       bool // after the CaughtUp batch
}

func newCollector(t *testing.T, from events.Position) *collector {
	return &collector{t: t, caughtAt: -1, cp: from, notify: make(chan struct{}, 1)}
}

func (c *collector) handle(b events.Batch) error {
	c.mu.Lock()
	switch {
	case b.CaughtUp && len(b.Events) > 0:
		c.t.Errorf("CaughtUp batch with %d events", len(b.Events))
	case b.Checkpoint < c.cp:
		c.t.Errorf("checkpoint went back from %d to %d", c.cp, b.Checkpoint)
	case len(b.Events) > 0 && b.Events[0].Position <= c.cp:
		c.t.Errorf("event at %d after checkpoint %d", b.Events[0].Position, c.cp)
	case len(b.Events) > 0 && b.Checkpoint < b.Events[len(b.Events)-1].Position:
		c.t.Errorf("checkpoint %d before the batch's last event %d", b.Checkpoint, b.Events[len(b.Events)-1].Position)
	}
	c.cp = b.Checkpoint
	switch {
	case b.CaughtUp:
		c.caughtUps++
		if c.caughtAt < 0 {
			c.caughtAt, c.caughtCP = len(c.got), b.Checkpoint
		}
	case len(b.Events) == 0:
		c.progress = append(c.progress, progressBatch{checkpoint: b.Checkpoint, live: c.caughtAt >= 0})
	}
	c.got = append(c.got, b.Events...)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// wait waits until cond holds.
func (c *collector) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.notify:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("timed out waiting for %s; got %d events, caught up at %d", what, len(c.got), c.caughtAt)
		}
	}
}

// collected is a copy of a collector's state.
type collected struct {
	caughtAt  int
	caughtCP  events.Position
	caughtUps int
	cp        events.Position
	progress  []progressBatch
}

func (c *collector) snapshot() collected {
	c.mu.Lock()
	defer c.mu.Unlock()
	return collected{caughtAt: c.caughtAt, caughtCP: c.caughtCP, caughtUps: c.caughtUps, cp: c.cp,
		progress: append([]progressBatch(nil), c.progress...)}
}

func (c *collector) data() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.got {
		out = append(out, e.Stream+":"+string(e.Data))
	}
	return out
}

// subscribe runs SubscribeAll until the test ends and returns its collector and result.
func subscribe(t *testing.T, st events.Store, from events.Position, f events.Filter) (*collector, chan error, context.CancelFunc) {
	c := newCollector(t, from)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.SubscribeAll(ctx, from, f, c.handle) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, done, cancel
}

func seedMixed(t *testing.T, srv *standin, st events.Store) events.AppendResult {
	srv.seed("$settings", "$settings")
	srv.seed("$standin-notes", "test.A") // a system stream with a user-looking type
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "c0"), ev("test.AB", "c1"))
	mustAppend(t, st, "group-1", events.NoStream{}, ev("test.B", "g0"))
	mustAppend(t, st, "channel-2", events.NoStream{}, ev("a.b", "dot"), ev("aXb", "nodot"))
	r := mustAppend(t, st, "channel_x-1", events.NoStream{}, ev("test.A", "x0"))
	srv.seed("$stats-1", "$statsCollected") // the last record of $all matches no filter
	return r
}

func TestSubscribeFilters(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	seedMixed(t, srv, st)
	pos := srv.positions()
	head := events.Position(pos[len(pos)-1]) // $stats-1, which no filter passes

	cases := []struct {
		name   string
		filter events.Filter
		want   string
	}{
		{"none", events.Filter{}, "channel-1:c0 channel-1:c1 group-1:g0 channel-2:dot channel-2:nodot channel_x-1:x0"},
		{"prefix", events.Filter{StreamPrefixes: []string{"channel-", "group-"}}, "channel-1:c0 channel-1:c1 group-1:g0 channel-2:dot channel-2:nodot"},
		{"types", events.Filter{EventTypes: []string{"test.A", "a.b"}}, "channel-1:c0 channel-2:dot channel_x-1:x0"},
		{"system prefix", events.Filter{StreamPrefixes: []string{"$"}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := subscribe(t, st, 0, tc.filter)
			c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
			if got := strings.Join(c.data(), " "); got != tc.want || c.caughtAt != len(c.got) {
				t.Fatalf("got %q (caught up after %d), want %q", got, c.caughtAt, tc.want)
			}
			// Caught up, the checkpoint covers the whole log, the skipped system event at its end too.
			if cp := c.snapshot().caughtCP; cp != head {
				t.Fatalf("CaughtUp checkpoint %d, want the head of $all %d", cp, head)
			}
		})
	}

	// Live, then resume from the last handled position.
	c, _, cancel := subscribe(t, st, 0, events.Filter{StreamPrefixes: []string{"group-"}})
	c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
	mustAppend(t, st, "group-1", events.Exact(0), ev("test.B", "g1"), ev("test.B", "g2"))
	mustAppend(t, st, "channel-1", events.Exact(1), ev("test.B", "c2"))
	mustAppend(t, st, "group-2", events.NoStream{}, ev("test.B", "h0"))
	c.wait(t, "live events", func() bool { return len(c.got) == 4 })
	if got, snap := strings.Join(c.data(), " "), c.snapshot(); got != "group-1:g0 group-1:g1 group-1:g2 group-2:h0" || snap.caughtUps != 1 {
		t.Fatalf("live: %q, %d CaughtUp batches", got, snap.caughtUps)
	}
	cancel()
	resumeAt := c.got[1].Position
	r, _, _ := subscribe(t, st, resumeAt, events.Filter{StreamPrefixes: []string{"group-"}})
	r.wait(t, "caught up", func() bool { return r.caughtAt >= 0 })
	if got := strings.Join(r.data(), " "); got != "group-1:g2 group-2:h0" {
		t.Fatalf("resumed: %q", got)
	}
	// Resuming from the last checkpoint hands over nothing again.
	again, _, _ := subscribe(t, st, r.snapshot().cp, events.Filter{StreamPrefixes: []string{"group-"}})
	again.wait(t, "caught up", func() bool { return again.caughtAt >= 0 })
	mustAppend(t, st, "group-2", events.Exact(0), ev("test.B", "h1"))
	again.wait(t, "live event", func() bool { return len(again.got) == 1 })
	if got := strings.Join(again.data(), " "); got != "group-2:h1" {
		t.Fatalf("resumed from the checkpoint: %q", got)
	}
}

// TestCaughtUpWithoutCaughtUp covers servers that do not send CaughtUp, or send it bare.
func TestCaughtUpWithoutCaughtUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts standinOptions
	}{
		{"bare CaughtUp", standinOptions{caughtUp: caughtUpBare, noCheckpoints: true}},
		{"checkpoint only", standinOptions{caughtUp: caughtUpNone}},
		{"neither", standinOptions{caughtUp: caughtUpNone, noCheckpoints: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startStandin(t, tc.opts)
			st := openStandin(t, srv)
			mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "c0"))
			last := mustAppend(t, st, "group-1", events.NoStream{}, ev("test.A", "g0"), ev("test.A", "g1"))

			c, _, _ := subscribe(t, st, 0, events.Filter{})
			c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
			if snap := c.snapshot(); snap.caughtAt != 3 || snap.caughtCP != last.Position {
				t.Fatalf("caught up after %d events at checkpoint %d, want 3 and %d", snap.caughtAt, snap.caughtCP, last.Position)
			}
			// Nothing stored after from: caught up at once, whatever the server sends.
			e, _, _ := subscribe(t, st, last.Position, events.Filter{})
			e.wait(t, "caught up", func() bool { return e.caughtAt == 0 })
			if cp := e.snapshot().caughtCP; cp != last.Position {
				t.Fatalf("caught up at once at checkpoint %d, want %d", cp, last.Position)
			}
			mustAppend(t, st, "group-1", events.Exact(1), ev("test.A", "g2"))
			e.wait(t, "live event", func() bool { return len(e.got) == 1 })
			c.wait(t, "live event", func() bool { return len(c.got) == 4 })
			if c.snapshot().caughtUps != 1 || e.snapshot().caughtUps != 1 {
				t.Fatalf("CaughtUp batches: %d and %d", c.snapshot().caughtUps, e.snapshot().caughtUps)
			}
		})
	}
}

func TestCheckpointOf(t *testing.T) {
	for _, tc := range []struct {
		p    logPos
		want events.Position
		ok   bool
	}{
		{logPos{1000, 1000}, 1000, true}, // an event's own position
		{logPos{1000, 0}, 999, true},     // the start of a catch-up read
		{logPos{1000, 1200}, 1000, true}, // past the commit's last prepare
		{logPos{0, 0}, 0, true},
		{logPos{math.MaxUint64, math.MaxUint64}, 0, false}, // no position
	} {
		if got, ok := checkpointOf(tc.p); got != tc.want || ok != tc.ok {
			t.Errorf("checkpointOf(%+v) = %d, %v; want %d, %v", tc.p, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCheckpoints: the server's checkpoints become progress batches, in catch-up and live, and
// the CaughtUp batch covers the whole log, as the stand-in models the server.
func TestCheckpoints(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	interval := searchWindow * checkpointMultiplier
	noise := func(n int) {
		for i := 0; i < n; i += 100 {
			evs := make([]events.Event, 100)
			for j := range evs {
				evs[j] = ev("test.N", "n")
			}
			mustAppend(t, st, fmt.Sprintf("noise-%d", i/100%7), events.Any{}, evs...)
		}
	}
	mustAppend(t, st, "wanted-1", events.NoStream{}, ev("test.A", "w0"))
	noise(2*interval + 100)
	records := srv.positions()
	isRecord := map[events.Position]bool{}
	for _, p := range records {
		isRecord[events.Position(p)] = true
	}

	c, _, _ := subscribe(t, st, 0, events.Filter{StreamPrefixes: []string{"wanted-"}})
	c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
	if f := srv.lastFilter(); f.GetMax() != searchWindow || f.GetCheckpointIntervalMultiplier() != checkpointMultiplier {
		t.Fatalf("filter options: window %d, multiplier %d", f.GetMax(), f.GetCheckpointIntervalMultiplier())
	}
	snap := c.snapshot()
	head := events.Position(records[len(records)-1])
	if snap.caughtAt != 1 || snap.caughtCP != head {
		t.Fatalf("caught up after %d events at %d, want 1 and the head %d", snap.caughtAt, snap.caughtCP, head)
	}
	// Catch-up: a checkpoint after each interval of records looked at (two), and one at the end.
	// The stand-in, like the server, sends them at the start of a read, (c, 0): reported as c-1.
	if len(snap.progress) < 2 {
		t.Fatalf("%d progress batches during catch-up over %d skipped records, want 2 or more", len(snap.progress), len(records)-1)
	}
	for _, p := range snap.progress {
		if !isRecord[p.checkpoint+1] || p.checkpoint >= head {
			t.Fatalf("catch-up checkpoint %d: want the position before a read's first record, below %d", p.checkpoint, head)
		}
	}

	// Live: a checkpoint at the interval-th record after going live.
	wentLive := len(records)
	noise(interval + 100)
	records = srv.positions()
	want := events.Position(records[wentLive+interval-1])
	c.wait(t, "live checkpoint", func() bool { return c.cp >= want })
	var live []events.Position
	for _, p := range c.snapshot().progress {
		if p.live {
			live = append(live, p.checkpoint)
		}
	}
	if len(live) != 1 || live[0] != want {
		t.Fatalf("live checkpoints %v, want [%d]", live, want)
	}
	w := mustAppend(t, st, "wanted-1", events.Exact(0), ev("test.A", "w1"))
	c.wait(t, "live event", func() bool { return len(c.got) == 2 })
	if cp := c.snapshot().cp; cp != w.Position {
		t.Fatalf("checkpoint %d after the live event at %d", cp, w.Position)
	}
}

func TestSubscribeEnds(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "c0"))

	boom := errors.New("boom")
	err := st.SubscribeAll(testCtx(t), 0, events.Filter{}, func(b events.Batch) error {
		if len(b.Events) > 0 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("handler error: %v", err)
	}
	if err := st.SubscribeAll(testCtx(t), 0, events.Filter{StreamPrefixes: []string{"a"}, EventTypes: []string{"b"}}, nil); !errors.Is(err, events.ErrInvalidFilter) {
		t.Fatalf("invalid filter: %v", err)
	}

	c, done, cancel := subscribe(t, st, 0, events.Filter{})
	c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	done <- nil // for the cleanup

	c, done, _ = subscribe(t, st, 0, events.Filter{})
	c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
	srv.stop()
	err = <-done
	done <- nil
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, events.ErrClosed) || !strings.Contains(err.Error(), "dropped") {
		t.Fatalf("server gone: %v", err)
	}

	srv.restart(t)
	c, done, _ = subscribe(t, st, 0, events.Filter{})
	c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	done <- nil
	if !errors.Is(err, events.ErrClosed) {
		t.Fatalf("store closed: %v", err)
	}
}

// TestClientReplaced: after a failed discovery the client closes itself for good; the store
// replaces it, so the server coming back is enough.
// TestServerOutage: calls fail while the server is down and work again once it is back,
// whether or not the client gave up on discovery in between.
func TestServerOutage(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "0"))
	srv.stop()
	for i := 0; i < 2; i++ {
		if _, err := st.Append(testCtx(t), "channel-1", events.Any{}, ev("test.A", "x")); err == nil {
			t.Fatal("append with the server down succeeded")
		}
	}
	srv.restart(t)
	mustAppend(t, st, "channel-1", events.Exact(0), ev("test.A", "1"))
	verifyChain(t, st, "channel-1", 2)
}

// TestClientReplaced puts the store in the state the client leaves it in after a failed
// discovery round (closed for good, kurrentdb/impl.go closeWith) without depending on how many
// failures that takes, and checks that the next call replaces the client and succeeds.
func TestClientReplaced(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "0"))
	st.mu.RLock()
	dead := st.client
	st.mu.RUnlock()
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, st, "channel-1", events.Exact(0), ev("test.A", "1"))
	verifyChain(t, st, "channel-1", 2)
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.client == dead {
		t.Fatal("the client was not replaced")
	}
}

func TestClientPanicRecovered(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "0"))
	srv.mu.Lock()
	srv.opts.oddReadReply = true
	srv.mu.Unlock()
	if _, err := st.ReadStream(testCtx(t), "channel-1", events.Forwards, 0, 1); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("read with an unexpected reply: %v", err)
	}
}

func TestOpen(t *testing.T) {
	ctx := testCtx(t)
	if _, err := Open(ctx, "postgres://localhost", nil); err == nil {
		t.Fatal("postgres scheme accepted")
	}
	if _, err := Open(ctx, "esdb://user:secret@127.0.0.1:1?tls=false&maxDiscoverAttempts=1", nil); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unreachable server: %v", err)
	}
	srv := startStandin(t, standinOptions{})
	// The +discover schemes need the gossip service, which the stand-in does not model.
	for _, scheme := range []string{"kurrentdb", "kurrent", "esdb"} {
		st, err := Open(ctx, scheme+"://"+srv.addr+"?tls=false", nil)
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		_ = st.Close()
	}
}
