package guild

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// EveryonePerms are @everyone's permissions in a new guild: Discord's defaults, restricted to
// the bits this server has.
const EveryonePerms = permissions.ViewChannel | permissions.SendMessages | permissions.ReadMessageHistory |
	permissions.AddReactions | permissions.CreateInvite

const (
	maxCodeLen        = 64        // bytes of an invite code; the gateway picks short ones
	maxColor          = 1<<24 - 1 // role colours are RGB
	defaultMembersMax = 100
	membersMax        = 1000
)

const (
	textType     = eventsv1.ChannelType_CHANNEL_TYPE_TEXT
	categoryType = eventsv1.ChannelType_CHANNEL_TYPE_CATEGORY
)

// by is how Decide reaches the By every command embeds.
func (b By) by() By { return b }

// Decide checks cmd against g: the events to append, the reply once they are durable, or an
// error answered at once. It does not change g, and every reply is a copy: the journal keeps
// applying later events to g while the reply is on its way.
func Decide(g *Guild, cmd any) ([]proto.Message, any, error) {
	b, ok := cmd.(interface{ by() By })
	if !ok {
		return nil, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
	}
	if cr, ok := cmd.(Create); ok {
		return create(g, cr)
	}
	if !g.Created || g.Deleted {
		return nil, nil, fmt.Errorf("%w: guild %d", ErrNotFound, g.ID)
	}

	// What a stranger may do.
	switch c := cmd.(type) {
	case Join:
		return join(g, c)
	case CheckInvite:
		i, err := usableInvite(g, c.FID, c.Code, c.At)
		if err != nil {
			return nil, nil, err
		}
		cp := *i
		return nil, &cp, nil
	case Get:
		if _, ok := g.Members[c.FID]; ok {
			return nil, redact(g.Clone(), c.FID), nil
		}
		if g.Private {
			return nil, nil, fmt.Errorf("%w: guild %d", ErrNotFound, g.ID)
		}
		return nil, strangerView(g), nil
	}

	// Everything else is for members; to anyone else the guild does not exist.
	a, err := senderIn(g, b.by().FID)
	if err != nil {
		return nil, nil, err
	}
	switch c := cmd.(type) {
	case Update:
		return a.update(c)
	case Delete:
		if !a.owner() {
			return nil, nil, fmt.Errorf("%w: only the owner deletes the guild", ErrForbidden)
		}
		return one(&eventsv1.GuildDeleted{}), nil, nil
	case CreateChannel:
		return a.createChannel(c)
	case UpdateChannel:
		return a.updateChannel(c)
	case EnableEncryption:
		ch, err := a.channelWith(c.ChannelID, permissions.ManageChannel)
		switch {
		case err != nil:
			return nil, nil, err
		case ch.Type != textType:
			return nil, nil, fmt.Errorf("%w: only a text channel is encrypted", ErrInvalid)
		case ch.GroupID != 0:
			return nil, nil, fmt.Errorf("%w: channel %d is encrypted already", ErrInvalid, ch.ID)
		case c.GroupID == 0:
			return nil, nil, fmt.Errorf("%w: no messaging group", ErrInvalid)
		}
		return one(&eventsv1.ChannelEncryptionEnabled{ChannelId: ch.ID, GroupId: c.GroupID}), nil, nil
	case DeleteChannel:
		if _, err := a.channelWith(c.ChannelID, permissions.ManageChannel); err != nil {
			return nil, nil, err
		}
		return one(&eventsv1.ChannelDeleted{ChannelId: c.ChannelID}), nil, nil
	case SetOverwrite:
		return a.setOverwrite(c)
	case RemoveOverwrite:
		return a.removeOverwrite(c)
	case CreateRole:
		return a.createRole(c)
	case UpdateRole:
		return a.updateRole(c)
	case DeleteRole:
		return a.deleteRole(c)
	case Leave:
		if a.owner() {
			return nil, nil, fmt.Errorf("%w: the owner deletes the guild instead of leaving", ErrOwner)
		}
		return one(&eventsv1.MemberLeft{Fid: a.fid}), nil, nil
	case Kick:
		return a.kick(c)
	case Ban:
		return a.ban(c)
	case Unban:
		if err := need(a.base, permissions.BanMembers); err != nil {
			return nil, nil, err
		}
		if !g.Bans[c.FID] {
			return nil, nil, fmt.Errorf("%w: ban of %s", ErrNotFound, c.FID)
		}
		return one(&eventsv1.MemberUnbanned{Fid: c.FID}), nil, nil
	case SetNickname:
		return a.setNickname(c)
	case SetRoles:
		return a.setRoles(c)
	case CreateInvite:
		return a.createInvite(c)
	case RevokeInvite:
		return a.revokeInvite(c)
	case Authorize:
		return a.authorize(c)
	case Members:
		return nil, a.members(c), nil
	case Bans:
		if err := need(a.base, permissions.BanMembers); err != nil {
			return nil, nil, err
		}
		return nil, slices.Sorted(maps.Keys(g.Bans)), nil
	case Invites:
		if err := need(a.base, permissions.ManageGuild); err != nil {
			return nil, nil, err
		}
		return nil, liveInvites(g, c.At), nil
	case AuditAccess:
		return nil, nil, need(a.base, permissions.ViewAuditLog)
	}
	return nil, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func one(ev proto.Message) []proto.Message { return []proto.Message{ev} }

// sender is the sender of a command, a member of g, with what they may do guild-wide.
type sender struct {
	g    *Guild
	fid  string
	pm   permissions.Member
	base permissions.Set
}

func senderIn(g *Guild, fid string) (*sender, error) {
	if _, ok := g.Members[fid]; !ok {
		return nil, fmt.Errorf("%w: guild %d", ErrNotFound, g.ID)
	}
	return &sender{g: g, fid: fid, pm: g.PermissionsMember(fid), base: g.Permissions(fid, 0)}, nil
}

func (a *sender) owner() bool { return a.fid == a.g.Owner }

func (a *sender) highest() int { return permissions.HighestPosition(a.g.PermissionsGuild(), a.pm) }

// canManage is the hierarchy rule for roles; it includes MANAGE_ROLES (guild-wide).
func (a *sender) canManage(r *Role) bool {
	return permissions.CanManageRole(a.g.PermissionsGuild(), a.pm,
		permissions.Role{ID: r.ID, Position: int(r.Position), Permissions: r.Permissions})
}

// above reports whether a's top role is above r (the owner is above all). Unlike canManage it
// does not ask for MANAGE_ROLES guild-wide: overwrites need it only in the channel.
func (a *sender) above(r *Role) bool { return a.owner() || int(r.Position) < a.highest() }

// canActOn is the hierarchy rule for kicks, bans, nicknames and role edits of fid.
func (a *sender) canActOn(fid string) bool {
	return permissions.CanActOn(a.g.PermissionsGuild(), a.pm, a.g.PermissionsMember(fid))
}

// need is ErrForbidden unless have holds every bit of p.
func need(have, p permissions.Set) error {
	if !have.Has(p) {
		return fmt.Errorf("%w: %s", ErrForbidden, strings.Join((p&^have).Names(), ", "))
	}
	return nil
}

// channel is channel id with a's permissions in it. One that a cannot view is ErrNotFound like
// one that does not exist, so nobody learns which hidden channels there are.
func (a *sender) channel(id uint64) (*Channel, permissions.Set, error) {
	c, ok := a.g.Channels[id]
	p := a.g.Permissions(a.fid, id)
	if !ok || !p.Has(permissions.ViewChannel) {
		return nil, 0, fmt.Errorf("%w: channel %d", ErrNotFound, id)
	}
	return c, p, nil
}

// channelWith is channel, then ErrForbidden unless a has p in it.
func (a *sender) channelWith(id uint64, p permissions.Set) (*Channel, error) {
	c, have, err := a.channel(id)
	if err != nil {
		return nil, err
	}
	return c, need(have, p)
}

// category checks id as the parent of a channel: a category a can view. Named in a request
// body, a bad one is a bad request, hidden or missing alike.
func (a *sender) category(id uint64) error {
	c, ok := a.g.Channels[id]
	if !ok || c.Type != categoryType || !a.g.CanView(a.fid, id) {
		return fmt.Errorf("%w: parent %d is not a category of this guild", ErrInvalid, id)
	}
	return nil
}

// freeID checks the id of a new channel or role: channels, roles and the guild share the
// snowflake space, and @everyone's id is the guild's.
func (g *Guild) freeID(id uint64, what string) error {
	_, isChannel := g.Channels[id]
	_, isRole := g.Roles[id]
	if id == 0 || id == g.ID || isChannel || isRole {
		return fmt.Errorf("%w: %s id %d is zero or in use", ErrInvalid, what, id)
	}
	return nil
}

// scratch is an empty copy of g to apply a command's events to copies of the objects they
// touch: the reply shows the object after the command without cloning the whole guild.
func (g *Guild) scratch() *Guild {
	s := Initial(g.ID)
	s.Created, s.Owner = true, g.Owner
	return s
}

// applyAll folds evs into g. Decide passes a copy, never its own state.
func applyAll(g *Guild, evs []proto.Message) (*Guild, error) {
	for _, ev := range evs {
		var err error
		if g, err = Apply(g, ev); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// guildReply is the guild after evs as fid sees it.
func guildReply(g *Guild, evs []proto.Message, fid string) ([]proto.Message, any, error) {
	v, err := applyAll(g.Clone(), evs)
	if err != nil {
		return nil, nil, err
	}
	return evs, redact(v, fid), nil
}

// redact trims v, a private copy, to what fid may see: the channels they can view, the invites
// with MANAGE_GUILD and the bans with BAN_MEMBERS.
func redact(v *Guild, fid string) *Guild {
	for id := range v.Channels {
		if !v.CanView(fid, id) {
			delete(v.Channels, id)
		}
	}
	base := v.Permissions(fid, 0)
	if !base.Has(permissions.ManageGuild) {
		v.Invites = map[string]*Invite{}
	}
	if !base.Has(permissions.BanMembers) {
		v.Bans = map[string]bool{}
	}
	return v
}

// strangerView is a public guild as a non-member sees it: its own fields and roles only. Built
// rather than cloned, so a stranger's look costs nothing per member.
func strangerView(g *Guild) *Guild {
	v := Initial(g.ID)
	v.Created, v.Deleted, v.Name, v.Description, v.Private, v.Owner = g.Created, g.Deleted, g.Name, g.Description, g.Private, g.Owner
	for id, r := range g.Roles {
		r := *r
		v.Roles[id] = &r
	}
	v.rebuildPerms()
	return v
}

func create(g *Guild, c Create) ([]proto.Message, any, error) {
	if g.Created {
		return nil, nil, fmt.Errorf("%w: guild %d already exists", ErrInvalid, g.ID)
	}
	if c.FID == "" {
		return nil, nil, fmt.Errorf("%w: a guild needs an owner", ErrInvalid)
	}
	name, err := checkText("name", c.Name, 1, MaxNameLen, false)
	if err != nil {
		return nil, nil, err
	}
	desc, err := checkText("description", c.Description, 0, MaxTopicLen, true)
	if err != nil {
		return nil, nil, err
	}
	if c.GeneralID == 0 || c.GeneralID == g.ID {
		return nil, nil, fmt.Errorf("%w: general channel id %d is zero or the guild's", ErrInvalid, c.GeneralID)
	}
	evs := []proto.Message{
		&eventsv1.GuildCreated{GuildId: g.ID, Name: name, Description: desc, OwnerFid: c.FID, Private: c.Private},
		&eventsv1.RoleCreated{RoleId: g.ID, Name: "@everyone", Permissions: uint64(EveryonePerms)},
		&eventsv1.ChannelCreated{ChannelId: c.GeneralID, Type: textType, Name: "general"},
		&eventsv1.MemberJoined{Fid: c.FID, JoinedAtMs: c.At.UnixMilli()},
	}
	return guildReply(g, evs, c.FID)
}

func (a *sender) update(c Update) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.ManageGuild); err != nil {
		return nil, nil, err
	}
	if c.Name == nil && c.Description == nil && c.Private == nil {
		return nil, nil, fmt.Errorf("%w: nothing to update", ErrInvalid)
	}
	ev := &eventsv1.GuildUpdated{}
	if c.Name != nil {
		name, err := checkText("name", *c.Name, 1, MaxNameLen, false)
		if err != nil {
			return nil, nil, err
		}
		if name != a.g.Name {
			ev.Name = &name
		}
	}
	if c.Description != nil {
		desc, err := checkText("description", *c.Description, 0, MaxTopicLen, true)
		if err != nil {
			return nil, nil, err
		}
		if desc != a.g.Description {
			ev.Description = &desc
		}
	}
	if c.Private != nil && *c.Private != a.g.Private {
		ev.Private = proto.Bool(*c.Private)
	}
	var evs []proto.Message
	if ev.Name != nil || ev.Description != nil || ev.Private != nil {
		evs = one(ev)
	}
	return guildReply(a.g, evs, a.fid)
}

func (a *sender) createChannel(c CreateChannel) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.ManageChannel); err != nil {
		return nil, nil, err
	}
	if c.Type != textType && c.Type != categoryType {
		return nil, nil, fmt.Errorf("%w: a channel is a text channel or a category", ErrInvalid)
	}
	name, err := checkText("name", c.Name, 1, MaxNameLen, false)
	if err != nil {
		return nil, nil, err
	}
	topic, err := checkText("topic", c.Topic, 0, MaxTopicLen, true)
	if err != nil {
		return nil, nil, err
	}
	if err := a.g.freeID(c.ChannelID, "channel"); err != nil {
		return nil, nil, err
	}
	if len(a.g.Channels) >= MaxChannels {
		return nil, nil, fmt.Errorf("%w: at most %d channels", ErrLimit, MaxChannels)
	}
	ev := &eventsv1.ChannelCreated{ChannelId: c.ChannelID, Type: c.Type, Name: name, Topic: topic, ParentId: c.ParentID}
	if c.ParentID != 0 {
		if c.Type == categoryType {
			return nil, nil, fmt.Errorf("%w: a category cannot sit in a category", ErrInvalid)
		}
		if err := a.category(c.ParentID); err != nil {
			return nil, nil, err
		}
		// Discord's "synced" channel: it starts with its category's overwrites, inside its
		// creation event, so it is never visible to anyone the category hides it from.
		for _, o := range a.g.Channels[c.ParentID].Overwrites {
			ev.Overwrites = append(ev.Overwrites, &eventsv1.ChannelOverwrite{RoleId: o.RoleID, MemberFid: o.MemberFID,
				Allow: uint64(o.Allow), Deny: uint64(o.Deny)})
		}
	}
	if c.Position != nil {
		ev.Position = *c.Position
	} else {
		ev.Position = a.g.nextPosition()
	}
	return channelReply(a.g, nil, one(ev), c.ChannelID)
}

