package client

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/polyproto-chat/server/snowflake"
)

// Guilds, channels, roles, members, bans and invites (PROTOCOL.md section 6). Every method is
// one request; errors wrap the server's *APIError.

// NewGuild is what CreateGuild sends.
type NewGuild struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Private     bool   `json:"private,omitempty"`
}

// GuildUpdate changes the fields that are not nil.
type GuildUpdate struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	Private     *bool   `json:"private,omitempty"`
}

// CreateGuild creates a guild owned by the caller, with @everyone and a "general" channel.
func (ch *Chat) CreateGuild(ctx context.Context, g NewGuild) (Guild, error) {
	var out Guild
	if err := ch.write(ctx, http.MethodPost, "/guilds", g, &out); err != nil {
		return Guild{}, fmt.Errorf("client: create guild %q: %w", g.Name, err)
	}
	return out, nil
}

// Guild fetches a guild the caller is a member of, or any public guild.
func (ch *Chat) Guild(ctx context.Context, id snowflake.ID) (Guild, error) {
	var out Guild
	if err := checkID("guild", id); err != nil {
		return Guild{}, fmt.Errorf("client: guild: %w", err)
	}
	if err := ch.get(ctx, "/guilds/"+id.String(), nil, &out); err != nil {
		return Guild{}, fmt.Errorf("client: guild %s: %w", id, err)
	}
	return out, nil
}

// UpdateGuild changes a guild's name, description or visibility (MANAGE_GUILD).
func (ch *Chat) UpdateGuild(ctx context.Context, id snowflake.ID, u GuildUpdate) (Guild, error) {
	var out Guild
	if err := checkID("guild", id); err != nil {
		return Guild{}, fmt.Errorf("client: update guild: %w", err)
	}
	if err := ch.write(ctx, http.MethodPatch, "/guilds/"+id.String(), u, &out); err != nil {
		return Guild{}, fmt.Errorf("client: update guild %s: %w", id, err)
	}
	return out, nil
}

// DeleteGuild deletes a guild (owner only).
func (ch *Chat) DeleteGuild(ctx context.Context, id snowflake.ID) error {
	if err := checkID("guild", id); err != nil {
		return fmt.Errorf("client: delete guild: %w", err)
	}
	return ch.remove(ctx, "delete guild "+id.String(), "/guilds/"+id.String())
}

// Channels lists the channels of a guild the caller may view, in display order.
func (ch *Chat) Channels(ctx context.Context, guild snowflake.ID) ([]Channel, error) {
	var out []Channel
	if err := checkID("guild", guild); err != nil {
		return nil, fmt.Errorf("client: channels: %w", err)
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/channels", nil, &out); err != nil {
		return nil, fmt.Errorf("client: channels of guild %s: %w", guild, err)
	}
	return out, nil
}

// Channel fetches one channel.
func (ch *Chat) Channel(ctx context.Context, id snowflake.ID) (Channel, error) {
	var out Channel
	if err := checkID("channel", id); err != nil {
		return Channel{}, fmt.Errorf("client: channel: %w", err)
	}
	if err := ch.get(ctx, "/channels/"+id.String(), nil, &out); err != nil {
		return Channel{}, fmt.Errorf("client: channel %s: %w", id, err)
	}
	return out, nil
}

// NewChannel is what CreateChannel sends; zero fields take the server's defaults (a text
// channel at the end, outside any category).
type NewChannel struct {
	Name     string       `json:"name"`
	Type     ChannelType  `json:"type,omitempty"`
	Topic    string       `json:"topic,omitempty"`
	ParentID snowflake.ID `json:"parent_id,omitempty"`
	Position *int         `json:"position,omitempty"`
}

// ChannelUpdate changes the fields that are not nil; a ParentID pointing to 0 moves the
// channel out of its category.
type ChannelUpdate struct {
	Name     *string
	Topic    *string
	ParentID *snowflake.ID
	Position *int
}

// body is the PATCH body: only the fields to change, and parent_id null for "no category"
// (the id 0 is not a valid snowflake on the wire).
func (u ChannelUpdate) body() map[string]any {
	body := map[string]any{}
	if u.Name != nil {
		body["name"] = *u.Name
	}
	if u.Topic != nil {
		body["topic"] = *u.Topic
	}
	if u.ParentID != nil {
		body["parent_id"] = nil
		if *u.ParentID != 0 {
			body["parent_id"] = *u.ParentID
		}
	}
	if u.Position != nil {
		body["position"] = *u.Position
	}
	return body
}

