package projections

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyproto-chat/server/events"
)

func TestCatchUpThenLive(t *testing.T) {
	store := newStore(t)
	fill(t, store, 7, 300) // 2100 events: several subscription batches
	db := openDB(t, t.TempDir())
	c := &counter{name: "counter"}
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}})
	start(t, r)

	waitFor(t, "caught up", r.CaughtUp)
	want, head := storeCounts(t, store, 0)
	if st := statusOf(r, "counter"); st.Position != head || st.Applied != 2100 || st.Failures != 0 {
		t.Fatalf("status after catch-up: %+v, want position %d, 2100 applied", st, head)
	}
	equalCounts(t, modelCounts(t, db, "counter"), want)

	fill(t, store, 3, 10)
	want, head = storeCounts(t, store, 0)
	waitFor(t, "live events", func() bool { return statusOf(r, "counter").Position == head })
	equalCounts(t, modelCounts(t, db, "counter"), want)
}

// Stopping the runner at arbitrary points, between and inside batches, and starting a new one on
// the same directory must apply every event exactly once.
func TestResumeAfterStopAppliesEachEventOnce(t *testing.T) {
	store := newStore(t)
	fill(t, store, 13, 400) // 5200 events
	want, head := storeCounts(t, store, 0)
	dir := t.TempDir()

	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; ; round++ {
		db := openDB(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		stopAt := int64(rng.IntN(1500) + 1)
		c := &counter{name: "counter"}
		c.hook = func(events.RecordedEvent) error {
			if c.applied.Load() == stopAt {
				cancel() // the batch in flight still commits or not as a whole
			}
			return nil
		}
		r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}})
		go func() { // the last round reaches the head before stopAt
			for ctx.Err() == nil && !r.CaughtUp() {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
		pos := statusOf(r, "counter").Position
		cp, _, err := db.readCheckpoint("counter")
		if err != nil || events.Position(cp.Position) != pos {
			t.Fatalf("round %d: stored checkpoint %d (%v), status says %d", round, cp.Position, err, pos)
		}
		atCheckpoint, _ := storeCounts(t, store, pos)
		equalCounts(t, modelCounts(t, db, "counter"), atCheckpoint)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if pos == head {
			t.Logf("caught up after %d restarts", round)
			break
		}
		if round > 100 {
			t.Fatal("no progress")
		}
	}
	equalCounts(t, modelCounts(t, openDB(t, dir), "counter"), want)
}

// A crash (power loss, not just a stopped process) loses the unsynced tail of the read-model
// database; the checkpoint goes with it, so a restart applies that tail again, once.
func TestCrashLosesOnlyAConsistentTail(t *testing.T) {
	store := newStore(t)
	fill(t, store, 11, 500) // 5500 events
	want, _ := storeCounts(t, store, 0)

	rng := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 8; round++ {
		fs := vfs.NewCrashableMem()
		db, err := open("views", fs, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		var crashed *vfs.MemFS
		crashAt := int64(rng.IntN(5000) + 1)
		c := &counter{name: "counter"}
		c.hook = func(events.RecordedEvent) error {
			if c.applied.Load() == crashAt {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			}
			return nil
		}
		r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}})
		stop := start(t, r)
		waitFor(t, "caught up", r.CaughtUp)
		stop()
		db.Close()
		if crashed == nil {
			t.Fatal("no crash clone taken")
		}

		db, err = open("views", crashed, testLogger(t))
		if err != nil {
			t.Fatalf("round %d: open after crash: %v", round, err)
		}
		cp, _, err := db.readCheckpoint("counter")
		if err != nil {
			t.Fatal(err)
		}
		atCheckpoint, _ := storeCounts(t, store, events.Position(cp.Position))
		if cp.Position == 0 {
			atCheckpoint = map[string]uint64{}
		}
		equalCounts(t, modelCounts(t, db, "counter"), atCheckpoint)

		r = newRunner(t, Config{Events: store, DB: db, Projections: []Projection{&counter{name: "counter"}}})
		stop = start(t, r)
		waitFor(t, "caught up after crash", r.CaughtUp)
		stop()
		equalCounts(t, modelCounts(t, db, "counter"), want)
		t.Logf("round %d: crash at %d applied, survived checkpoint %d", round, crashAt, cp.Position)
		db.Close()
	}
}

// redeliver is a store that, like a real one across reconnects, hands over events the
// subscriber has already seen.
type redeliver struct {
	events.Store
	back events.Position
}

