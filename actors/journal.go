package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/polyproto-chat/server/events"
)

// Journal is the event-sourced core of an actor kind: an actor.Actor on its own, or embedded in
// a kind's actor that handles a few messages itself and passes the rest to Journal.Receive.
//
// Every message that is not a lifecycle message is a command for Model.Decide. Commands are
// decided against the pending state (durable events plus those decided but not yet durable),
// so a busy actor never waits for the store between commands: while one append is in flight,
// the events of the commands behind it queue up and go out together in the next append.
// Each command is answered once the append carrying its events has succeeded.
type Journal[S any] struct {
	cfg        JournalConfig[S]
	snapStream string
	log        *slog.Logger

	state         S    // pending state: head plus every event in inflight and queued
	loaded        bool // false after a failed load; the next command retries it
	head          head // the last durable event
	sinceSnapshot int  // durable events not covered by the latest snapshot

	inflight *batch   // the one append under way, or nil
	queued   []*batch // decided, waiting for inflight; each holds at most MaxBatch events

	snapshotting atomic.Bool // a snapshot write is under way; skip the next one rather than race it
}

// NewJournal returns the journal of one activation.
func NewJournal[S any](cfg JournalConfig[S]) *Journal[S] {
	cfg = cfg.withDefaults()
	return &Journal[S]{
		cfg:        cfg,
		snapStream: "snapshot-" + cfg.Stream,
		log:        cfg.Logger.With("stream", cfg.Stream),
	}
}

// head is where the stream's durable part ends.
type head struct {
	exists   bool
	revision uint64
	position events.Position
}

func (h head) expected() events.ExpectedRevision {
	if !h.exists {
		return events.NoStream{}
	}
	return events.Exact(h.revision)
}

// batch is one append: the events of one or more commands, and who waits for them.
type batch struct {
	evs      []events.Event
	msgs     []proto.Message
	waiters  []waiter
	expected events.ExpectedRevision
	snapshot *anypb.Any // state after the batch's last event, when a snapshot is due

	// Written by the appending goroutine before done is closed.
	res  events.AppendResult
	err  error
	done chan struct{}
}

type waiter struct {
	sender *actor.PID
	reply  any
	last   int // index in evs of the command's last event, or of the last event before it
	n      int // events of the command
}

// appended reports a finished append to the actor that started it.
type appended struct{ b *batch }

// Busy reports whether an append is in flight or queued; the Kind passivates only when it is not.
func (j *Journal[S]) Busy() bool { return j.inflight != nil || len(j.queued) > 0 }

// Receive handles lifecycle messages, append results and commands.
func (j *Journal[S]) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if err := j.reload(); err != nil {
			j.log.Warn("load failed; the next command retries", "error", err)
		}
	case *appended:
		// Otherwise it is an earlier incarnation's append, already answered by its drain.
		if m.b == j.inflight {
			j.inflight = nil
			j.settle(ctx, m.b, false)
		}
	case *actor.Restarting:
		j.drain(ctx, ErrCrashed)
	case *actor.Stopping:
		j.drain(ctx, ErrStopped)
	case actor.SystemMessage, actor.AutoReceiveMessage, actor.AutoRespond, *actor.ReceiveTimeout:
	default:
		j.handle(ctx, m, ctx.Sender())
	}
}

func (j *Journal[S]) handle(ctx actor.Context, cmd any, sender *actor.PID) {
	if !j.loaded {
		if err := j.reload(); err != nil {
			reply(ctx, sender, err)
			return
		}
	}
	msgs, rep, err := j.cfg.Model.Decide(j.state, cmd)
	if err != nil {
		reply(ctx, sender, err)
		return
	}
	if len(msgs) == 0 {
		j.await(ctx, sender, rep)
		return
	}
	evs, err := j.envelope(cmd, msgs)
	if err != nil {
		reply(ctx, sender, err)
		return
	}
	for _, m := range msgs {
		s, err := j.cfg.Model.Apply(j.state, m)
		if err != nil {
			// The pending state is half updated and Decide disagrees with Apply: a bug that only a
			// restart (which reloads durable state) can clear. The parent answers this command.
			panic(fmt.Sprintf("%s: apply %T that Decide produced: %v", j.cfg.Stream, m, err))
		}
		j.state = s
	}
	b := j.tail(len(evs))
	b.evs = append(b.evs, evs...)
	b.msgs = append(b.msgs, msgs...)
	if sender != nil {
		b.waiters = append(b.waiters, waiter{sender: sender, reply: rep, last: len(b.evs) - 1, n: len(evs)})
	}
	if j.inflight == nil {
		j.flush(ctx)
	}
}

// envelope serializes a command's events and checks them the way the store will, so that one
// bad command is refused alone instead of failing the whole append it would share.
func (j *Journal[S]) envelope(cmd any, msgs []proto.Message) ([]events.Event, error) {
	var o Origin
	if j.cfg.Model.Origin != nil {
		o = j.cfg.Model.Origin(cmd)
	}
	evs := make([]events.Event, len(msgs))
	for i, m := range msgs {
		ev, err := events.NewEvent(m)
		if err == nil {
			ev.ActorFID, ev.SessionID, ev.CorrelationID, ev.CausationID, ev.Reason = o.ActorFID, o.SessionID, o.CorrelationID, o.CausationID, o.Reason
			err = ev.Validate()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: event %d of %T: %w", j.cfg.Stream, i, cmd, err)
		}
		evs[i] = ev
	}
	return evs, nil
}

