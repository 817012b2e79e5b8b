package client

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/polyproto-chat/server/snowflake"
)

// The chat objects of PROTOCOL.md section 6 as the SDK hands them out. They mirror the JSON and
// decode leniently (numbers or decimal strings where the server might send either), so that
// the SDK depends on no server package.

// Permissions is a permission bitset (PROTOCOL.md section 5); in JSON a decimal string.
type Permissions uint64

// The bits are fixed by the protocol: they are stored in events.
const (
	PermViewChannel Permissions = 1 << iota
	PermSendMessages
	PermReadMessageHistory
	PermAddReactions
	PermManageMessages
	PermManageChannel
	PermManageRoles
	PermManageGuild
	PermKickMembers
	PermBanMembers
	PermCreateInvite
	PermViewAuditLog
	PermAdministrator
)

// permissionNames is indexed by bit number.
var permissionNames = [...]string{
	"VIEW_CHANNEL", "SEND_MESSAGES", "READ_MESSAGE_HISTORY", "ADD_REACTIONS", "MANAGE_MESSAGES",
	"MANAGE_CHANNEL", "MANAGE_ROLES", "MANAGE_GUILD", "KICK_MEMBERS", "BAN_MEMBERS", "CREATE_INVITE",
	"VIEW_AUDIT_LOG", "ADMINISTRATOR",
}

// Has reports whether p holds every bit of q.
func (p Permissions) Has(q Permissions) bool { return p&q == q }

// Names lists p's bits by name in bit order; bits this SDK does not know are named by number,
// so that nothing a newer server sends disappears from view.
func (p Permissions) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(p)))
	for i := range 64 {
		if p&(1<<i) == 0 {
			continue
		}
		if i < len(permissionNames) {
			out = append(out, permissionNames[i])
		} else {
			out = append(out, "BIT_"+strconv.Itoa(i))
		}
	}
	return out
}

func (p Permissions) String() string { return strings.Join(p.Names(), ",") }

// ParsePermissions reads names as Names writes them (case-insensitive, separated by commas or
// spaces). An unknown name is an error: a typo must not silently grant less.
func ParsePermissions(list string) (Permissions, error) {
	var p Permissions
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' }) {
		bit, err := permissionBit(strings.ToUpper(name))
		if err != nil {
			return 0, err
		}
		p |= bit
	}
	return p, nil
}

func permissionBit(name string) (Permissions, error) {
	for i, n := range permissionNames {
		if n == name {
			return 1 << i, nil
		}
	}
	if n, ok := strings.CutPrefix(name, "BIT_"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < 64 {
			return 1 << i, nil
		}
	}
	return 0, fmt.Errorf("unknown permission %q (known: %s)", name, strings.Join(permissionNames[:], ", "))
}

// MarshalJSON writes a decimal string, as the protocol does for every 64-bit value.
func (p Permissions) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatUint(uint64(p), 10)), nil
}

// UnmarshalJSON reads a decimal string or number.
func (p *Permissions) UnmarshalJSON(data []byte) error {
	var u flexUint
	if err := u.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("permissions: %w", err)
	}
	*p = Permissions(u)
	return nil
}

// ChannelType is a channel's kind.
type ChannelType int

const (
	ChannelText     ChannelType = 1
	ChannelCategory ChannelType = 4
)

func (t ChannelType) String() string {
	switch t {
	case ChannelText:
		return "text"
	case ChannelCategory:
		return "category"
	}
	return "type-" + strconv.Itoa(int(t))
}

// Guild is a guild as the caller sees it: Channels are the ones it may view; a non-member sees a
// public guild without roles and channels, and GUILD_UPDATE carries neither.
type Guild struct {
	ID          snowflake.ID `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Owner       string       `json:"owner"` // FID
	Private     bool         `json:"private"`
	CreatedAt   time.Time    `json:"created_at"`
	MemberCount int          `json:"member_count"`
	Roles       []Role       `json:"roles"`
	Channels    []Channel    `json:"channels"`
}

// Channel is a text channel or a category. ParentID is 0 for a channel outside any category.
type Channel struct {
	ID          snowflake.ID `json:"id"`
	GuildID     snowflake.ID `json:"guild_id"`
	Type        ChannelType  `json:"type"`
	Name        string       `json:"name"`
	Topic       string       `json:"topic"`
	ParentID    snowflake.ID `json:"parent_id"`
	Position    int          `json:"position"`
	Overwrites  []Overwrite  `json:"permission_overwrites"`
	Permissions Permissions  `json:"permissions"` // the caller's, in this channel
	// Encrypted channels take MLS messages only, through the messaging group GroupID
	// (MLS.RequestJoin, MLS.Send); Chat.Send to them is refused.
	Encrypted bool         `json:"encrypted"`
	GroupID   snowflake.ID `json:"group_id"`
}

// UnmarshalJSON reads a parent_id of null as 0.
func (c *Channel) UnmarshalJSON(data []byte) error {
	type plain Channel
	var w struct {
		plain
		ParentID *snowflake.ID `json:"parent_id"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*c = Channel(w.plain)
	if w.ParentID != nil {
		c.ParentID = *w.ParentID
	}
	return nil
}

