package group

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/mls"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// State is what Decide needs of one group; the messages themselves are in the stream.
type State struct {
	ID         uint64
	Created    bool
	Kind, Name string
	Owner      string
	Actors     []string // named at creation (and later added by owners), owner first
	MLSGroupID []byte
	Suite      mls.Suite
	Epoch      uint64 // the epoch the next commit must be made in
	Leaves     map[uint32]Leaf
	Pending    []Pending
	LastID     uint64   // last application message id
	Recent     []Recent // the last RecentMessages application messages, oldest first
	GuildID    uint64   // kind channel
	ChannelID  uint64   // kind channel
}

// Initial is the state of an empty stream.
func Initial(id uint64) *State { return &State{ID: id, Leaves: map[uint32]Leaf{}} }

// devices is how many leaves fid holds.
func (s *State) devices(fid string) int {
	n := 0
	for _, l := range s.Leaves {
		if l.FID == fid {
			n++
		}
	}
	return n
}

// leafOf is the leaf of a session, if it has one.
func (s *State) leafOf(b By) (uint32, bool) {
	for i, l := range s.Leaves {
		if l.FID == b.FID && l.Session == b.Session {
			return i, true
		}
	}
	return 0, false
}

// knows reports whether fid may see the group: it was named in it, or holds a leaf; in a
// channel's group, only if it may view the channel (viewer), member or not.
func (s *State) knows(fid string, viewer bool) bool {
	if s.Kind == KindChannel {
		return s.Created && viewer
	}
	return s.Created && (slices.Contains(s.Actors, fid) || s.devices(fid) > 0)
}

// View is the group as its actors see it.
func (s *State) View() View {
	v := View{ID: s.ID, Kind: s.Kind, Name: s.Name, Owner: s.Owner, MLSGroupID: bytes.Clone(s.MLSGroupID),
		Suite: s.Suite, Epoch: s.Epoch, Actors: []string{}, Invited: []string{}, Leaves: []Leaf{}, Pending: slices.Clone(s.Pending),
		GuildID: s.GuildID, ChannelID: s.ChannelID}
	for _, a := range s.Actors {
		if s.devices(a) > 0 {
			v.Actors = append(v.Actors, a)
		} else {
			v.Invited = append(v.Invited, a)
		}
	}
	for i, l := range s.Leaves {
		l.Leaf = i
		v.Leaves = append(v.Leaves, l)
	}
	slices.SortFunc(v.Leaves, func(a, b Leaf) int { return int(a.Leaf) - int(b.Leaf) })
	if v.Pending == nil {
		v.Pending = []Pending{}
	}
	return v
}

// Apply folds one event into s.
func Apply(s *State, ev proto.Message) (*State, error) {
	switch e := ev.(type) {
	case *eventsv1.GroupCreated:
		s.Created, s.Kind, s.Name, s.Owner = true, e.GetKind(), e.GetName(), e.GetOwnerFid()
		s.Actors = slices.Clone(e.GetActors())
		s.MLSGroupID, s.Suite = e.GetMlsGroupId(), mls.Suite(e.GetCipherSuite())
		s.GuildID, s.ChannelID = e.GetGuildId(), e.GetChannelId()
		s.Leaves[0] = Leaf{FID: e.GetOwnerFid(), Session: e.GetCreatorSessionId()}
	case *eventsv1.GroupCommitted:
		if e.GetEpoch() != s.Epoch {
			return s, fmt.Errorf("commit for epoch %d applied at epoch %d", e.GetEpoch(), s.Epoch)
		}
		for _, r := range e.GetRemoved() {
			delete(s.Leaves, r.GetLeaf())
		}
		for _, a := range e.GetAdded() {
			s.Leaves[a.GetLeaf()] = Leaf{FID: a.GetFid(), Session: a.GetSessionId()}
			if !slices.Contains(s.Actors, a.GetFid()) {
				s.Actors = append(s.Actors, a.GetFid())
			}
			s.Pending = slices.DeleteFunc(s.Pending, func(p Pending) bool { return p.FID == a.GetFid() && p.Session == a.GetSessionId() })
		}
		// An actor whose last device was removed has left (a DM keeps its two actors named).
		if s.Kind != KindDM {
			s.Actors = slices.DeleteFunc(s.Actors, func(a string) bool {
				return s.devices(a) == 0 && slices.ContainsFunc(e.GetRemoved(), func(r *eventsv1.GroupLeaf) bool { return r.GetFid() == a })
			})
		}
		s.Epoch++
	case *eventsv1.GroupMessageSent:
		s.LastID = e.GetMessageId()
		s.Recent = append(s.Recent, Recent{Hash: sha256.Sum256(e.GetMessage()), ID: e.GetMessageId()})
		if len(s.Recent) > RecentMessages {
			s.Recent = slices.Delete(s.Recent, 0, len(s.Recent)-RecentMessages)
		}
	case *eventsv1.GroupJoinRequested:
		p := Pending{FID: e.GetFid(), Session: e.GetSessionId(), KeyPackage: e.GetKeyPackage(), Ref: e.GetKeyPackageRef()}
		s.Pending = slices.DeleteFunc(s.Pending, func(q Pending) bool { return q.FID == p.FID && q.Session == p.Session })
		s.Pending = append(s.Pending, p)
	default:
		return s, fmt.Errorf("group: unexpected event %T", ev)
	}
	return s, nil
}

