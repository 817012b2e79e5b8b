package permissions

// Role is a guild role. The @everyone role's ID equals the guild ID, as in
// Discord, so it needs no separate field and every member implicitly has it.
type Role struct {
	ID          uint64
	Position    int
	Permissions Set
}

// Overwrite changes a role's (RoleID) or a member's (MemberFID) permissions
// in one channel; exactly one of the two is set.
type Overwrite struct {
	RoleID      uint64
	MemberFID   string
	Allow, Deny Set
}

// Guild is the slice of guild state permissions need. Roles is keyed by
// role ID because members name their roles by ID; it includes @everyone.
type Guild struct {
	ID    uint64
	Owner string // the owner's federation ID
	Roles map[uint64]Role
}

// Member is a guild member. Roles need not list @everyone; role IDs missing
// from Guild.Roles (a deleted role not yet removed) are ignored.
type Member struct {
	FID   string
	Roles []uint64
}

// Base is the guild-wide set: @everyone united with the member's roles.
// The owner and ADMINISTRATOR get All so callers can test with Has alone.
func Base(g Guild, m Member) Set {
	if m.FID == g.Owner {
		return All
	}
	s := g.Roles[g.ID].Permissions
	for _, id := range m.Roles {
		s |= g.Roles[id].Permissions
	}
	if s.Has(Administrator) {
		return All
	}
	return s
}

// InChannel is the set in one channel: Base, then overwrites for
// @everyone, the member's roles and the member, each layer deny then allow.
// Role overwrites are combined before applying, so an allow on one of the
// member's roles beats a deny on another, as in Discord.
//
// Without VIEW_CHANNEL the result is zero (Discord's implicit rule: a
// member who cannot see a channel can do nothing in it). Discord's other
// implicit rule (no SEND_MESSAGES drops mentions, attachments and the like)
// is not modelled: we have none of those bits.
func InChannel(g Guild, m Member, overwrites []Overwrite) Set {
	s := Base(g, m)
	if s.Has(Administrator) {
		return s // owner and administrators: overwrites never apply
	}
	mine := make(map[uint64]bool, len(m.Roles))
	for _, id := range m.Roles {
		mine[id] = true
	}
	var roleAllow, roleDeny Set
	var everyone, member *Overwrite
	for i := range overwrites {
		o := &overwrites[i]
		switch {
		case o.MemberFID != "":
			if o.MemberFID == m.FID {
				member = o
			}
		case o.RoleID == g.ID:
			everyone = o
		case mine[o.RoleID]:
			roleAllow |= o.Allow
			roleDeny |= o.Deny
		}
	}
	if everyone != nil {
		s = s&^everyone.Deny | everyone.Allow
	}
	s = s&^roleDeny | roleAllow
	if member != nil {
		s = s&^member.Deny | member.Allow
	}
	if !s.Has(ViewChannel) {
		return 0
	}
	return s
}