// nextPosition is the position after every channel's: new channels go last.
func (g *Guild) nextPosition() uint32 {
	if len(g.Channels) == 0 {
		return 0
	}
	var top uint32
	for _, c := range g.Channels {
		top = max(top, c.Position)
	}
	if top == math.MaxUint32 {
		return top
	}
	return top + 1
}

// channelReply is channel id after evs, applied to a copy of c (nil for a new channel).
func channelReply(g *Guild, c *Channel, evs []proto.Message, id uint64) ([]proto.Message, any, error) {
	s := g.scratch()
	if c != nil {
		s.Channels[id] = cloneChannel(c)
	}
	s, err := applyAll(s, evs)
	if err != nil {
		return nil, nil, err
	}
	return evs, s.Channels[id], nil
}

func cloneChannel(c *Channel) *Channel {
	cp := *c
	cp.Overwrites = slices.Clone(c.Overwrites)
	return &cp
}

func (a *sender) updateChannel(c UpdateChannel) ([]proto.Message, any, error) {
	ch, err := a.channelWith(c.ChannelID, permissions.ManageChannel)
	if err != nil {
		return nil, nil, err
	}
	if c.Name == nil && c.Topic == nil && c.ParentID == nil && c.Position == nil {
		return nil, nil, fmt.Errorf("%w: nothing to update", ErrInvalid)
	}
	ev := &eventsv1.ChannelUpdated{ChannelId: ch.ID}
	if c.Name != nil {
		name, err := checkText("name", *c.Name, 1, MaxNameLen, false)
		if err != nil {
			return nil, nil, err
		}
		if name != ch.Name {
			ev.Name = &name
		}
	}
	if c.Topic != nil {
		topic, err := checkText("topic", *c.Topic, 0, MaxTopicLen, true)
		if err != nil {
			return nil, nil, err
		}
		if topic != ch.Topic {
			ev.Topic = &topic
		}
	}
	if c.ParentID != nil && *c.ParentID != ch.ParentID {
		p := *c.ParentID
		if p != 0 {
			switch {
			case ch.Type == categoryType:
				return nil, nil, fmt.Errorf("%w: a category cannot sit in a category", ErrInvalid)
			case p == ch.ID:
				return nil, nil, fmt.Errorf("%w: a channel cannot be its own parent", ErrInvalid)
			}
			if err := a.category(p); err != nil {
				return nil, nil, err
			}
		}
		ev.ParentId = &p
	}
	if c.Position != nil && *c.Position != ch.Position {
		ev.Position = proto.Uint32(*c.Position)
	}
	var evs []proto.Message
	if ev.Name != nil || ev.Topic != nil || ev.ParentId != nil || ev.Position != nil {
		evs = one(ev)
	}
	return channelReply(a.g, ch, evs, ch.ID)
}

// overwriteTarget checks whose overwrite a command names: exactly one of a role (@everyone
// included) or a member, and a role only if a sits above it. Existence is checked by the
// caller, because removing needs only the overwrite to exist.
func (a *sender) overwriteTarget(roleID uint64, fid string) error {
	if (roleID == 0) == (fid == "") {
		return fmt.Errorf("%w: an overwrite is for exactly one role or one member", ErrInvalid)
	}
	if roleID == 0 || roleID == a.g.ID {
		return nil // members and @everyone: MANAGE_ROLES in the channel is enough
	}
	r, ok := a.g.Roles[roleID]
	if !ok {
		return fmt.Errorf("%w: role %d", ErrNotFound, roleID)
	}
	if !a.above(r) {
		return fmt.Errorf("%w: role %d is not below your highest role", ErrForbidden, roleID)
	}
	return nil
}

func (a *sender) setOverwrite(c SetOverwrite) ([]proto.Message, any, error) {
	ch, have, err := a.channel(c.ChannelID)
	if err != nil {
		return nil, nil, err
	}
	if err := need(have, permissions.ManageRoles); err != nil {
		return nil, nil, err
	}
	if err := a.overwriteTarget(c.RoleID, c.MemberFID); err != nil {
		return nil, nil, err
	}
	if _, member := a.g.Members[c.MemberFID]; c.MemberFID != "" && !member {
		return nil, nil, fmt.Errorf("%w: member %s", ErrNotFound, c.MemberFID)
	}
	switch {
	case c.Allow&c.Deny != 0:
		return nil, nil, fmt.Errorf("%w: %s both allowed and denied", ErrInvalid, c.Allow&c.Deny)
	case (c.Allow|c.Deny)&^permissions.All != 0:
		return nil, nil, fmt.Errorf("%w: unknown permission bits %#x", ErrInvalid, uint64((c.Allow|c.Deny)&^permissions.All))
	}
	// Nobody hands out, or takes away, what they do not have themselves.
	if err := need(have, c.Allow|c.Deny); err != nil {
		return nil, nil, err
	}
	o := permissions.Overwrite{RoleID: c.RoleID, MemberFID: c.MemberFID, Allow: c.Allow, Deny: c.Deny}
	if i := overwriteIndex(ch, o); i >= 0 && ch.Overwrites[i] == o {
		return nil, nil, nil
	}
	return one(&eventsv1.ChannelOverwriteSet{ChannelId: ch.ID, RoleId: c.RoleID, MemberFid: c.MemberFID,
		Allow: uint64(c.Allow), Deny: uint64(c.Deny)}), nil, nil
}

