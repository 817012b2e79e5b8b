package guild

import (
	"errors"
	"time"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Errors a caller branches on; gateway/errors.go maps each to an HTTP status and code.
var (
	// ErrNotFound: the guild, channel, role, member or invite does not exist, or the actor may
	// not see it. The two look alike on purpose (the spec's NotFoundOrForbidden).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the actor can see the target but lacks a permission, or the role hierarchy
	// forbids the action.
	ErrForbidden = errors.New("missing permission")
	ErrInvalid   = errors.New("invalid request")
	ErrBanned    = errors.New("banned from this guild")
	// ErrInvite: the invite is unknown, expired, revoked or used up.
	ErrInvite = errors.New("invite unknown, expired or used up")
	// ErrLimit: a per-guild limit (channels, roles, invites) is reached.
	ErrLimit = errors.New("guild limit reached")
	// ErrOwner: the owner cannot leave, be kicked or banned; they delete the guild instead.
	ErrOwner = errors.New("the owner cannot do that")
)

// Limits of one guild.
const (
	MaxChannels   = 500
	MaxRoles      = 250
	MaxInvites    = 1000 // live (not revoked, not expired) invites
	MaxNameLen    = 100  // runes: guild, channel and role names
	MaxTopicLen   = 1024 // runes: channel topics and guild descriptions
	MaxNickLen    = 32   // runes
	MaxInviteUses = 100_000
	MaxInviteAge  = 30 * 24 * time.Hour
)

// By says who sends a command, when, and why (the audit-log reason); every command has one.
type By struct {
	FID       string
	SessionID string
	Reason    string
	At        time.Time
}

func (b By) origin() actors.Origin {
	return actors.Origin{ActorFID: b.FID, SessionID: b.SessionID, Reason: b.Reason}
}

// Commands. Ids of new things (guild, channel, role) are snowflakes the gateway picks, so the
// reply names them and decide stays pure; invite codes likewise.

// Create starts the guild (the actor's id is GuildID): @everyone with EveryonePerms, a text
// channel "general" with id GeneralID, and the creator as owner and first member.
// Reply: *Guild.
type Create struct {
	By
	Name, Description string
	Private           bool
	GeneralID         uint64
}

// Update changes the fields that are set. MANAGE_GUILD. Reply: *Guild.
type Update struct {
	By
	Name, Description *string
	Private           *bool
}

// Delete ends the guild. Owner only. Reply: nil.
type Delete struct{ By }

// CreateChannel adds a text channel or a category. MANAGE_CHANNEL. Reply: *Channel.
type CreateChannel struct {
	By
	ChannelID uint64
	Type      eventsv1.ChannelType // TEXT or CATEGORY
	Name      string
	Topic     string
	ParentID  uint64  // a category of this guild, or 0
	Position  *uint32 // nil: after the last
}

// UpdateChannel changes the fields that are set. MANAGE_CHANNEL in that channel. Reply: *Channel.
type UpdateChannel struct {
	By
	ChannelID uint64
	Name      *string
	Topic     *string
	ParentID  *uint64
	Position  *uint32
}

// EnableEncryption makes a text channel encrypted, through the messaging group GroupID (which the
// edge has just created). MANAGE_CHANNEL in it. Reply: nil.
type EnableEncryption struct {
	By
	ChannelID uint64
	GroupID   uint64
}

// DeleteChannel removes a channel or category. MANAGE_CHANNEL in it. Reply: nil.
type DeleteChannel struct {
	By
	ChannelID uint64
}

// SetOverwrite sets the overwrite of one role (RoleID) or member (MemberFID) in a channel.
// MANAGE_ROLES in the channel; a role overwrite also needs the role to be manageable by the
// actor, and nobody can allow or deny bits they do not have themselves. Reply: nil.
type SetOverwrite struct {
	By
	ChannelID   uint64
	RoleID      uint64
	MemberFID   string
	Allow, Deny permissions.Set
}

// RemoveOverwrite drops an overwrite; the same checks as SetOverwrite. Reply: nil.
type RemoveOverwrite struct {
	By
	ChannelID uint64
	RoleID    uint64
	MemberFID string
}

// CreateRole adds a role. MANAGE_ROLES; the role must sit below the actor's highest role and
// hold only permissions the actor has. Reply: *Role.
type CreateRole struct {
	By
	RoleID      uint64
	Name        string
	Permissions permissions.Set
	Color       uint32
	Position    *uint32 // nil: 1, just above @everyone
}

// UpdateRole changes the fields that are set; the same checks as CreateRole, before and after.
// @everyone keeps position 0 and its name. Reply: *Role.
type UpdateRole struct {
	By
	RoleID      uint64
	Name        *string
	Permissions *permissions.Set
	Color       *uint32
	Position    *uint32
}

// DeleteRole removes a role (never @everyone). Reply: nil.
type DeleteRole struct {
	By
	RoleID uint64
}

// Join makes By.FID a member through an invite. Joining again is a no-op. Reply: *Guild.
type Join struct {
	By
	Code string
}

// Leave: By.FID leaves. Reply: nil.
type Leave struct{ By }

// Kick removes a member. KICK_MEMBERS and above them in the hierarchy. Reply: nil.
type Kick struct {
	By
	FID string
}

// Ban removes a member if present and refuses their joins. BAN_MEMBERS and above them.
// Reply: nil.
type Ban struct {
	By
	FID string
}

// Unban lifts a ban. BAN_MEMBERS. Reply: nil.
type Unban struct {
	By
	FID string
}

// SetNickname: anyone for themselves; MANAGE_GUILD and above them for others. Reply: *Member.
type SetNickname struct {
	By
	FID      string
	Nickname string
}

// SetRoles replaces a member's roles. MANAGE_ROLES, above the member (unless it is the actor
// themselves), and every role added or removed manageable by the actor. Reply: *Member.
type SetRoles struct {
	By
	FID     string
	RoleIDs []uint64
}

// CreateInvite makes an invite into a channel. CREATE_INVITE in it. Reply: *Invite.
type CreateInvite struct {
	By
	Code      string
	ChannelID uint64
	MaxUses   uint32        // 0: unlimited
	MaxAge    time.Duration // 0: never expires
}

// RevokeInvite: its creator, or MANAGE_GUILD. Reply: nil.
type RevokeInvite struct {
	By
	Code string
}

// Queries: no events; the reply reflects every command decided before.

// Get is the guild as By.FID may see it. A private guild is ErrNotFound to non-members.
// Reply: *Guild (a deep copy, channels filtered to those the actor may view).
type Get struct{ By }

// Authorize is what By.FID may do in ChannelID (0: guild-wide). ErrNotFound unless a member who
// can view the channel (guild-wide: any member). Reply: Access.
type Authorize struct {
	By
	ChannelID uint64
}

// Access is Authorize's reply.
type Access struct {
	GuildID     uint64
	Channel     *Channel // nil for guild-wide
	Permissions permissions.Set
}

// Members lists members by FID order after After, at most Limit. Any member may. Reply: []Member.
type Members struct {
	By
	After string
	Limit int
}

// Bans lists the banned FIDs. BAN_MEMBERS. Reply: []string.
type Bans struct{ By }

// Invites lists the live invites. MANAGE_GUILD. Reply: []Invite.
type Invites struct{ By }

// CheckInvite tells whether By.FID could join with Code now, without joining (invite preview).
// Reply: *Invite.
type CheckInvite struct {
	By
	Code string
}

// AuditAccess is nil when By.FID may read the audit log (VIEW_AUDIT_LOG), else an error.
// Reply: nil.
type AuditAccess struct{ By }

// originOf is Model.Origin: every command embeds By.
func originOf(cmd any) actors.Origin {
	if c, ok := cmd.(interface{ origin() actors.Origin }); ok {
		return c.origin()
	}
	return actors.Origin{}
}
