package projections

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyproto-chat/server/events"
)

// subscriber is the part of events.Store the runner needs.
type subscriber interface {
	SubscribeAll(ctx context.Context, from events.Position, filter events.Filter, handle func(events.Batch) error) error
}

// Config of a Runner. Events and DB are required; every other zero value has a default.
type Config struct {
	Events      subscriber   // the event store to follow (an events.Store)
	DB          *DB          // where read models and checkpoints are written
	Projections []Projection // names must be distinct

	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not exported

	// Retries after a failure wait MinBackoff, doubling up to MaxBackoff, each with jitter
	// (between half and all of it) so projections failing together do not retry in lockstep.
	MinBackoff time.Duration // zero: 100ms
	MaxBackoff time.Duration // zero: 30s

	After func(time.Duration) <-chan time.Time // the clock backoffs wait on; nil: time.After
	Now   func() time.Time                     // for lag and error times; nil: time.Now
}

// Runner keeps read models up to date: one goroutine per projection follows the event store from
// the projection's checkpoint. It never gives up: failures are logged, counted, shown in Status
// and retried.
type Runner struct {
	workers []*worker
	byName  map[string]*worker
	running atomic.Bool
}

// NewRunner checks the configuration and registers the metrics. It starts nothing; call Run.
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.Events == nil || cfg.DB == nil {
		return nil, fmt.Errorf("new projection runner: Events and DB are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new projection runner: %w", err)
	}
	r := &Runner{byName: map[string]*worker{}}
	for _, p := range cfg.Projections {
		name := p.Name()
		if err := ValidateName(name); err != nil {
			return nil, fmt.Errorf("new projection runner: %w", err)
		}
		if r.byName[name] != nil {
			return nil, fmt.Errorf("new projection runner: projection %q registered twice", name)
		}
		filter := p.Filter()
		if err := filter.Validate(); err != nil {
			return nil, fmt.Errorf("new projection runner: projection %s: %w", name, err)
		}
		w := newWorker(&cfg, p, name, filter, m.forProjection(name))
		r.workers = append(r.workers, w)
		r.byName[name] = w
	}
	return r, nil
}

// Run applies events to every projection until ctx ends, then returns nil once all of them have
// stopped. A batch in flight is either committed with its checkpoint or not at all, so stopping
// at any moment is safe. Failures are retried, not returned; Run returns an error only if the
// runner is already running. Cancel ctx and wait for Run before closing the DB or the store.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	var wg sync.WaitGroup
	for _, w := range r.workers {
		wg.Go(func() { w.run(ctx) })
	}
	wg.Wait()
	return nil
}

// Rebuild drops the named projection's read model and checkpoint and applies every event again
// from position 0. It returns once the projection has caught up with the store, or when ctx ends
// (the rebuild itself then stops only if this call was doing it, see below).
//
// A projection is only ever written by one goroutine, whoever holds it: if Run is driving it,
// Rebuild hands the request to that goroutine, which stops its subscription, wipes and starts
// again from 0, so the two never interleave; if ctx ends first, the rebuild still completes there.
// Otherwise (the `projections rebuild NAME` command, with no server running) Rebuild does the
// work in the calling goroutine, and a Run started meanwhile waits for it.
func (r *Runner) Rebuild(ctx context.Context, name string) error {
	w := r.byName[name]
	if w == nil {
		return fmt.Errorf("rebuild %q: %w", name, ErrUnknownProjection)
	}
	reply := make(chan error, 1)
	select {
	case w.own <- struct{}{}:
		defer func() { <-w.own }()
		return w.rebuildHere(ctx)
	case w.requests <- reply:
		select {
		case err := <-reply:
			return err
		case <-ctx.Done():
			return fmt.Errorf("rebuild %s: waiting for the runner: %w", name, ctx.Err())
		}
	case <-ctx.Done():
		return fmt.Errorf("rebuild %s: %w", name, ctx.Err())
	}
}

// Status describes one projection, for /readyz and operators.
type Status struct {
	Name     string
	Version  uint64          // read-model schema version (Versioned), 0 if none
	Position events.Position // checkpoint: global position of the last event applied
	// CaughtUp is true once the projection has applied everything the store held when it
	// subscribed; it turns false again only for a rebuild. A failure does not clear it (that
	// would make readiness flap on a transient store error); Failures says whether it is failing.
	CaughtUp    bool
	Rebuilding  bool
	Applied     uint64    // events applied since the runner was created
	Failures    int       // consecutive failed attempts; 0 when healthy
	LastError   error     // the most recent failure, kept after recovery; an *ApplyError names the event
	LastErrorAt time.Time // zero if it never failed
}

// Status reports every projection, in the order they were configured.
func (r *Runner) Status() []Status {
	out := make([]Status, len(r.workers))
	for i, w := range r.workers {
		out[i] = w.status()
	}
	return out
}

// WaitFor returns once projection name has applied the log up to pos: a request that must see
// its own earlier writes waits here for their position.
func (r *Runner) WaitFor(ctx context.Context, name string, pos events.Position) error {
	w, ok := r.byName[name]
	if !ok {
		return fmt.Errorf("wait for projection %q: no such projection", name)
	}
	for {
		done, ch := w.reached(pos)
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projection %s still behind position %d: %w", name, pos, ctx.Err())
		case <-ch:
		}
	}
}

// CaughtUp reports whether every projection has caught up: what /readyz waits for.
func (r *Runner) CaughtUp() bool {
	for _, w := range r.workers {
		if !w.status().CaughtUp {
			return false
		}
	}
	return true
}

// ApplyError is a projection's failure to apply one event. The event is retried, never skipped,
// so the same ApplyError showing up in Status again and again marks a poison event.
type ApplyError struct {
	Projection string
	Stream     string
	Revision   uint64
	Position   events.Position
	Type       string
	Err        error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("projection %s: apply %s@%d (%s) at position %d: %v",
		e.Projection, e.Stream, e.Revision, e.Type, e.Position, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }
