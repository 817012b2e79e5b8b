package actors

import (
	"context"
	"errors"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/polyproto-chat/server/events"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// appendDirect writes events to the store behind the actors' back.
func appendDirect(t *testing.T, s events.Store, stream string, msgs ...proto.Message) events.AppendResult {
	t.Helper()
	evs := make([]events.Event, len(msgs))
	for i, m := range msgs {
		ev, err := events.NewEvent(m)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	res, err := s.Append(context.Background(), stream, events.Any{}, evs...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLoadAtStartFoldsStream(t *testing.T) {
	store := newGateStore()
	appendDirect(t, store, "tally-a", wrapperspb.Int64(2), wrapperspb.String("x"), wrapperspb.Int64(5))
	env := newTallyEnv(t, store, tallyOpts{})

	if got := env.total(t, "a"); got != 7 {
		t.Fatalf("total = %d, want 7", got)
	}
	// The next command appends after the loaded events.
	if r := env.mustRequest(t, "a", add{n: 1}); r.Revision != 3 || r.Reply != int64(8) {
		t.Fatalf("result = %+v, want revision 3, reply 8", r)
	}
}

// snapshotAt writes a SnapshotTaken for stream at revision with the given state.
func snapshotAt(t *testing.T, s events.Store, stream string, revision uint64, st *tally, hash []byte) {
	t.Helper()
	m, err := snapshotTally(st)
	if err != nil {
		t.Fatal(err)
	}
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	appendDirect(t, s, "snapshot-"+stream, &eventsv1.SnapshotTaken{Revision: revision, Hash: hash, State: a})
}

func hashAt(t *testing.T, s events.Store, stream string, revision uint64) []byte {
	t.Helper()
	recs, err := s.ReadStream(context.Background(), stream, events.Forwards, revision, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := events.HashOf(&recs[0])
	return h[:]
}

func TestLoadAtStartUsesSnapshotAndTail(t *testing.T) {
	store := newGateStore()
	appendDirect(t, store, "tally-a", wrapperspb.Int64(1), wrapperspb.Int64(1), wrapperspb.Int64(1), wrapperspb.Int64(4), wrapperspb.Int64(5))
	// The snapshot claims 100 at revision 2, which the events do not add up to: a state of
	// 100+4+5 proves the actor started from the snapshot and read only the tail.
	snapshotAt(t, store, "tally-a", 2, &tally{total: 100}, hashAt(t, store, "tally-a", 2))
	before := store.readCount("tally-a")

	env := newTallyEnv(t, store, tallyOpts{})
	if got := env.total(t, "a"); got != 109 {
		t.Fatalf("total = %d, want 109 (snapshot 100 + tail 4 + 5)", got)
	}
	// Revision 2 (the snapshot's own event, to check its hash) and the tail 3, 4.
	if got := store.readCount("tally-a") - before; got != 3 {
		t.Fatalf("read %d events of the stream, want 3", got)
	}
	if r := env.mustRequest(t, "a", add{n: 1}); r.Revision != 5 {
		t.Fatalf("revision = %d, want 5", r.Revision)
	}
}

func TestLoadIgnoresSnapshotThatDoesNotMatch(t *testing.T) {
	store := newGateStore()
	appendDirect(t, store, "tally-a", wrapperspb.Int64(1), wrapperspb.Int64(2), wrapperspb.Int64(3))
	snapshotAt(t, store, "tally-a", 1, &tally{total: 100}, []byte("not the hash of revision 1"))
	snapshotAt(t, store, "tally-b", 7, &tally{total: 100}, nil) // stream tally-b does not exist

	env := newTallyEnv(t, store, tallyOpts{})
	if got := env.total(t, "a"); got != 6 {
		t.Fatalf("total = %d, want 6 (full replay)", got)
	}
	if got := env.total(t, "b"); got != 0 {
		t.Fatalf("total of b = %d, want 0", got)
	}
}

func TestSnapshotIsWrittenAndUsed(t *testing.T) {
	store := newGateStore()
	env := newTallyEnv(t, store, tallyOpts{snapshot: 3})
	for i := range 4 {
		env.mustRequest(t, "a", add{n: int64(i + 1)})
	}
	var snap *eventsv1.SnapshotTaken
	eventually(t, "snapshot", func() bool {
		recs, err := store.Store.ReadStream(context.Background(), "snapshot-tally-a", events.Backwards, events.End, 1)
		if err != nil {
			return false
		}
		m, err := events.Decode(&recs[0])
		if err != nil {
			t.Fatal(err)
		}
		snap = m.(*eventsv1.SnapshotTaken)
		return true
	})
	if snap.GetRevision() != 2 {
		t.Fatalf("snapshot at revision %d, want 2 (after 3 events)", snap.GetRevision())
	}
	inner, err := snap.GetState().UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := restoreTally(inner); st.total != 6 {
		t.Fatalf("snapshot total = %d, want 6", st.total)
	}

	// A second system on the same store starts from the snapshot.
	before := store.readCount("tally-a")
	env2 := newTallyEnv(t, store, tallyOpts{})
	if got := env2.total(t, "a"); got != 10 {
		t.Fatalf("total = %d, want 10", got)
	}
	if got := store.readCount("tally-a") - before; got != 2 {
		t.Fatalf("read %d events, want 2 (revisions 2 and 3)", got)
	}
}

func TestEventsCarryOrigin(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	env.mustRequest(t, "a", add{n: 1, fid: "alice@example.com"})
	recs, err := env.store.Store.ReadStream(context.Background(), "tally-a", events.Forwards, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := recs[0].Meta()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetActorFid() != "alice@example.com" || m.GetCorrelationId() != "corr-alice@example.com" {
		t.Fatalf("metadata = %v", m)
	}
	if recs[0].Type != "google.protobuf.Int64Value" {
		t.Fatalf("type = %q", recs[0].Type)
	}
}

func TestRejectedCommandWritesNothing(t *testing.T) {
	env := newTallyEnv(t, nil, tallyOpts{})
	if _, err := env.request(t, "a", add{n: -1}); !errors.Is(err, errNotPositive) {
		t.Fatalf("error = %v, want %v", err, errNotPositive)
	}
	// Decide accepts it, but proto3 cannot serialize invalid UTF-8: refused before any append.
	if _, err := env.request(t, "a", note{text: "\xff"}); err == nil {
		t.Fatal("invalid UTF-8 note accepted")
	}
	if got := env.store.appendSizes(); len(got) != 0 {
		t.Fatalf("appends = %v, want none", got)
	}
	if r := env.mustRequest(t, "a", add{n: 2}); r.Revision != 0 || r.Events != 1 {
		t.Fatalf("result = %+v", r)
	}
}

func TestLoadFailureIsAnsweredAndRetried(t *testing.T) {
	store := newGateStore()
	appendDirect(t, store.Store, "tally-x", wrapperspb.Int64(4))
	env := newTallyEnv(t, store, tallyOpts{})
	errDown := errors.New("store down")
	store.failReads(errDown)

	if _, err := env.request(t, "x", add{n: 1}); !errors.Is(err, errDown) {
		t.Fatalf("error = %v, want %v", err, errDown)
	}
	if got := store.appendSizes(); len(got) != 0 {
		t.Fatalf("appended %v without a loaded state", got)
	}
	store.failReads(nil)
	if r := env.mustRequest(t, "x", add{n: 1}); r.Revision != 1 || r.Reply != int64(5) {
		t.Fatalf("after recovery: %+v, want revision 1, total 5", r)
	}
}

func TestCommittedRunsAfterDurableAppend(t *testing.T) {
	store := newGateStore()
	commits := make(chan Commit, 8)
	sys := NewSystem(Config{Logger: testLogger()})
	t.Cleanup(func() { _ = sys.Shutdown(context.Background()) })
	kind, err := sys.Kind("tally", func(id string) (actor.Actor, error) {
		return NewJournal(JournalConfig[*tally]{
			Store: store, Stream: "tally-" + id, Model: tallyModel(0, nil),
			Committed: func(_ actor.Context, c Commit) { commits <- c },
		}), nil
	}, KindOptions{IdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	env := &tallyEnv{sys: sys, kind: kind, store: store}
	env.mustRequest(t, "x", add{n: 2})
	env.mustRequest(t, "x", note{text: "n"})

	for i, want := range []proto.Message{wrapperspb.Int64(2), wrapperspb.String("n")} {
		c := <-commits
		if c.Stream != "tally-x" || c.FirstRevision != uint64(i) || c.Result.Revision != uint64(i) {
			t.Fatalf("commit %d = %+v", i, c)
		}
		if diff := diffEvents([]proto.Message{want}, c.Events); diff != "" {
			t.Fatalf("commit %d: %s", i, diff)
		}
	}
}