// Overwrite changes the permissions of a role (ID a role id) or a member (ID a FID) in one
// channel.
type Overwrite struct {
	Type  string      `json:"type"` // "role" or "member"
	ID    string      `json:"id"`
	Allow Permissions `json:"allow"`
	Deny  Permissions `json:"deny"`
}

// RoleOverwrite and MemberOverwrite build the two kinds of Overwrite.
func RoleOverwrite(role snowflake.ID, allow, deny Permissions) Overwrite {
	return Overwrite{Type: "role", ID: role.String(), Allow: allow, Deny: deny}
}

func MemberOverwrite(fid string, allow, deny Permissions) Overwrite {
	return Overwrite{Type: "member", ID: fid, Allow: allow, Deny: deny}
}

// Role is a guild role; @everyone has the guild's id and position 0.
type Role struct {
	ID          snowflake.ID `json:"id"`
	Name        string       `json:"name"`
	Permissions Permissions  `json:"permissions"`
	Position    int          `json:"position"`
	Color       uint32       `json:"color"`
}

// Member is a guild member.
type Member struct {
	FID      string         `json:"fid"`
	Nick     string         `json:"nick"`
	Roles    []snowflake.ID `json:"roles"`
	JoinedAt time.Time      `json:"joined_at"`
}

// Ban is one banned actor.
type Ban struct {
	FID string `json:"fid"`
}

// Invite is an invite to a channel. ExpiresAt is zero for one that never expires, MaxUses 0 for
// unlimited uses.
type Invite struct {
	Code      string       `json:"code"`
	GuildID   snowflake.ID `json:"guild_id"`
	ChannelID snowflake.ID `json:"channel_id"`
	Inviter   string       `json:"inviter"`
	Uses      int          `json:"uses"`
	MaxUses   int          `json:"max_uses"`
	ExpiresAt time.Time    `json:"expires_at"`
	CreatedAt time.Time    `json:"created_at"`
	Guild     InviteGuild  `json:"guild"`
}

// InviteGuild is what an invite shows of its guild before joining.
type InviteGuild struct {
	ID          snowflake.ID `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	MemberCount int          `json:"member_count"`
}

// Message is a message of a channel. Timestamp (the author's clock, Unix ms), CertSerial,
// SessionID and Signature belong to the current version; Version counts edits, and from 1 the
// signature is over the edit form (see Chat.VerifyMessage).
type Message struct {
	ID          snowflake.ID `json:"id"`
	ChannelID   snowflake.ID `json:"channel_id"`
	GuildID     snowflake.ID `json:"guild_id"`
	Author      string       `json:"author"` // FID
	Content     string       `json:"content"`
	Attachments []string     `json:"attachments"`
	Nonce       string       `json:"nonce"`
	Timestamp   int64        `json:"timestamp"`
	CertSerial  uint64       `json:"cert_serial"`
	SessionID   string       `json:"session_id"`
	Signature   string       `json:"signature"` // base64url, no padding
	Version     uint64       `json:"version"`
	EditedAt    *time.Time   `json:"edited_at,omitempty"`
	Pinned      bool         `json:"pinned"`
	Reactions   []Reaction   `json:"reactions"`
}

// UnmarshalJSON reads cert_serial as a decimal string (what the server sends) or a number.
func (m *Message) UnmarshalJSON(data []byte) error {
	type plain Message
	var w struct {
		plain
		CertSerial flexUint `json:"cert_serial"`
		Version    flexUint `json:"version"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*m = Message(w.plain)
	m.CertSerial, m.Version = uint64(w.CertSerial), uint64(w.Version)
	return nil
}

// Edited reports whether the message has been edited.
func (m Message) Edited() bool { return m.Version > 0 || m.EditedAt != nil }

// Reaction is one emoji on a message and who put it there.
type Reaction struct {
	Emoji string   `json:"emoji"`
	Count int      `json:"count"`
	FIDs  []string `json:"fids"`
}

// AuditEntry is one stored event of a guild's or channel's stream (the audit log, the channel
// event route). Data is the event's fields as protobuf JSON.
type AuditEntry struct {
	Revision  uint64          `json:"revision"`
	Position  uint64          `json:"position"`
	Type      string          `json:"type"` // the short event name, e.g. MessageEdited
	Actor     string          `json:"actor"`
	SessionID string          `json:"session_id"`
	At        time.Time       `json:"at"`
	Reason    string          `json:"reason"`
	Data      json.RawMessage `json:"data"`
}

// UnmarshalJSON reads revision and position as numbers or decimal strings.
func (e *AuditEntry) UnmarshalJSON(data []byte) error {
	type plain AuditEntry
	var w struct {
		plain
		Revision flexUint `json:"revision"`
		Position flexUint `json:"position"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = AuditEntry(w.plain)
	e.Revision, e.Position = uint64(w.Revision), uint64(w.Position)
	return nil
}

// EventPage is one page of a channel's stream: Next is the revision to ask for next.
type EventPage struct {
	Events []AuditEntry `json:"events"`
	Next   uint64       `json:"next"`
}

func (p *EventPage) UnmarshalJSON(data []byte) error {
	var w struct {
		Events []AuditEntry `json:"events"`
		Next   flexUint     `json:"next"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*p = EventPage{Events: w.Events, Next: uint64(w.Next)}
	return nil
}
