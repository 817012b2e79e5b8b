package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
)

// counter counts events per stream: a read model in which an event applied twice or missed shows
// up as a count that differs from the store's. Hooks let tests fail, block or observe events.
type counter struct {
	name    string
	version uint64
	filter  events.Filter
	applied atomic.Int64 // Apply calls that returned nil
	hook    func(e events.RecordedEvent) error
}

func (c *counter) Name() string          { return c.name }
func (c *counter) Filter() events.Filter { return c.filter }
func (c *counter) Version() uint64       { return c.version }

func (c *counter) Apply(w *Writer, e events.RecordedEvent) error {
	if c.hook != nil {
		if err := c.hook(e); err != nil {
			return err
		}
	}
	var buf [32]byte
	key := AppendString(buf[:0], e.Stream)
	var n uint64
	v, err := w.AppendValue(buf[len(key):len(key)], key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if n, _, err = CutUint64(v); err != nil {
			return err
		}
	}
	if err := w.Set(key, AppendUint64(v[:0], n+1)); err != nil {
		return err
	}
	c.applied.Add(1)
	return nil
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

var payload = make([]byte, 100)

// fill appends perStream events to each of streams streams, interleaved so that every batch of
// the subscription touches many streams.
func fill(t testing.TB, s events.Store, streams, perStream int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < perStream; i++ {
		for j := 0; j < streams; j++ {
			ev := events.Event{Type: "test.Counted", Data: payload}
			if _, err := s.Append(ctx, fmt.Sprintf("chan-%d", j), events.Any{}, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// storeCounts counts the store's events per stream up to position upTo (0: all).
func storeCounts(t testing.TB, s events.Store, upTo events.Position) (map[string]uint64, events.Position) {
	t.Helper()
	out := map[string]uint64{}
	var head events.Position
	stop := errors.New("stop")
	err := s.SubscribeAll(context.Background(), 0, events.Filter{}, func(b events.Batch) error {
		if b.CaughtUp {
			return stop
		}
		for _, e := range b.Events {
			if upTo != 0 && e.Position > upTo {
				return stop
			}
			out[e.Stream]++
			head = e.Position
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	return out, head
}

// modelCounts reads the counter read model.
func modelCounts(t testing.TB, db *DB, name string) map[string]uint64 {
	t.Helper()
	r, err := db.Reader(name)
	if err != nil {
		t.Fatal(err)
	}
	it, err := r.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[string]uint64{}
	for ok := it.First(); ok; ok = it.Next() {
		stream, rest, err := CutString(it.Key())
		if err != nil || len(rest) != 0 {
			t.Fatalf("key %q: %v", it.Key(), err)
		}
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		n, _, err := CutUint64(v)
		if err != nil {
			t.Fatal(err)
		}
		out[stream] = n
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func equalCounts(t testing.TB, got, want map[string]uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read model has %d streams, store %d", len(got), len(want))
	}
	for s, n := range want {
		if got[s] != n {
			t.Fatalf("stream %s: read model counts %d events, store has %d", s, got[s], n)
		}
	}
}

func openDB(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// instant is a clock whose backoffs end at once; it records what was asked for.
type instant struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *instant) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func (c *instant) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

func newRunner(t testing.TB, cfg Config) *Runner {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.After == nil {
		cfg.After = (&instant{}).After
	}
	r, err := NewRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start runs r until the returned stop is called (or the test ends) and checks that Run returns.
func start(t testing.TB, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func statusOf(r *Runner, name string) Status {
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	return Status{}
}

func newStore(t testing.TB) *memory.Store {
	s := memory.New(nil)
	t.Cleanup(func() { s.Close() })
	return s
}
