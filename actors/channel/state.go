package channel

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// State is what decide needs about one channel. The messages themselves are in the stream and
// in the history read model; commands about an older message bring what the read model knows
// of it (Target).
type State struct {
	ID uint64
	// Count is the number of messages ever created in the channel. Deletions do not lower it:
	// whether a message still exists is the read model's fact, and two deletes of one message
	// can both be decided before the read model sees the first.
	Count uint64
	// LastID is the largest message id; new ids are above it.
	LastID uint64
	// Pinned are the pinned message ids, oldest pin first; at most MaxPins.
	Pinned []uint64

	recent nonceWindow
}

// Initial is the state of channel id before its first event.
func Initial(id uint64) *State { return &State{ID: id} }

// Apply folds one event into s, in place.
func Apply(s *State, ev proto.Message) (*State, error) {
	switch e := ev.(type) {
	case *eventsv1.MessageCreated:
		s.Count++
		s.LastID = max(s.LastID, e.GetMessageId())
		s.recent.add(e.GetAuthorFid(), e.GetNonce(), e.GetMessageId())
	case *eventsv1.MessageDeleted:
		s.unpin(e.GetMessageId())
	case *eventsv1.MessagesBulkDeleted:
		for _, id := range e.GetMessageIds() {
			s.unpin(id)
		}
	case *eventsv1.MessagePinned:
		if !s.pinned(e.GetMessageId()) {
			s.Pinned = append(s.Pinned, e.GetMessageId())
		}
	case *eventsv1.MessageUnpinned:
		s.unpin(e.GetMessageId())
	case *eventsv1.MessageEdited, *eventsv1.ReactionAdded, *eventsv1.ReactionRemoved:
		// The read model's business; nothing decide needs changes.
	default:
		return s, fmt.Errorf("channel %d: unexpected event %s", s.ID, ev.ProtoReflect().Descriptor().FullName())
	}
	return s, nil
}

func (s *State) pinned(id uint64) bool { return slices.Contains(s.Pinned, id) }

func (s *State) unpin(id uint64) {
	s.Pinned = slices.DeleteFunc(s.Pinned, func(p uint64) bool { return p == id })
}

// Snapshot is s as a ChannelState, for SnapshotTaken.
func Snapshot(s *State) (proto.Message, error) {
	out := &eventsv1.ChannelState{
		MessageCount:  s.Count,
		LastMessageId: s.LastID,
		Pinned:        slices.Clone(s.Pinned),
		Recent:        make([]*eventsv1.RecentNonce, 0, len(s.recent.entries)),
	}
	for _, r := range s.recent.entries {
		out.Recent = append(out.Recent, &eventsv1.RecentNonce{AuthorFid: r.author, Nonce: r.nonce, MessageId: r.id})
	}
	return out, nil
}

// Restore rebuilds a state from a ChannelState. The channel id is not in the snapshot (the
// snapshot stream's name holds it); the actor sets ID.
func Restore(snap proto.Message) (*State, error) {
	cs, ok := snap.(*eventsv1.ChannelState)
	if !ok || cs == nil {
		return nil, fmt.Errorf("channel snapshot: want a ChannelState, got %T", snap)
	}
	if len(cs.GetPinned()) > MaxPins {
		return nil, fmt.Errorf("channel snapshot: %d pins, limit %d", len(cs.GetPinned()), MaxPins)
	}
	s := &State{Count: cs.GetMessageCount(), LastID: cs.GetLastMessageId(), Pinned: slices.Clone(cs.GetPinned())}
	// Replaying the entries through add keeps the window's invariants (size, map) in one place.
	for _, r := range cs.GetRecent() {
		s.recent.add(r.GetAuthorFid(), r.GetNonce(), r.GetMessageId())
	}
	return s, nil
}

// nonceWindow remembers the nonces of the last RecentNonces messages, so that a client retrying
// a send whose reply it lost gets the stored message instead of a copy. It is a FIFO (entries,
// oldest first) plus an index by author and nonce; both are a function of the MessageCreated
// events alone, so a replay and a snapshot restore give the same window.
type nonceWindow struct {
	entries []recentNonce
	index   map[nonceKey]uint64 // message id
}

type nonceKey struct{ author, nonce string }

type recentNonce struct {
	author, nonce string
	id            uint64
}

// lookup is the id of the message author sent with nonce, if it is still in the window.
func (w *nonceWindow) lookup(author, nonce string) (uint64, bool) {
	id, ok := w.index[nonceKey{author, nonce}]
	return id, ok
}

// add records a message, forgetting the oldest beyond RecentNonces. Messages without a nonce
// cannot be retried and take no room.
func (w *nonceWindow) add(author, nonce string, id uint64) {
	if nonce == "" {
		return
	}
	if w.index == nil {
		w.index = make(map[nonceKey]uint64, RecentNonces)
	}
	w.entries = append(w.entries, recentNonce{author: author, nonce: nonce, id: id})
	w.index[nonceKey{author, nonce}] = id
	for len(w.entries) > RecentNonces {
		old := w.entries[0]
		w.entries[0] = recentNonce{} // let the strings go
		w.entries = w.entries[1:]
		// Decide never lets a key in twice, but a stream may hold one twice if it was used again
		// after falling out of the window: keep the newer entry's id.
		if k := (nonceKey{old.author, old.nonce}); w.index[k] == old.id {
			delete(w.index, k)
		}
	}
}