func (s redeliver) SubscribeAll(ctx context.Context, from events.Position, f events.Filter, h func(events.Batch) error) error {
	return s.Store.SubscribeAll(ctx, from-min(from, s.back), f, h)
}

func TestAtLeastOnceDeliveryIsAppliedOnce(t *testing.T) {
	store := newStore(t)
	fill(t, store, 5, 200)
	db := openDB(t, t.TempDir())
	// Fail every 97th event once, so that the runner resubscribes many times.
	seen := map[events.Position]bool{}
	var r *Runner
	var redelivered atomic.Int32
	c := &counter{name: "counter"}
	c.hook = func(e events.RecordedEvent) error {
		if e.Position <= statusOf(r, "counter").Position {
			redelivered.Add(1) // the runner must drop what its checkpoint covers
		}
		if e.Position%97 == 0 && !seen[e.Position] {
			seen[e.Position] = true
			return errors.New("transient")
		}
		return nil
	}
	r = newRunner(t, Config{Events: redeliver{store, 300}, DB: db, Projections: []Projection{c}})
	start(t, r)
	waitFor(t, "caught up", r.CaughtUp)
	want, _ := storeCounts(t, store, 0)
	equalCounts(t, modelCounts(t, db, "counter"), want)
	if n := redelivered.Load(); n != 0 {
		t.Fatalf("%d events at or below the checkpoint reached Apply", n)
	}
	if st := statusOf(r, "counter"); st.Applied != 1000 {
		t.Fatalf("status counts %d applied, want 1000", st.Applied)
	}
}

func TestRebuildGivesTheSameReadModel(t *testing.T) {
	store := newStore(t)
	fill(t, store, 9, 250)
	want, head := storeCounts(t, store, 0)
	dir := t.TempDir()
	db := openDB(t, dir)
	other := &counter{name: "counter2"} // a name that extends "counter": must not be touched
	c := &counter{name: "counter"}
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c, other}})
	stop := start(t, r)
	waitFor(t, "caught up", r.CaughtUp)
	equalCounts(t, modelCounts(t, db, "counter"), want)

	t.Run("while running", func(t *testing.T) {
		before := c.applied.Load()
		if err := r.Rebuild(context.Background(), "counter"); err != nil {
			t.Fatal(err)
		}
		if got := c.applied.Load() - before; got != 2250 {
			t.Fatalf("rebuild applied %d events, want 2250", got)
		}
		if st := statusOf(r, "counter"); !st.CaughtUp || st.Rebuilding || st.Position != head {
			t.Fatalf("status after rebuild: %+v", st)
		}
		equalCounts(t, modelCounts(t, db, "counter"), want)
		equalCounts(t, modelCounts(t, db, "counter2"), want)
		if other.applied.Load() != 2250 {
			t.Fatalf("the other projection applied %d events", other.applied.Load())
		}
		// Still live after the rebuild.
		fill(t, store, 2, 5)
		want, head = storeCounts(t, store, 0)
		waitFor(t, "live after rebuild", func() bool { return statusOf(r, "counter").Position == head })
		equalCounts(t, modelCounts(t, db, "counter"), want)
	})

	t.Run("without a running runner", func(t *testing.T) {
		stop()
		c2 := &counter{name: "counter"}
		r2 := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c2}})
		if err := r2.Rebuild(context.Background(), "counter"); err != nil {
			t.Fatal(err)
		}
		if got := c2.applied.Load(); got != int64(head) {
			t.Fatalf("rebuild applied %d events, want %d", got, head)
		}
		equalCounts(t, modelCounts(t, db, "counter"), want)
		equalCounts(t, modelCounts(t, db, "counter2"), want)
	})

	t.Run("unknown name", func(t *testing.T) {
		if err := r.Rebuild(context.Background(), "nope"); !errors.Is(err, ErrUnknownProjection) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestVersionChangeRebuilds(t *testing.T) {
	store := newStore(t)
	fill(t, store, 4, 100)
	want, _ := storeCounts(t, store, 0)
	db := openDB(t, t.TempDir())
	for _, version := range []uint64{0, 0, 1} {
		c := &counter{name: "counter", version: version}
		r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}})
		stop := start(t, r)
		waitFor(t, "caught up", r.CaughtUp)
		stop()
		equalCounts(t, modelCounts(t, db, "counter"), want) // rows of version 0 were dropped first
		if cp, _, _ := db.readCheckpoint("counter"); cp.Version != version {
			t.Fatalf("checkpoint version %d, want %d", cp.Version, version)
		}
		t.Logf("version %d: applied %d", version, c.applied.Load())
	}
}

