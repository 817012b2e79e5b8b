package group

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/polyproto-chat/server/mls"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

var (
	gid     = []byte("7@a.test")
	aliceL  = By{"alice@a.test", "laptop"}
	aliceP  = By{"alice@a.test", "phone"}
	bobD    = By{"bob@b.test", "desk"}
	bobP    = By{"bob@b.test", "phone"}
	carolD  = By{"carol@a.test", "desk"}
	daveD   = By{"dave@a.test", "desk"}
	dm      = &eventsv1.GroupCreated{Id: 7, Kind: KindDM, OwnerFid: aliceL.FID, CreatorSessionId: aliceL.Session, Actors: []string{aliceL.FID, bobD.FID}, MlsGroupId: gid, CipherSuite: 1}
	grp     = &eventsv1.GroupCreated{Id: 7, Kind: KindGroup, Name: "club", OwnerFid: aliceL.FID, CreatorSessionId: aliceL.Session, Actors: []string{aliceL.FID, bobD.FID, carolD.FID}, MlsGroupId: gid, CipherSuite: 1}
	welcome = []byte("welcome")
)

func kp(b By) *mls.KeyPackage {
	return &mls.KeyPackage{Raw: []byte("kp " + b.FID + "/" + b.Session), Ref: []byte("ref " + b.FID + "/" + b.Session), Suite: 1,
		Credential: mls.Credential{FID: b.FID, Session: b.Session}}
}

func ref(b By) []byte { return kp(b).Ref }

// commitMsg is what the edge parses from a commit by leaf `from` at epoch.
func commitMsg(epoch uint64, from uint32, removes []uint32, adds ...By) *mls.Message {
	info := &mls.CommitInfo{Removes: removes, HasPath: true}
	for _, a := range adds {
		info.Adds = append(info.Adds, kp(a))
	}
	return &mls.Message{GroupID: gid, Epoch: epoch, Content: mls.ContentCommit, SenderLeaf: from, Commit: info}
}

func commit(by By, m *mls.Message) Commit {
	c := Commit{By: by, Raw: []byte("commit"), Msg: m}
	if m.Commit != nil && len(m.Commit.Adds) > 0 {
		c.Welcome = welcome
		for _, k := range m.Commit.Adds {
			c.WelcomeRefs = append(c.WelcomeRefs, k.Ref)
		}
	}
	return c
}

func appMsg(epoch uint64) *mls.Message {
	return &mls.Message{Private: true, GroupID: gid, Epoch: epoch, Content: mls.ContentApplication}
}

func leaf(n uint32, b By) *eventsv1.GroupLeaf {
	return &eventsv1.GroupLeaf{Leaf: n, Fid: b.FID, SessionId: b.Session}
}

func added(n uint32, b By, newDevice bool) *eventsv1.GroupLeaf {
	l := leaf(n, b)
	l.KeyPackageRef, l.NewDevice = ref(b), newDevice
	return l
}

func committed(epoch uint64, from uint32, by By, removed []*eventsv1.GroupLeaf, add ...*eventsv1.GroupLeaf) *eventsv1.GroupCommitted {
	ev := &eventsv1.GroupCommitted{Epoch: epoch, SenderLeaf: from, SenderFid: by.FID, SenderSessionId: by.Session, Commit: []byte("commit"), Removed: removed, Added: add}
	if len(add) > 0 {
		ev.Welcome = welcome
	}
	return ev
}

// to sets the actors a commit is delivered to.
func to(ev *eventsv1.GroupCommitted, fids ...string) *eventsv1.GroupCommitted {
	ev.Recipients = fids
	return ev
}

const (
	alice = "alice@a.test"
	bob   = "bob@b.test"
	carol = "carol@a.test"
	dave  = "dave@a.test"
)

// dmWithBob: alice's laptop (leaf 0) added bob's desk (leaf 1); epoch 1.
var dmWithBob = []proto.Message{dm, to(committed(0, 0, aliceL, nil, added(1, bobD, false)), alice, bob)}

// clubOfThree: a group with alice (owner, leaf 0), bob (leaf 1), carol (leaf 2); epoch 1.
// encrypted: the group of an encrypted channel, alice (leaf 0) and bob (leaf 1); epoch 1 after
// bob asked and alice let him in.
var (
	chanGroup = &eventsv1.GroupCreated{Id: 7, Kind: KindChannel, OwnerFid: aliceL.FID, CreatorSessionId: aliceL.Session, Actors: []string{aliceL.FID},
		MlsGroupId: gid, CipherSuite: 1, GuildId: 40, ChannelId: 41}
	bobAsks   = &eventsv1.GroupJoinRequested{Fid: bobD.FID, SessionId: bobD.Session, KeyPackage: kp(bobD).Raw, KeyPackageRef: ref(bobD), Recipients: []string{alice}, PendingSessions: []string{"desk"}}
	encrypted = []proto.Message{chanGroup, bobAsks, to(committed(0, 0, aliceL, nil, added(1, bobD, false)), alice, bob)}
)

var clubOfThree = []proto.Message{grp, to(committed(0, 0, aliceL, nil, added(1, bobD, false), added(2, carolD, false)), alice, bob, carol)}

// TestDecide: given the group's events, when a command arrives, then these events and reply, or
// this error.
func TestDecide(t *testing.T) {
	fifteen := make([]string, 14)
	for i := range fifteen {
		fifteen[i] = fmt.Sprintf("a%d@a.test", i)
	}
	wrongWelcome := commit(aliceL, commitMsg(0, 0, nil, bobD))
	wrongWelcome.WelcomeRefs = [][]byte{ref(carolD)}
	noWelcome := commit(aliceL, commitMsg(0, 0, nil, bobD))
	noWelcome.Welcome, noWelcome.WelcomeRefs = nil, nil
	strayWelcome := commit(bobD, commitMsg(1, 1, nil))
	strayWelcome.Welcome = welcome
	fullGroup := []proto.Message{&eventsv1.GroupCreated{Id: 7, Kind: KindGroup, OwnerFid: aliceL.FID, CreatorSessionId: aliceL.Session,
		Actors: append([]string{aliceL.FID}, fifteen...), MlsGroupId: gid, CipherSuite: 1}}

	cases := []struct {
		name    string
		given   []proto.Message
		when    any
		then    []proto.Message
		reply   any
		wantErr error
	}{
		// Create.
		{name: "create a DM", when: Create{Kind: KindDM, By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 1}, then: []proto.Message{dm},
			reply: View{ID: 7, Kind: KindDM, Owner: aliceL.FID, Actors: []string{aliceL.FID}, Invited: []string{bobD.FID}, MLSGroupID: gid, Suite: 1,
				Leaves: []Leaf{{Leaf: 0, FID: aliceL.FID, Session: aliceL.Session}}, Pending: []Pending{}}},
		{name: "a DM of three", when: Create{Kind: KindDM, By: aliceL, Others: []string{bobD.FID, carolD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "a DM with oneself", when: Create{Kind: KindDM, By: aliceL, Others: []string{aliceL.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "a DM with a name", when: Create{Kind: KindDM, Name: "x", By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "create a group", when: Create{Kind: KindGroup, Name: "club", By: aliceL, Others: []string{bobD.FID, carolD.FID}, MLSGroupID: gid, Suite: 1}, then: []proto.Message{grp},
			reply: View{ID: 7, Kind: KindGroup, Name: "club", Owner: aliceL.FID, Actors: []string{aliceL.FID}, Invited: []string{bobD.FID, carolD.FID}, MLSGroupID: gid, Suite: 1,
				Leaves: []Leaf{{Leaf: 0, FID: aliceL.FID, Session: aliceL.Session}}, Pending: []Pending{}}},
		{name: "a group of one", when: Create{Kind: KindGroup, By: aliceL, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "a group of sixteen", when: Create{Kind: KindGroup, By: aliceL, Others: append(fifteen, "x@a.test"), MLSGroupID: gid, Suite: 1}, wantErr: ErrLimit},
		{name: "a group of fifteen", when: Create{Kind: KindGroup, By: aliceL, Others: fifteen, MLSGroupID: gid, Suite: 1}, then: fullGroup, reply: View{
			ID: 7, Kind: KindGroup, Owner: aliceL.FID, Actors: []string{aliceL.FID}, Invited: fifteen, MLSGroupID: gid, Suite: 1,
			Leaves: []Leaf{{Leaf: 0, FID: aliceL.FID, Session: aliceL.Session}}, Pending: []Pending{}}},
		{name: "an actor named twice", when: Create{Kind: KindGroup, By: aliceL, Others: []string{bobD.FID, bobD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "another kind", when: Create{Kind: "channel", By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "a suite we do not take", when: Create{Kind: KindDM, By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 2}, wantErr: ErrInvalid},
		{name: "no MLS group id", when: Create{Kind: KindDM, By: aliceL, Others: []string{bobD.FID}, Suite: 1}, wantErr: ErrInvalid},
		{name: "a name with control characters", when: Create{Kind: KindGroup, Name: "a\x00b", By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "a name too long", when: Create{Kind: KindGroup, Name: string(make([]rune, 101)), By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "create twice", given: []proto.Message{dm}, when: Create{Kind: KindDM, By: aliceL, Others: []string{bobD.FID}, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},

		// Commits: ordering and framing.
		{name: "the creator adds the other actor of a DM", given: []proto.Message{dm}, when: commit(aliceL, commitMsg(0, 0, nil, bobD)),
			then: []proto.Message{to(committed(0, 0, aliceL, nil, added(1, bobD, false)), alice, bob)}, reply: Committed{Epoch: 1}},
		{name: "a commit for an old epoch loses", given: dmWithBob, when: commit(bobD, commitMsg(0, 1, nil)), wantErr: &EpochError{Got: 0, Current: 1}},
		{name: "a commit for a future epoch", given: dmWithBob, when: commit(bobD, commitMsg(5, 1, nil)), wantErr: &EpochError{Got: 5, Current: 1}},
		{name: "an empty commit (key update)", given: dmWithBob, when: commit(bobD, commitMsg(1, 1, nil)), then: []proto.Message{to(committed(1, 1, bobD, nil), alice, bob)}, reply: Committed{Epoch: 2}},
		{name: "a private commit", given: dmWithBob, when: commit(bobD, &mls.Message{Private: true, GroupID: gid, Epoch: 1, Content: mls.ContentCommit}), wantErr: ErrInvalid},
		{name: "a commit for another MLS group", given: dmWithBob, when: func() Commit {
			m := commitMsg(1, 1, nil)
			m.GroupID = []byte("8@a.test")
			return commit(bobD, m)
		}(), wantErr: ErrInvalid},
		{name: "a commit from another session's leaf", given: dmWithBob, when: commit(bobD, commitMsg(1, 0, nil)), wantErr: ErrForbidden},
		{name: "a commit from a stranger", given: dmWithBob, when: commit(carolD, commitMsg(1, 2, nil)), wantErr: ErrNotFound},
		{name: "a commit from a session not in the MLS group", given: dmWithBob, when: commit(bobP, commitMsg(1, 1, nil)), wantErr: ErrForbidden},
		{name: "a commit with other proposals", given: dmWithBob, when: func() Commit {
			m := commitMsg(1, 1, nil)
			m.Commit.Other = 1
			return commit(bobD, m)
		}(), wantErr: ErrInvalid},
		{name: "an application message posted as a commit", given: dmWithBob, when: Commit{By: bobD, Msg: appMsg(1)}, wantErr: ErrInvalid},
		{name: "a commit to an unknown group", when: commit(aliceL, commitMsg(0, 0, nil)), wantErr: ErrNotFound},

		// Commits: Welcomes.
		{name: "an add without its Welcome", given: []proto.Message{dm}, when: noWelcome, wantErr: ErrInvalid},
		{name: "a Welcome for someone else", given: []proto.Message{dm}, when: wrongWelcome, wantErr: ErrInvalid},
		{name: "a Welcome beside a commit that adds nobody", given: dmWithBob, when: strayWelcome, wantErr: ErrInvalid},

		// Commits: DM rules.
		{name: "a DM never takes a third actor", given: dmWithBob, when: commit(aliceL, commitMsg(1, 0, nil, carolD)), wantErr: ErrForbidden},
		{name: "bob adds alice's new device", given: dmWithBob, when: commit(bobD, commitMsg(1, 1, nil, aliceP)),
			then: []proto.Message{to(committed(1, 1, bobD, nil, added(2, aliceP, true)), alice, bob)}, reply: Committed{Epoch: 2}},
		{name: "in a DM nobody removes the other", given: dmWithBob, when: commit(bobD, commitMsg(1, 1, []uint32{0})), wantErr: ErrForbidden},
		{name: "removing one's own other device", given: append(dmWithBob, committed(1, 0, aliceL, nil, added(2, aliceP, true))),
			when: commit(aliceL, commitMsg(2, 0, []uint32{2})), then: []proto.Message{to(committed(2, 0, aliceL, []*eventsv1.GroupLeaf{leaf(2, aliceP)}), alice, bob)}, reply: Committed{Epoch: 3}},
		{name: "removing oneself", given: dmWithBob, when: commit(bobD, commitMsg(1, 1, []uint32{1})), wantErr: ErrInvalid},
		{name: "removing an empty leaf", given: dmWithBob, when: commit(bobD, commitMsg(1, 1, []uint32{4})), wantErr: ErrInvalid},
		{name: "adding a session twice", given: dmWithBob, when: commit(aliceL, commitMsg(1, 0, nil, bobD)), wantErr: ErrInvalid},

		// Commits: group rules.
		{name: "the owner adds two invited actors", given: []proto.Message{grp}, when: commit(aliceL, commitMsg(0, 0, nil, bobD, carolD)),
			then: clubOfThree[1:], reply: Committed{Epoch: 1}},
		{name: "a member adds an actor", given: clubOfThree, when: commit(bobD, commitMsg(1, 1, nil, daveD)), wantErr: ErrForbidden},
		{name: "the owner adds an actor not named at creation", given: clubOfThree, when: commit(aliceL, commitMsg(1, 0, nil, daveD)),
			then: []proto.Message{to(committed(1, 0, aliceL, nil, added(3, daveD, false)), alice, bob, carol, dave)}, reply: Committed{Epoch: 2}},
		{name: "a sixteenth actor", given: fullGroup, when: commit(aliceL, commitMsg(0, 0, nil, daveD)), wantErr: ErrLimit},
		{name: "a member adds a member's new device", given: clubOfThree, when: commit(carolD, commitMsg(1, 2, nil, bobP)),
			then: []proto.Message{to(committed(1, 2, carolD, nil, added(3, bobP, true)), alice, bob, carol)}, reply: Committed{Epoch: 2}},
		{name: "a member removes another", given: clubOfThree, when: commit(bobD, commitMsg(1, 1, []uint32{2})), wantErr: ErrForbidden},
		{name: "the owner removes a member, whose leaf the next add takes", given: clubOfThree, when: commit(aliceL, commitMsg(1, 0, []uint32{1}, daveD)),
			then: []proto.Message{to(committed(1, 0, aliceL, []*eventsv1.GroupLeaf{leaf(1, bobD)}, added(1, daveD, false)), alice, carol, dave, bob)}, reply: Committed{Epoch: 2}},
		{name: "adds fill the leftmost free leaves", given: clubOfThree, when: commit(aliceL, commitMsg(1, 0, []uint32{1}, daveD, bobP)),
			then: []proto.Message{to(committed(1, 0, aliceL, []*eventsv1.GroupLeaf{leaf(1, bobD)}, added(1, daveD, false), added(3, bobP, false)), alice, bob, carol, dave)}, reply: Committed{Epoch: 2}},

		// Application messages.
		{name: "a message", given: dmWithBob, when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 100},
			then:  []proto.Message{&eventsv1.GroupMessageSent{MessageId: 100, Epoch: 1, SenderFid: bobD.FID, SenderSessionId: bobD.Session, Message: []byte("ct"), Recipients: []string{alice, bob}}},
			reply: Sent{MessageID: 100, Epoch: 1}},
		{name: "message ids keep increasing", given: append(dmWithBob, &eventsv1.GroupMessageSent{MessageId: 500, Epoch: 1}), when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 100},
			then:  []proto.Message{&eventsv1.GroupMessageSent{MessageId: 501, Epoch: 1, SenderFid: bobD.FID, SenderSessionId: bobD.Session, Message: []byte("ct"), Recipients: []string{alice, bob}}},
			reply: Sent{MessageID: 501, Epoch: 1}},
		{name: "a resent message is answered with its id, not stored twice", given: append(dmWithBob, &eventsv1.GroupMessageSent{MessageId: 500, Epoch: 1, Message: []byte("ct")}),
			when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 900}, reply: Sent{MessageID: 500, Epoch: 1}},
		{name: "a resend after the epoch moved on", given: append(dmWithBob, &eventsv1.GroupMessageSent{MessageId: 500, Epoch: 1, Message: []byte("ct")}, to(committed(1, 0, aliceL, nil), alice, bob)),
			when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 900}, reply: Sent{MessageID: 500, Epoch: 1}},
		{name: "a message of an old epoch", given: dmWithBob, when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(0), MessageID: 1}, wantErr: &EpochError{Got: 0, Current: 1}},
		{name: "a public application message", given: dmWithBob, when: Send{By: bobD, Raw: []byte("ct"), Msg: &mls.Message{GroupID: gid, Epoch: 1, Content: mls.ContentApplication}, MessageID: 1}, wantErr: ErrInvalid},
		{name: "a commit posted as a message", given: dmWithBob, when: Send{By: bobD, Raw: []byte("ct"), Msg: &mls.Message{Private: true, GroupID: gid, Epoch: 1, Content: mls.ContentCommit}, MessageID: 1}, wantErr: ErrInvalid},
		{name: "a message from a stranger", given: dmWithBob, when: Send{By: carolD, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 1}, wantErr: ErrNotFound},
		{name: "a message from a session not added yet", given: dmWithBob, when: Send{By: bobP, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 1}, wantErr: ErrForbidden},
		{name: "an invited actor not added yet", given: []proto.Message{dm}, when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(0), MessageID: 1}, wantErr: ErrForbidden},
		{name: "an oversize message", given: dmWithBob, when: Send{By: bobD, Raw: make([]byte, MaxMessage+1), Msg: appMsg(1), MessageID: 1}, wantErr: ErrLimit},

		// Join requests of new devices.
		{name: "a new device asks to join", given: dmWithBob, when: RequestJoin{By: bobP, KeyPackage: kp(bobP)},
			then: []proto.Message{&eventsv1.GroupJoinRequested{Fid: bobP.FID, SessionId: bobP.Session, KeyPackage: kp(bobP).Raw, KeyPackageRef: ref(bobP), Recipients: []string{alice, bob}, PendingSessions: []string{"phone"}}},
			reply: View{ID: 7, Kind: KindDM, Owner: aliceL.FID, Actors: []string{aliceL.FID, bobD.FID}, Invited: []string{}, MLSGroupID: gid, Suite: 1, Epoch: 1,
				Leaves:  []Leaf{{Leaf: 0, FID: aliceL.FID, Session: aliceL.Session}, {Leaf: 1, FID: bobD.FID, Session: bobD.Session}},
				Pending: []Pending{{FID: bobP.FID, Session: bobP.Session, KeyPackage: kp(bobP).Raw, Ref: ref(bobP)}}}},
		{name: "an invited actor cannot ask", given: []proto.Message{dm}, when: RequestJoin{By: bobP, KeyPackage: kp(bobP)}, wantErr: ErrForbidden},
		{name: "a stranger cannot ask", given: dmWithBob, when: RequestJoin{By: carolD, KeyPackage: kp(carolD)}, wantErr: ErrNotFound},
		{name: "a session already in", given: dmWithBob, when: RequestJoin{By: bobD, KeyPackage: kp(bobD)}, wantErr: ErrInvalid},
		{name: "someone else's KeyPackage", given: dmWithBob, when: RequestJoin{By: bobP, KeyPackage: kp(bobD)}, wantErr: ErrInvalid},
		{name: "a KeyPackage of another suite", given: dmWithBob, when: RequestJoin{By: bobP, KeyPackage: func() *mls.KeyPackage { k := kp(bobP); k.Suite = 3; return k }()}, wantErr: ErrInvalid},

		// The group of an encrypted channel.
		{name: "encrypt a channel", when: Create{Kind: KindChannel, By: aliceL, MLSGroupID: gid, Suite: 1, GuildID: 40, ChannelID: 41}, then: []proto.Message{chanGroup}},
		{name: "a channel's group with members", when: Create{Kind: KindChannel, By: aliceL, Others: []string{bob}, MLSGroupID: gid, Suite: 1, GuildID: 40, ChannelID: 41}, wantErr: ErrInvalid},
		{name: "a channel's group without its channel", when: Create{Kind: KindChannel, By: aliceL, MLSGroupID: gid, Suite: 1}, wantErr: ErrInvalid},
		{name: "a viewer asks to join", given: []proto.Message{chanGroup}, when: RequestJoin{By: bobD, Viewer: true, KeyPackage: kp(bobD)}, then: []proto.Message{bobAsks}},
		{name: "one actor's devices ask as one", given: []proto.Message{chanGroup, bobAsks}, when: RequestJoin{By: bobP, Viewer: true, KeyPackage: kp(bobP)},
			then: []proto.Message{&eventsv1.GroupJoinRequested{Fid: bob, SessionId: "phone", KeyPackage: kp(bobP).Raw, KeyPackageRef: ref(bobP), Recipients: []string{alice}, PendingSessions: []string{"desk", "phone"}}}},
		{name: "who may not view the channel cannot ask", given: []proto.Message{chanGroup}, when: RequestJoin{By: bobD, KeyPackage: kp(bobD)}, wantErr: ErrNotFound},
		{name: "a member lets the asker in", given: []proto.Message{chanGroup, bobAsks}, when: Commit{By: aliceL, Viewer: true, Raw: []byte("commit"), Msg: commitMsg(0, 0, nil, bobD), Welcome: welcome, WelcomeRefs: [][]byte{ref(bobD)}},
			then: encrypted[2:], reply: Committed{Epoch: 1}},
		{name: "nobody is added without asking", given: []proto.Message{chanGroup}, when: Commit{By: aliceL, Viewer: true, Raw: []byte("commit"), Msg: commitMsg(0, 0, nil, bobD), Welcome: welcome, WelcomeRefs: [][]byte{ref(bobD)}}, wantErr: ErrForbidden},
		{name: "a member who lost VIEW_CHANNEL cannot post", given: encrypted, when: Send{By: bobD, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 1}, wantErr: ErrNotFound},
		{name: "a viewing member posts", given: encrypted, when: Send{By: bobD, Viewer: true, Raw: []byte("ct"), Msg: appMsg(1), MessageID: 1},
			then: []proto.Message{&eventsv1.GroupMessageSent{MessageId: 1, Epoch: 1, SenderFid: bob, SenderSessionId: "desk", Message: []byte("ct"), Recipients: []string{alice, bob}}}},
		{name: "a member removes another", given: encrypted, when: Commit{By: bobD, Viewer: true, Raw: []byte("commit"), Msg: commitMsg(1, 1, []uint32{0})}, wantErr: ErrForbidden},
		{name: "a moderator removes another", given: encrypted, when: Commit{By: bobD, Viewer: true, Moderator: true, Raw: []byte("commit"), Msg: commitMsg(1, 1, []uint32{0})},
			then: []proto.Message{to(committed(1, 1, bobD, []*eventsv1.GroupLeaf{leaf(0, aliceL)}), bob, alice)}, reply: Committed{Epoch: 2}},
		{name: "a viewer reads the channel's group", given: encrypted, when: Get{By: carolD, Viewer: true}},
		{name: "a non-viewer does not", given: encrypted, when: Get{By: aliceL}, wantErr: ErrNotFound},

		// Reads.
		{name: "a stranger reads nothing", given: dmWithBob, when: Get{By: carolD}, wantErr: ErrNotFound},
		{name: "an unknown group", when: Get{By: aliceL}, wantErr: ErrNotFound},
		{name: "an unknown command", given: dmWithBob, when: 42, wantErr: ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := given(t, c.given)
			before := given(t, c.given)
			evs, reply, err := Decide(s, c.when)
			if c.wantErr != nil {
				var want *EpochError
				if errors.As(c.wantErr, &want) {
					var got *EpochError
					if !errors.As(err, &got) || *got != *want || !errors.Is(err, ErrEpoch) {
						t.Fatalf("error %v, want %v", err, want)
					}
					return
				}
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.then, evs, protocmp.Transform()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if c.reply != nil {
				if diff := cmp.Diff(c.reply, reply); diff != "" {
					t.Errorf("reply (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(before, s); diff != "" {
				t.Errorf("Decide changed the state:\n%s", diff)
			}
			for _, ev := range evs {
				if _, err := Apply(s, ev); err != nil {
					t.Fatalf("apply %T: %v", ev, err)
				}
			}
		})
	}
}

func given(t *testing.T, evs []proto.Message) *State {
	t.Helper()
	s := Initial(7)
	for _, ev := range evs {
		var err error
		if s, err = Apply(s, ev); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestApply follows a group through adds, a new device, a removal and a snapshot.
func TestApply(t *testing.T) {
	s := given(t, append(clubOfThree,
		committed(1, 1, bobD, nil, added(3, bobP, true)),
		&eventsv1.GroupJoinRequested{Fid: carolD.FID, SessionId: "tablet", KeyPackage: []byte("k"), KeyPackageRef: []byte("r")},
		committed(2, 0, aliceL, []*eventsv1.GroupLeaf{leaf(1, bobD), leaf(3, bobP)}),
		&eventsv1.GroupMessageSent{MessageId: 9, Epoch: 3},
	))
	v := s.View()
	if v.Epoch != 3 || len(v.Leaves) != 2 || fmt.Sprint(v.Actors) != "[alice@a.test carol@a.test]" || len(v.Invited) != 0 || len(v.Pending) != 1 || s.LastID != 9 {
		t.Fatalf("state after removal: %+v", v)
	}
	snap, err := Snapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, r); diff != "" {
		t.Fatalf("snapshot round trip (-state +restored):\n%s", diff)
	}
	if _, err := Apply(s, committed(1, 0, aliceL, nil)); err == nil {
		t.Fatal("a commit for a past epoch applied")
	}
}
