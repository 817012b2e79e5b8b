package client

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/polyproto-chat/server/snowflake"
)

// Typed decoding of the chat gateway dispatches (PROTOCOL.md section 6, "Gateway dispatches").
// The gateway hands every dispatch over undecoded (Event.Dispatch); Dispatch.Decode turns the
// chat ones into the types below, so that the gateway client stays free of chat knowledge.

// Chat dispatch types.
const (
	EventGuildCreate           = "GUILD_CREATE"
	EventGuildUpdate           = "GUILD_UPDATE"
	EventGuildDelete           = "GUILD_DELETE"
	EventChannelCreate         = "CHANNEL_CREATE"
	EventChannelUpdate         = "CHANNEL_UPDATE"
	EventChannelDelete         = "CHANNEL_DELETE"
	EventRoleCreate            = "GUILD_ROLE_CREATE"
	EventRoleUpdate            = "GUILD_ROLE_UPDATE"
	EventRoleDelete            = "GUILD_ROLE_DELETE"
	EventMemberAdd             = "GUILD_MEMBER_ADD"
	EventMemberUpdate          = "GUILD_MEMBER_UPDATE"
	EventMemberRemove          = "GUILD_MEMBER_REMOVE"
	EventBanAdd                = "GUILD_BAN_ADD"
	EventBanRemove             = "GUILD_BAN_REMOVE"
	EventMessageCreate         = "MESSAGE_CREATE"
	EventMessageUpdate         = "MESSAGE_UPDATE"
	EventMessageDelete         = "MESSAGE_DELETE"
	EventMessageDeleteBulk     = "MESSAGE_DELETE_BULK"
	EventChannelPinsUpdate     = "CHANNEL_PINS_UPDATE"
	EventMessageReactionAdd    = "MESSAGE_REACTION_ADD"
	EventMessageReactionRemove = "MESSAGE_REACTION_REMOVE"
	EventTypingStart           = "TYPING_START"
)

// GuildDelete is GUILD_DELETE: the guild is gone, or the caller left it (Reason "left",
// "kicked" or "banned"; "" when the guild was deleted).
type GuildDelete struct {
	ID     snowflake.ID `json:"id"`
	Reason string       `json:"reason"`
}

// ChannelDelete is CHANNEL_DELETE: the channel is gone or no longer visible.
type ChannelDelete struct {
	ID      snowflake.ID `json:"id"`
	GuildID snowflake.ID `json:"guild_id"`
}

// RoleEvent is GUILD_ROLE_CREATE and GUILD_ROLE_UPDATE.
type RoleEvent struct {
	GuildID snowflake.ID `json:"guild_id"`
	Role    Role         `json:"role"`
}

// RoleDelete is GUILD_ROLE_DELETE.
type RoleDelete struct {
	GuildID snowflake.ID `json:"guild_id"`
	RoleID  snowflake.ID `json:"role_id"`
}

// MemberEvent is GUILD_MEMBER_ADD and GUILD_MEMBER_UPDATE.
type MemberEvent struct {
	GuildID snowflake.ID `json:"guild_id"`
	Member  Member       `json:"member"`
}

// MemberRemove is GUILD_MEMBER_REMOVE.
type MemberRemove struct {
	GuildID snowflake.ID `json:"guild_id"`
	FID     string       `json:"fid"`
	Reason  string       `json:"reason"`
}

// BanEvent is GUILD_BAN_ADD and GUILD_BAN_REMOVE.
type BanEvent struct {
	GuildID snowflake.ID `json:"guild_id"`
	FID     string       `json:"fid"`
}

// MessageUpdate is MESSAGE_UPDATE: a new version of a message, signed over the edit form (see
// Chat.VerifyUpdate). It carries no nonce, version, pins or reactions.
type MessageUpdate struct {
	ID          snowflake.ID `json:"id"`
	ChannelID   snowflake.ID `json:"channel_id"`
	GuildID     snowflake.ID `json:"guild_id"`
	Author      string       `json:"author"`
	Content     string       `json:"content"`
	Attachments []string     `json:"attachments"`
	Timestamp   int64        `json:"timestamp"`
	CertSerial  uint64       `json:"cert_serial"`
	SessionID   string       `json:"session_id"`
	Signature   string       `json:"signature"`
	EditedAt    *time.Time   `json:"edited_at"`
}