func TestCaughtUpOnlyAfterTheBacklog(t *testing.T) {
	store := newStore(t)
	fill(t, store, 3, 1000)
	_, head := storeCounts(t, store, 0)
	db := openDB(t, t.TempDir())
	gate := make(chan struct{})
	c := &counter{name: "counter"}
	c.hook = func(e events.RecordedEvent) error {
		if e.Position == 1500 {
			<-gate
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}, Registerer: reg})
	start(t, r)
	waitFor(t, "half the backlog", func() bool { return c.applied.Load() >= 1499 })
	time.Sleep(20 * time.Millisecond)
	if r.CaughtUp() || statusOf(r, "counter").CaughtUp || gauge(t, reg, "p2chat_projection_caught_up") != 0 {
		t.Fatal("caught up with half the backlog left")
	}
	close(gate)
	waitFor(t, "caught up", r.CaughtUp)
	if st := statusOf(r, "counter"); st.Position != head {
		t.Fatalf("caught up at position %d, store head is %d", st.Position, head)
	}
	if gauge(t, reg, "p2chat_projection_caught_up") != 1 || gauge(t, reg, "p2chat_projection_checkpoint_position") != float64(head) ||
		gauge(t, reg, "p2chat_projection_events_applied_total") != float64(head) {
		t.Fatal("metrics do not match the status")
	}
}

func TestFailuresRetryWithBackoffThenSucceed(t *testing.T) {
	store := newStore(t)
	fill(t, store, 2, 50)
	db := openDB(t, t.TempDir())
	var fails atomic.Int32
	c := &counter{name: "counter"}
	c.hook = func(e events.RecordedEvent) error {
		if e.Position == 42 && fails.Add(1) <= 5 {
			return errors.New("not yet")
		}
		return nil
	}
	clock := &instant{}
	reg := prometheus.NewRegistry()
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}, Registerer: reg,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, After: clock.After})
	start(t, r)
	waitFor(t, "caught up", r.CaughtUp)

	waits := clock.recorded()
	if len(waits) != 5 {
		t.Fatalf("%d backoffs, want 5: %v", len(waits), waits)
	}
	for i, d := range waits {
		full := min(10*time.Millisecond<<i, 50*time.Millisecond)
		if d < full/2 || d > full {
			t.Errorf("backoff %d: %v, want within [%v, %v]", i+1, d, full/2, full)
		}
	}
	st := statusOf(r, "counter")
	var ae *ApplyError
	if st.Failures != 0 || !errors.As(st.LastError, &ae) || ae.Position != 42 || st.LastErrorAt.IsZero() {
		t.Fatalf("status after recovery: %+v", st)
	}
	if got := gauge(t, reg, "p2chat_projection_errors_total"); got != 5 {
		t.Fatalf("errors_total %v, want 5", got)
	}
	want, _ := storeCounts(t, store, 0)
	equalCounts(t, modelCounts(t, db, "counter"), want)
}

// flaky is a store whose subscriptions fail a few times before working.
type flaky struct {
	events.Store
	failures atomic.Int32
}

func (s *flaky) SubscribeAll(ctx context.Context, from events.Position, f events.Filter, h func(events.Batch) error) error {
	if s.failures.Add(-1) >= 0 {
		return errors.New("connection refused")
	}
	return s.Store.SubscribeAll(ctx, from, f, h)
}

func TestStoreErrorsAreRetried(t *testing.T) {
	store := newStore(t)
	fill(t, store, 2, 10)
	db := openDB(t, t.TempDir())
	src := &flaky{Store: store}
	src.failures.Store(3)
	r := newRunner(t, Config{Events: src, DB: db, Projections: []Projection{&counter{name: "counter"}}})
	start(t, r)
	waitFor(t, "caught up", r.CaughtUp)
	if st := statusOf(r, "counter"); st.Position != 20 || st.LastError == nil || !strings.Contains(st.LastError.Error(), "connection refused") {
		t.Fatalf("status: %+v", st)
	}
}