func (a *sender) removeOverwrite(c RemoveOverwrite) ([]proto.Message, any, error) {
	ch, have, err := a.channel(c.ChannelID)
	if err != nil {
		return nil, nil, err
	}
	if err := need(have, permissions.ManageRoles); err != nil {
		return nil, nil, err
	}
	if err := a.overwriteTarget(c.RoleID, c.MemberFID); err != nil {
		return nil, nil, err
	}
	i := overwriteIndex(ch, permissions.Overwrite{RoleID: c.RoleID, MemberFID: c.MemberFID})
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: no such overwrite in channel %d", ErrNotFound, ch.ID)
	}
	if err := need(have, ch.Overwrites[i].Allow|ch.Overwrites[i].Deny); err != nil {
		return nil, nil, err
	}
	return one(&eventsv1.ChannelOverwriteRemoved{ChannelId: ch.ID, RoleId: c.RoleID, MemberFid: c.MemberFID}), nil, nil
}

func overwriteIndex(c *Channel, o permissions.Overwrite) int {
	return slices.IndexFunc(c.Overwrites, func(x permissions.Overwrite) bool { return sameTarget(x, o) })
}

// rolePosition checks pos for a role other than @everyone: above @everyone, and below a's top
// role so that a can still manage it afterwards.
func (a *sender) rolePosition(pos uint32) error {
	if pos < 1 {
		return fmt.Errorf("%w: role positions start at 1 (0 is @everyone)", ErrInvalid)
	}
	if !a.owner() && int(pos) >= a.highest() {
		return fmt.Errorf("%w: position %d is not below your highest role (%d)", ErrForbidden, pos, a.highest())
	}
	return nil
}

