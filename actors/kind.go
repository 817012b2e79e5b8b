package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Producer builds the actor for one id of a kind. The parent calls it on the first message for
// an id and again on every restart of that activation. An error (an id that cannot exist) is
// answered to the sender; nothing is spawned.
//
// An actor that implements Busy() bool is passivated or drained only once it reports false;
// Journal does, so a kind that embeds one never stops with an append in flight or queued.
type Producer func(id string) (actor.Actor, error)

// KindOptions tune a kind. Zero values pick the documented defaults.
type KindOptions struct {
	// IdleTimeout is how long an activation may go without a message before it is passivated.
	// Zero: 10 minutes. Negative: never.
	IdleTimeout time.Duration
	// RequestTimeout bounds Request when its context has no deadline. Zero: 10 seconds.
	RequestTimeout time.Duration
	// MaxRestarts within RestartWindow before a crashing activation is stopped for good (the
	// next message spawns a fresh one). Zero: 10 within 10 seconds.
	MaxRestarts   int
	RestartWindow time.Duration
}

func (o KindOptions) withDefaults() KindOptions {
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.MaxRestarts <= 0 {
		o.MaxRestarts = 10
	}
	if o.RestartWindow <= 0 {
		o.RestartWindow = 10 * time.Second
	}
	return o
}

// Kind is a family of actors addressed by id (every channel, every group, ...), all children of
// one supervising parent actor.
type Kind struct {
	name    string
	produce Producer
	opts    KindOptions
	log     *slog.Logger
	root    *actor.RootContext
	pid     *actor.PID

	closed   atomic.Bool
	done     chan struct{} // closed when the parent has stopped
	doneOnce sync.Once
}

// Kind registers a kind and starts its parent actor. Names are unique within a System.
func (s *System) Kind(name string, produce Producer, opts KindOptions) (*Kind, error) {
	if name == "" || produce == nil {
		return nil, errors.New("actors: a kind needs a name and a producer")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("kind %s: %w", name, ErrStopped)
	}
	if s.names[name] {
		return nil, fmt.Errorf("kind %s is already registered", name)
	}
	k := &Kind{
		name:    name,
		produce: produce,
		opts:    opts.withDefaults(),
		log:     s.log.With("kind", name),
		root:    s.actors.Root,
		done:    make(chan struct{}),
	}
	pid, err := s.actors.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newParent(k) }), "kind-"+name)
	if err != nil {
		return nil, fmt.Errorf("kind %s: spawn parent: %w", name, err)
	}
	k.pid = pid
	s.names[name] = true
	s.kinds = append(s.kinds, k)
	return k, nil
}

// Name is the kind's name.
func (k *Kind) Name() string { return k.name }

// Request delivers msg to the activation for id (spawning it if needed) and waits for its reply.
// The wait ends with ctx (its deadline, or RequestTimeout when it has none). A reply that is an
// error is returned as the error; a Journal answers commands with *Result.
func (k *Kind) Request(ctx context.Context, id string, msg any) (any, error) {
	return k.ask(ctx, &deliver{id: id, msg: msg}, id)
}

// Send delivers msg to the activation for id without waiting; nothing is answered.
func (k *Kind) Send(id string, msg any) {
	if k.closed.Load() {
		return
	}
	k.root.Send(k.pid, &deliver{id: id, msg: msg})
}

// Active counts the live activations of the kind, including those being stopped.
func (k *Kind) Active(ctx context.Context) (int, error) {
	res, err := k.ask(ctx, &countActive{}, "")
	if err != nil {
		return 0, err
	}
	n, _ := res.(int)
	return n, nil
}

func (k *Kind) ask(ctx context.Context, msg any, id string) (any, error) {
	if k.closed.Load() {
		return nil, fmt.Errorf("%s %q: %w", k.name, id, ErrStopped)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.opts.RequestTimeout)
		defer cancel()
	}
	// A one-shot process instead of protoactor's Future: Future writes its result without a
	// lock, so a reply racing its timeout is a data race, and it cannot end early with ctx.
	reg := k.root.ActorSystem().ProcessRegistry
	box := make(replyBox, 1)
	pid, _ := reg.Add(box, "request"+reg.NextId())
	defer reg.Remove(pid)
	k.root.RequestWithCustomSender(k.pid, msg, pid)

	select {
	case res := <-box:
		switch r := res.(type) {
		case *actor.DeadLetterResponse: // the parent is gone
			return nil, fmt.Errorf("%s %q: %w", k.name, id, ErrStopped)
		case error:
			return nil, r
		}
		return res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s %q: no reply: %w", k.name, id, ctx.Err())
	}
}

// replyBox receives the one reply to a Request; anything after the first is dropped.
type replyBox chan any

func (b replyBox) SendUserMessage(_ *actor.PID, m any) {
	_, msg, _ := actor.UnwrapEnvelope(m)
	select {
	case b <- msg:
	default:
	}
}

func (b replyBox) SendSystemMessage(*actor.PID, any) {}
func (b replyBox) Stop(*actor.PID)                   {}

func (k *Kind) finish() { k.doneOnce.Do(func() { close(k.done) }) }

// Messages between a Kind, its parent and the activations.
type (
	// deliver asks the parent to route msg to the activation for id.
	deliver struct {
		id  string
		msg any
	}
	// idle is an activation telling its parent it has had nothing to do for IdleTimeout.
	idle struct{ who *actor.PID }
	// deactivate tells an activation to stop as soon as it is not busy. It is a user message,
	// so everything the parent forwarded before it is handled first.
	deactivate struct{}
	// stopKind tells the parent to drain every activation, then stop itself.
	stopKind    struct{}
	countActive struct{}
)
