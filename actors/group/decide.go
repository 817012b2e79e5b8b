package group

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/mls"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Decide checks cmd against s: the events to append, the reply once they are durable, or an
// error answered at once. It does not change s.
func Decide(s *State, cmd any) ([]proto.Message, any, error) {
	switch c := cmd.(type) {
	case Create:
		return decideCreate(s, c)
	case Commit:
		return decideCommit(s, c)
	case Send:
		return decideSend(s, c)
	case RequestJoin:
		return decideJoin(s, c)
	case Get:
		if !s.knows(c.By.FID, c.Viewer) {
			return nil, nil, ErrNotFound
		}
		return nil, s.View(), nil
	}
	return nil, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func decideCreate(s *State, c Create) ([]proto.Message, any, error) {
	if s.Created {
		return nil, nil, fmt.Errorf("%w: group %d exists", ErrInvalid, s.ID)
	}
	if c.By.FID == "" || c.By.Session == "" || len(c.MLSGroupID) == 0 {
		return nil, nil, fmt.Errorf("%w: a group needs its creator's session and an MLS group id", ErrInvalid)
	}
	if err := c.Suite.Check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if utf8.RuneCountInString(c.Name) > MaxName || !utf8.ValidString(c.Name) || strings.IndexFunc(c.Name, unicode.IsControl) >= 0 {
		return nil, nil, fmt.Errorf("%w: a name is valid UTF-8 of at most %d characters, without control characters", ErrInvalid, MaxName)
	}
	actors := []string{c.By.FID}
	for _, o := range c.Others {
		if o == "" || slices.Contains(actors, o) {
			return nil, nil, fmt.Errorf("%w: actor %q named twice or empty", ErrInvalid, o)
		}
		actors = append(actors, o)
	}
	switch c.Kind {
	case KindDM:
		if len(actors) != 2 {
			return nil, nil, fmt.Errorf("%w: a DM is between exactly two actors; %d given", ErrInvalid, len(actors))
		}
		if c.Name != "" {
			return nil, nil, fmt.Errorf("%w: a DM has no name", ErrInvalid)
		}
	case KindGroup:
		if len(actors) < 2 {
			return nil, nil, fmt.Errorf("%w: a group has at least two actors", ErrInvalid)
		}
		if len(actors) > MaxActors {
			return nil, nil, fmt.Errorf("%w: a group has at most %d actors; %d given", ErrLimit, MaxActors, len(actors))
		}
	case KindChannel:
		if len(actors) != 1 || c.Name != "" || c.GuildID == 0 || c.ChannelID == 0 {
			return nil, nil, fmt.Errorf("%w: a channel's group names its guild and channel, and no members or name", ErrInvalid)
		}
	default:
		return nil, nil, fmt.Errorf("%w: kind %q; want %q or %q", ErrInvalid, c.Kind, KindDM, KindGroup)
	}
	ev := &eventsv1.GroupCreated{Id: s.ID, Kind: c.Kind, Name: c.Name, OwnerFid: c.By.FID, CreatorSessionId: c.By.Session,
		Actors: actors, MlsGroupId: c.MLSGroupID, CipherSuite: uint32(c.Suite), GuildId: c.GuildID, ChannelId: c.ChannelID}
	next, _ := Apply(Initial(s.ID), ev)
	return []proto.Message{ev}, next.View(), nil
}

// member checks that By's actor is in the group (else ErrNotFound, as if there were no group)
// and that By's session holds a leaf (else ErrForbidden).
func (s *State) member(b By, viewer bool) (uint32, error) {
	if !s.knows(b.FID, viewer) {
		return 0, ErrNotFound
	}
	leaf, ok := s.leafOf(b)
	if !ok {
		return 0, fmt.Errorf("%w: session %s of %s is not in the group's MLS group", ErrForbidden, b.Session, b.FID)
	}
	return leaf, nil
}

// frame checks what every group message must carry: this group's MLS id, the wire form for its
// content, and the current epoch.
func (s *State) frame(m *mls.Message, content mls.ContentType) error {
	if m == nil {
		return fmt.Errorf("%w: no MLS message", ErrInvalid)
	}
	if !bytes.Equal(m.GroupID, s.MLSGroupID) {
		return fmt.Errorf("%w: the message is for MLS group %q, this group is %q", ErrInvalid, m.GroupID, s.MLSGroupID)
	}
	switch {
	case content == mls.ContentCommit && (m.Private || m.Content != mls.ContentCommit):
		return fmt.Errorf("%w: a commit must be a PublicMessage with content type commit (the server orders and checks commits)", ErrInvalid)
	case content == mls.ContentApplication && (!m.Private || m.Content != mls.ContentApplication):
		return fmt.Errorf("%w: an application message must be a PrivateMessage with content type application", ErrInvalid)
	}
	if m.Epoch != s.Epoch {
		return &EpochError{Got: m.Epoch, Current: s.Epoch}
	}
	return nil
}

func decideCommit(s *State, c Commit) ([]proto.Message, any, error) {
	sender, err := s.member(c.By, c.Viewer)
	if err != nil {
		return nil, nil, err
	}
	if err := s.frame(c.Msg, mls.ContentCommit); err != nil {
		return nil, nil, err
	}
	m := c.Msg
	if m.SenderLeaf != sender {
		return nil, nil, fmt.Errorf("%w: the commit is from leaf %d, the posting session holds leaf %d", ErrForbidden, m.SenderLeaf, sender)
	}
	info := m.Commit
	if info == nil || info.Other > 0 {
		return nil, nil, fmt.Errorf("%w: a commit may carry only Add and Remove proposals, by value", ErrInvalid)
	}
	owner := s.Kind == KindGroup && c.By.FID == s.Owner
	ev := &eventsv1.GroupCommitted{Epoch: s.Epoch, SenderLeaf: sender, SenderFid: c.By.FID, SenderSessionId: c.By.Session, Commit: c.Raw, Welcome: c.Welcome}

	taken := map[uint32]Leaf{}
	for i, l := range s.Leaves {
		taken[i] = l
	}
	for _, leaf := range info.Removes {
		l, ok := taken[leaf]
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("%w: leaf %d is empty or removed twice", ErrInvalid, leaf)
		case leaf == sender:
			return nil, nil, fmt.Errorf("%w: a member cannot commit its own removal", ErrInvalid)
		case l.FID != c.By.FID && s.Kind == KindDM:
			return nil, nil, fmt.Errorf("%w: in a DM nobody removes the other actor", ErrForbidden)
		case l.FID != c.By.FID && s.Kind == KindChannel && !c.Moderator:
			return nil, nil, fmt.Errorf("%w: only a moderator (MANAGE_CHANNEL) removes other actors' devices", ErrForbidden)
		case l.FID != c.By.FID && s.Kind == KindGroup && !owner:
			return nil, nil, fmt.Errorf("%w: only the owner removes other actors' devices", ErrForbidden)
		case s.Kind == KindGroup && l.FID == s.Owner && c.By.FID != s.Owner:
			return nil, nil, fmt.Errorf("%w: the owner cannot be removed", ErrForbidden)
		}
		delete(taken, leaf)
		ev.Removed = append(ev.Removed, &eventsv1.GroupLeaf{Leaf: leaf, Fid: l.FID, SessionId: l.Session})
	}
	actors := slices.Clone(s.Actors)
	var refs [][]byte
	for _, kp := range info.Adds {
		fid, session := kp.Credential.FID, kp.Credential.Session
		for _, l := range taken {
			if l.FID == fid && l.Session == session {
				return nil, nil, fmt.Errorf("%w: session %s of %s is already in the group", ErrInvalid, session, fid)
			}
		}
		devices := 0
		for _, l := range taken {
			if l.FID == fid {
				devices++
			}
		}
		switch {
		case s.Kind == KindChannel:
			// Only a device that asked (polyproto-chat 3.1): any member may let it in.
			if !slices.ContainsFunc(s.Pending, func(p Pending) bool { return bytes.Equal(p.Ref, kp.Ref) }) {
				return nil, nil, fmt.Errorf("%w: in an encrypted channel only a device that asked to join is added (by its KeyPackage)", ErrForbidden)
			}
			if !slices.Contains(actors, fid) {
				actors = append(actors, fid)
			}
		case devices > 0: // a new device of a member: any member may add it (polyproto-chat 3.4)
		case s.Kind == KindDM && !slices.Contains(actors, fid):
			return nil, nil, fmt.Errorf("%w: a DM never takes a third actor; start a new DM or a group", ErrForbidden)
		case s.Kind == KindDM: // the other actor's first device, or the creator's second
		case !owner:
			return nil, nil, fmt.Errorf("%w: only the owner adds actors", ErrForbidden)
		case !slices.Contains(actors, fid):
			actors = append(actors, fid)
		}
		if s.Kind == KindGroup && len(actors) > MaxActors {
			return nil, nil, fmt.Errorf("%w: a group has at most %d actors", ErrLimit, MaxActors)
		}
		leaf := uint32(0)
		for ; ; leaf++ { // RFC 9420 section 12.1.1: the leftmost free leaf, removals applied first
			if _, ok := taken[leaf]; !ok {
				break
			}
		}
		taken[leaf] = Leaf{FID: fid, Session: session}
		ev.Added = append(ev.Added, &eventsv1.GroupLeaf{Leaf: leaf, Fid: fid, SessionId: session, KeyPackageRef: kp.Ref, NewDevice: devices > 0})
		refs = append(refs, kp.Ref)
	}
	if s.Kind == KindChannel && len(taken) > MaxChannelLeaves {
		return nil, nil, fmt.Errorf("%w: an encrypted channel holds at most %d devices", ErrLimit, MaxChannelLeaves)
	}
	if err := sameRefs(refs, c.WelcomeRefs, len(c.Welcome) > 0); err != nil {
		return nil, nil, err
	}
	// Who hears of it: every actor with a device after the commit (the added ones take the
	// Welcome from the same dispatch), and those it removed, so that they know.
	for _, a := range actors {
		for _, l := range taken {
			if l.FID == a {
				ev.Recipients = append(ev.Recipients, a)
				break
			}
		}
	}
	for _, r := range ev.Removed {
		if !slices.Contains(ev.Recipients, r.Fid) {
			ev.Recipients = append(ev.Recipients, r.Fid)
		}
	}
	return []proto.Message{ev}, Committed{Epoch: s.Epoch + 1}, nil
}

