package permissions

import "testing"

// Fixture guild: ID 1 (so @everyone is role 1), owned by owner@a.test.
const (
	guildID   = 1
	ownerID   = "owner@a.test"
	roleMod   = 10
	roleMuted = 11
	roleAdmin = 12
	roleHelp  = 13
	userAlice = "alice@a.test"
)

var everyoneBase = ViewChannel | SendMessages | ReadMessageHistory | AddReactions

func guild() Guild {
	return Guild{ID: guildID, Owner: ownerID, Roles: map[uint64]Role{
		guildID:   {ID: guildID, Position: 0, Permissions: everyoneBase},
		roleMuted: {ID: roleMuted, Position: 1},
		roleHelp:  {ID: roleHelp, Position: 2, Permissions: CreateInvite},
		roleMod:   {ID: roleMod, Position: 5, Permissions: ManageMessages | KickMembers},
		roleAdmin: {ID: roleAdmin, Position: 9, Permissions: Administrator},
	}}
}

func TestBase(t *testing.T) {
	tests := []struct {
		name  string
		given Member
		want  Set
	}{
		{"owner has all, even without roles", Member{FID: ownerID}, All},
		{"no roles: @everyone", Member{FID: userAlice}, everyoneBase},
		{"roles united with @everyone", Member{FID: userAlice, Roles: []uint64{roleMod, roleHelp}},
			everyoneBase | ManageMessages | KickMembers | CreateInvite},
		{"administrator short-circuits to all", Member{FID: userAlice, Roles: []uint64{roleAdmin}}, All},
		{"unknown role ignored", Member{FID: userAlice, Roles: []uint64{999}}, everyoneBase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Base(guild(), tt.given); got != tt.want {
				t.Fatalf("Base = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInChannel(t *testing.T) {
	alice := Member{FID: userAlice, Roles: []uint64{roleMod, roleMuted}}
	tests := []struct {
		name       string
		givenM     Member
		overwrites []Overwrite
		want       Set
	}{
		{"no overwrites: base", alice, nil, everyoneBase | ManageMessages | KickMembers},
		{"owner keeps all despite denies", Member{FID: ownerID}, []Overwrite{
			{RoleID: guildID, Deny: All},
			{MemberFID: ownerID, Deny: All},
		}, All},
		{"administrator ignores overwrites", Member{FID: userAlice, Roles: []uint64{roleAdmin}}, []Overwrite{
			{RoleID: guildID, Deny: ViewChannel},
			{RoleID: roleAdmin, Deny: All},
			{MemberFID: userAlice, Deny: All},
		}, All},
		{"@everyone overwrite denies and allows", Member{FID: userAlice}, []Overwrite{
			{RoleID: guildID, Deny: SendMessages, Allow: CreateInvite},
		}, everyoneBase&^SendMessages | CreateInvite},
		{"@everyone allow applies after its deny", Member{FID: userAlice}, []Overwrite{
			{RoleID: guildID, Deny: SendMessages, Allow: SendMessages},
		}, everyoneBase},
		{"role allow beats @everyone deny", alice, []Overwrite{
			{RoleID: guildID, Deny: SendMessages},
			{RoleID: roleMod, Allow: SendMessages},
		}, everyoneBase | ManageMessages | KickMembers},
		{"deny on one role, allow on another: allow wins", alice, []Overwrite{
			{RoleID: roleMuted, Deny: SendMessages | AddReactions},
			{RoleID: roleMod, Allow: SendMessages},
		}, everyoneBase&^AddReactions | ManageMessages | KickMembers},
		{"overwrites of roles the member lacks are ignored", Member{FID: userAlice}, []Overwrite{
			{RoleID: roleMuted, Deny: SendMessages},
		}, everyoneBase},
		{"member overwrite beats role allow", alice, []Overwrite{
			{RoleID: roleMod, Allow: SendMessages | ManageChannel},
			{MemberFID: userAlice, Deny: SendMessages},
		}, everyoneBase&^SendMessages | ManageMessages | KickMembers | ManageChannel},
		{"member overwrite allow beats role deny", alice, []Overwrite{
			{RoleID: roleMuted, Deny: SendMessages},
			{MemberFID: userAlice, Allow: SendMessages},
		}, everyoneBase | ManageMessages | KickMembers},
		{"member overwrite for someone else ignored", alice, []Overwrite{
			{MemberFID: ownerID, Deny: All},
		}, everyoneBase | ManageMessages | KickMembers},
		{"member overwrite does not match a role with the same ID", alice, []Overwrite{
			{MemberFID: "10", Deny: All},
		}, everyoneBase | ManageMessages | KickMembers},
		{"no view channel: nothing", alice, []Overwrite{
			{RoleID: guildID, Deny: ViewChannel},
		}, 0},
		{"view channel granted back by role", alice, []Overwrite{
			{RoleID: guildID, Deny: ViewChannel},
			{RoleID: roleMod, Allow: ViewChannel},
		}, everyoneBase | ManageMessages | KickMembers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// given guild(), when InChannel, then the expected set
			if got := InChannel(guild(), tt.givenM, tt.overwrites); got != tt.want {
				t.Fatalf("InChannel = %v, want %v", got, tt.want)
			}
		})
	}
}
