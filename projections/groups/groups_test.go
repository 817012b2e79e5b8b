package groups_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/projections"
	"github.com/polyproto-chat/server/projections/groups"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// TestGroupsOf follows a DM, a group and an encrypted channel through adds and removals, and
// lists each actor's groups: named actors and actors with devices are in, an actor whose last
// device left a group is out, and a DM keeps both actors.
func TestGroupsOf(t *testing.T) {
	store := memory.New(time.Now)
	t.Cleanup(func() { store.Close() })
	db, err := projections.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := projections.NewRunner(projections.Config{Events: store, DB: db, Projections: []projections.Projection{groups.Projection{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	reader, err := groups.NewReader(db)
	if err != nil {
		t.Fatal(err)
	}
	add := func(group uint64, msgs ...proto.Message) {
		t.Helper()
		var evs []events.Event
		for _, m := range msgs {
			ev, err := events.NewEvent(m)
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		if _, err := store.Append(ctx, "group-"+strconv.FormatUint(group, 10), events.Any{}, evs...); err != nil {
			t.Fatal(err)
		}
	}
	leaf := func(n uint32, fid, session string) *eventsv1.GroupLeaf {
		return &eventsv1.GroupLeaf{Leaf: n, Fid: fid, SessionId: session}
	}
	const alice, bob, carol, dave = "alice@a.test", "bob@a.test", "carol@a.test", "dave@b.test"
	add(10, &eventsv1.GroupCreated{Id: 10, Kind: "dm", OwnerFid: alice, Actors: []string{alice, bob}},
		&eventsv1.GroupCommitted{Epoch: 0, Added: []*eventsv1.GroupLeaf{leaf(1, bob, "desk")}},
		&eventsv1.GroupCommitted{Epoch: 1, Removed: []*eventsv1.GroupLeaf{leaf(1, bob, "desk")}})
	add(20, &eventsv1.GroupCreated{Id: 20, Kind: "group", OwnerFid: alice, Actors: []string{alice, bob, carol}},
		&eventsv1.GroupCommitted{Epoch: 0, Added: []*eventsv1.GroupLeaf{leaf(1, bob, "desk"), leaf(2, bob, "phone"), leaf(3, carol, "desk")}},
		&eventsv1.GroupCommitted{Epoch: 1, Removed: []*eventsv1.GroupLeaf{leaf(1, bob, "desk")}},   // bob keeps his phone
		&eventsv1.GroupCommitted{Epoch: 2, Removed: []*eventsv1.GroupLeaf{leaf(3, carol, "desk")}}, // carol is out
		&eventsv1.GroupCommitted{Epoch: 3, Added: []*eventsv1.GroupLeaf{leaf(3, dave, "desk")}})    // an actor not named at creation
	add(30, &eventsv1.GroupCreated{Id: 30, Kind: "channel", OwnerFid: carol, Actors: []string{carol}, GuildId: 1, ChannelId: 2},
		&eventsv1.GroupJoinRequested{Fid: dave, SessionId: "desk"},
		&eventsv1.GroupCommitted{Epoch: 0, Added: []*eventsv1.GroupLeaf{leaf(1, dave, "desk")}})

	head, _ := store.Head(ctx)
	if err := r.WaitFor(ctx, groups.Name, head); err != nil {
		t.Fatal(err)
	}
	for fid, want := range map[string]string{
		alice:        "[{10 dm} {20 group}]",
		bob:          "[{10 dm} {20 group}]",
		carol:        "[{30 channel}]",
		dave:         "[{20 group} {30 channel}]",
		"eve@a.test": "[]",
	} {
		got, err := reader.Of(fid)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != want {
			t.Errorf("groups of %s: %v, want %s", fid, got, want)
		}
	}
}