// await answers a command that wrote nothing once everything decided before it is durable,
// because its reply may depend on those events.
func (j *Journal[S]) await(ctx actor.Context, sender *actor.PID, rep any) {
	if sender == nil {
		return
	}
	b := j.inflight
	if len(j.queued) > 0 {
		b = j.queued[len(j.queued)-1]
	}
	if b == nil {
		reply(ctx, sender, &Result{Reply: rep, Revision: j.head.revision, Position: j.head.position})
		return
	}
	b.waiters = append(b.waiters, waiter{sender: sender, reply: rep, last: len(b.evs) - 1})
}

// tail returns the queued batch that n more events join.
func (j *Journal[S]) tail(n int) *batch {
	if k := len(j.queued); k > 0 && len(j.queued[k-1].evs)+n <= j.cfg.MaxBatch {
		return j.queued[k-1]
	}
	b := &batch{}
	j.queued = append(j.queued, b)
	return b
}

// flush sends the first queued batch. The store call runs on its own goroutine and reports
// back with a message, so Receive never blocks on the store while commands keep arriving.
func (j *Journal[S]) flush(ctx actor.Context) {
	b := j.queued[0]
	j.queued[0] = nil
	j.queued = j.queued[1:]
	if len(j.queued) == 0 {
		j.queued = nil
	}
	b.expected = j.head.expected()
	b.done = make(chan struct{})
	if len(j.queued) == 0 && j.snapshotDue(len(b.evs)) {
		// Only now is the pending state exactly the state after b's last event.
		// Serialized now: later decisions mutate the state.
		snap, err := j.cfg.Model.Snapshot(j.state)
		if err == nil {
			b.snapshot, err = anypb.New(snap)
		}
		if err != nil {
			j.log.Warn("snapshot skipped", "error", err)
		}
	}
	j.inflight = b
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		actx, cancel := context.WithTimeout(context.Background(), j.cfg.AppendTimeout)
		b.res, b.err = j.cfg.Store.Append(actx, j.cfg.Stream, b.expected, b.evs...)
		cancel()
		close(b.done)
		root.Send(self, &appended{b: b})
	}()
}

// settle answers the waiters of a finished append. Unless the actor is going away (final), a
// success sends the next queued batch and a failure reloads the state from the store. A failure
// by timeout is ambiguous (the store may have written the batch after all): the commands are
// still failed, never acknowledged, and the reload shows what the stream really holds.
func (j *Journal[S]) settle(ctx actor.Context, b *batch, final bool) {
	if b.err != nil {
		err := fmt.Errorf("append %d events to %s at %s: %w", len(b.evs), j.cfg.Stream, b.expected, b.err)
		j.log.Warn("append failed; failing waiting commands and reloading", "revision", j.head.revision, "queued", len(j.queued), "error", b.err)
		// Every queued decision was made on top of b's events, so none of them stands either.
		for _, w := range b.waiters {
			reply(ctx, w.sender, err)
		}
		j.failQueued(ctx, err)
		if !final {
			if err := j.reload(); err != nil {
				j.log.Warn("reload failed; the next command retries", "error", err)
			}
		}
		return
	}
	first := b.res.Revision + 1 - uint64(len(b.evs))
	for _, w := range b.waiters {
		reply(ctx, w.sender, &Result{Reply: w.reply, Revision: first + uint64(w.last), Position: b.res.Position, Events: w.n})
	}
	j.head = head{exists: true, revision: b.res.Revision, position: b.res.Position}
	j.sinceSnapshot += len(b.evs)
	if b.snapshot != nil {
		j.sinceSnapshot = 0
		j.writeSnapshot(b.res.Revision, b.snapshot)
	}
	if j.cfg.Committed != nil {
		j.cfg.Committed(ctx, Commit{Stream: j.cfg.Stream, FirstRevision: first, Result: b.res, Events: b.msgs})
	}
	if !final && len(j.queued) > 0 {
		j.flush(ctx)
	}
}

// drain runs when the actor restarts or stops: it waits for the append in flight (bounded by
// AppendTimeout) so its commands get their true outcome, and fails the queued ones, which
// were never sent.
func (j *Journal[S]) drain(ctx actor.Context, reason error) {
	if b := j.inflight; b != nil {
		<-b.done
		j.inflight = nil
		j.settle(ctx, b, true)
	}
	j.failQueued(ctx, fmt.Errorf("%s: %w before the command was appended", j.cfg.Stream, reason))
}

func (j *Journal[S]) failQueued(ctx actor.Context, err error) {
	for _, q := range j.queued {
		for _, w := range q.waiters {
			reply(ctx, w.sender, err)
		}
	}
	j.queued = nil
}