// CreateChannel creates a channel or category in a guild (MANAGE_CHANNEL).
func (ch *Chat) CreateChannel(ctx context.Context, guild snowflake.ID, c NewChannel) (Channel, error) {
	var out Channel
	if err := checkID("guild", guild); err != nil {
		return Channel{}, fmt.Errorf("client: create channel: %w", err)
	}
	if err := ch.write(ctx, http.MethodPost, "/guilds/"+guild.String()+"/channels", c, &out); err != nil {
		return Channel{}, fmt.Errorf("client: create channel %q in guild %s: %w", c.Name, guild, err)
	}
	return out, nil
}

// UpdateChannel changes a channel (MANAGE_CHANNEL).
func (ch *Chat) UpdateChannel(ctx context.Context, id snowflake.ID, u ChannelUpdate) (Channel, error) {
	var out Channel
	if err := checkID("channel", id); err != nil {
		return Channel{}, fmt.Errorf("client: update channel: %w", err)
	}
	if err := ch.write(ctx, http.MethodPatch, "/channels/"+id.String(), u.body(), &out); err != nil {
		return Channel{}, fmt.Errorf("client: update channel %s: %w", id, err)
	}
	return out, nil
}

// DeleteChannel deletes a channel (MANAGE_CHANNEL).
func (ch *Chat) DeleteChannel(ctx context.Context, id snowflake.ID) error {
	if err := checkID("channel", id); err != nil {
		return fmt.Errorf("client: delete channel: %w", err)
	}
	return ch.remove(ctx, "delete channel "+id.String(), "/channels/"+id.String())
}

// SetOverwrite sets the permission overwrite of o's role or member in a channel (MANAGE_ROLES).
func (ch *Chat) SetOverwrite(ctx context.Context, channel snowflake.ID, o Overwrite) error {
	if err := checkID("channel", channel); err != nil {
		return fmt.Errorf("client: set overwrite: %w", err)
	}
	if o.ID == "" {
		return fmt.Errorf("client: set overwrite in channel %s: no role or member", channel)
	}
	body := struct {
		Type  string      `json:"type"`
		Allow Permissions `json:"allow"`
		Deny  Permissions `json:"deny"`
	}{o.Type, o.Allow, o.Deny}
	p := "/channels/" + channel.String() + "/permissions/" + url.PathEscape(o.ID)
	if err := ch.write(ctx, http.MethodPut, p, body, nil); err != nil {
		return fmt.Errorf("client: set overwrite of %s %s in channel %s: %w", o.Type, o.ID, channel, err)
	}
	return nil
}

// DeleteOverwrite removes the overwrite of target (a role id or a FID) from a channel.
func (ch *Chat) DeleteOverwrite(ctx context.Context, channel snowflake.ID, target string) error {
	if err := checkID("channel", channel); err != nil {
		return fmt.Errorf("client: delete overwrite: %w", err)
	}
	if target == "" {
		return fmt.Errorf("client: delete overwrite in channel %s: no role or member", channel)
	}
	return ch.remove(ctx, "delete overwrite of "+target+" in channel "+channel.String(),
		"/channels/"+channel.String()+"/permissions/"+url.PathEscape(target))
}

// Roles lists a guild's roles by position.
func (ch *Chat) Roles(ctx context.Context, guild snowflake.ID) ([]Role, error) {
	var out []Role
	if err := checkID("guild", guild); err != nil {
		return nil, fmt.Errorf("client: roles: %w", err)
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/roles", nil, &out); err != nil {
		return nil, fmt.Errorf("client: roles of guild %s: %w", guild, err)
	}
	return out, nil
}

// NewRole is what CreateRole sends; a zero Position lets the server place it.
type NewRole struct {
	Name        string      `json:"name"`
	Permissions Permissions `json:"permissions,omitempty"`
	Color       uint32      `json:"color,omitempty"`
	Position    int         `json:"position,omitempty"`
}

// RoleUpdate changes the fields that are not nil.
type RoleUpdate struct {
	Name        *string      `json:"name,omitempty"`
	Permissions *Permissions `json:"permissions,omitempty"`
	Color       *uint32      `json:"color,omitempty"`
	Position    *int         `json:"position,omitempty"`
}

// CreateRole creates a role below the caller's highest one (MANAGE_ROLES).
func (ch *Chat) CreateRole(ctx context.Context, guild snowflake.ID, r NewRole) (Role, error) {
	var out Role
	if err := checkID("guild", guild); err != nil {
		return Role{}, fmt.Errorf("client: create role: %w", err)
	}
	if err := ch.write(ctx, http.MethodPost, "/guilds/"+guild.String()+"/roles", r, &out); err != nil {
		return Role{}, fmt.Errorf("client: create role %q in guild %s: %w", r.Name, guild, err)
	}
	return out, nil
}

