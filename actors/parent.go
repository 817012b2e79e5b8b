package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
)

// parent owns every activation of one kind. It is the only place that maps ids to PIDs, so it
// is also where "one activation per id" is enforced: while an activation is being stopped,
// messages for its id wait here until its Terminated arrives.
type parent struct {
	k        *Kind
	strategy actor.SupervisorStrategy
	children map[string]*child // by id
	byPID    map[string]*child // by PID.Id, for Terminated and Failure
	gen      uint64            // makes every activation's PID unique, so no stale PID reaches a newer one
	closing  bool
}

type child struct {
	id       string
	pid      *actor.PID
	stopping bool      // deactivate sent; no message is forwarded to pid any more
	buffered []pending // messages for id that arrived while stopping
}

type pending struct {
	msg    any
	sender *actor.PID
}

func newParent(k *Kind) *parent {
	return &parent{
		k: k,
		strategy: actor.NewOneForOneStrategy(k.opts.MaxRestarts, k.opts.RestartWindow,
			func(any) actor.Directive { return actor.RestartDirective }),
		children: map[string]*child{},
		byPID:    map[string]*child{},
	}
}

func (p *parent) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *deliver:
		p.deliver(ctx, m.id, m.msg, ctx.Sender())
	case *idle:
		p.passivate(ctx, m.who)
	case *actor.Terminated:
		p.terminated(ctx, m.Who)
	case *stopKind:
		p.drain(ctx)
	case *countActive:
		ctx.Respond(len(p.children))
	case *actor.Stopped:
		p.k.finish()
	}
}

func (p *parent) deliver(ctx actor.Context, id string, msg any, sender *actor.PID) {
	if p.closing {
		reply(ctx, sender, fmt.Errorf("%s %q: %w", p.k.name, id, ErrStopped))
		return
	}
	c := p.children[id]
	if c == nil {
		var err error
		if c, err = p.spawn(ctx, id); err != nil {
			p.k.log.Debug("not spawned", "id", id, "error", err)
			reply(ctx, sender, err)
			return
		}
	}
	if c.stopping {
		c.buffered = append(c.buffered, pending{msg: msg, sender: sender})
		return
	}
	forward(ctx, c.pid, msg, sender)
}

func (p *parent) spawn(ctx actor.Context, id string) (*child, error) {
	inner, err := p.k.produce(id)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", p.k.name, id, err)
	}
	a := &activation{id: id, produce: p.k.produce, idleAfter: p.k.opts.IdleTimeout, next: inner}
	p.gen++
	pid, err := ctx.SpawnNamed(actor.PropsFromProducer(a.incarnate), fmt.Sprintf("%s$%d", id, p.gen))
	if err != nil {
		return nil, fmt.Errorf("%s %q: spawn: %w", p.k.name, id, err)
	}
	c := &child{id: id, pid: pid}
	p.children[id] = c
	p.byPID[pid.Id] = c
	return c, nil
}

// passivate answers an activation's idle report. The report may be stale (a message was
// forwarded after it was sent); the activation handles that message before deactivate, and
// stops only when it is no longer busy.
func (p *parent) passivate(ctx actor.Context, who *actor.PID) {
	c := p.byPID[who.Id]
	if c == nil || c.stopping {
		return
	}
	c.stopping = true
	p.k.log.Debug("passivating", "id", c.id)
	ctx.Send(c.pid, &deactivate{})
}

func (p *parent) terminated(ctx actor.Context, who *actor.PID) {
	c := p.byPID[who.Id]
	if c == nil {
		return
	}
	delete(p.byPID, who.Id)
	if p.children[c.id] == c {
		delete(p.children, c.id)
	}
	if len(c.buffered) > 0 {
		p.reactivate(ctx, c)
	}
	if p.closing && len(p.children) == 0 {
		ctx.Stop(ctx.Self())
	}
}

// reactivate hands the messages that waited for the old activation to a fresh one, in order.
func (p *parent) reactivate(ctx actor.Context, old *child) {
	msgs := old.buffered
	old.buffered = nil
	if p.closing {
		failAll(ctx, msgs, fmt.Errorf("%s %q: %w", p.k.name, old.id, ErrStopped))
		return
	}
	c, err := p.spawn(ctx, old.id)
	if err != nil {
		failAll(ctx, msgs, err)
		return
	}
	for _, m := range msgs {
		forward(ctx, c.pid, m.msg, m.sender)
	}
}

func (p *parent) drain(ctx actor.Context) {
	p.closing = true
	for _, c := range p.children {
		failAll(ctx, c.buffered, fmt.Errorf("%s %q: %w", p.k.name, c.id, ErrStopped))
		c.buffered = nil
		if !c.stopping {
			c.stopping = true
			ctx.Send(c.pid, &deactivate{})
		}
	}
	if len(p.children) == 0 {
		ctx.Stop(ctx.Self())
	}
}

// HandleFailure makes the parent its children's supervisor (protoactor prefers an actor that
// implements SupervisorStrategy over its props). Before restarting the child it answers the
// message that crashed it, so that requester gets an error instead of a timeout.
func (p *parent) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, who *actor.PID, rs *actor.RestartStatistics, reason, message any) {
	id := who.Id
	if c := p.byPID[who.Id]; c != nil {
		id = c.id
	}
	p.k.log.Warn("actor crashed; restarting", "id", id, "reason", fmt.Sprint(reason))
	if env, ok := message.(*actor.MessageEnvelope); ok && env.Sender != nil {
		sys.Root.Send(env.Sender, fmt.Errorf("%s %q: %w: %v", p.k.name, id, ErrCrashed, reason))
	}
	p.strategy.HandleFailure(sys, sup, who, rs, reason, message)
}

// forward keeps the original sender, so the activation replies straight to the requester.
func forward(ctx actor.Context, pid *actor.PID, msg any, sender *actor.PID) {
	if sender == nil {
		ctx.Send(pid, msg)
		return
	}
	ctx.RequestWithCustomSender(pid, msg, sender)
}

// reply answers sender if there is one; fire-and-forget messages have none.
func reply(ctx actor.Context, sender *actor.PID, msg any) {
	if sender != nil {
		ctx.Send(sender, msg)
	}
}

func failAll(ctx actor.Context, msgs []pending, err error) {
	for _, m := range msgs {
		reply(ctx, m.sender, err)
	}
}
