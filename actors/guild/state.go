package guild

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Guild is the state of one guild stream. The gateway's fan-out keeps a copy of every guild,
// built by the same Apply from the log, to know who may see which event.
type Guild struct {
	ID          uint64
	Created     bool // false until GuildCreated
	Deleted     bool
	Name        string
	Description string
	Private     bool
	Owner       string
	Roles       map[uint64]*Role // @everyone (id = guild id) included
	Channels    map[uint64]*Channel
	Members     map[string]*Member
	Bans        map[string]bool
	Invites     map[string]*Invite

	perms permissions.Guild // Roles as permissions needs them; rebuilt on every role event
}

// Role is a guild role.
type Role struct {
	ID          uint64
	Name        string
	Permissions permissions.Set
	Position    uint32
	Color       uint32
}

// Channel is a text channel or a category, with its permission overwrites.
type Channel struct {
	ID         uint64
	Type       eventsv1.ChannelType
	Name       string
	Topic      string
	ParentID   uint64
	Position   uint32
	Overwrites []permissions.Overwrite // at most one per role and per member
	// GroupID is the messaging group (kind "channel") of an encrypted channel; 0: not encrypted.
	GroupID uint64
}

// Member is one member of the guild.
type Member struct {
	FID      string
	Nickname string
	Roles    []uint64 // sorted, @everyone not listed
	JoinedAt time.Time
}

// Invite is one invite code.
type Invite struct {
	Code      string
	ChannelID uint64
	MaxUses   uint32 // 0: unlimited
	Uses      uint32
	ExpiresAt time.Time // zero: never
	Inviter   string
	CreatedAt time.Time
	Revoked   bool
}

// Usable reports whether the invite admits one more member at t.
func (i *Invite) Usable(t time.Time) bool {
	return !i.Revoked && (i.MaxUses == 0 || i.Uses < i.MaxUses) && (i.ExpiresAt.IsZero() || t.Before(i.ExpiresAt))
}

// Initial is the state of guild id before its first event.
func Initial(id uint64) *Guild {
	return &Guild{ID: id, Roles: map[uint64]*Role{}, Channels: map[uint64]*Channel{}, Members: map[string]*Member{},
		Bans: map[string]bool{}, Invites: map[string]*Invite{}}
}

// Permissions is what fid may do in channel (0: guild-wide). Zero for non-members, unknown
// channels, and channels fid cannot view.
func (g *Guild) Permissions(fid string, channel uint64) permissions.Set {
	m, ok := g.Members[fid]
	if !ok || g.Deleted {
		return 0
	}
	pm := permissions.Member{FID: fid, Roles: m.Roles}
	if channel == 0 {
		return permissions.Base(g.perms, pm)
	}
	c, ok := g.Channels[channel]
	if !ok {
		return 0
	}
	return permissions.InChannel(g.perms, pm, c.Overwrites)
}

// CanView reports whether fid may see channel.
func (g *Guild) CanView(fid string, channel uint64) bool {
	return g.Permissions(fid, channel).Has(permissions.ViewChannel)
}

// PermissionsGuild and PermissionsMember are the views the permissions package computes on.
func (g *Guild) PermissionsGuild() permissions.Guild { return g.perms }

// PermissionsMember is fid as permissions sees it (no roles if not a member).
func (g *Guild) PermissionsMember(fid string) permissions.Member {
	if m, ok := g.Members[fid]; ok {
		return permissions.Member{FID: fid, Roles: m.Roles}
	}
	return permissions.Member{FID: fid}
}

