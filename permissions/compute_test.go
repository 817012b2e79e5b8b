package permissions

import "testing"

// Fixture guild: ID 1 (so @everyone is role 1), owner user 100.
const (
	guildID   = 1
	ownerID   = 100
	roleMod   = 10
	roleMuted = 11
	roleAdmin = 12
	roleHelp  = 13
	userAlice = 200
)

var everyoneBase = ViewChannel | SendMessages | ReadMessageHistory | AddReactions

func guild() Guild {
	return Guild{ID: guildID, OwnerID: ownerID, Roles: map[uint64]Role{
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
		{"owner has all, even without roles", Member{UserID: ownerID}, All},
		{"no roles: @everyone", Member{UserID: userAlice}, everyoneBase},
		{"roles united with @everyone", Member{UserID: userAlice, Roles: []uint64{roleMod, roleHelp}},
			everyoneBase | ManageMessages | KickMembers | CreateInvite},
		{"administrator short-circuits to all", Member{UserID: userAlice, Roles: []uint64{roleAdmin}}, All},
		{"unknown role ignored", Member{UserID: userAlice, Roles: []uint64{999}}, everyoneBase},
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
	alice := Member{UserID: userAlice, Roles: []uint64{roleMod, roleMuted}}
	tests := []struct {
		name       string
		givenM     Member
		overwrites []Overwrite
		want       Set
	}{
		{"no overwrites: base", alice, nil, everyoneBase | ManageMessages | KickMembers},
		{"owner keeps all despite denies", Member{UserID: ownerID}, []Overwrite{
			{ID: guildID, Deny: All},
			{ID: ownerID, Member: true, Deny: All},
		}, All},
		{"administrator ignores overwrites", Member{UserID: userAlice, Roles: []uint64{roleAdmin}}, []Overwrite{
			{ID: guildID, Deny: ViewChannel},
			{ID: roleAdmin, Deny: All},
			{ID: userAlice, Member: true, Deny: All},
		}, All},
		{"@everyone overwrite denies and allows", Member{UserID: userAlice}, []Overwrite{
			{ID: guildID, Deny: SendMessages, Allow: CreateInvite},
		}, everyoneBase&^SendMessages | CreateInvite},
		{"@everyone allow applies after its deny", Member{UserID: userAlice}, []Overwrite{
			{ID: guildID, Deny: SendMessages, Allow: SendMessages},
		}, everyoneBase},
		{"role allow beats @everyone deny", alice, []Overwrite{
			{ID: guildID, Deny: SendMessages},
			{ID: roleMod, Allow: SendMessages},
		}, everyoneBase | ManageMessages | KickMembers},
		{"deny on one role, allow on another: allow wins", alice, []Overwrite{
			{ID: roleMuted, Deny: SendMessages | AddReactions},
			{ID: roleMod, Allow: SendMessages},
		}, everyoneBase&^AddReactions | ManageMessages | KickMembers},
		{"overwrites of roles the member lacks are ignored", Member{UserID: userAlice}, []Overwrite{
			{ID: roleMuted, Deny: SendMessages},
		}, everyoneBase},
		{"member overwrite beats role allow", alice, []Overwrite{
			{ID: roleMod, Allow: SendMessages | ManageChannel},
			{ID: userAlice, Member: true, Deny: SendMessages},
		}, everyoneBase&^SendMessages | ManageMessages | KickMembers | ManageChannel},
		{"member overwrite allow beats role deny", alice, []Overwrite{
			{ID: roleMuted, Deny: SendMessages},
			{ID: userAlice, Member: true, Allow: SendMessages},
		}, everyoneBase | ManageMessages | KickMembers},
		{"member overwrite for someone else ignored", alice, []Overwrite{
			{ID: ownerID, Member: true, Deny: All},
		}, everyoneBase | ManageMessages | KickMembers},
		{"member overwrite does not match a role with the same ID", alice, []Overwrite{
			{ID: roleMod, Member: true, Deny: All},
		}, everyoneBase | ManageMessages | KickMembers},
		{"no view channel: nothing", alice, []Overwrite{
			{ID: guildID, Deny: ViewChannel},
		}, 0},
		{"view channel granted back by role", alice, []Overwrite{
			{ID: guildID, Deny: ViewChannel},
			{ID: roleMod, Allow: ViewChannel},
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