// sameRefs checks that the Welcome beside a commit is for exactly the sessions it adds: a Welcome
// for anyone else would hand them the group's secrets behind the other members' backs.
func sameRefs(added, welcomed [][]byte, hasWelcome bool) error {
	if len(added) == 0 {
		if hasWelcome {
			return fmt.Errorf("%w: a Welcome beside a commit that adds nobody", ErrInvalid)
		}
		return nil
	}
	if !hasWelcome {
		return fmt.Errorf("%w: the commit adds %d sessions but no Welcome came with it", ErrInvalid, len(added))
	}
	a := slices.Clone(added)
	w := slices.Clone(welcomed)
	slices.SortFunc(a, bytes.Compare)
	slices.SortFunc(w, bytes.Compare)
	if !slices.EqualFunc(a, w, bytes.Equal) {
		return fmt.Errorf("%w: the Welcome is not for exactly the KeyPackages the commit adds", ErrInvalid)
	}
	return nil
}

func decideSend(s *State, c Send) ([]proto.Message, any, error) {
	if _, err := s.member(c.By, c.Viewer); err != nil {
		return nil, nil, err
	}
	if len(c.Raw) > MaxMessage {
		return nil, nil, fmt.Errorf("%w: an MLS message of %d bytes; at most %d", ErrLimit, len(c.Raw), MaxMessage)
	}
	// Before the epoch check: the original may have been stored just before a commit.
	h := sha256.Sum256(c.Raw)
	for _, r := range s.Recent {
		if r.Hash == h && c.Msg != nil {
			return nil, Sent{MessageID: r.ID, Epoch: c.Msg.Epoch}, nil
		}
	}
	if err := s.frame(c.Msg, mls.ContentApplication); err != nil {
		return nil, nil, err
	}
	id := max(c.MessageID, s.LastID+1)
	ev := &eventsv1.GroupMessageSent{MessageId: id, Epoch: s.Epoch, SenderFid: c.By.FID, SenderSessionId: c.By.Session, Message: c.Raw, Recipients: s.withDevices()}
	return []proto.Message{ev}, Sent{MessageID: id, Epoch: s.Epoch}, nil
}

