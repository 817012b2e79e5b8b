package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func (e *tallyEnv) active(t *testing.T) int {
	t.Helper()
	n, err := e.kind.Active(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPassivationStopsIdleActorAndReactivatesFromStore(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{kind: KindOptions{IdleTimeout: 20 * time.Millisecond}})
	env.mustRequest(t, "x", add{n: 1})
	env.mustRequest(t, "y", add{n: 7})
	loads := env.store.loads("tally-x")

	eventually(t, "passivation", func() bool { return env.active(t) == 0 })

	// Re-activated with its state reloaded from the store.
	if r := env.mustRequest(t, "x", add{n: 2}); r.Revision != 1 || r.Reply != int64(3) {
		t.Fatalf("after passivation: %+v, want revision 1, total 3", r)
	}
	if got := env.store.loads("tally-x"); got != loads+1 {
		t.Fatalf("loads = %d, want %d", got, loads+1)
	}
}

func TestBusyActorIsNotPassivated(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{kind: KindOptions{IdleTimeout: 10 * time.Millisecond}})
	env.store.gate(true)
	a := env.async(t, "x", add{n: 1})
	env.store.waitEntered(t)

	time.Sleep(100 * time.Millisecond) // ten idle timeouts with an append in flight
	if n := env.active(t); n != 1 {
		t.Fatalf("active = %d while an append is in flight, want 1", n)
	}
	env.store.release <- nil
	if o := recv(t, a); o.err != nil {
		t.Fatal(o.err)
	}
	eventually(t, "passivation once idle", func() bool { return env.active(t) == 0 })
}

// stallOnStop is a kind's own actor around the journal that holds its Stopping until released,
// which widens the window in which the parent has asked it to stop but it has not terminated.
type stallOnStop struct {
	*Journal[*tally]
	stopping chan<- struct{}
	release  <-chan struct{}
}

func (s *stallOnStop) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Stopping); ok {
		s.stopping <- struct{}{}
		<-s.release
	}
	s.Journal.Receive(ctx)
}

func TestMessagesDuringStopAreNotLost(t *testing.T) {
	stopping, release := make(chan struct{}, 4), make(chan struct{}, 4)
	env := newTallyEnv(t, nil, tallyOpts{
		kind: KindOptions{IdleTimeout: 20 * time.Millisecond},
		wrap: func(j *Journal[*tally]) actor.Actor {
			return &stallOnStop{Journal: j, stopping: stopping, release: release}
		},
	})
	env.mustRequest(t, "x", add{n: 1})
	select {
	case <-stopping:
	case <-time.After(5 * time.Second):
		t.Fatal("not passivated")
	}

	// The old activation is stopping: these wait in the parent, in order (Send enqueues before
	// the Request's goroutine starts).
	env.kind.Send("x", add{n: 2})
	b := env.async(t, "x", add{n: 3})
	time.Sleep(20 * time.Millisecond)
	notYet(t, "old activation still stopping", b)
	if n := env.active(t); n != 1 {
		t.Fatalf("active = %d, want 1 (one activation per id)", n)
	}
	close(release) // this stop and every later one

	if o := recv(t, b); o.err != nil || o.res.Revision != 2 || o.res.Reply != int64(6) {
		t.Fatalf("b = %+v, want revision 2, total 6", o)
	}
}

func TestCrashRestartsAndReloads(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.mustRequest(t, "x", add{n: 5})
	loads := env.store.loads("tally-x")

	if _, err := env.request(t, "x", boom{}); !errors.Is(err, ErrCrashed) {
		t.Fatalf("error = %v, want %v", err, ErrCrashed)
	}
	if got := env.total(t, "x"); got != 5 {
		t.Fatalf("total after restart = %d, want 5", got)
	}
	if got := env.store.loads("tally-x"); got != loads+1 {
		t.Fatalf("loads = %d, want %d (the restart reloads)", got, loads+1)
	}
}

