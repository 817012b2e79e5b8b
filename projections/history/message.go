package history

import (
	"encoding/base64"
	"strconv"
	"time"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
	"github.com/polyproto-chat/server/snowflake"
)

// Message is a message as clients get it (REST and the MESSAGE_CREATE dispatch) and as the
// read model stores it: the bytes served are the bytes stored. docs/PROTOCOL.md section 6.
type Message struct {
	ID          snowflake.ID `json:"id"`
	ChannelID   snowflake.ID `json:"channel_id"`
	GuildID     snowflake.ID `json:"guild_id"`
	Author      string       `json:"author"`
	Content     string       `json:"content"`
	Attachments []string     `json:"attachments"`
	Nonce       string       `json:"nonce"`
	// The signed fields of the current version: Timestamp is the author's clock in Unix
	// milliseconds, Signature base64url without padding, CertSerial a decimal string.
	Timestamp  int64  `json:"timestamp"`
	CertSerial string `json:"cert_serial"`
	SessionID  string `json:"session_id"`
	Signature  string `json:"signature"`
	// Version counts edits: 0 for the original, whose signature covers the nonce; from 1 the
	// signature is over the edit form (docs/PROTOCOL.md).
	Version   uint64     `json:"version"`
	EditedAt  *time.Time `json:"edited_at,omitempty"`
	Pinned    bool       `json:"pinned"`
	Reactions []Reaction `json:"reactions"`
}

// Reaction is one emoji on a message and who put it there, in the order they reacted.
type Reaction struct {
	Emoji string   `json:"emoji"`
	Count int      `json:"count"`
	FIDs  []string `json:"fids"`
}

// FromCreated is the message as first stored.
func FromCreated(channelID uint64, e *eventsv1.MessageCreated) Message {
	return Message{
		ID: snowflake.ID(e.GetMessageId()), ChannelID: snowflake.ID(channelID), GuildID: snowflake.ID(e.GetGuildId()),
		Author: e.GetAuthorFid(), Content: e.GetContent(), Attachments: nonNil(e.GetAttachments()), Nonce: e.GetNonce(),
		Timestamp: e.GetTimestampMs(), CertSerial: strconv.FormatUint(e.GetCertSerial(), 10), SessionID: e.GetSessionId(),
		Signature: base64.RawURLEncoding.EncodeToString(e.GetSignature()), Reactions: []Reaction{},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