// grantable checks that a changes only bits they have and that exist.
func (a *sender) grantable(changed permissions.Set) error {
	if changed&^permissions.All != 0 {
		return fmt.Errorf("%w: unknown permission bits %#x", ErrInvalid, uint64(changed&^permissions.All))
	}
	return need(a.base, changed)
}

func checkColor(c uint32) error {
	if c > maxColor {
		return fmt.Errorf("%w: colour %#x is not RGB", ErrInvalid, c)
	}
	return nil
}

func (a *sender) createRole(c CreateRole) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.ManageRoles); err != nil {
		return nil, nil, err
	}
	name, err := checkText("name", c.Name, 1, MaxNameLen, false)
	if err != nil {
		return nil, nil, err
	}
	if err := a.g.freeID(c.RoleID, "role"); err != nil {
		return nil, nil, err
	}
	if err := checkColor(c.Color); err != nil {
		return nil, nil, err
	}
	if len(a.g.Roles) >= MaxRoles {
		return nil, nil, fmt.Errorf("%w: at most %d roles", ErrLimit, MaxRoles)
	}
	pos := uint32(1)
	if c.Position != nil {
		pos = *c.Position
	}
	if err := a.rolePosition(pos); err != nil {
		return nil, nil, err
	}
	if err := a.grantable(c.Permissions); err != nil {
		return nil, nil, err
	}
	evs := one(&eventsv1.RoleCreated{RoleId: c.RoleID, Name: name, Permissions: uint64(c.Permissions), Position: pos, Color: c.Color})
	return roleReply(a.g, nil, evs, c.RoleID)
}

