package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// activation wraps the kind's actor for one id. It survives restarts (protoactor calls
// incarnate again for each one), so a drain that began before a crash still completes after it.
type activation struct {
	id        string
	produce   Producer
	idleAfter time.Duration
	next      actor.Actor // built by the parent for the first incarnation, so id errors surface there
	inner     actor.Actor
	draining  bool
}

func (a *activation) incarnate() actor.Actor {
	if a.next != nil {
		a.inner, a.next = a.next, nil
		return a
	}
	inner, err := a.produce(a.id)
	if err != nil {
		inner = broken{err: err}
	}
	a.inner = inner
	return a
}

func (a *activation) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		a.inner.Receive(ctx)
		if a.idleAfter > 0 {
			ctx.SetReceiveTimeout(a.idleAfter)
		}
	case *actor.ReceiveTimeout:
		if a.draining {
			return
		}
		if !a.busy() {
			ctx.Send(ctx.Parent(), &idle{who: ctx.Self()})
		}
		// protoactor disarms the timer when it fires; a busy actor, or one whose report is
		// ignored, must be able to report again.
		ctx.SetReceiveTimeout(a.idleAfter)
		return
	case *actor.Restarting, *actor.Stopping, *actor.Stopped:
		a.inner.Receive(ctx)
		return
	case *deactivate:
		a.draining = true
	default:
		a.inner.Receive(ctx)
	}
	// Stop is a system message: it overtakes user messages still queued, which is why it is
	// sent only once nothing is in flight. The parent forwards nothing after deactivate.
	if a.draining && !a.busy() {
		ctx.Stop(ctx.Self())
	}
}

func (a *activation) busy() bool {
	b, ok := a.inner.(interface{ Busy() bool })
	return ok && b.Busy()
}

// broken stands in for an actor whose producer failed on a restart: it answers every request
// with the error until it is passivated.
type broken struct{ err error }

func (b broken) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case actor.SystemMessage, actor.AutoReceiveMessage, *actor.ReceiveTimeout:
		return
	}
	reply(ctx, ctx.Sender(), b.err)
}