// UpdateRole changes a role below the caller's highest one (MANAGE_ROLES).
func (ch *Chat) UpdateRole(ctx context.Context, guild, role snowflake.ID, u RoleUpdate) (Role, error) {
	var out Role
	if err := firstErr(checkID("guild", guild), checkID("role", role)); err != nil {
		return Role{}, fmt.Errorf("client: update role: %w", err)
	}
	if err := ch.write(ctx, http.MethodPatch, "/guilds/"+guild.String()+"/roles/"+role.String(), u, &out); err != nil {
		return Role{}, fmt.Errorf("client: update role %s in guild %s: %w", role, guild, err)
	}
	return out, nil
}

// DeleteRole deletes a role below the caller's highest one (MANAGE_ROLES).
func (ch *Chat) DeleteRole(ctx context.Context, guild, role snowflake.ID) error {
	if err := firstErr(checkID("guild", guild), checkID("role", role)); err != nil {
		return fmt.Errorf("client: delete role: %w", err)
	}
	return ch.remove(ctx, "delete role "+role.String()+" of guild "+guild.String(), "/guilds/"+guild.String()+"/roles/"+role.String())
}

// MemberQuery pages through members by FID: After the last FID of the previous page, Limit
// 1-1000 (0: the server's default, 100).
type MemberQuery struct {
	After string
	Limit int
}

// Members lists a guild's members by FID.
func (ch *Chat) Members(ctx context.Context, guild snowflake.ID, q MemberQuery) ([]Member, error) {
	var out []Member
	if err := checkID("guild", guild); err != nil {
		return nil, fmt.Errorf("client: members: %w", err)
	}
	query := url.Values{}
	if q.After != "" {
		query.Set("after", q.After)
	}
	if q.Limit != 0 {
		query.Set("limit", strconv.Itoa(q.Limit))
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/members", query, &out); err != nil {
		return nil, fmt.Errorf("client: members of guild %s: %w", guild, err)
	}
	return out, nil
}

// Member fetches one member of a guild.
func (ch *Chat) Member(ctx context.Context, guild snowflake.ID, fid string) (Member, error) {
	var out Member
	if err := firstErr(checkID("guild", guild), checkFID(fid)); err != nil {
		return Member{}, fmt.Errorf("client: member: %w", err)
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/members/"+url.PathEscape(fid), nil, &out); err != nil {
		return Member{}, fmt.Errorf("client: member %s of guild %s: %w", fid, guild, err)
	}
	return out, nil
}

// MemberUpdate changes a member's nickname (when Nick is not nil) and roles (when Roles is
// not nil: the member then has exactly these roles, none for an empty slice).
type MemberUpdate struct {
	Nick  *string
	Roles []snowflake.ID
}

// UpdateMember changes a member: one's own nick, others' nicks with MANAGE_GUILD, roles with
// MANAGE_ROLES.
func (ch *Chat) UpdateMember(ctx context.Context, guild snowflake.ID, fid string, u MemberUpdate) (Member, error) {
	var out Member
	if err := firstErr(checkID("guild", guild), checkFID(fid)); err != nil {
		return Member{}, fmt.Errorf("client: update member: %w", err)
	}
	body := map[string]any{}
	if u.Nick != nil {
		body["nick"] = *u.Nick
	}
	if u.Roles != nil {
		body["roles"] = u.Roles
	}
	if err := ch.write(ctx, http.MethodPatch, "/guilds/"+guild.String()+"/members/"+url.PathEscape(fid), body, &out); err != nil {
		return Member{}, fmt.Errorf("client: update member %s of guild %s: %w", fid, guild, err)
	}
	return out, nil
}

// Leave leaves a guild (not possible for its owner).
func (ch *Chat) Leave(ctx context.Context, guild snowflake.ID) error {
	if err := checkID("guild", guild); err != nil {
		return fmt.Errorf("client: leave guild: %w", err)
	}
	return ch.remove(ctx, "leave guild "+guild.String(), "/guilds/"+guild.String()+"/members/@me")
}

// Kick removes a member from a guild (KICK_MEMBERS, from above them).
func (ch *Chat) Kick(ctx context.Context, guild snowflake.ID, fid string) error {
	if err := firstErr(checkID("guild", guild), checkFID(fid)); err != nil {
		return fmt.Errorf("client: kick: %w", err)
	}
	return ch.remove(ctx, "kick "+fid+" from guild "+guild.String(), "/guilds/"+guild.String()+"/members/"+url.PathEscape(fid))
}

// Bans lists the actors banned from a guild (BAN_MEMBERS).
func (ch *Chat) Bans(ctx context.Context, guild snowflake.ID) ([]Ban, error) {
	var out []Ban
	if err := checkID("guild", guild); err != nil {
		return nil, fmt.Errorf("client: bans: %w", err)
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/bans", nil, &out); err != nil {
		return nil, fmt.Errorf("client: bans of guild %s: %w", guild, err)
	}
	return out, nil
}

