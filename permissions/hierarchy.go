package permissions

import "math"

// HighestPosition is the member's highest role position, @everyone
// included (so a member with no roles sits at @everyone's position). The
// owner is above every role: math.MaxInt.
func HighestPosition(g Guild, m Member) int {
	if m.FID == g.Owner {
		return math.MaxInt
	}
	high := g.Roles[g.ID].Position
	for _, id := range m.Roles {
		if r, ok := g.Roles[id]; ok && r.Position > high {
			high = r.Position
		}
	}
	return high
}

// CanManageRole reports whether actor may edit, assign or delete target:
// the owner always; otherwise MANAGE_ROLES (ADMINISTRATOR implies it) and
// target strictly below the actor's highest role, so nobody can raise
// themselves or a peer to their own level.
func CanManageRole(g Guild, actor Member, target Role) bool {
	if actor.FID == g.Owner {
		return true
	}
	return Base(g, actor).Has(ManageRoles) && target.Position < HighestPosition(g, actor)
}

// CanActOn is the hierarchy half of kick, ban and member role edits; the
// caller still checks KICK_MEMBERS, BAN_MEMBERS or MANAGE_ROLES, because
// the needed bit depends on the action. Nobody acts on the owner, the owner
// acts on everyone else, and others need a strictly higher top role.
func CanActOn(g Guild, actor, target Member) bool {
	switch {
	case target.FID == g.Owner:
		return false
	case actor.FID == g.Owner:
		return true
	}
	return HighestPosition(g, actor) > HighestPosition(g, target)
}
