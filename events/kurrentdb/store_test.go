package kurrentdb

import (
	"context"
	"errors"
	"fmt"
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
// CaughtUp, system streams, the client's panics and its self-closing.

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
	if err := st.SubscribeAll(testCtx(t), 0, events.Filter{}, func([]events.RecordedEvent) error { return nil }); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
	again := openStandin(t, srv)
	mustAppend(t, again, "actor-1", events.Exact(1), ev("test.A", "2")) // chains to a head it never cached
	verifyChain(t, again, "actor-1", 3)
}

// collector gathers what a subscription hands over.
type collector struct {
	mu       sync.Mutex
	got      []events.RecordedEvent
	caughtAt int // len(got) when the empty batch came; -1 before
	empties  int
	notify   chan struct{}
}

func newCollector() *collector { return &collector{caughtAt: -1, notify: make(chan struct{}, 1)} }

func (c *collector) handle(b []events.RecordedEvent) error {
	c.mu.Lock()
	if len(b) == 0 {
		c.empties++
		if c.caughtAt < 0 {
			c.caughtAt = len(c.got)
		}
	}
	c.got = append(c.got, b...)
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
	c := newCollector()
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
		})
	}

	// Live, then resume from the last handled position.
	c, _, cancel := subscribe(t, st, 0, events.Filter{StreamPrefixes: []string{"group-"}})
	c.wait(t, "caught up", func() bool { return c.caughtAt >= 0 })
	mustAppend(t, st, "group-1", events.Exact(0), ev("test.B", "g1"), ev("test.B", "g2"))
	mustAppend(t, st, "channel-1", events.Exact(1), ev("test.B", "c2"))
	mustAppend(t, st, "group-2", events.NoStream{}, ev("test.B", "h0"))
	c.wait(t, "live events", func() bool { return len(c.got) == 4 })
	if got := strings.Join(c.data(), " "); got != "group-1:g0 group-1:g1 group-1:g2 group-2:h0" || c.empties != 1 {
		t.Fatalf("live: %q, %d empty batches", got, c.empties)
	}
	cancel()
	resumeAt := c.got[1].Position
	r, _, _ := subscribe(t, st, resumeAt, events.Filter{StreamPrefixes: []string{"group-"}})
	r.wait(t, "caught up", func() bool { return r.caughtAt >= 0 })
	if got := strings.Join(r.data(), " "); got != "group-1:g2 group-2:h0" {
		t.Fatalf("resumed: %q", got)
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
			if c.caughtAt != 3 {
				t.Fatalf("caught up after %d events, want 3", c.caughtAt)
			}
			// Nothing stored after from: caught up at once, whatever the server sends.
			e, _, _ := subscribe(t, st, last.Position, events.Filter{})
			e.wait(t, "caught up", func() bool { return e.caughtAt == 0 })
			mustAppend(t, st, "group-1", events.Exact(1), ev("test.A", "g2"))
			e.wait(t, "live event", func() bool { return len(e.got) == 1 })
			c.wait(t, "live event", func() bool { return len(c.got) == 4 })
			if c.empties != 1 || e.empties != 1 {
				t.Fatalf("empty batches: %d and %d", c.empties, e.empties)
			}
		})
	}
}

func TestSubscribeEnds(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "c0"))

	boom := errors.New("boom")
	err := st.SubscribeAll(testCtx(t), 0, events.Filter{}, func(b []events.RecordedEvent) error {
		if len(b) > 0 {
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
func TestClientReplaced(t *testing.T) {
	srv := startStandin(t, standinOptions{})
	st := openStandin(t, srv)
	mustAppend(t, st, "channel-1", events.NoStream{}, ev("test.A", "0"))
	srv.stop()
	for i := 0; i < 2; i++ { // the first fails the call, the second a discovery round
		if _, err := st.Append(testCtx(t), "channel-1", events.Any{}, ev("test.A", "x")); err == nil {
			t.Fatal("append with the server down succeeded")
		}
	}
	st.mu.RLock()
	dead := st.client
	st.mu.RUnlock()
	srv.restart(t)
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