// Ban bans an actor from a guild, removing them if they are a member (BAN_MEMBERS).
func (ch *Chat) Ban(ctx context.Context, guild snowflake.ID, fid string) error {
	if err := firstErr(checkID("guild", guild), checkFID(fid)); err != nil {
		return fmt.Errorf("client: ban: %w", err)
	}
	if err := ch.write(ctx, http.MethodPut, "/guilds/"+guild.String()+"/bans/"+url.PathEscape(fid), nil, nil); err != nil {
		return fmt.Errorf("client: ban %s from guild %s: %w", fid, guild, err)
	}
	return nil
}

// Unban lifts a ban (BAN_MEMBERS).
func (ch *Chat) Unban(ctx context.Context, guild snowflake.ID, fid string) error {
	if err := firstErr(checkID("guild", guild), checkFID(fid)); err != nil {
		return fmt.Errorf("client: unban: %w", err)
	}
	return ch.remove(ctx, "unban "+fid+" in guild "+guild.String(), "/guilds/"+guild.String()+"/bans/"+url.PathEscape(fid))
}

// InviteOptions shape a new invite. MaxAge 0 takes the server's default (a day); a negative
// MaxAge makes an invite that never expires. MaxUses 0 is unlimited.
type InviteOptions struct {
	MaxAge  time.Duration
	MaxUses int
}

// CreateInvite creates an invite to a channel (CREATE_INVITE).
func (ch *Chat) CreateInvite(ctx context.Context, channel snowflake.ID, o InviteOptions) (Invite, error) {
	var out Invite
	if err := checkID("channel", channel); err != nil {
		return Invite{}, fmt.Errorf("client: create invite: %w", err)
	}
	body := map[string]int64{}
	switch {
	case o.MaxAge < 0:
		body["max_age"] = 0
	case o.MaxAge > 0:
		// Rounded up: a sub-second age must not become 0, which means "never".
		body["max_age"] = int64(math.Ceil(o.MaxAge.Seconds()))
	}
	if o.MaxUses != 0 {
		body["max_uses"] = int64(o.MaxUses)
	}
	if err := ch.write(ctx, http.MethodPost, "/channels/"+channel.String()+"/invites", body, &out); err != nil {
		return Invite{}, fmt.Errorf("client: create invite to channel %s: %w", channel, err)
	}
	return out, nil
}

// Invites lists a guild's live invites (MANAGE_GUILD).
func (ch *Chat) Invites(ctx context.Context, guild snowflake.ID) ([]Invite, error) {
	var out []Invite
	if err := checkID("guild", guild); err != nil {
		return nil, fmt.Errorf("client: invites: %w", err)
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/invites", nil, &out); err != nil {
		return nil, fmt.Errorf("client: invites of guild %s: %w", guild, err)
	}
	return out, nil
}

// Invite previews an invite: its guild, uses and expiry, without joining.
func (ch *Chat) Invite(ctx context.Context, code string) (Invite, error) {
	var out Invite
	if code == "" {
		return Invite{}, fmt.Errorf("client: invite: no code")
	}
	if err := ch.get(ctx, "/invites/"+url.PathEscape(code), nil, &out); err != nil {
		return Invite{}, fmt.Errorf("client: invite %q: %w", code, err)
	}
	return out, nil
}

// JoinInvite joins the guild of an invite and returns it; joining a guild again changes nothing.
func (ch *Chat) JoinInvite(ctx context.Context, code string) (Guild, error) {
	var out Guild
	if code == "" {
		return Guild{}, fmt.Errorf("client: join: no invite code")
	}
	if err := ch.write(ctx, http.MethodPost, "/invites/"+url.PathEscape(code), nil, &out); err != nil {
		return Guild{}, fmt.Errorf("client: join with invite %q: %w", code, err)
	}
	return out, nil
}

// RevokeInvite deletes an invite (its inviter, or MANAGE_GUILD).
func (ch *Chat) RevokeInvite(ctx context.Context, code string) error {
	if code == "" {
		return fmt.Errorf("client: revoke invite: no code")
	}
	return ch.remove(ctx, fmt.Sprintf("revoke invite %q", code), "/invites/"+url.PathEscape(code))
}

// remove is the DELETE of the object at p, named what in errors.
func (ch *Chat) remove(ctx context.Context, what, p string) error {
	if err := ch.write(ctx, http.MethodDelete, p, nil, nil); err != nil {
		return fmt.Errorf("client: %s: %w", what, err)
	}
	return nil
}

// firstErr returns the first non-nil error of errs, for checking several ids at once.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