// UnmarshalJSON reads cert_serial as a decimal string or a number.
func (u *MessageUpdate) UnmarshalJSON(data []byte) error {
	type plain MessageUpdate
	var w struct {
		plain
		CertSerial flexUint `json:"cert_serial"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*u = MessageUpdate(w.plain)
	u.CertSerial = uint64(w.CertSerial)
	return nil
}

// MessageDelete is MESSAGE_DELETE.
type MessageDelete struct {
	ID        snowflake.ID `json:"id"`
	ChannelID snowflake.ID `json:"channel_id"`
	GuildID   snowflake.ID `json:"guild_id"`
}

// MessageDeleteBulk is MESSAGE_DELETE_BULK.
type MessageDeleteBulk struct {
	IDs       []snowflake.ID `json:"ids"`
	ChannelID snowflake.ID   `json:"channel_id"`
	GuildID   snowflake.ID   `json:"guild_id"`
}

// PinsUpdate is CHANNEL_PINS_UPDATE: MessageID was pinned or unpinned.
type PinsUpdate struct {
	ChannelID snowflake.ID `json:"channel_id"`
	GuildID   snowflake.ID `json:"guild_id"`
	MessageID snowflake.ID `json:"message_id"`
	Pinned    bool         `json:"pinned"`
}

// ReactionEvent is MESSAGE_REACTION_ADD and MESSAGE_REACTION_REMOVE.
type ReactionEvent struct {
	ChannelID snowflake.ID `json:"channel_id"`
	GuildID   snowflake.ID `json:"guild_id"`
	MessageID snowflake.ID `json:"message_id"`
	FID       string       `json:"fid"`
	Emoji     string       `json:"emoji"`
}

// TypingStart is TYPING_START. Timestamp is as the server sends it (Unix milliseconds).
type TypingStart struct {
	ChannelID snowflake.ID `json:"channel_id"`
	GuildID   snowflake.ID `json:"guild_id"`
	FID       string       `json:"fid"`
	Timestamp int64        `json:"timestamp"`
}

// dispatchTypes maps each chat dispatch type to a constructor of its payload.
var dispatchTypes = map[string]func() any{
	EventLowKeyPackages:        func() any { return new(LowKeyPackages) },
	EventGuildCreate:           func() any { return new(Guild) },
	EventGuildUpdate:           func() any { return new(Guild) },
	EventGuildDelete:           func() any { return new(GuildDelete) },
	EventChannelCreate:         func() any { return new(Channel) },
	EventChannelUpdate:         func() any { return new(Channel) },
	EventChannelDelete:         func() any { return new(ChannelDelete) },
	EventRoleCreate:            func() any { return new(RoleEvent) },
	EventRoleUpdate:            func() any { return new(RoleEvent) },
	EventRoleDelete:            func() any { return new(RoleDelete) },
	EventMemberAdd:             func() any { return new(MemberEvent) },
	EventMemberUpdate:          func() any { return new(MemberEvent) },
	EventMemberRemove:          func() any { return new(MemberRemove) },
	EventBanAdd:                func() any { return new(BanEvent) },
	EventBanRemove:             func() any { return new(BanEvent) },
	EventMessageCreate:         func() any { return new(Message) },
	EventMessageUpdate:         func() any { return new(MessageUpdate) },
	EventMessageDelete:         func() any { return new(MessageDelete) },
	EventMessageDeleteBulk:     func() any { return new(MessageDeleteBulk) },
	EventChannelPinsUpdate:     func() any { return new(PinsUpdate) },
	EventMessageReactionAdd:    func() any { return new(ReactionEvent) },
	EventMessageReactionRemove: func() any { return new(ReactionEvent) },
	EventTypingStart:           func() any { return new(TypingStart) },
}

// Decode returns the payload of a chat dispatch as a pointer to its type: *Guild for
// GUILD_CREATE and GUILD_UPDATE, *Channel for CHANNEL_CREATE and CHANNEL_UPDATE, *Message for
// MESSAGE_CREATE, *MessageUpdate, *MessageDelete and so on (see the Event* constants). A type
// this SDK does not know gives nil and no error, so that newer servers do not break older
// clients.
func (d *Dispatch) Decode() (any, error) {
	mk, ok := dispatchTypes[d.Type]
	if !ok {
		return nil, nil
	}
	v := mk()
	if err := json.Unmarshal(d.Data, v); err != nil {
		return nil, fmt.Errorf("client: %s dispatch: %w", d.Type, err)
	}
	return v, nil
}

// ChatGuilds decodes READY's guilds: every guild the actor is a member of, with the channels
// it may view.
func (r *Ready) ChatGuilds() ([]Guild, error) {
	out := make([]Guild, 0, len(r.Guilds))
	for i, raw := range r.Guilds {
		var g Guild
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, fmt.Errorf("client: READY guild %d: %w", i, err)
		}
		out = append(out, g)
	}
	return out, nil
}
