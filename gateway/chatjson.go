package gateway

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
	"github.com/polyproto-chat/server/snowflake"
)

// The chat objects as clients see them (docs/PROTOCOL.md section 6), shared by REST answers,
// READY and dispatches so that a guild looks the same whichever way it arrives. Messages are
// history.Message: the read model stores them in their wire form.

type guildJSON struct {
	ID          snowflake.ID  `json:"id"`
	Name        string        `json:"name"`
	DisplayName string        `json:"display_name"`
	Description string        `json:"description"`
	Owner       string        `json:"owner"`
	OwnerID     string        `json:"owner_id"`
	Private     bool          `json:"private"`
	CreatedAt   time.Time     `json:"created_at"`
	MemberCount int           `json:"member_count"`
	Roles       []roleJSON    `json:"roles,omitempty"`
	Channels    []channelJSON `json:"channels,omitempty"`
}

type channelJSON struct {
	ID          snowflake.ID    `json:"id"`
	GuildID     snowflake.ID    `json:"guild_id"`
	Type        int             `json:"type"`
	Name        string          `json:"name"`
	Topic       string          `json:"topic"`
	ParentID    *snowflake.ID   `json:"parent_id"`
	Position    uint32          `json:"position"`
	Overwrites  []overwriteJSON `json:"permission_overwrites"`
	Permissions permissions.Set `json:"permissions"`
	// Encrypted channels take MLS messages through their messaging group only.
	Encrypted bool          `json:"encrypted"`
	GroupID   *snowflake.ID `json:"group_id,omitempty"`
}

type overwriteJSON struct {
	Type  string          `json:"type"` // role or member
	ID    string          `json:"id"`
	Allow permissions.Set `json:"allow"`
	Deny  permissions.Set `json:"deny"`
}

type roleJSON struct {
	ID          snowflake.ID    `json:"id"`
	Name        string          `json:"name"`
	Permissions permissions.Set `json:"permissions"`
	Position    uint32          `json:"position"`
	Color       uint32          `json:"color"`
}

type memberJSON struct {
	FID      string         `json:"fid"`
	Nick     string         `json:"nick"`
	Roles    []snowflake.ID `json:"roles"`
	JoinedAt time.Time      `json:"joined_at"`
}

type inviteJSON struct {
	Code      string       `json:"code"`
	GuildID   snowflake.ID `json:"guild_id"`
	ChannelID snowflake.ID `json:"channel_id"`
	Inviter   string       `json:"inviter"`
	Uses      uint32       `json:"uses"`
	MaxUses   uint32       `json:"max_uses"`
	ExpiresAt *time.Time   `json:"expires_at"`
	CreatedAt time.Time    `json:"created_at"`
	Guild     struct {
		ID          snowflake.ID `json:"id"`
		Name        string       `json:"name"`
		Description string       `json:"description"`
		MemberCount int          `json:"member_count"`
	} `json:"guild"`
}

// guildView is g as fid sees it: with roles and the channels fid may view, or, with full false,
// only the guild's own fields.
func guildView(g *guild.Guild, fid string, full bool) guildJSON {
	out := guildJSON{
		ID: snowflake.ID(g.ID), Name: g.Name, DisplayName: g.Name, Description: g.Description,
		Owner: g.Owner, OwnerID: g.Owner, Private: g.Private, CreatedAt: snowflake.ID(g.ID).Time().UTC(),
		MemberCount: len(g.Members),
	}
	if !full {
		return out
	}
	out.Roles = make([]roleJSON, 0, len(g.Roles))
	for _, r := range g.SortedRoles() {
		out.Roles = append(out.Roles, roleView(r))
	}
	out.Channels = []channelJSON{}
	for _, c := range g.SortedChannels() {
		if p := g.Permissions(fid, c.ID); p.Has(permissions.ViewChannel) {
			out.Channels = append(out.Channels, channelView(g.ID, c, p))
		}
	}
	return out
}

func channelView(guildID uint64, c *guild.Channel, perms permissions.Set) channelJSON {
	out := channelJSON{ID: snowflake.ID(c.ID), GuildID: snowflake.ID(guildID), Type: int(c.Type), Name: c.Name, Topic: c.Topic,
		Position: c.Position, Overwrites: make([]overwriteJSON, 0, len(c.Overwrites)), Permissions: perms}
	if c.ParentID != 0 {
		p := snowflake.ID(c.ParentID)
		out.ParentID = &p
	}
	if c.GroupID != 0 {
		g := snowflake.ID(c.GroupID)
		out.Encrypted, out.GroupID = true, &g
	}
	for _, o := range c.Overwrites {
		if o.MemberFID != "" {
			out.Overwrites = append(out.Overwrites, overwriteJSON{Type: "member", ID: o.MemberFID, Allow: o.Allow, Deny: o.Deny})
		} else {
			out.Overwrites = append(out.Overwrites, overwriteJSON{Type: "role", ID: strconv.FormatUint(o.RoleID, 10), Allow: o.Allow, Deny: o.Deny})
		}
	}
	return out
}

func roleView(r *guild.Role) roleJSON {
	return roleJSON{ID: snowflake.ID(r.ID), Name: r.Name, Permissions: r.Permissions, Position: r.Position, Color: r.Color}
}

func memberView(m *guild.Member) memberJSON {
	out := memberJSON{FID: m.FID, Nick: m.Nickname, Roles: make([]snowflake.ID, len(m.Roles)), JoinedAt: m.JoinedAt}
	for i, r := range m.Roles {
		out.Roles[i] = snowflake.ID(r)
	}
	return out
}

func inviteView(g *guild.Guild, i *guild.Invite) inviteJSON {
	out := inviteJSON{Code: i.Code, GuildID: snowflake.ID(g.ID), ChannelID: snowflake.ID(i.ChannelID), Inviter: i.Inviter,
		Uses: i.Uses, MaxUses: i.MaxUses, CreatedAt: i.CreatedAt}
	if !i.ExpiresAt.IsZero() {
		t := i.ExpiresAt
		out.ExpiresAt = &t
	}
	out.Guild.ID, out.Guild.Name, out.Guild.Description, out.Guild.MemberCount = snowflake.ID(g.ID), g.Name, g.Description, len(g.Members)
	return out
}

// channelTypes are the channel types a client may create.
var channelTypes = map[int]eventsv1.ChannelType{
	int(eventsv1.ChannelType_CHANNEL_TYPE_TEXT):     eventsv1.ChannelType_CHANNEL_TYPE_TEXT,
	int(eventsv1.ChannelType_CHANNEL_TYPE_CATEGORY): eventsv1.ChannelType_CHANNEL_TYPE_CATEGORY,
}

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types, which always marshal
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
