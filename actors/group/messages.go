package group

import (
	"errors"
	"fmt"

	"github.com/polyproto-chat/server/mls"
)

// Kinds of group.
const (
	KindDM    = "dm"    // exactly two actors, for ever (polyproto-chat 3.2)
	KindGroup = "group" // 2-15 actors, owners add and remove (3.3)
	// KindChannel is the group of an encrypted guild channel (3.1): whoever may view the channel
	// asks to join with a KeyPackage, and any member lets them in by adding it.
	KindChannel = "channel"
)

// Limits.
const (
	MaxActors = 15
	// MaxChannelLeaves bounds the devices in an encrypted channel: a commit and a Welcome grow
	// with the tree, and past a thousand leaves both are too slow for chat.
	MaxChannelLeaves = 1000
	MaxName          = 100
	// MaxMessage bounds one MLS application message: 4,000 characters of content (up to 16 KB of
	// UTF-8) plus framing, padding and the signature.
	MaxMessage = 20 << 10
)

// By is the session a command comes from.
type By struct {
	FID, Session string
}

// Create makes the group; the creating session holds leaf 0 of its MLS group at epoch 0. Others
// are the actors besides the creator: exactly one for a DM, 1-14 for a group, none for a channel
// (GuildID and ChannelID name it; the edge checked MANAGE_CHANNEL). Reply: View.
type Create struct {
	Kind       string
	Name       string
	By         By
	Others     []string
	MLSGroupID []byte
	Suite      mls.Suite
	GuildID    uint64
	ChannelID  uint64
}

// In a group of kind channel, Viewer on a command says whether By may view the channel now (the
// edge asks the guild): an actor that lost VIEW_CHANNEL can neither read nor post, whatever its
// devices. Other kinds ignore it.

// Commit is an MLS commit posted by a member's session, parsed by the edge (Msg). Welcome is the
// MLSMessage for the added sessions and WelcomeRefs the KeyPackageRefs it has secrets for.
// Reply: Committed.
type Commit struct {
	By     By
	Viewer bool
	// Moderator: By has MANAGE_CHANNEL in the channel (kind channel), and may remove anyone's
	// devices, as the owner of a group may.
	Moderator   bool
	Raw         []byte
	Msg         *mls.Message
	Welcome     []byte
	WelcomeRefs [][]byte
}

// Committed is the answer to an accepted commit.
type Committed struct {
	Epoch uint64 // the group's epoch now
}

// Send is an MLS application message posted by a member's session. MessageID is a fresh
// snowflake; the actor keeps ids increasing along the stream. The same bytes posted again (a
// resend after a lost answer) are answered with the stored message's id and not stored twice,
// whatever the epoch is by then. Reply: Sent.
type Send struct {
	By        By
	Viewer    bool
	Raw       []byte
	Msg       *mls.Message
	MessageID uint64
}

// Sent is the answer to a stored application message.
type Sent struct {
	MessageID uint64
	Epoch     uint64
}

// RequestJoin asks, from a new session of an actor already in the group, to be added with this
// KeyPackage (validated and bound to the session by the edge). Reply: View.
type RequestJoin struct {
	By         By
	Viewer     bool
	KeyPackage *mls.KeyPackage
}

// Get reads the group as By sees it. Reply: View.
type Get struct {
	By     By
	Viewer bool
}

// View is the group as its actors see it.
type View struct {
	ID         uint64
	Kind, Name string
	Owner      string
	Actors     []string // with at least one device in the MLS group, in order of joining
	Invited    []string // named at creation (groups), not yet added
	MLSGroupID []byte
	Suite      mls.Suite
	Epoch      uint64
	Leaves     []Leaf
	Pending    []Pending
	GuildID    uint64 // kind channel
	ChannelID  uint64 // kind channel
}

// Leaf is one occupied leaf of the MLS group.
type Leaf struct {
	Leaf         uint32
	FID, Session string
}

// Recent is an application message the group stored lately, by the SHA-256 of its bytes.
type Recent struct {
	Hash [32]byte
	ID   uint64
}

// RecentMessages is how many stored messages a resend is recognised among: a client resends
// after a lost answer, within seconds, not after hundreds of messages.
const RecentMessages = 256

// Pending is a join request of a new device, not yet added.
type Pending struct {
	FID, Session string
	KeyPackage   []byte
	Ref          []byte
}

// Errors a caller branches on.
var (
	// ErrInvalid: a malformed command or an MLS message the group cannot take.
	ErrInvalid = errors.New("invalid group request")
	// ErrNotFound: no such group, or the actor is not in it (the same answer, so that groups
	// cannot be probed).
	ErrNotFound = errors.New("group not found")
	// ErrForbidden: the actor is in the group but may not do this.
	ErrForbidden = errors.New("not allowed in this group")
	// ErrLimit: the group would pass a limit (actors, message size).
	ErrLimit = errors.New("group limit")
	// ErrEpoch: the message is for another epoch; see EpochError for the current one.
	ErrEpoch = errors.New("wrong epoch")
)

// EpochError is ErrEpoch with the epoch the group is at: a losing committer fetches the commits
// since its epoch, processes them and tries again.
type EpochError struct {
	Got, Current uint64
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("wrong epoch: the message is for epoch %d, the group is at epoch %d", e.Got, e.Current)
}

func (e *EpochError) Unwrap() error { return ErrEpoch }
