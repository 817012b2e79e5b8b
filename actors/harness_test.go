package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
)

// gateStore wraps a store so a test can hold appends in flight and fail them, and can count
// what the actors read.
type gateStore struct {
	events.Store

	mu      sync.Mutex
	gated   bool
	readErr error          // returned by every ReadStream while set
	sizes   []int          // events per append to a non-snapshot stream, in call order
	read    map[string]int // events returned per stream
	calls   map[string]int // ReadStream calls per stream
	entered chan int       // gated: an append arrived, with its event count
	release chan error     // gated: each value lets one append go on (nil) or fail it (an error)
}

func newGateStore() *gateStore {
	return &gateStore{
		Store:   memory.New(nil),
		read:    map[string]int{},
		calls:   map[string]int{},
		entered: make(chan int, 64),
		release: make(chan error, 64),
	}
}

// gate makes every later append to a non-snapshot stream wait for release.
func (s *gateStore) gate(on bool) {
	s.mu.Lock()
	s.gated = on
	s.mu.Unlock()
}

func (s *gateStore) Append(ctx context.Context, stream string, exp events.ExpectedRevision, evs ...events.Event) (events.AppendResult, error) {
	if strings.HasPrefix(stream, "snapshot-") {
		return s.Store.Append(ctx, stream, exp, evs...)
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, len(evs))
	gated := s.gated
	s.mu.Unlock()
	if gated {
		s.entered <- len(evs)
		select {
		case err := <-s.release:
			if err != nil {
				return events.AppendResult{}, err
			}
		case <-ctx.Done():
			return events.AppendResult{}, ctx.Err()
		}
	}
	return s.Store.Append(ctx, stream, exp, evs...)
}

func (s *gateStore) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, limit int) ([]events.RecordedEvent, error) {
	s.mu.Lock()
	failed := s.readErr
	s.mu.Unlock()
	if failed != nil {
		return nil, failed
	}
	recs, err := s.Store.ReadStream(ctx, stream, dir, from, limit)
	s.mu.Lock()
	s.read[stream] += len(recs)
	s.calls[stream]++
	s.mu.Unlock()
	return recs, err
}

func (s *gateStore) failReads(err error) {
	s.mu.Lock()
	s.readErr = err
	s.mu.Unlock()
}

func (s *gateStore) appendSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

func (s *gateStore) readCount(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read[stream]
}

// loads counts the activations (and reloads) of the actor writing stream: each reads its
// snapshot stream once.
func (s *gateStore) loads(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls["snapshot-"+stream]
}

// waitEntered waits for the next gated append and returns its event count.
func (s *gateStore) waitEntered(t *testing.T) int {
	t.Helper()
	select {
	case n := <-s.entered:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no append reached the store")
		return 0
	}
}

// testLogger is quiet unless -v, and never calls t.Log (background snapshot writers may
// outlive a test).
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type tallyEnv struct {
	sys     *System
	kind    *Kind
	store   *gateStore
	decided chan any
}

type tallyOpts struct {
	limit    int64
	kind     KindOptions
	snapshot int // JournalConfig.SnapshotEvery; zero: never
	maxBatch int
	wrap     func(*Journal[*tally]) actor.Actor // a test's own actor around the journal, as a real kind has
}

func tallyProducer(store events.Store, o tallyOpts, decided chan<- any) Producer {
	return func(id string) (actor.Actor, error) {
		if id == "" || strings.HasPrefix(id, "bad") {
			return nil, fmt.Errorf("%q: %w", id, errBadID)
		}
		j := NewJournal(JournalConfig[*tally]{
			Store:         store,
			Stream:        "tally-" + id,
			Model:         tallyModel(o.limit, decided),
			Logger:        testLogger(),
			SnapshotEvery: o.snapshot,
			MaxBatch:      o.maxBatch,
		})
		if o.wrap != nil {
			return o.wrap(j), nil
		}
		return j, nil
	}
}

// newTallyEnv starts a system with a "tally" kind over store (a new one if nil).
func newTallyEnv(t *testing.T, store *gateStore, o tallyOpts) *tallyEnv {
	t.Helper()
	if store == nil {
		store = newGateStore()
	}
	if o.kind.IdleTimeout == 0 {
		o.kind.IdleTimeout = -1
	}
	if o.snapshot == 0 {
		o.snapshot = -1
	}
	env := &tallyEnv{sys: NewSystem(Config{Logger: testLogger()}), store: store, decided: make(chan any, 256)}
	kind, err := env.sys.Kind("tally", tallyProducer(store, o, env.decided), o.kind)
	if err != nil {
		t.Fatal(err)
	}
	env.kind = kind
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Let any gated append through so the drain can finish.
		store.gate(false)
		for range 8 {
			store.release <- nil
		}
		if err := env.sys.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return env
}

// request sends cmd to id with a short deadline.
func (e *tallyEnv) request(t *testing.T, id string, cmd any) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.kind.Request(ctx, id, cmd)
	if err != nil {
		return nil, err
	}
	r, ok := res.(*Result)
	if !ok {
		t.Fatalf("reply is %T, want *Result", res)
	}
	return r, nil
}

func (e *tallyEnv) mustRequest(t *testing.T, id string, cmd any) *Result {
	t.Helper()
	r, err := e.request(t, id, cmd)
	if err != nil {
		t.Fatalf("%T: %v", cmd, err)
	}
	return r
}

// total asks id for its total.
func (e *tallyEnv) total(t *testing.T, id string) int64 {
	t.Helper()
	return e.mustRequest(t, id, get{}).Reply.(int64)
}

// async sends cmd and returns a channel with its outcome.
func (e *tallyEnv) async(t *testing.T, id string, cmd any) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		r, err := e.request(t, id, cmd)
		ch <- outcome{r, err}
	}()
	return ch
}

type outcome struct {
	res *Result
	err error
}

// drainDecided forgets the commands decided so far.
func (e *tallyEnv) drainDecided() {
	for {
		select {
		case <-e.decided:
		default:
			return
		}
	}
}

// waitDecided waits until n more commands have reached Decide.
func (e *tallyEnv) waitDecided(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-e.decided:
		case <-time.After(5 * time.Second):
			t.Fatal("command not decided")
		}
	}
}

func recv(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		return outcome{}
	}
}

// notYet fails if any of chs has an answer.
func notYet(t *testing.T, what string, chs ...<-chan outcome) {
	t.Helper()
	for i, ch := range chs {
		select {
		case o := <-ch:
			t.Fatalf("%s: command %d answered early: %+v", what, i, o)
		default:
		}
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errBadID = errors.New("no such tally")