// A poison event is retried for ever, never skipped: the checkpoint stops right before it, the
// status names it, and nothing after it is applied.
func TestPoisonEventStallsVisibly(t *testing.T) {
	store := newStore(t)
	fill(t, store, 4, 100)
	db := openDB(t, t.TempDir())
	c := &counter{name: "counter"}
	c.hook = func(e events.RecordedEvent) error {
		if e.Position == 123 {
			panic("projection bug") // a panic is reported like an error
		}
		return nil
	}
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}})
	stop := start(t, r)
	waitFor(t, "repeated failures", func() bool { return statusOf(r, "counter").Failures >= 20 })
	stop()
	st := statusOf(r, "counter")
	var ae *ApplyError
	if !errors.As(st.LastError, &ae) || ae.Position != 123 || !strings.Contains(ae.Error(), "panic: projection bug") {
		t.Fatalf("last error %v", st.LastError)
	}
	if st.Position != 122 || st.CaughtUp {
		t.Fatalf("status: %+v", st)
	}
	want, _ := storeCounts(t, store, 122)
	equalCounts(t, modelCounts(t, db, "counter"), want)
}

func TestContextCancelStopsEverything(t *testing.T) {
	store := newStore(t)
	fill(t, store, 2, 10)
	db := openDB(t, t.TempDir())
	never := func(time.Duration) <-chan time.Time { return nil } // backoffs that never end
	failing := &counter{name: "failing", hook: func(events.RecordedEvent) error { return errors.New("always") }}
	idle := &counter{name: "idle"}
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{failing, idle}, After: never})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "projections running", func() bool {
		return statusOf(r, "failing").Failures > 0 && statusOf(r, "idle").CaughtUp
	})
	if err := r.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	// A rebuild request that the runner does not finish before its context ends gets an error.
	rebuildErr := make(chan error, 1)
	go func() { rebuildErr <- r.Rebuild(context.Background(), "failing") }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case err := <-rebuildErr:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("rebuild: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Rebuild did not return")
	}
}

func TestNewRunnerRejectsBadConfig(t *testing.T) {
	store := newStore(t)
	db := openDB(t, t.TempDir())
	for name, cfg := range map[string]Config{
		"no store":   {DB: db},
		"no db":      {Events: store},
		"bad name":   {Events: store, DB: db, Projections: []Projection{&counter{name: "Bad/name"}}},
		"twice":      {Events: store, DB: db, Projections: []Projection{&counter{name: "a"}, &counter{name: "a"}}},
		"bad filter": {Events: store, DB: db, Projections: []Projection{&counter{name: "a", filter: events.Filter{StreamPrefixes: []string{"x"}, EventTypes: []string{"y"}}}}},
	} {
		if _, err := NewRunner(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Two runners on one registry share the collectors.
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := NewRunner(Config{Events: store, DB: db, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFilterLimitsWhatIsApplied(t *testing.T) {
	store := newStore(t)
	fill(t, store, 3, 20)
	ctx := context.Background()
	for i := range 5 {
		if _, err := store.Append(ctx, fmt.Sprintf("other-%d", i), events.Any{}, events.Event{Type: "test.Other", Data: payload}); err != nil {
			t.Fatal(err)
		}
	}
	db := openDB(t, t.TempDir())
	c := &counter{name: "others", filter: events.Filter{EventTypes: []string{"test.Other"}}}
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}})
	start(t, r)
	waitFor(t, "caught up", r.CaughtUp)
	got := modelCounts(t, db, "others")
	if len(got) != 5 || c.applied.Load() != 5 {
		t.Fatalf("applied %d, read model %v", c.applied.Load(), got)
	}
}

func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		return sum
	}
	return -1
}

// TestNarrowProjectionCheckpointsSkippedEvents: a projection whose filter matches nothing still
// records how far it has looked, so a restart does not rescan the whole log.
func TestNarrowProjectionCheckpointsSkippedEvents(t *testing.T) {
	store := newStore(t)
	fill(t, store, 100, 100) // 10,000 events, none for the projection
	_, head := storeCounts(t, store, 0)
	db := openDB(t, t.TempDir())
	c := &counter{name: "narrow", filter: events.Filter{StreamPrefixes: []string{"nothing-"}}}
	stop := start(t, newRunner(t, Config{Events: store, DB: db, Projections: []Projection{c}}))
	waitFor(t, "caught up", func() bool { return storedCheckpoint(t, db, "narrow") == head })
	stop()
	if c.applied.Load() != 0 {
		t.Fatalf("applied %d events that the filter excludes", c.applied.Load())
	}
}

// storedCheckpoint reads the stored checkpoint position of a projection.
func storedCheckpoint(t *testing.T, db *DB, name string) events.Position {
	t.Helper()
	c, _, err := db.readCheckpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return events.Position(c.Position)
}
