package permissions

import (
	"math"
	"testing"
)

func TestHighestPosition(t *testing.T) {
	tests := []struct {
		name  string
		given Member
		want  int
	}{
		{"owner above everything", Member{FID: ownerID}, math.MaxInt},
		{"no roles: @everyone", Member{FID: userAlice}, 0},
		{"highest of several", Member{FID: userAlice, Roles: []uint64{roleMuted, roleMod, roleHelp}}, 5},
		{"unknown role ignored", Member{FID: userAlice, Roles: []uint64{999}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HighestPosition(guild(), tt.given); got != tt.want {
				t.Fatalf("HighestPosition = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCanManageRole(t *testing.T) {
	g := guild()
	g.Roles[roleHelp] = Role{ID: roleHelp, Position: 2, Permissions: ManageRoles}
	manager := Member{FID: userAlice, Roles: []uint64{roleHelp}} // top position 2, MANAGE_ROLES
	tests := []struct {
		name   string
		actor  Member
		target Role
		want   bool
	}{
		{"owner manages the top role", Member{FID: ownerID}, g.Roles[roleAdmin], true},
		{"lower role", manager, g.Roles[roleMuted], true},
		{"equal position cannot", manager, g.Roles[roleHelp], false},
		{"higher position cannot", manager, g.Roles[roleMod], false},
		{"without MANAGE_ROLES cannot", Member{FID: userAlice, Roles: []uint64{roleMod}}, g.Roles[roleMuted], false},
		{"administrator below target cannot", Member{FID: userAlice, Roles: []uint64{roleAdmin}},
			Role{ID: 99, Position: 9}, false},
		{"administrator above target can", Member{FID: userAlice, Roles: []uint64{roleAdmin}}, g.Roles[roleMod], true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanManageRole(g, tt.actor, tt.target); got != tt.want {
				t.Fatalf("CanManageRole = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCanActOn(t *testing.T) {
	owner := Member{FID: ownerID}
	mod := Member{FID: userAlice, Roles: []uint64{roleMod}}
	otherMod := Member{FID: "mod@a.test", Roles: []uint64{roleMod}}
	helper := Member{FID: "peer@a.test", Roles: []uint64{roleHelp}}
	admin := Member{FID: "low@a.test", Roles: []uint64{roleAdmin}}
	tests := []struct {
		name          string
		actor, target Member
		want          bool
	}{
		{"owner acts on admin", owner, admin, true},
		{"higher acts on lower", mod, helper, true},
		{"equal position cannot", mod, otherMod, false},
		{"lower cannot act on higher", helper, mod, false},
		{"admin cannot act on owner", admin, owner, false},
		{"owner cannot act on owner", owner, owner, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CanActOn(guild(), tt.actor, tt.target); got != tt.want {
				t.Fatalf("CanActOn = %v, want %v", got, tt.want)
			}
		})
	}
}
