package actors

import "github.com/asynkron/protoactor-go/actor"

// warmDispatcher runs actor mailboxes on a few long-lived goroutines when one of them is idle,
// and on a new goroutine otherwise. protoactor's default starts a goroutine for every mailbox
// run; a busy actor (a session getting a dispatch every few milliseconds, a channel taking a
// message) then starts a goroutine with a small stack for each run and grows it again every
// time, which was 7 % of the server's CPU under chat load. Warm workers keep their grown
// stacks. Falling back to `go` means a worker blocked in a long call never delays anyone.
type warmDispatcher struct {
	jobs       chan func() // unbuffered: a send succeeds only when a worker waits
	done       chan struct{}
	throughput int
}

func newWarmDispatcher(workers, throughput int) *warmDispatcher {
	d := &warmDispatcher{jobs: make(chan func()), done: make(chan struct{}), throughput: throughput}
	for range workers {
		go d.work()
	}
	return d
}

func (d *warmDispatcher) work() {
	for {
		select {
		case fn := <-d.jobs:
			fn()
		case <-d.done:
			return
		}
	}
}

// Schedule is actor.Dispatcher's.
func (d *warmDispatcher) Schedule(fn func()) {
	select {
	case d.jobs <- fn:
	default:
		go fn()
	}
}

// Throughput is how many messages a mailbox run handles before yielding (protoactor's default).
func (d *warmDispatcher) Throughput() int { return d.throughput }

// stop ends the workers; later runs get goroutines of their own.
func (d *warmDispatcher) stop() { close(d.done) }

var _ actor.Dispatcher = (*warmDispatcher)(nil)