// roleReply is role id after evs, applied to a copy of r (nil for a new role).
func roleReply(g *Guild, r *Role, evs []proto.Message, id uint64) ([]proto.Message, any, error) {
	s := g.scratch()
	if r != nil {
		cp := *r
		s.Roles[id] = &cp
	}
	s, err := applyAll(s, evs)
	if err != nil {
		return nil, nil, err
	}
	return evs, s.Roles[id], nil
}

func (a *sender) updateRole(c UpdateRole) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.ManageRoles); err != nil {
		return nil, nil, err
	}
	r, ok := a.g.Roles[c.RoleID]
	if !ok {
		return nil, nil, fmt.Errorf("%w: role %d", ErrNotFound, c.RoleID)
	}
	if c.Name == nil && c.Permissions == nil && c.Color == nil && c.Position == nil {
		return nil, nil, fmt.Errorf("%w: nothing to update", ErrInvalid)
	}
	// @everyone sits at 0, below everyone, so the hierarchy would lock out all but the owner;
	// MANAGE_ROLES is enough to change its permissions and colour.
	everyone := r.ID == a.g.ID
	if !everyone && !a.canManage(r) {
		return nil, nil, fmt.Errorf("%w: role %d is not below your highest role", ErrForbidden, r.ID)
	}
	ev := &eventsv1.RoleUpdated{RoleId: r.ID}
	if c.Name != nil {
		name, err := checkText("name", *c.Name, 1, MaxNameLen, false)
		if err != nil {
			return nil, nil, err
		}
		if name != r.Name {
			if everyone {
				return nil, nil, fmt.Errorf("%w: @everyone keeps its name", ErrInvalid)
			}
			ev.Name = &name
		}
	}
	if c.Position != nil && *c.Position != r.Position {
		if everyone {
			return nil, nil, fmt.Errorf("%w: @everyone stays at position 0", ErrInvalid)
		}
		if err := a.rolePosition(*c.Position); err != nil {
			return nil, nil, err
		}
		ev.Position = proto.Uint32(*c.Position)
	}
	if c.Permissions != nil && *c.Permissions != r.Permissions {
		// Only the bits that change must be the actor's: a role may keep a bit its manager lacks.
		if err := a.grantable(*c.Permissions ^ r.Permissions); err != nil {
			return nil, nil, err
		}
		ev.Permissions = proto.Uint64(uint64(*c.Permissions))
	}
	if c.Color != nil && *c.Color != r.Color {
		if err := checkColor(*c.Color); err != nil {
			return nil, nil, err
		}
		ev.Color = proto.Uint32(*c.Color)
	}
	var evs []proto.Message
	if ev.Name != nil || ev.Position != nil || ev.Permissions != nil || ev.Color != nil {
		evs = one(ev)
	}
	return roleReply(a.g, r, evs, r.ID)
}

func (a *sender) deleteRole(c DeleteRole) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.ManageRoles); err != nil {
		return nil, nil, err
	}
	r, ok := a.g.Roles[c.RoleID]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("%w: role %d", ErrNotFound, c.RoleID)
	case r.ID == a.g.ID:
		return nil, nil, fmt.Errorf("%w: @everyone cannot be deleted", ErrInvalid)
	case !a.canManage(r):
		return nil, nil, fmt.Errorf("%w: role %d is not below your highest role", ErrForbidden, r.ID)
	}
	return one(&eventsv1.RoleDeleted{RoleId: r.ID}), nil, nil
}

// usableInvite is the invite fid could join with at t.
func usableInvite(g *Guild, fid, code string, at time.Time) (*Invite, error) {
	if g.Bans[fid] {
		return nil, ErrBanned
	}
	i, ok := g.Invites[code]
	if !ok || !i.Usable(at) {
		return nil, ErrInvite
	}
	return i, nil
}

func join(g *Guild, c Join) ([]proto.Message, any, error) {
	if c.FID == "" {
		return nil, nil, fmt.Errorf("%w: who joins?", ErrInvalid)
	}
	if g.Bans[c.FID] {
		return nil, nil, ErrBanned
	}
	// Joining again answers the guild whatever the code: a retry after a lost answer must not
	// fail because the retry used up or outlived the invite.
	if _, member := g.Members[c.FID]; member {
		return guildReply(g, nil, c.FID)
	}
	if _, err := usableInvite(g, c.FID, c.Code, c.At); err != nil {
		return nil, nil, err
	}
	return guildReply(g, one(&eventsv1.MemberJoined{Fid: c.FID, InviteCode: c.Code, JoinedAtMs: c.At.UnixMilli()}), c.FID)
}