// SortedChannels are the channels in display order: by position, then id.
func (g *Guild) SortedChannels() []*Channel {
	out := slices.Collect(maps.Values(g.Channels))
	slices.SortFunc(out, func(a, b *Channel) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// SortedRoles are the roles from @everyone upwards: by position, then id.
func (g *Guild) SortedRoles() []*Role {
	out := slices.Collect(maps.Values(g.Roles))
	slices.SortFunc(out, func(a, b *Role) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Clone is a deep copy, for replies that leave the actor.
func (g *Guild) Clone() *Guild {
	c := *g
	c.Roles = make(map[uint64]*Role, len(g.Roles))
	for id, r := range g.Roles {
		r := *r
		c.Roles[id] = &r
	}
	c.Channels = make(map[uint64]*Channel, len(g.Channels))
	for id, ch := range g.Channels {
		ch := *ch
		ch.Overwrites = slices.Clone(ch.Overwrites)
		c.Channels[id] = &ch
	}
	c.Members = make(map[string]*Member, len(g.Members))
	for fid, m := range g.Members {
		m := *m
		m.Roles = slices.Clone(m.Roles)
		c.Members[fid] = &m
	}
	c.Bans = maps.Clone(g.Bans)
	c.Invites = make(map[string]*Invite, len(g.Invites))
	for code, i := range g.Invites {
		i := *i
		c.Invites[code] = &i
	}
	c.perms.Roles = maps.Clone(g.perms.Roles)
	return &c
}

// Apply folds one event into g (in place) and returns it.
func Apply(g *Guild, ev proto.Message) (*Guild, error) {
	switch e := ev.(type) {
	case *eventsv1.GuildCreated:
		if g.Created {
			return g, fmt.Errorf("guild %d created twice", g.ID)
		}
		g.Created, g.Name, g.Description, g.Owner, g.Private = true, e.GetName(), e.GetDescription(), e.GetOwnerFid(), e.GetPrivate()
		g.rebuildPerms()
	case *eventsv1.GuildUpdated:
		if e.Name != nil {
			g.Name = e.GetName()
		}
		if e.Description != nil {
			g.Description = e.GetDescription()
		}
		if e.Private != nil {
			g.Private = e.GetPrivate()
		}
	case *eventsv1.GuildDeleted:
		g.Deleted = true
	case *eventsv1.ChannelCreated:
		c := &Channel{ID: e.GetChannelId(), Type: e.GetType(), Name: e.GetName(), Topic: e.GetTopic(),
			ParentID: e.GetParentId(), Position: e.GetPosition()}
		for _, o := range e.GetOverwrites() {
			c.Overwrites = append(c.Overwrites, permissions.Overwrite{RoleID: o.GetRoleId(), MemberFID: o.GetMemberFid(),
				Allow: permissions.Set(o.GetAllow()), Deny: permissions.Set(o.GetDeny())})
		}
		g.Channels[e.GetChannelId()] = c
	case *eventsv1.ChannelUpdated:
		c, err := g.channel(e.GetChannelId())
		if err != nil {
			return g, err
		}
		if e.Name != nil {
			c.Name = e.GetName()
		}
		if e.Topic != nil {
			c.Topic = e.GetTopic()
		}
		if e.ParentId != nil {
			c.ParentID = e.GetParentId()
		}
		if e.Position != nil {
			c.Position = e.GetPosition()
		}
	case *eventsv1.ChannelEncryptionEnabled:
		c, ok := g.Channels[e.GetChannelId()]
		if !ok {
			return g, fmt.Errorf("encryption of unknown channel %d", e.GetChannelId())
		}
		c.GroupID = e.GetGroupId()
	case *eventsv1.ChannelDeleted:
		delete(g.Channels, e.GetChannelId())
		for _, c := range g.Channels {
			if c.ParentID == e.GetChannelId() {
				c.ParentID = 0
			}
		}
		for _, i := range g.Invites {
			if i.ChannelID == e.GetChannelId() {
				i.Revoked = true
			}
		}
	case *eventsv1.ChannelOverwriteSet:
		c, err := g.channel(e.GetChannelId())
		if err != nil {
			return g, err
		}
		o := permissions.Overwrite{RoleID: e.GetRoleId(), MemberFID: e.GetMemberFid(), Allow: permissions.Set(e.GetAllow()), Deny: permissions.Set(e.GetDeny())}
		c.Overwrites = slices.DeleteFunc(c.Overwrites, func(x permissions.Overwrite) bool { return sameTarget(x, o) })
		c.Overwrites = append(c.Overwrites, o)
	case *eventsv1.ChannelOverwriteRemoved:
		c, err := g.channel(e.GetChannelId())
		if err != nil {
			return g, err
		}
		o := permissions.Overwrite{RoleID: e.GetRoleId(), MemberFID: e.GetMemberFid()}
		c.Overwrites = slices.DeleteFunc(c.Overwrites, func(x permissions.Overwrite) bool { return sameTarget(x, o) })
	case *eventsv1.RoleCreated:
		g.Roles[e.GetRoleId()] = &Role{ID: e.GetRoleId(), Name: e.GetName(), Permissions: permissions.Set(e.GetPermissions()),
			Position: e.GetPosition(), Color: e.GetColor()}
		g.rebuildPerms()
	case *eventsv1.RoleUpdated:
		r, ok := g.Roles[e.GetRoleId()]
		if !ok {
			return g, fmt.Errorf("guild %d: no role %d", g.ID, e.GetRoleId())
		}
		if e.Name != nil {
			r.Name = e.GetName()
		}
		if e.Permissions != nil {
			r.Permissions = permissions.Set(e.GetPermissions())
		}
		if e.Position != nil {
			r.Position = e.GetPosition()
		}
		if e.Color != nil {
			r.Color = e.GetColor()
		}
		g.rebuildPerms()
	case *eventsv1.RoleDeleted:
		id := e.GetRoleId()
		delete(g.Roles, id)
		for _, m := range g.Members {
			m.Roles = slices.DeleteFunc(m.Roles, func(r uint64) bool { return r == id })
		}
		for _, c := range g.Channels {
			c.Overwrites = slices.DeleteFunc(c.Overwrites, func(o permissions.Overwrite) bool { return o.MemberFID == "" && o.RoleID == id })
		}
		g.rebuildPerms()
	case *eventsv1.MemberJoined:
		g.Members[e.GetFid()] = &Member{FID: e.GetFid(), JoinedAt: time.UnixMilli(e.GetJoinedAtMs()).UTC()}
		if i, ok := g.Invites[e.GetInviteCode()]; ok {
			i.Uses++
		}
	case *eventsv1.MemberLeft:
		g.removeMember(e.GetFid())
	case *eventsv1.MemberKicked:
		g.removeMember(e.GetFid())
	case *eventsv1.MemberBanned:
		g.removeMember(e.GetFid())
		g.Bans[e.GetFid()] = true
	case *eventsv1.MemberUnbanned:
		delete(g.Bans, e.GetFid())
	case *eventsv1.MemberNicknameChanged:
		m, err := g.member(e.GetFid())
		if err != nil {
			return g, err
		}
		m.Nickname = e.GetNickname()
	case *eventsv1.MemberRolesChanged:
		m, err := g.member(e.GetFid())
		if err != nil {
			return g, err
		}
		m.Roles = slices.Sorted(slices.Values(e.GetRoleIds()))
	case *eventsv1.InviteCreated:
		i := &Invite{Code: e.GetCode(), ChannelID: e.GetChannelId(), MaxUses: e.GetMaxUses(), Inviter: e.GetInviterFid(),
			CreatedAt: time.UnixMilli(e.GetCreatedAtMs()).UTC()}
		if e.GetExpiresAtMs() != 0 {
			i.ExpiresAt = time.UnixMilli(e.GetExpiresAtMs()).UTC()
		}
		g.Invites[e.GetCode()] = i
	case *eventsv1.InviteRevoked:
		if i, ok := g.Invites[e.GetCode()]; ok {
			i.Revoked = true
		}
	default:
		return g, fmt.Errorf("guild %d: unexpected event %T", g.ID, ev)
	}
	return g, nil
}

func sameTarget(a, b permissions.Overwrite) bool {
	return a.MemberFID == b.MemberFID && (a.MemberFID != "" || a.RoleID == b.RoleID)
}

func (g *Guild) removeMember(fid string) {
	delete(g.Members, fid)
	for _, c := range g.Channels {
		c.Overwrites = slices.DeleteFunc(c.Overwrites, func(o permissions.Overwrite) bool { return o.MemberFID == fid })
	}
}

func (g *Guild) channel(id uint64) (*Channel, error) {
	c, ok := g.Channels[id]
	if !ok {
		return nil, fmt.Errorf("guild %d: no channel %d", g.ID, id)
	}
	return c, nil
}

func (g *Guild) member(fid string) (*Member, error) {
	m, ok := g.Members[fid]
	if !ok {
		return nil, fmt.Errorf("guild %d: no member %s", g.ID, fid)
	}
	return m, nil
}

func (g *Guild) rebuildPerms() {
	g.perms = permissions.Guild{ID: g.ID, Owner: g.Owner, Roles: make(map[uint64]permissions.Role, len(g.Roles))}
	for id, r := range g.Roles {
		g.perms.Roles[id] = permissions.Role{ID: id, Position: int(r.Position), Permissions: r.Permissions}
	}
}
