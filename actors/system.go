package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// Config configures a System. The zero value is usable.
type Config struct {
	// Logger receives this package's records and protoactor's. Nil: records are discarded.
	Logger *slog.Logger
	// RuntimeLogLevel drops protoactor's own records below it. Nil: slog.LevelWarn, because
	// protoactor logs every dead letter and every supervision step at Info and Debug.
	RuntimeLogLevel slog.Leveler
}

// System owns one protoactor ActorSystem and the kinds registered on it.
type System struct {
	actors *actor.ActorSystem
	log    *slog.Logger

	mu     sync.Mutex
	kinds  []*Kind
	names  map[string]bool
	closed bool
}

// NewSystem starts an actor system. Stop it with Shutdown.
func NewSystem(cfg Config) *System {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	level := cfg.RuntimeLogLevel
	if level == nil {
		level = slog.LevelWarn
	}
	runtime := slog.New(minLevel{min: level, next: log.Handler()}).With("lib", "protoactor")
	as := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return runtime }),
		// A request to a stopped actor is answered with ErrDeadLetter; logging it as well is noise.
		actor.WithDeadLetterRequestLogging(false),
	)
	return &System{actors: as, log: log, names: map[string]bool{}}
}

// Actors is the underlying protoactor system, for actors that are not spawned through a Kind
// (for example one session actor per gateway connection).
func (s *System) Actors() *actor.ActorSystem { return s.actors }

// Shutdown drains every kind: each activation finishes the messages already in its mailbox,
// its appends in flight complete and are answered, then it stops. Messages arriving meanwhile
// are answered with ErrStopped. If ctx ends first, the remaining kinds are stopped at once
// (their appends in flight are still answered; queued commands fail with ErrStopped) and
// Shutdown returns without waiting for them.
func (s *System) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	kinds := s.kinds
	s.mu.Unlock()

	for _, k := range kinds {
		k.closed.Store(true)
		s.actors.Root.Send(k.pid, &stopKind{})
	}
	var late []error
	for _, k := range kinds {
		select {
		case <-k.done:
		case <-ctx.Done():
			s.actors.Root.Stop(k.pid)
			late = append(late, fmt.Errorf("kind %s still draining", k.name))
		}
	}
	s.actors.Shutdown()
	if len(late) > 0 {
		return fmt.Errorf("shutdown: %w: %w", errors.Join(late...), ctx.Err())
	}
	return nil
}

// minLevel keeps protoactor's records at or above min, whatever the shared handler accepts.
type minLevel struct {
	min  slog.Leveler
	next slog.Handler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.next.Enabled(ctx, l)
}

func (h minLevel) Handle(ctx context.Context, r slog.Record) error { return h.next.Handle(ctx, r) }

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{min: h.min, next: h.next.WithAttrs(as)}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{min: h.min, next: h.next.WithGroup(name)}
}
