package channel

import (
	"errors"
	"time"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/permissions"
)

// Errors a caller branches on; gateway/errors.go maps each to an HTTP status and code.
var (
	// ErrNotFound: the message does not exist (or is deleted), or the actor may not see the
	// channel (Perms without VIEW_CHANNEL): the two look alike.
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("missing permission")
	ErrInvalid   = errors.New("invalid request")
	// ErrLimit: a per-channel or per-message limit (pins, distinct reactions) is reached.
	ErrLimit = errors.New("channel limit reached")
)

// Limits.
const (
	MaxContentRunes   = 4000
	MaxAttachments    = 10
	MaxAttachmentLen  = 2048 // bytes of one attachment URL
	MaxNonceLen       = 64
	MaxEmojiLen       = 64 // bytes
	MaxReactionKinds  = 20 // distinct emoji on one message
	MaxPins           = 50
	MaxBulkDelete     = 100
	RecentNonces      = 1024 // nonces remembered for retries, per channel
	MaxClockSkew      = 10 * time.Minute
	MaxSignatureBytes = 64
)

// By says who sends a command, in which session, when and why. Perms are the sender's
// permissions in this channel, computed by the guild actor (guild.Authorize) just before.
type By struct {
	FID       string
	SessionID string
	Reason    string
	At        time.Time
	Perms     permissions.Set
}

func (b By) origin() actors.Origin {
	return actors.Origin{ActorFID: b.FID, SessionID: b.SessionID, Reason: b.Reason}
}

// Signed is what the author signed (docs/PROTOCOL.md "Signed messages"); the gateway checked
// Signature against the author's ID-Cert before sending the command.
type Signed struct {
	Content     string
	Attachments []string
	TimestampMS int64
	CertSerial  uint64
	Signature   []byte
}

// Send appends a message. SEND_MESSAGES. ProposedID is a fresh snowflake; decide keeps ids
// increasing along the stream, so it may use a larger one. A Nonce already used by the same
// author among the channel's recent messages answers the stored message instead (a retry).
// Reply: Sent.
type Send struct {
	By
	Signed
	GuildID    uint64
	ProposedID uint64
	Nonce      string
}

// Sent is Send's reply: the message id, and whether it was stored by an earlier attempt.
type Sent struct {
	MessageID uint64
	Duplicate bool
}

// Target is what the history read model knows of the message a command is about, looked up
// by the gateway after the read model caught up with the channel.
type Target struct {
	Exists   bool // false: unknown or deleted
	Author   string
	Pinned   bool
	Reacted  bool // By.FID already reacted with the command's emoji
	Emoji    bool // the command's emoji is already on the message (by anyone)
	Distinct int  // distinct emoji on the message
}

// Edit replaces a message's content with a new signed version. Only its author, who still
// needs SEND_MESSAGES. Reply: nil.
type Edit struct {
	By
	Signed
	MessageID uint64
	Target    Target
}

// Delete removes a message: its author, or MANAGE_MESSAGES. Reply: nil.
type Delete struct {
	By
	MessageID uint64
	Target    Target
}

// BulkDelete removes 2-100 messages at once. MANAGE_MESSAGES. Ids of messages that are
// unknown or already deleted are left out (Existing says which exist). Reply: nil.
type BulkDelete struct {
	By
	MessageIDs []uint64
	Existing   []bool // parallel to MessageIDs
}

// Pin and Unpin: MANAGE_MESSAGES. Pinning a pinned message is a no-op. Reply: nil.
type Pin struct {
	By
	MessageID uint64
	Target    Target
}
type Unpin struct {
	By
	MessageID uint64
	Target    Target
}

// React adds By.FID's Emoji to a message. ADD_REACTIONS, unless the emoji is already there
// (READ_MESSAGE_HISTORY suffices then, as in Discord). Reacting twice is a no-op. Reply: nil.
type React struct {
	By
	MessageID uint64
	Emoji     string
	Target    Target
}

// Unreact removes a reaction: By.FID's own, or another member's (FID) with MANAGE_MESSAGES.
// Reply: nil.
type Unreact struct {
	By
	MessageID uint64
	Emoji     string
	FID       string // whose reaction; "" or By.FID: one's own
	Target    Target
}

func originOf(cmd any) actors.Origin {
	if c, ok := cmd.(interface{ origin() actors.Origin }); ok {
		return c.origin()
	}
	return actors.Origin{}
}