// target checks fid as the target of a kick or a ban by a.
func (a *sender) target(fid string) error {
	switch {
	case fid == a.g.Owner:
		return fmt.Errorf("%w: the owner cannot be removed", ErrOwner)
	case fid == a.fid:
		return fmt.Errorf("%w: not on yourself; leave instead", ErrInvalid)
	case !a.canActOn(fid):
		return fmt.Errorf("%w: %s is not below you", ErrForbidden, fid)
	}
	return nil
}

func (a *sender) kick(c Kick) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.KickMembers); err != nil {
		return nil, nil, err
	}
	if _, ok := a.g.Members[c.FID]; !ok {
		return nil, nil, fmt.Errorf("%w: member %s", ErrNotFound, c.FID)
	}
	if err := a.target(c.FID); err != nil {
		return nil, nil, err
	}
	return one(&eventsv1.MemberKicked{Fid: c.FID}), nil, nil
}

func (a *sender) ban(c Ban) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.BanMembers); err != nil {
		return nil, nil, err
	}
	// A ban may name someone who never joined, so the FID goes into the log unchecked by
	// membership: it must at least be one.
	if f, err := identity.ParseFID(c.FID); err != nil || f.String() != c.FID {
		return nil, nil, fmt.Errorf("%w: %.80q is not a federation id", ErrInvalid, c.FID)
	}
	if err := a.target(c.FID); err != nil {
		return nil, nil, err
	}
	if a.g.Bans[c.FID] {
		return nil, nil, nil
	}
	return one(&eventsv1.MemberBanned{Fid: c.FID}), nil, nil
}

// memberReply is member fid after evs, applied to a copy of m.
func memberReply(g *Guild, m *Member, evs []proto.Message) ([]proto.Message, any, error) {
	s := g.scratch()
	s.Members[m.FID] = cloneMember(m)
	s, err := applyAll(s, evs)
	if err != nil {
		return nil, nil, err
	}
	return evs, s.Members[m.FID], nil
}

func cloneMember(m *Member) *Member {
	cp := *m
	cp.Roles = slices.Clone(m.Roles)
	return &cp
}

func (a *sender) setNickname(c SetNickname) ([]proto.Message, any, error) {
	m, ok := a.g.Members[c.FID]
	if !ok {
		return nil, nil, fmt.Errorf("%w: member %s", ErrNotFound, c.FID)
	}
	if c.FID != a.fid {
		if err := need(a.base, permissions.ManageGuild); err != nil {
			return nil, nil, err
		}
		if !a.canActOn(c.FID) {
			return nil, nil, fmt.Errorf("%w: %s is not below you", ErrForbidden, c.FID)
		}
	}
	nick, err := checkText("nickname", c.Nickname, 0, MaxNickLen, false)
	if err != nil {
		return nil, nil, err
	}
	var evs []proto.Message
	if nick != m.Nickname {
		evs = one(&eventsv1.MemberNicknameChanged{Fid: c.FID, Nickname: nick})
	}
	return memberReply(a.g, m, evs)
}

func (a *sender) setRoles(c SetRoles) ([]proto.Message, any, error) {
	if err := need(a.base, permissions.ManageRoles); err != nil {
		return nil, nil, err
	}
	m, ok := a.g.Members[c.FID]
	if !ok {
		return nil, nil, fmt.Errorf("%w: member %s", ErrNotFound, c.FID)
	}
	ids := slices.Compact(slices.Sorted(slices.Values(c.RoleIDs)))
	for _, id := range ids {
		if _, ok := a.g.Roles[id]; !ok || id == a.g.ID {
			return nil, nil, fmt.Errorf("%w: %d is not a role one can be given", ErrInvalid, id)
		}
	}
	if c.FID != a.fid && !a.canActOn(c.FID) {
		return nil, nil, fmt.Errorf("%w: %s is not below you", ErrForbidden, c.FID)
	}
	// Every role that changes hands must be below the actor, so nobody gives or takes a role
	// at or above their own.
	for _, id := range symmetricDifference(ids, m.Roles) {
		if r, ok := a.g.Roles[id]; ok && !a.canManage(r) {
			return nil, nil, fmt.Errorf("%w: role %d is not below your highest role", ErrForbidden, id)
		}
	}
	var evs []proto.Message
	if !slices.Equal(ids, m.Roles) {
		evs = one(&eventsv1.MemberRolesChanged{Fid: c.FID, RoleIds: ids})
	}
	return memberReply(a.g, m, evs)
}

// symmetricDifference is what is in exactly one of two sorted, duplicate-free lists.
func symmetricDifference(a, b []uint64) []uint64 {
	var out []uint64
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	for _, x := range b {
		if _, found := slices.BinarySearch(a, x); !found {
			out = append(out, x)
		}
	}
	return out
}

