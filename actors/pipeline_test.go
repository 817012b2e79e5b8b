package actors

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/polyproto-chat/server/events"
)

func TestPipeliningDecidesAgainstPendingAndBatches(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{limit: 10})
	env.store.gate(true)

	a := env.async(t, "x", add{n: 4})
	if n := env.store.waitEntered(t); n != 1 {
		t.Fatalf("first append has %d events, want 1", n)
	}
	env.waitDecided(t, 1)

	// While a's append is in flight: b fits the pending total (4+4), c would not (8+4 > 10),
	// d does (8+1), and e reads the pending total.
	b := env.async(t, "x", add{n: 4})
	env.waitDecided(t, 1)
	c := env.async(t, "x", add{n: 4})
	if o := recv(t, c); !errors.Is(o.err, errOverLimit) {
		t.Fatalf("c: error = %v, want %v (decided against pending state, answered at once)", o.err, errOverLimit)
	}
	env.waitDecided(t, 1)
	d := env.async(t, "x", add{n: 1})
	env.waitDecided(t, 1)
	e := env.async(t, "x", get{})
	env.waitDecided(t, 1)
	notYet(t, "first append in flight", a, b, d, e)

	env.store.release <- nil
	if o := recv(t, a); o.err != nil || o.res.Revision != 0 || o.res.Reply != int64(4) {
		t.Fatalf("a = %+v", o)
	}
	// b and d go out together; nobody is answered before that append completes.
	if n := env.store.waitEntered(t); n != 2 {
		t.Fatalf("second append has %d events, want 2 (b and d)", n)
	}
	notYet(t, "second append in flight", b, d, e)
	env.store.release <- nil

	ob, od, oe := recv(t, b), recv(t, d), recv(t, e)
	if ob.err != nil || ob.res.Revision != 1 || ob.res.Reply != int64(8) {
		t.Fatalf("b = %+v", ob)
	}
	if od.err != nil || od.res.Revision != 2 || od.res.Reply != int64(9) {
		t.Fatalf("d = %+v", od)
	}
	if oe.err != nil || oe.res.Reply != int64(9) || oe.res.Revision != 2 || oe.res.Events != 0 {
		t.Fatalf("e = %+v", oe)
	}
	if ob.res.Position != od.res.Position || ob.res.Position == 0 {
		t.Fatalf("positions b=%d d=%d, want the same append's position", ob.res.Position, od.res.Position)
	}
	if got := env.store.appendSizes(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("appends = %v, want [1 2]", got)
	}
}

func TestPipeliningCapsEventsPerAppend(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{maxBatch: 3})
	env.store.gate(true)
	first := env.async(t, "x", add{n: 1})
	env.store.waitEntered(t)
	env.drainDecided()
	var rest []<-chan outcome
	for range 7 {
		rest = append(rest, env.async(t, "x", add{n: 1}))
	}
	env.waitDecided(t, 7)
	env.store.release <- nil
	recv(t, first)
	for _, want := range []int{3, 3, 1} {
		if n := env.store.waitEntered(t); n != want {
			t.Fatalf("append of %d events, want %d", n, want)
		}
		env.store.release <- nil
	}
	for _, ch := range rest {
		if o := recv(t, ch); o.err != nil {
			t.Fatal(o.err)
		}
	}
}

func TestAppendFailureFailsWaitingCommandsAndReloads(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.mustRequest(t, "x", add{n: 10}) // revision 0
	env.store.gate(true)
	env.drainDecided()

	a := env.async(t, "x", add{n: 1})
	env.store.waitEntered(t)
	b := env.async(t, "x", add{n: 2})
	c := env.async(t, "x", note{text: "queued"})
	env.waitDecided(t, 3)

	errDisk := errors.New("disk on fire")
	before := env.store.readCount("tally-x")
	env.store.release <- errDisk
	for name, ch := range map[string]<-chan outcome{"a": a, "b": b, "c": c} {
		if o := recv(t, ch); !errors.Is(o.err, errDisk) {
			t.Fatalf("%s: error = %v, want %v", name, o.err, errDisk)
		}
	}
	env.store.gate(false)
	// Reloaded: the failed events are gone, the next command lands right after revision 0.
	if r := env.mustRequest(t, "x", add{n: 5}); r.Revision != 1 || r.Reply != int64(15) {
		t.Fatalf("after failure: %+v, want revision 1, total 15", r)
	}
	if env.store.readCount("tally-x") == before {
		t.Fatal("the actor did not reload after the failure")
	}
}

func TestWrongExpectedRevisionReloads(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.mustRequest(t, "x", add{n: 1})
	appendDirect(t, env.store.Store, "tally-x", wrapperspb.Int64(10)) // another writer

	if _, err := env.request(t, "x", add{n: 2}); !errors.Is(err, events.ErrWrongExpectedRevision) {
		t.Fatalf("error = %v, want %v", err, events.ErrWrongExpectedRevision)
	}
	r := env.mustRequest(t, "x", add{n: 3})
	if r.Revision != 2 || r.Reply != int64(14) {
		t.Fatalf("after reload: %+v, want revision 2, total 14", r)
	}
}