func TestCrashAnswersInFlightAndFailsQueued(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.store.gate(true)
	env.drainDecided()
	a := env.async(t, "x", add{n: 1}) // in flight
	env.store.waitEntered(t)
	b := env.async(t, "x", add{n: 2}) // queued behind a
	env.waitDecided(t, 2)
	c := env.async(t, "x", boom{})
	env.waitDecided(t, 1)
	notYet(t, "restart waits for the append in flight", a, b)

	env.store.release <- nil
	if o := recv(t, a); o.err != nil || o.res.Revision != 0 {
		t.Fatalf("a (durable before the crash) = %+v", o)
	}
	if o := recv(t, b); !errors.Is(o.err, ErrCrashed) {
		t.Fatalf("b: error = %v, want %v", o.err, ErrCrashed)
	}
	if o := recv(t, c); !errors.Is(o.err, ErrCrashed) {
		t.Fatalf("c: error = %v, want %v", o.err, ErrCrashed)
	}
	env.store.gate(false)
	if got := env.total(t, "x"); got != 1 {
		t.Fatalf("total = %d, want 1", got)
	}
}

func TestUnknownIDIsAnsweredWithError(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	start := time.Now()
	if _, err := env.request(t, "bad-1", get{}); !errors.Is(err, errBadID) {
		t.Fatalf("error = %v, want %v", err, errBadID)
	}
	if time.Since(start) > time.Second {
		t.Fatal("the error took a timeout to arrive")
	}
	if n := env.active(t); n != 0 {
		t.Fatalf("active = %d, want 0", n)
	}
}

func TestSendIsFireAndForget(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.kind.Send("x", add{n: 3})
	env.kind.Send("x", add{n: 4})
	if got := env.total(t, "x"); got != 7 { // get waits for the durable sends ahead of it
		t.Fatalf("total = %d, want 7", got)
	}
}

func TestRequestEndsWithContext(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.store.gate(true)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := env.kind.Request(ctx, "x", add{n: 1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want %v", err, context.DeadlineExceeded)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	if _, err := env.kind.Request(ctx2, "x", get{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want %v", err, context.Canceled)
	}
	env.store.release <- nil
}

func TestShutdownDrains(t *testing.T) {
	store := newGateStore()
	sys := NewSystem(Config{Logger: testLogger()})
	kind, err := sys.Kind("tally", tallyProducer(store, tallyOpts{snapshot: -1}, nil), KindOptions{IdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	env := &tallyEnv{sys: sys, kind: kind, store: store}
	env.mustRequest(t, "y", add{n: 1}) // an idle activation, stopped at once
	store.gate(true)
	a := env.async(t, "x", add{n: 1})
	store.waitEntered(t)
	b := env.async(t, "x", add{n: 2})
	time.Sleep(20 * time.Millisecond) // b reaches the actor's queue

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- sys.Shutdown(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("shutdown returned with an append in flight: %v", err)
	default:
	}
	store.release <- nil // a
	if n := store.waitEntered(t); n != 1 {
		t.Fatalf("drain append has %d events, want 1 (b)", n)
	}
	store.release <- nil // b
	for _, ch := range []<-chan outcome{a, b} {
		if o := recv(t, ch); o.err != nil {
			t.Fatalf("drained command failed: %v", o.err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not return")
	}
	if _, err := env.request(t, "x", get{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("after shutdown: %v, want %v", err, ErrStopped)
	}
	if _, err := sys.Kind("late", tallyProducer(store, tallyOpts{}, nil), KindOptions{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("kind after shutdown: %v", err)
	}
}

func TestShutdownGivesUpAtDeadline(t *testing.T) {
	store := newGateStore()
	sys := NewSystem(Config{Logger: testLogger()})
	kind, err := sys.Kind("tally", tallyProducer(store, tallyOpts{snapshot: -1}, nil), KindOptions{IdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	env := &tallyEnv{sys: sys, kind: kind, store: store}
	store.gate(true)
	a := env.async(t, "x", add{n: 1})
	store.waitEntered(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := sys.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	// The forced stop still answers the append in flight with its true outcome.
	store.release <- nil
	if o := recv(t, a); o.err != nil {
		t.Fatalf("a = %+v", o)
	}
}