func decideJoin(s *State, c RequestJoin) ([]proto.Message, any, error) {
	if !s.knows(c.By.FID, c.Viewer) {
		return nil, nil, ErrNotFound
	}
	if s.devices(c.By.FID) == 0 && s.Kind != KindChannel {
		return nil, nil, fmt.Errorf("%w: only a new device of an actor already in the group asks to join; others are added by the owner", ErrForbidden)
	}
	if _, in := s.leafOf(c.By); in {
		return nil, nil, fmt.Errorf("%w: this session is already in the group", ErrInvalid)
	}
	kp := c.KeyPackage
	if kp == nil || kp.Credential != (mls.Credential{FID: c.By.FID, Session: c.By.Session}) {
		return nil, nil, fmt.Errorf("%w: the KeyPackage is not the requesting session's", ErrInvalid)
	}
	if kp.Suite != s.Suite {
		return nil, nil, fmt.Errorf("%w: the KeyPackage is for cipher suite 0x%04x, the group uses 0x%04x", ErrInvalid, uint16(kp.Suite), uint16(s.Suite))
	}
	ev := &eventsv1.GroupJoinRequested{Fid: c.By.FID, SessionId: c.By.Session, KeyPackage: kp.Raw, KeyPackageRef: kp.Ref, Recipients: s.withDevices()}
	for _, p := range s.Pending {
		if p.FID == c.By.FID && p.Session != c.By.Session {
			ev.PendingSessions = append(ev.PendingSessions, p.Session)
		}
	}
	ev.PendingSessions = append(ev.PendingSessions, c.By.Session)
	// The reply is the group with the request applied; a join request changes only Pending, so
	// a copy with its own Pending leaves s untouched.
	next := *s
	next.Pending = slices.Clone(s.Pending)
	if _, err := Apply(&next, ev); err != nil {
		return nil, nil, err
	}
	return []proto.Message{ev}, next.View(), nil
}

// withDevices lists the actors holding a leaf, in the group's order.
func (s *State) withDevices() []string {
	var out []string
	for _, a := range s.Actors {
		if s.devices(a) > 0 {
			out = append(out, a)
		}
	}
	return out
}