func checkCode(code string) error {
	if code == "" || len(code) > maxCodeLen {
		return fmt.Errorf("%w: invite code must be 1-%d bytes", ErrInvalid, maxCodeLen)
	}
	for i := 0; i < len(code); i++ {
		// Codes go into URL paths: printable ASCII without the characters that end a segment.
		if b := code[i]; b <= ' ' || b >= 0x7f || strings.IndexByte("/?#%", b) >= 0 {
			return fmt.Errorf("%w: invite code %.80q has a character URLs cannot carry plainly", ErrInvalid, code)
		}
	}
	return nil
}

func (a *sender) createInvite(c CreateInvite) ([]proto.Message, any, error) {
	ch, have, err := a.channel(c.ChannelID)
	if err != nil {
		return nil, nil, err
	}
	if ch.Type != textType {
		return nil, nil, fmt.Errorf("%w: invites lead to text channels", ErrInvalid)
	}
	if err := need(have, permissions.CreateInvite); err != nil {
		return nil, nil, err
	}
	if err := checkCode(c.Code); err != nil {
		return nil, nil, err
	}
	if _, used := a.g.Invites[c.Code]; used {
		return nil, nil, fmt.Errorf("%w: invite code %q in use", ErrInvalid, c.Code)
	}
	if c.MaxUses > MaxInviteUses {
		return nil, nil, fmt.Errorf("%w: at most %d uses", ErrInvalid, MaxInviteUses)
	}
	if c.MaxAge < 0 || c.MaxAge > MaxInviteAge {
		return nil, nil, fmt.Errorf("%w: max age must be 0 (never expires) to %s", ErrInvalid, MaxInviteAge)
	}
	live := 0
	for _, i := range a.g.Invites {
		if i.Usable(c.At) {
			live++
		}
	}
	if live >= MaxInvites {
		return nil, nil, fmt.Errorf("%w: at most %d live invites", ErrLimit, MaxInvites)
	}
	ev := &eventsv1.InviteCreated{Code: c.Code, ChannelId: ch.ID, MaxUses: c.MaxUses, InviterFid: a.fid, CreatedAtMs: c.At.UnixMilli()}
	if c.MaxAge > 0 {
		ev.ExpiresAtMs = c.At.Add(c.MaxAge).UnixMilli()
	}
	s, err := applyAll(a.g.scratch(), one(ev))
	if err != nil {
		return nil, nil, err
	}
	return one(ev), s.Invites[c.Code], nil
}

func (a *sender) revokeInvite(c RevokeInvite) ([]proto.Message, any, error) {
	i, ok := a.g.Invites[c.Code]
	if !ok || i.Revoked {
		return nil, nil, fmt.Errorf("%w: invite %.80q", ErrNotFound, c.Code)
	}
	if i.Inviter != a.fid {
		if err := need(a.base, permissions.ManageGuild); err != nil {
			return nil, nil, err
		}
	}
	return one(&eventsv1.InviteRevoked{Code: c.Code}), nil, nil
}

func (a *sender) authorize(c Authorize) ([]proto.Message, any, error) {
	if c.ChannelID == 0 {
		return nil, Access{GuildID: a.g.ID, Permissions: a.base}, nil
	}
	ch, have, err := a.channel(c.ChannelID)
	if err != nil {
		return nil, nil, err
	}
	return nil, Access{GuildID: a.g.ID, Channel: cloneChannel(ch), Permissions: have}, nil
}

func (a *sender) members(c Members) []Member {
	limit := c.Limit
	switch {
	case limit == 0:
		limit = defaultMembersMax
	case limit < 1:
		limit = 1
	case limit > membersMax:
		limit = membersMax
	}
	var fids []string
	for fid := range a.g.Members {
		if fid > c.After {
			fids = append(fids, fid)
		}
	}
	slices.Sort(fids)
	out := make([]Member, 0, min(limit, len(fids)))
	for _, fid := range fids[:min(limit, len(fids))] {
		out = append(out, *cloneMember(a.g.Members[fid]))
	}
	return out
}

// liveInvites are the invites usable at t, by code.
func liveInvites(g *Guild, t time.Time) []Invite {
	out := []Invite{}
	for _, i := range g.Invites {
		if i.Usable(t) {
			out = append(out, *i)
		}
	}
	slices.SortFunc(out, func(a, b Invite) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// checkText trims s and checks it: valid UTF-8, min to max characters, and no control
// characters except, where text may span lines (topics, descriptions), newlines and tabs.
func checkText(what, s string, min, max int, multiline bool) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		if min > 0 {
			return "", fmt.Errorf("%w: %s must be %d-%d characters", ErrInvalid, what, min, max)
		}
		return "", fmt.Errorf("%w: %s must be at most %d characters", ErrInvalid, what, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return "", fmt.Errorf("%w: %s contains control characters", ErrInvalid, what)
		}
	}
	return s, nil
}