// Snapshot is s as a GroupSnapshot.
func Snapshot(s *State) (proto.Message, error) {
	snap := &eventsv1.GroupSnapshot{
		Created: &eventsv1.GroupCreated{Id: s.ID, Kind: s.Kind, Name: s.Name, OwnerFid: s.Owner, Actors: s.Actors,
			MlsGroupId: s.MLSGroupID, CipherSuite: uint32(s.Suite), GuildId: s.GuildID, ChannelId: s.ChannelID},
		Epoch: s.Epoch, LastMessageId: s.LastID,
	}
	for _, l := range s.View().Leaves {
		snap.Leaves = append(snap.Leaves, &eventsv1.GroupLeaf{Leaf: l.Leaf, Fid: l.FID, SessionId: l.Session})
	}
	for _, r := range s.Recent {
		snap.RecentHashes = append(snap.RecentHashes, r.Hash[:])
		snap.RecentIds = append(snap.RecentIds, r.ID)
	}
	for _, p := range s.Pending {
		snap.Pending = append(snap.Pending, &eventsv1.GroupJoinRequested{Fid: p.FID, SessionId: p.Session, KeyPackage: p.KeyPackage, KeyPackageRef: p.Ref})
	}
	return snap, nil
}

// Restore is the state a GroupSnapshot holds.
func Restore(m proto.Message) (*State, error) {
	snap, ok := m.(*eventsv1.GroupSnapshot)
	if !ok || snap.GetCreated() == nil {
		return nil, fmt.Errorf("group: snapshot of type %T", m)
	}
	c := snap.GetCreated()
	s := Initial(c.GetId())
	s.Created, s.Kind, s.Name, s.Owner = true, c.GetKind(), c.GetName(), c.GetOwnerFid()
	s.Actors, s.MLSGroupID, s.Suite = slices.Clone(c.GetActors()), c.GetMlsGroupId(), mls.Suite(c.GetCipherSuite())
	s.GuildID, s.ChannelID = c.GetGuildId(), c.GetChannelId()
	s.Epoch, s.LastID = snap.GetEpoch(), snap.GetLastMessageId()
	for _, l := range snap.GetLeaves() {
		s.Leaves[l.GetLeaf()] = Leaf{FID: l.GetFid(), Session: l.GetSessionId()}
	}
	if len(snap.GetRecentHashes()) != len(snap.GetRecentIds()) {
		return nil, fmt.Errorf("group: snapshot with %d recent hashes and %d ids", len(snap.GetRecentHashes()), len(snap.GetRecentIds()))
	}
	for i, h := range snap.GetRecentHashes() {
		r := Recent{ID: snap.GetRecentIds()[i]}
		copy(r.Hash[:], h)
		s.Recent = append(s.Recent, r)
	}
	for _, p := range snap.GetPending() {
		s.Pending = append(s.Pending, Pending{FID: p.GetFid(), Session: p.GetSessionId(), KeyPackage: p.GetKeyPackage(), Ref: p.GetKeyPackageRef()})
	}
	return s, nil
}
