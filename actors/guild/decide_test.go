package guild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// The fixture guild. @everyone's id is the guild's.
const (
	gid     = 1000
	general = 1001 // text, visible to all
	secret  = 1002 // text, hidden from @everyone
	lounge  = 1003 // category; @everyone may not send in it

	roleMod    = 2001 // position 5: MANAGE_ROLES, KICK, BAN, MANAGE_CHANNEL, MANAGE_MESSAGES
	roleHelper = 2002 // position 2: MANAGE_ROLES
	roleAdmin  = 2003 // position 9: ADMINISTRATOR
	roleMuted  = 2004 // position 1: nothing

	owner   = "owner@a.test"
	alice   = "alice@a.test" // mod
	bob     = "bob@a.test"   // helper
	carol   = "carol@a.test" // no roles
	dave    = "dave@a.test"  // admin
	erin    = "erin@b.test"  // not a member
	mallory = "mallory@b.test"
)

const modPerms = permissions.ManageRoles | permissions.KickMembers | permissions.BanMembers | permissions.ManageChannel | permissions.ManageMessages

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func by(fid string) By { return By{FID: fid, At: t0} }

func ptr[T any](v T) *T { return &v }

func created(private bool) []proto.Message {
	return []proto.Message{
		&eventsv1.GuildCreated{GuildId: gid, Name: "Home", OwnerFid: owner, Private: private},
		&eventsv1.RoleCreated{RoleId: gid, Name: "@everyone", Permissions: uint64(EveryonePerms)},
		&eventsv1.ChannelCreated{ChannelId: general, Type: textType, Name: "general"},
		&eventsv1.MemberJoined{Fid: owner, JoinedAtMs: t0.UnixMilli()},
	}
}

func role(id uint64, name string, p permissions.Set, pos uint32) *eventsv1.RoleCreated {
	return &eventsv1.RoleCreated{RoleId: id, Name: name, Permissions: uint64(p), Position: pos}
}

func joined(fid, code string) *eventsv1.MemberJoined {
	return &eventsv1.MemberJoined{Fid: fid, InviteCode: code, JoinedAtMs: t0.UnixMilli()}
}

func rolesOf(fid string, ids ...uint64) *eventsv1.MemberRolesChanged {
	return &eventsv1.MemberRolesChanged{Fid: fid, RoleIds: ids}
}

func overwrite(channel, roleID uint64, fid string, allow, deny permissions.Set) *eventsv1.ChannelOverwriteSet {
	return &eventsv1.ChannelOverwriteSet{ChannelId: channel, RoleId: roleID, MemberFid: fid, Allow: uint64(allow), Deny: uint64(deny)}
}

func invite(code string, maxUses uint32, expires time.Time) *eventsv1.InviteCreated {
	ev := &eventsv1.InviteCreated{Code: code, ChannelId: general, MaxUses: maxUses, InviterFid: owner, CreatedAtMs: t0.Add(-time.Hour).UnixMilli()}
	if !expires.IsZero() {
		ev.ExpiresAtMs = expires.UnixMilli()
	}
	return ev
}

// world is the fixture: a public guild with four roles, five members, a hidden channel, a
// category and a never-expiring invite "welcome".
func world(more ...proto.Message) []proto.Message {
	evs := created(false)
	evs = append(evs,
		role(roleMod, "mod", modPerms, 5),
		role(roleHelper, "helper", permissions.ManageRoles, 2),
		role(roleAdmin, "admin", permissions.Administrator, 9),
		role(roleMuted, "muted", 0, 1),
		joined(alice, ""), joined(bob, ""), joined(carol, ""), joined(dave, ""),
		rolesOf(alice, roleMod), rolesOf(bob, roleHelper), rolesOf(dave, roleAdmin),
		&eventsv1.ChannelCreated{ChannelId: secret, Type: textType, Name: "secret", Position: 1,
			Overwrites: []*eventsv1.ChannelOverwrite{{RoleId: gid, Deny: uint64(permissions.ViewChannel)}}},
		&eventsv1.ChannelCreated{ChannelId: lounge, Type: categoryType, Name: "lounge", Position: 2,
			Overwrites: []*eventsv1.ChannelOverwrite{{RoleId: gid, Deny: uint64(permissions.SendMessages)}}},
		invite("welcome", 0, time.Time{}),
	)
	return append(evs, more...)
}

func build(t *testing.T, given []proto.Message) *Guild {
	t.Helper()
	g := Initial(gid)
	g, err := applyAll(g, given)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// guildOpts compare replies that are guilds: the permission cache is derived, not shown.
var guildOpts = []cmp.Option{cmpopts.IgnoreUnexported(Guild{}), cmpopts.EquateEmpty()}

type decideCase struct {
	name  string
	given []proto.Message
	when  any
	then  []proto.Message // the events; nil for none
	err   error           // the error instead
	reply any             // compared when set
	check func(t *testing.T, reply any)
}

// TestDecide: given the events so far, when a command arrives, then these events (or this
// error). Every case also checks that Decide left its input alone and that the events apply.
func TestDecide(t *testing.T) {
	var cases []decideCase
	for _, group := range [][]decideCase{
		createCases(), guildCases(), permissionCases(), roleCases(), overwriteCases(), channelCases(),
		joinCases(), memberCases(), inviteCases(), queryCases(),
	} {
		cases = append(cases, group...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := build(t, c.given)
			before := g.Clone()
			evs, reply, err := Decide(g, c.when)
			if diff := cmp.Diff(before, g, cmp.AllowUnexported(Guild{})); diff != "" {
				t.Fatalf("Decide changed its input (-before +after):\n%s", diff)
			}
			if c.err != nil {
				if !errors.Is(err, c.err) || len(evs) != 0 {
					t.Fatalf("err = %v with %d events, want %v and none", err, len(evs), c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.then, evs, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}
			if c.reply != nil {
				if diff := cmp.Diff(c.reply, reply, guildOpts...); diff != "" {
					t.Fatalf("reply (-want +got):\n%s", diff)
				}
			}
			if c.check != nil {
				c.check(t, reply)
			}
			for _, ev := range evs { // the store must take every decided event
				if _, err := events.NewEvent(ev); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := applyAll(g, evs); err != nil { // and Apply too
				t.Fatalf("apply: %v", err)
			}
		})
	}
}

func createCases() []decideCase {
	longName := strings.Repeat("é", MaxNameLen)
	return []decideCase{
		{name: "create", when: Create{By: by(owner), Name: "  Home ", GeneralID: general},
			then: created(false),
			check: func(t *testing.T, reply any) {
				g := reply.(*Guild)
				if g.Name != "Home" || g.Owner != owner || g.Members[owner] == nil || g.Channels[general] == nil ||
					g.Roles[gid].Permissions != EveryonePerms || g.Permissions(owner, general) != permissions.All {
					t.Fatalf("reply %+v", g)
				}
			}},
		{name: "create private with a long multibyte name", when: Create{By: by(owner), Name: longName, Description: "line one\nline two", Private: true, GeneralID: general},
			then: []proto.Message{
				&eventsv1.GuildCreated{GuildId: gid, Name: longName, Description: "line one\nline two", OwnerFid: owner, Private: true},
				created(true)[1], created(true)[2], created(true)[3]}},
		{name: "create twice", given: created(false), when: Create{By: by(owner), Name: "Again", GeneralID: 5}, err: ErrInvalid},
		{name: "create again after deletion", given: append(created(false), &eventsv1.GuildDeleted{}), when: Create{By: by(owner), Name: "Again", GeneralID: 5}, err: ErrInvalid},
		{name: "create without a name", when: Create{By: by(owner), Name: "   ", GeneralID: general}, err: ErrInvalid},
		{name: "create with a name too long", when: Create{By: by(owner), Name: longName + "x", GeneralID: general}, err: ErrInvalid},
		{name: "create with a control character", when: Create{By: by(owner), Name: "a\x07b", GeneralID: general}, err: ErrInvalid},
		{name: "create with invalid UTF-8", when: Create{By: by(owner), Name: "a\xffb", GeneralID: general}, err: ErrInvalid},
		{name: "create with a description too long", when: Create{By: by(owner), Name: "x", Description: strings.Repeat("d", MaxTopicLen+1), GeneralID: general}, err: ErrInvalid},
		{name: "create with the guild id for general", when: Create{By: by(owner), Name: "x", GeneralID: gid}, err: ErrInvalid},
		{name: "create without a general id", when: Create{By: by(owner), Name: "x"}, err: ErrInvalid},
		{name: "anything but create before creation", when: Get{By: by(owner)}, err: ErrNotFound},
		{name: "unknown command", given: world(), when: struct{ By }{by(owner)}, err: ErrInvalid},
	}
}

func guildCases() []decideCase {
	return []decideCase{
		{name: "update name", given: world(), when: Update{By: by(owner), Name: ptr("Hall"), Private: ptr(false)},
			then: []proto.Message{&eventsv1.GuildUpdated{Name: ptr("Hall")}},
			check: func(t *testing.T, reply any) {
				if g := reply.(*Guild); g.Name != "Hall" {
					t.Fatalf("name %q", g.Name)
				}
			}},
		{name: "update without MANAGE_GUILD", given: world(), when: Update{By: by(alice), Name: ptr("Hall")}, err: ErrForbidden},
		{name: "update nothing", given: world(), when: Update{By: by(owner)}, err: ErrInvalid},
		{name: "update to the same values", given: world(), when: Update{By: by(owner), Name: ptr("Home"), Description: ptr("")}},
		{name: "update by a stranger", given: world(), when: Update{By: by(erin), Name: ptr("Mine")}, err: ErrNotFound},
		{name: "delete by the owner", given: world(), when: Delete{By: by(owner)}, then: []proto.Message{&eventsv1.GuildDeleted{}}},
		{name: "delete by an administrator", given: world(), when: Delete{By: by(dave)}, err: ErrForbidden},
		{name: "deleted guild is gone", given: world(&eventsv1.GuildDeleted{}), when: Get{By: by(owner)}, err: ErrNotFound},
		{name: "deleted guild cannot be joined", given: world(&eventsv1.GuildDeleted{}), when: Join{By: by(erin), Code: "welcome"}, err: ErrNotFound},
		{name: "leave", given: world(), when: Leave{By: by(carol)}, then: []proto.Message{&eventsv1.MemberLeft{Fid: carol}}},
		{name: "owner cannot leave", given: world(), when: Leave{By: by(owner)}, err: ErrOwner},
		{name: "stranger cannot leave", given: world(), when: Leave{By: by(erin)}, err: ErrNotFound},
	}
}

// permissionCases: the owner, ADMINISTRATOR, and overwrites that hide a channel.
func permissionCases() []decideCase {
	denyAll := world(overwrite(secret, gid, "", 0, permissions.All), overwrite(secret, 0, owner, 0, permissions.All))
	return []decideCase{
		{name: "owner has all, whatever the overwrites", given: denyAll, when: Authorize{By: by(owner), ChannelID: secret},
			reply: Access{GuildID: gid, Channel: &Channel{ID: secret, Type: textType, Name: "secret", Position: 1,
				Overwrites: []permissions.Overwrite{{RoleID: gid, Deny: permissions.All}, {MemberFID: owner, Deny: permissions.All}}},
				Permissions: permissions.All}},
		{name: "administrator sees the hidden channel", given: denyAll, when: Authorize{By: by(dave), ChannelID: secret},
			check: func(t *testing.T, reply any) {
				if a := reply.(Access); a.Permissions != permissions.All || a.Channel.ID != secret {
					t.Fatalf("access %+v", a)
				}
			}},
		{name: "administrator kicks a mod", given: world(), when: Kick{By: by(dave), FID: alice}, then: []proto.Message{&eventsv1.MemberKicked{Fid: alice}}},
		{name: "administrator creates an administrator role below", given: world(),
			when: CreateRole{By: by(dave), RoleID: 3000, Name: "co-admin", Permissions: permissions.Administrator, Position: ptr(uint32(8))},
			then: []proto.Message{role(3000, "co-admin", permissions.Administrator, 8)}},
		{name: "guild-wide access", given: world(), when: Authorize{By: by(carol)},
			reply: Access{GuildID: gid, Permissions: EveryonePerms}},
		{name: "hidden channel looks missing", given: world(), when: Authorize{By: by(carol), ChannelID: secret}, err: ErrNotFound},
		{name: "unknown channel", given: world(), when: Authorize{By: by(carol), ChannelID: 4242}, err: ErrNotFound},
		{name: "authorize a stranger", given: world(), when: Authorize{By: by(erin), ChannelID: general}, err: ErrNotFound},
		{name: "visible channel", given: world(), when: Authorize{By: by(carol), ChannelID: general},
			reply: Access{GuildID: gid, Channel: &Channel{ID: general, Type: textType, Name: "general"}, Permissions: EveryonePerms}},
		{name: "role overwrite grants the hidden channel back", given: world(overwrite(secret, roleMod, "", permissions.ViewChannel, 0)),
			when: Authorize{By: by(alice), ChannelID: secret},
			check: func(t *testing.T, reply any) {
				if a := reply.(Access); a.Permissions != EveryonePerms|modPerms {
					t.Fatalf("permissions %v", a.Permissions)
				}
			}},
		{name: "role overwrite hides a channel", given: world(rolesOf(carol, roleMuted), overwrite(general, roleMuted, "", 0, permissions.ViewChannel)),
			when: Authorize{By: by(carol), ChannelID: general}, err: ErrNotFound},
		{name: "member overwrite hides a channel", given: world(overwrite(general, 0, carol, 0, permissions.ViewChannel)),
			when: Authorize{By: by(carol), ChannelID: general}, err: ErrNotFound},
		{name: "hidden channel cannot be edited: not found", given: world(), when: UpdateChannel{By: by(carol), ChannelID: secret, Name: ptr("mine")}, err: ErrNotFound},
		{name: "visible channel without MANAGE_CHANNEL: forbidden", given: world(), when: UpdateChannel{By: by(carol), ChannelID: general, Name: ptr("mine")}, err: ErrForbidden},
		{name: "audit log for the owner", given: world(), when: AuditAccess{By: by(owner)}},
		{name: "audit log without VIEW_AUDIT_LOG", given: world(), when: AuditAccess{By: by(alice)}, err: ErrForbidden},
		{name: "audit log for a stranger", given: world(), when: AuditAccess{By: by(erin)}, err: ErrNotFound},
	}
}

func roleCases() []decideCase {
	kickable := world(&eventsv1.RoleUpdated{RoleId: roleMuted, Permissions: ptr(uint64(permissions.KickMembers))})
	return []decideCase{
		{name: "create role just above @everyone", given: world(), when: CreateRole{By: by(bob), RoleID: 3000, Name: "regular", Permissions: permissions.AddReactions, Color: 0xff0000},
			then:  []proto.Message{&eventsv1.RoleCreated{RoleId: 3000, Name: "regular", Permissions: uint64(permissions.AddReactions), Position: 1, Color: 0xff0000}},
			reply: &Role{ID: 3000, Name: "regular", Permissions: permissions.AddReactions, Position: 1, Color: 0xff0000}},
		{name: "owner creates a role anywhere", given: world(), when: CreateRole{By: by(owner), RoleID: 3000, Name: "top", Permissions: permissions.All, Position: ptr(uint32(100))},
			then: []proto.Message{role(3000, "top", permissions.All, 100)}},
		{name: "create role at own level", given: world(), when: CreateRole{By: by(bob), RoleID: 3000, Name: "peer", Position: ptr(uint32(2))}, err: ErrForbidden},
		{name: "create role at position 0", given: world(), when: CreateRole{By: by(owner), RoleID: 3000, Name: "zero", Position: ptr(uint32(0))}, err: ErrInvalid},
		{name: "create role granting a bit one lacks", given: world(), when: CreateRole{By: by(bob), RoleID: 3000, Name: "kicker", Permissions: permissions.KickMembers}, err: ErrForbidden},
		{name: "create role with unknown bits", given: world(), when: CreateRole{By: by(owner), RoleID: 3000, Name: "odd", Permissions: 1 << 40}, err: ErrInvalid},
		{name: "create role without MANAGE_ROLES", given: world(), when: CreateRole{By: by(carol), RoleID: 3000, Name: "mine"}, err: ErrForbidden},
		{name: "create role with a channel's id", given: world(), when: CreateRole{By: by(owner), RoleID: general, Name: "clash"}, err: ErrInvalid},
		{name: "create role with a colour out of range", given: world(), when: CreateRole{By: by(owner), RoleID: 3000, Name: "c", Color: 1 << 24}, err: ErrInvalid},
		{name: "update a role above", given: world(), when: UpdateRole{By: by(bob), RoleID: roleMod, Name: ptr("mods")}, err: ErrForbidden},
		{name: "update a role at own level", given: world(), when: UpdateRole{By: by(bob), RoleID: roleHelper, Color: ptr(uint32(1))}, err: ErrForbidden},
		{name: "move a role up to own level", given: world(), when: UpdateRole{By: by(bob), RoleID: roleMuted, Position: ptr(uint32(2))}, err: ErrForbidden},
		{name: "update a role below", given: world(), when: UpdateRole{By: by(bob), RoleID: roleMuted, Name: ptr("quiet"), Permissions: ptr(permissions.SendMessages)},
			then:  []proto.Message{&eventsv1.RoleUpdated{RoleId: roleMuted, Name: ptr("quiet"), Permissions: ptr(uint64(permissions.SendMessages))}},
			reply: &Role{ID: roleMuted, Name: "quiet", Permissions: permissions.SendMessages, Position: 1}},
		{name: "a role keeps a bit its manager lacks", given: kickable,
			when: UpdateRole{By: by(bob), RoleID: roleMuted, Permissions: ptr(permissions.KickMembers | permissions.AddReactions)},
			then: []proto.Message{&eventsv1.RoleUpdated{RoleId: roleMuted, Permissions: ptr(uint64(permissions.KickMembers | permissions.AddReactions))}}},
		{name: "nor can the manager take it away", given: kickable, when: UpdateRole{By: by(bob), RoleID: roleMuted, Permissions: ptr(permissions.Set(0))}, err: ErrForbidden},
		{name: "update a role to the same values", given: world(), when: UpdateRole{By: by(owner), RoleID: roleMuted, Name: ptr("muted"), Position: ptr(uint32(1))},
			reply: &Role{ID: roleMuted, Name: "muted", Position: 1}},
		{name: "update nothing", given: world(), when: UpdateRole{By: by(owner), RoleID: roleMuted}, err: ErrInvalid},
		{name: "update unknown role", given: world(), when: UpdateRole{By: by(owner), RoleID: 4242, Name: ptr("x")}, err: ErrNotFound},
		{name: "@everyone's permissions with MANAGE_ROLES", given: world(), when: UpdateRole{By: by(bob), RoleID: gid, Permissions: ptr(EveryonePerms &^ permissions.AddReactions)},
			then: []proto.Message{&eventsv1.RoleUpdated{RoleId: gid, Permissions: ptr(uint64(EveryonePerms &^ permissions.AddReactions))}}},
		{name: "@everyone keeps its name", given: world(), when: UpdateRole{By: by(owner), RoleID: gid, Name: ptr("all")}, err: ErrInvalid},
		{name: "@everyone stays at 0", given: world(), when: UpdateRole{By: by(owner), RoleID: gid, Position: ptr(uint32(3))}, err: ErrInvalid},
		{name: "@everyone without MANAGE_ROLES", given: world(), when: UpdateRole{By: by(carol), RoleID: gid, Permissions: ptr(permissions.Set(0))}, err: ErrForbidden},
		{name: "@everyone cannot be deleted", given: world(), when: DeleteRole{By: by(owner), RoleID: gid}, err: ErrInvalid},
		{name: "delete a role below", given: world(), when: DeleteRole{By: by(bob), RoleID: roleMuted}, then: []proto.Message{&eventsv1.RoleDeleted{RoleId: roleMuted}}},
		{name: "delete own top role", given: world(), when: DeleteRole{By: by(bob), RoleID: roleHelper}, err: ErrForbidden},
		{name: "delete unknown role", given: world(), when: DeleteRole{By: by(owner), RoleID: 4242}, err: ErrNotFound},
	}
}

func overwriteCases() []decideCase {
	// carol may manage roles in general only, through her own overwrite.
	channelManager := world(overwrite(general, 0, carol, permissions.ManageRoles, 0))
	return []decideCase{
		{name: "overwrite for a role below", given: world(), when: SetOverwrite{By: by(alice), ChannelID: general, RoleID: roleMuted, Deny: permissions.SendMessages},
			then: []proto.Message{overwrite(general, roleMuted, "", 0, permissions.SendMessages)}},
		{name: "overwrite for @everyone", given: world(), when: SetOverwrite{By: by(alice), ChannelID: general, RoleID: gid, Deny: permissions.SendMessages},
			then: []proto.Message{overwrite(general, gid, "", 0, permissions.SendMessages)}},
		{name: "overwrite for a member", given: world(), when: SetOverwrite{By: by(alice), ChannelID: general, MemberFID: carol, Allow: permissions.ManageMessages},
			then: []proto.Message{overwrite(general, 0, carol, permissions.ManageMessages, 0)}},
		{name: "overwrite for own role", given: world(), when: SetOverwrite{By: by(alice), ChannelID: general, RoleID: roleMod, Allow: permissions.SendMessages}, err: ErrForbidden},
		{name: "overwrite for a role above", given: world(), when: SetOverwrite{By: by(alice), ChannelID: general, RoleID: roleAdmin, Deny: permissions.SendMessages}, err: ErrForbidden},
		{name: "overwrite allowing a bit one lacks", given: world(), when: SetOverwrite{By: by(alice), ChannelID: general, RoleID: roleMuted, Allow: permissions.ManageGuild}, err: ErrForbidden},
		{name: "overwrite allowing and denying a bit", given: world(), when: SetOverwrite{By: by(owner), ChannelID: general, RoleID: roleMuted, Allow: permissions.SendMessages, Deny: permissions.SendMessages}, err: ErrInvalid},
		{name: "overwrite with unknown bits", given: world(), when: SetOverwrite{By: by(owner), ChannelID: general, RoleID: roleMuted, Deny: 1 << 40}, err: ErrInvalid},
		{name: "overwrite for a role and a member", given: world(), when: SetOverwrite{By: by(owner), ChannelID: general, RoleID: roleMuted, MemberFID: carol}, err: ErrInvalid},
		{name: "overwrite for nobody", given: world(), when: SetOverwrite{By: by(owner), ChannelID: general}, err: ErrInvalid},
		{name: "overwrite for a non-member", given: world(), when: SetOverwrite{By: by(owner), ChannelID: general, MemberFID: erin, Deny: permissions.SendMessages}, err: ErrNotFound},
		{name: "overwrite for an unknown role", given: world(), when: SetOverwrite{By: by(owner), ChannelID: general, RoleID: 4242, Deny: permissions.SendMessages}, err: ErrNotFound},
		{name: "overwrite without MANAGE_ROLES", given: world(), when: SetOverwrite{By: by(carol), ChannelID: general, RoleID: gid, Deny: permissions.SendMessages}, err: ErrForbidden},
		{name: "overwrite in a hidden channel", given: world(), when: SetOverwrite{By: by(carol), ChannelID: secret, RoleID: gid}, err: ErrNotFound},
		{name: "overwrite as it is", given: world(), when: SetOverwrite{By: by(owner), ChannelID: secret, RoleID: gid, Deny: permissions.ViewChannel}},
		{name: "MANAGE_ROLES in the channel only: @everyone", given: channelManager,
			when: SetOverwrite{By: by(carol), ChannelID: general, RoleID: gid, Deny: permissions.AddReactions},
			then: []proto.Message{overwrite(general, gid, "", 0, permissions.AddReactions)}},
		{name: "MANAGE_ROLES in the channel only: no role above her", given: channelManager,
			when: SetOverwrite{By: by(carol), ChannelID: general, RoleID: roleMuted, Deny: permissions.AddReactions}, err: ErrForbidden},
		{name: "remove an overwrite", given: world(), when: RemoveOverwrite{By: by(owner), ChannelID: lounge, RoleID: gid},
			then: []proto.Message{&eventsv1.ChannelOverwriteRemoved{ChannelId: lounge, RoleId: gid}}},
		{name: "remove an overwrite denying what one lacks there", given: world(), when: RemoveOverwrite{By: by(alice), ChannelID: lounge, RoleID: gid}, err: ErrForbidden},
		{name: "remove a missing overwrite", given: world(), when: RemoveOverwrite{By: by(alice), ChannelID: general, RoleID: gid}, err: ErrNotFound},
		{name: "remove an overwrite naming bits one lacks", given: world(overwrite(general, gid, "", 0, permissions.ManageGuild)),
			when: RemoveOverwrite{By: by(alice), ChannelID: general, RoleID: gid}, err: ErrForbidden},
	}
}

func channelCases() []decideCase {
	hiddenLounge := world(overwrite(lounge, gid, "", 0, permissions.ViewChannel|permissions.SendMessages))
	full := world()
	for i := 3; i < MaxChannels; i++ { // world has three
		full = append(full, &eventsv1.ChannelCreated{ChannelId: uint64(10_000 + i), Type: textType, Name: "c"})
	}
	return []decideCase{
		{name: "create channel last", given: world(), when: CreateChannel{By: by(alice), ChannelID: 1100, Type: textType, Name: "news", Topic: "what is new"},
			then:  []proto.Message{&eventsv1.ChannelCreated{ChannelId: 1100, Type: textType, Name: "news", Topic: "what is new", Position: 3}},
			reply: &Channel{ID: 1100, Type: textType, Name: "news", Topic: "what is new", Position: 3}},
		{name: "create channel in a category copies its overwrites", given: world(), when: CreateChannel{By: by(alice), ChannelID: 1100, Type: textType, Name: "chat", ParentID: lounge, Position: ptr(uint32(0))},
			then: []proto.Message{&eventsv1.ChannelCreated{ChannelId: 1100, Type: textType, Name: "chat", ParentId: lounge,
				Overwrites: []*eventsv1.ChannelOverwrite{{RoleId: gid, Deny: uint64(permissions.SendMessages)}}}},
			reply: &Channel{ID: 1100, Type: textType, Name: "chat", ParentID: lounge, Overwrites: []permissions.Overwrite{{RoleID: gid, Deny: permissions.SendMessages}}}},
		{name: "create category", given: world(), when: CreateChannel{By: by(owner), ChannelID: 1100, Type: categoryType, Name: "more"},
			then: []proto.Message{&eventsv1.ChannelCreated{ChannelId: 1100, Type: categoryType, Name: "more", Position: 3}}},
		{name: "create category in a category", given: world(), when: CreateChannel{By: by(owner), ChannelID: 1100, Type: categoryType, Name: "more", ParentID: lounge}, err: ErrInvalid},
		{name: "create channel under a text channel", given: world(), when: CreateChannel{By: by(owner), ChannelID: 1100, Type: textType, Name: "x", ParentID: general}, err: ErrInvalid},
		{name: "create channel under a hidden category", given: hiddenLounge, when: CreateChannel{By: by(alice), ChannelID: 1100, Type: textType, Name: "x", ParentID: lounge}, err: ErrInvalid},
		{name: "create thread", given: world(), when: CreateChannel{By: by(owner), ChannelID: 1100, Type: eventsv1.ChannelType_CHANNEL_TYPE_THREAD, Name: "x"}, err: ErrInvalid},
		{name: "create channel with a used id", given: world(), when: CreateChannel{By: by(owner), ChannelID: general, Type: textType, Name: "x"}, err: ErrInvalid},
		{name: "create channel with a role's id", given: world(), when: CreateChannel{By: by(owner), ChannelID: roleMod, Type: textType, Name: "x"}, err: ErrInvalid},
		{name: "create channel without MANAGE_CHANNEL", given: world(), when: CreateChannel{By: by(carol), ChannelID: 1100, Type: textType, Name: "x"}, err: ErrForbidden},
		{name: "create channel past the limit", given: full, when: CreateChannel{By: by(owner), ChannelID: 1100, Type: textType, Name: "x"}, err: ErrLimit},
		{name: "move a channel into a category", given: world(), when: UpdateChannel{By: by(alice), ChannelID: general, ParentID: ptr(uint64(lounge)), Topic: ptr("hi")},
			then:  []proto.Message{&eventsv1.ChannelUpdated{ChannelId: general, Topic: ptr("hi"), ParentId: ptr(uint64(lounge))}},
			reply: &Channel{ID: general, Type: textType, Name: "general", Topic: "hi", ParentID: lounge}},
		{name: "move a category into a category", given: world(), when: UpdateChannel{By: by(owner), ChannelID: lounge, ParentID: ptr(uint64(lounge))}, err: ErrInvalid},
		{name: "a channel as its own parent", given: world(), when: UpdateChannel{By: by(owner), ChannelID: general, ParentID: ptr(uint64(general))}, err: ErrInvalid},
		{name: "update channel to the same values", given: world(), when: UpdateChannel{By: by(owner), ChannelID: general, Name: ptr("general"), Position: ptr(uint32(0))}},
		{name: "update channel with nothing", given: world(), when: UpdateChannel{By: by(owner), ChannelID: general}, err: ErrInvalid},
		{name: "encrypt a channel", given: world(), when: EnableEncryption{By: by(alice), ChannelID: general, GroupID: 77}, then: []proto.Message{&eventsv1.ChannelEncryptionEnabled{ChannelId: general, GroupId: 77}}},
		{name: "encrypt without MANAGE_CHANNEL", given: world(), when: EnableEncryption{By: by(carol), ChannelID: general, GroupID: 77}, err: ErrForbidden},
		{name: "encrypt a hidden channel", given: world(), when: EnableEncryption{By: by(alice), ChannelID: secret, GroupID: 77}, err: ErrNotFound},
		{name: "encrypt twice", given: append(world(), &eventsv1.ChannelEncryptionEnabled{ChannelId: general, GroupId: 77}), when: EnableEncryption{By: by(alice), ChannelID: general, GroupID: 78}, err: ErrInvalid},
		{name: "encrypt without a group", given: world(), when: EnableEncryption{By: by(alice), ChannelID: general}, err: ErrInvalid},
		{name: "delete channel", given: world(), when: DeleteChannel{By: by(alice), ChannelID: general}, then: []proto.Message{&eventsv1.ChannelDeleted{ChannelId: general}}},
		{name: "delete channel without MANAGE_CHANNEL", given: world(), when: DeleteChannel{By: by(carol), ChannelID: general}, err: ErrForbidden},
		{name: "delete hidden channel", given: world(), when: DeleteChannel{By: by(alice), ChannelID: secret}, err: ErrNotFound},
	}
}

func joinCases() []decideCase {
	joinedErin := []proto.Message{joined(erin, "welcome")}
	return []decideCase{
		{name: "join by invite", given: world(), when: Join{By: by(erin), Code: "welcome"}, then: joinedErin,
			check: func(t *testing.T, reply any) {
				g := reply.(*Guild)
				if g.Members[erin] == nil || g.Channels[secret] != nil || g.Channels[general] == nil || len(g.Invites) != 0 {
					t.Fatalf("reply: member %v, channels %v, invites %v", g.Members[erin], g.Channels, g.Invites)
				}
			}},
		{name: "join a private guild by invite", given: append(created(true), invite("welcome", 0, time.Time{})), when: Join{By: by(erin), Code: "welcome"}, then: joinedErin},
		{name: "join by expired invite", given: world(invite("old", 0, t0)), when: Join{By: by(erin), Code: "old"}, err: ErrInvite},
		{name: "join by invite not yet expired", given: world(invite("soon", 0, t0.Add(time.Millisecond))), when: Join{By: by(erin), Code: "soon"},
			then: []proto.Message{joined(erin, "soon")}},
		{name: "join by used-up invite", given: world(invite("once", 1, time.Time{}), joined(mallory, "once")), when: Join{By: by(erin), Code: "once"}, err: ErrInvite},
		{name: "join by revoked invite", given: world(&eventsv1.InviteRevoked{Code: "welcome"}), when: Join{By: by(erin), Code: "welcome"}, err: ErrInvite},
		{name: "join by invite to a deleted channel", given: world(&eventsv1.ChannelDeleted{ChannelId: general}), when: Join{By: by(erin), Code: "welcome"}, err: ErrInvite},
		{name: "join by unknown invite", given: world(), when: Join{By: by(erin), Code: "nope"}, err: ErrInvite},
		{name: "join banned", given: world(&eventsv1.MemberBanned{Fid: erin}), when: Join{By: by(erin), Code: "welcome"}, err: ErrBanned},
		{name: "join twice", given: world(joinedErin...), when: Join{By: by(erin), Code: "nope"},
			check: func(t *testing.T, reply any) {
				if g := reply.(*Guild); g.Members[erin] == nil {
					t.Fatal("not a member in the reply")
				}
			}},
		{name: "check invite", given: world(), when: CheckInvite{By: by(erin), Code: "welcome"},
			reply: &Invite{Code: "welcome", ChannelID: general, Inviter: owner, CreatedAt: t0.Add(-time.Hour)}},
		{name: "check invite banned", given: world(&eventsv1.MemberBanned{Fid: erin}), when: CheckInvite{By: by(erin), Code: "welcome"}, err: ErrBanned},
		{name: "check unknown invite", given: world(), when: CheckInvite{By: by(erin), Code: "nope"}, err: ErrInvite},
	}
}

func memberCases() []decideCase {
	return []decideCase{
		{name: "kick", given: world(), when: Kick{By: by(alice), FID: carol}, then: []proto.Message{&eventsv1.MemberKicked{Fid: carol}}},
		{name: "kick the owner", given: world(), when: Kick{By: by(alice), FID: owner}, err: ErrOwner},
		{name: "kick someone above", given: world(), when: Kick{By: by(alice), FID: dave}, err: ErrForbidden},
		{name: "kick oneself", given: world(), when: Kick{By: by(alice), FID: alice}, err: ErrInvalid},
		{name: "kick without KICK_MEMBERS", given: world(), when: Kick{By: by(carol), FID: bob}, err: ErrForbidden},
		{name: "kick a non-member", given: world(), when: Kick{By: by(alice), FID: erin}, err: ErrNotFound},
		{name: "ban the owner", given: world(), when: Ban{By: by(dave), FID: owner}, err: ErrOwner},
		{name: "ban a member", given: world(), when: Ban{By: by(alice), FID: carol}, then: []proto.Message{&eventsv1.MemberBanned{Fid: carol}}},
		{name: "ban a non-member", given: world(), when: Ban{By: by(alice), FID: mallory}, then: []proto.Message{&eventsv1.MemberBanned{Fid: mallory}}},
		{name: "ban again", given: world(&eventsv1.MemberBanned{Fid: mallory}), when: Ban{By: by(alice), FID: mallory}},
		{name: "ban someone at one's level", given: world(joined(mallory, ""), rolesOf(mallory, roleMod)), when: Ban{By: by(alice), FID: mallory}, err: ErrForbidden},
		{name: "ban something that is not a FID", given: world(), when: Ban{By: by(alice), FID: "not a fid"}, err: ErrInvalid},
		{name: "ban without BAN_MEMBERS", given: world(), when: Ban{By: by(bob), FID: mallory}, err: ErrForbidden},
		{name: "unban", given: world(&eventsv1.MemberBanned{Fid: mallory}), when: Unban{By: by(alice), FID: mallory}, then: []proto.Message{&eventsv1.MemberUnbanned{Fid: mallory}}},
		{name: "unban someone not banned", given: world(), when: Unban{By: by(alice), FID: mallory}, err: ErrNotFound},
		{name: "unban without BAN_MEMBERS", given: world(&eventsv1.MemberBanned{Fid: mallory}), when: Unban{By: by(carol), FID: mallory}, err: ErrForbidden},
		{name: "set roles, deduplicated", given: world(), when: SetRoles{By: by(alice), FID: carol, RoleIDs: []uint64{roleMuted, roleHelper, roleMuted}},
			then:  []proto.Message{rolesOf(carol, roleHelper, roleMuted)},
			reply: &Member{FID: carol, Roles: []uint64{roleHelper, roleMuted}, JoinedAt: t0}},
		{name: "give a role at one's level", given: world(), when: SetRoles{By: by(alice), FID: carol, RoleIDs: []uint64{roleMod}}, err: ErrForbidden},
		{name: "set roles of someone above", given: world(), when: SetRoles{By: by(alice), FID: dave, RoleIDs: []uint64{roleAdmin, roleMuted}}, err: ErrForbidden},
		{name: "give @everyone", given: world(), when: SetRoles{By: by(alice), FID: carol, RoleIDs: []uint64{gid}}, err: ErrInvalid},
		{name: "give an unknown role", given: world(), when: SetRoles{By: by(alice), FID: carol, RoleIDs: []uint64{4242}}, err: ErrInvalid},
		{name: "give oneself a role below", given: world(), when: SetRoles{By: by(bob), FID: bob, RoleIDs: []uint64{roleHelper, roleMuted}},
			then: []proto.Message{rolesOf(bob, roleHelper, roleMuted)}},
		{name: "drop one's own top role", given: world(), when: SetRoles{By: by(bob), FID: bob}, err: ErrForbidden},
		{name: "set roles unchanged", given: world(), when: SetRoles{By: by(alice), FID: bob, RoleIDs: []uint64{roleHelper}},
			reply: &Member{FID: bob, Roles: []uint64{roleHelper}, JoinedAt: t0}},
		{name: "set roles without MANAGE_ROLES", given: world(), when: SetRoles{By: by(carol), FID: carol, RoleIDs: []uint64{roleMuted}}, err: ErrForbidden},
		{name: "set roles of a non-member", given: world(), when: SetRoles{By: by(alice), FID: erin}, err: ErrNotFound},
		{name: "own nickname", given: world(), when: SetNickname{By: by(carol), FID: carol, Nickname: " Caz "},
			then:  []proto.Message{&eventsv1.MemberNicknameChanged{Fid: carol, Nickname: "Caz"}},
			reply: &Member{FID: carol, Nickname: "Caz", JoinedAt: t0}},
		{name: "someone else's nickname without MANAGE_GUILD", given: world(), when: SetNickname{By: by(alice), FID: carol, Nickname: "x"}, err: ErrForbidden},
		{name: "owner sets a nickname", given: world(), when: SetNickname{By: by(owner), FID: dave, Nickname: "boss"},
			then: []proto.Message{&eventsv1.MemberNicknameChanged{Fid: dave, Nickname: "boss"}}},
		{name: "nickname too long", given: world(), when: SetNickname{By: by(carol), FID: carol, Nickname: strings.Repeat("n", MaxNickLen+1)}, err: ErrInvalid},
		{name: "nickname unchanged", given: world(), when: SetNickname{By: by(carol), FID: carol, Nickname: ""}},
	}
}

func inviteCases() []decideCase {
	return []decideCase{
		{name: "create invite", given: world(), when: CreateInvite{By: by(carol), Code: "abc", ChannelID: general, MaxUses: 5, MaxAge: time.Hour},
			then:  []proto.Message{&eventsv1.InviteCreated{Code: "abc", ChannelId: general, MaxUses: 5, InviterFid: carol, CreatedAtMs: t0.UnixMilli(), ExpiresAtMs: t0.Add(time.Hour).UnixMilli()}},
			reply: &Invite{Code: "abc", ChannelID: general, MaxUses: 5, Inviter: carol, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}},
		{name: "create invite that never expires", given: world(), when: CreateInvite{By: by(carol), Code: "abc", ChannelID: general},
			then: []proto.Message{&eventsv1.InviteCreated{Code: "abc", ChannelId: general, InviterFid: carol, CreatedAtMs: t0.UnixMilli()}}},
		{name: "create invite to a hidden channel", given: world(), when: CreateInvite{By: by(carol), Code: "abc", ChannelID: secret}, err: ErrNotFound},
		{name: "create invite to a category", given: world(), when: CreateInvite{By: by(owner), Code: "abc", ChannelID: lounge}, err: ErrInvalid},
		{name: "create invite without CREATE_INVITE", given: world(overwrite(general, 0, carol, 0, permissions.CreateInvite)),
			when: CreateInvite{By: by(carol), Code: "abc", ChannelID: general}, err: ErrForbidden},
		{name: "create invite with a used code", given: world(&eventsv1.InviteRevoked{Code: "welcome"}), when: CreateInvite{By: by(owner), Code: "welcome", ChannelID: general}, err: ErrInvalid},
		{name: "create invite with a slash", given: world(), when: CreateInvite{By: by(owner), Code: "a/b", ChannelID: general}, err: ErrInvalid},
		{name: "create invite living too long", given: world(), when: CreateInvite{By: by(owner), Code: "abc", ChannelID: general, MaxAge: MaxInviteAge + time.Second}, err: ErrInvalid},
		{name: "create invite with too many uses", given: world(), when: CreateInvite{By: by(owner), Code: "abc", ChannelID: general, MaxUses: MaxInviteUses + 1}, err: ErrInvalid},
		{name: "create invite past the limit", given: manyInvites(MaxInvites), when: CreateInvite{By: by(owner), Code: "abc", ChannelID: general}, err: ErrLimit},
		{name: "expired invites do not count", given: append(manyInvites(MaxInvites-1), invite("old", 0, t0)), when: CreateInvite{By: by(owner), Code: "abc", ChannelID: general},
			then: []proto.Message{&eventsv1.InviteCreated{Code: "abc", ChannelId: general, InviterFid: owner, CreatedAtMs: t0.UnixMilli()}}},
		{name: "revoke by the inviter", given: world(), when: RevokeInvite{By: by(owner), Code: "welcome"}, then: []proto.Message{&eventsv1.InviteRevoked{Code: "welcome"}}},
		{name: "revoke with MANAGE_GUILD", given: world(rolesOf(carol, roleAdmin)), when: RevokeInvite{By: by(carol), Code: "welcome"}, then: []proto.Message{&eventsv1.InviteRevoked{Code: "welcome"}}},
		{name: "revoke someone else's invite", given: world(), when: RevokeInvite{By: by(carol), Code: "welcome"}, err: ErrForbidden},
		{name: "revoke twice", given: world(&eventsv1.InviteRevoked{Code: "welcome"}), when: RevokeInvite{By: by(owner), Code: "welcome"}, err: ErrNotFound},
		{name: "revoke unknown", given: world(), when: RevokeInvite{By: by(owner), Code: "nope"}, err: ErrNotFound},
		{name: "list invites", given: world(invite("zzz", 0, time.Time{}), invite("old", 0, t0)), when: Invites{By: by(owner)},
			reply: []Invite{
				{Code: "welcome", ChannelID: general, Inviter: owner, CreatedAt: t0.Add(-time.Hour)},
				{Code: "zzz", ChannelID: general, Inviter: owner, CreatedAt: t0.Add(-time.Hour)},
			}},
		{name: "list invites without MANAGE_GUILD", given: world(), when: Invites{By: by(alice)}, err: ErrForbidden},
	}
}

// manyInvites is world with n live invites in all.
func manyInvites(n int) []proto.Message {
	evs := world()
	for i := 1; i < n; i++ {
		evs = append(evs, invite(fmt.Sprintf("i%d", i), 0, time.Time{}))
	}
	return evs
}

func queryCases() []decideCase {
	return []decideCase{
		{name: "private guild to a stranger", given: append(created(true), joined(carol, "")), when: Get{By: by(erin)}, err: ErrNotFound},
		{name: "public guild to a stranger", given: world(), when: Get{By: by(erin)},
			check: func(t *testing.T, reply any) {
				g := reply.(*Guild)
				if g.Name != "Home" || len(g.Roles) != 5 || len(g.Channels)+len(g.Members)+len(g.Invites)+len(g.Bans) != 0 {
					t.Fatalf("stranger sees %d channels, %d members, %d invites, %d bans, %d roles", len(g.Channels), len(g.Members), len(g.Invites), len(g.Bans), len(g.Roles))
				}
			}},
		{name: "guild to a member", given: world(&eventsv1.MemberBanned{Fid: mallory}), when: Get{By: by(carol)},
			check: func(t *testing.T, reply any) {
				g := reply.(*Guild)
				if len(g.Channels) != 2 || g.Channels[secret] != nil || len(g.Members) != 5 || len(g.Invites)+len(g.Bans) != 0 {
					t.Fatalf("member sees channels %v, %d members, invites %v, bans %v", g.Channels, len(g.Members), g.Invites, g.Bans)
				}
			}},
		{name: "guild to the owner", given: world(&eventsv1.MemberBanned{Fid: mallory}), when: Get{By: by(owner)},
			check: func(t *testing.T, reply any) {
				g := reply.(*Guild)
				if len(g.Channels) != 3 || len(g.Invites) != 1 || !g.Bans[mallory] {
					t.Fatalf("owner sees channels %v, invites %v, bans %v", g.Channels, g.Invites, g.Bans)
				}
			}},
		{name: "members page", given: world(), when: Members{By: by(carol), After: bob, Limit: 2},
			reply: []Member{{FID: carol, JoinedAt: t0}, {FID: dave, JoinedAt: t0, Roles: []uint64{roleAdmin}}}},
		{name: "members default limit", given: world(), when: Members{By: by(carol), After: dave},
			reply: []Member{{FID: owner, JoinedAt: t0}}},
		{name: "members to a stranger", given: world(), when: Members{By: by(erin)}, err: ErrNotFound},
		{name: "bans", given: world(&eventsv1.MemberBanned{Fid: mallory}, &eventsv1.MemberBanned{Fid: erin}), when: Bans{By: by(alice)},
			reply: []string{erin, mallory}},
		{name: "bans without BAN_MEMBERS", given: world(), when: Bans{By: by(carol)}, err: ErrForbidden},
	}
}

// TestRepliesAreCopies: changing a reply changes nothing in the state it came from.
func TestRepliesAreCopies(t *testing.T) {
	given := world(overwrite(general, roleMuted, "", 0, permissions.SendMessages), rolesOf(carol, roleMuted))
	for _, cmd := range []any{
		Get{By: by(owner)}, Get{By: by(erin)}, Authorize{By: by(owner), ChannelID: general}, Members{By: by(owner)},
		SetNickname{By: by(carol), FID: carol}, UpdateChannel{By: by(owner), ChannelID: general, Name: ptr("general")},
		UpdateRole{By: by(owner), RoleID: roleMuted, Color: ptr(uint32(0))}, Invites{By: by(owner)}, CheckInvite{By: by(erin), Code: "welcome"},
	} {
		g := build(t, given)
		before := g.Clone()
		_, reply, err := Decide(g, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		scribble(reply)
		if diff := cmp.Diff(before, g, cmp.AllowUnexported(Guild{})); diff != "" {
			t.Fatalf("%T: changing the reply changed the state:\n%s", cmd, diff)
		}
	}
}

// scribble changes everything a reply may share with the state.
func scribble(reply any) {
	switch r := reply.(type) {
	case *Guild:
		for _, c := range r.Channels {
			c.Name = "x"
			for i := range c.Overwrites {
				c.Overwrites[i].Deny = 0
			}
		}
		for _, m := range r.Members {
			m.Nickname = "x"
			for i := range m.Roles {
				m.Roles[i] = 0
			}
		}
		for _, ro := range r.Roles {
			ro.Name = "x"
		}
		for _, i := range r.Invites {
			i.Uses = 99
		}
	case Access:
		r.Channel.Name = "x"
		for i := range r.Channel.Overwrites {
			r.Channel.Overwrites[i].Deny = 0
		}
	case []Member:
		for i := range r {
			for j := range r[i].Roles {
				r[i].Roles[j] = 0
			}
		}
	case *Member:
		r.Nickname = "x"
		for i := range r.Roles {
			r.Roles[i] = 0
		}
	case *Channel:
		r.Name = "x"
		for i := range r.Overwrites {
			r.Overwrites[i].Deny = 0
		}
	case *Role:
		r.Name = "x"
	case *Invite:
		r.Uses = 99
	case []Invite:
		for i := range r {
			r[i].Uses = 99
		}
	}
}

// TestApply: the state after a sequence of events.
func TestApply(t *testing.T) {
	g := build(t, world(
		&eventsv1.ChannelCreated{ChannelId: 1100, Type: textType, Name: "chat", ParentId: lounge, Position: 4,
			Overwrites: []*eventsv1.ChannelOverwrite{{RoleId: gid, Deny: uint64(permissions.SendMessages)}}},
		overwrite(1100, roleMuted, "", permissions.SendMessages, 0),
		overwrite(1100, 0, carol, 0, permissions.AddReactions),
		overwrite(1100, roleMuted, "", 0, permissions.AddReactions), // replaces the first
		rolesOf(carol, roleMuted, roleHelper),
		&eventsv1.RoleDeleted{RoleId: roleMuted},
		invite("once", 1, time.Time{}),
		joined(erin, "once"),
		&eventsv1.MemberLeft{Fid: carol},
		&eventsv1.MemberBanned{Fid: erin},
		&eventsv1.ChannelDeleted{ChannelId: lounge},
		&eventsv1.ChannelUpdated{ChannelId: general, Name: ptr("lobby"), Position: ptr(uint32(7))},
		&eventsv1.GuildUpdated{Description: ptr("our place")},
		&eventsv1.MemberNicknameChanged{Fid: bob, Nickname: "B"},
	))
	want := &Guild{
		ID: gid, Created: true, Name: "Home", Description: "our place", Owner: owner,
		Roles: map[uint64]*Role{
			gid:        {ID: gid, Name: "@everyone", Permissions: EveryonePerms},
			roleMod:    {ID: roleMod, Name: "mod", Permissions: modPerms, Position: 5},
			roleHelper: {ID: roleHelper, Name: "helper", Permissions: permissions.ManageRoles, Position: 2},
			roleAdmin:  {ID: roleAdmin, Name: "admin", Permissions: permissions.Administrator, Position: 9},
		},
		Channels: map[uint64]*Channel{
			general: {ID: general, Type: textType, Name: "lobby", Position: 7},
			secret:  {ID: secret, Type: textType, Name: "secret", Position: 1, Overwrites: []permissions.Overwrite{{RoleID: gid, Deny: permissions.ViewChannel}}},
			// Out of its deleted category; the muted overwrite went with the role, carol's with her.
			1100: {ID: 1100, Type: textType, Name: "chat", Position: 4, Overwrites: []permissions.Overwrite{{RoleID: gid, Deny: permissions.SendMessages}}},
		},
		Members: map[string]*Member{
			owner: {FID: owner, JoinedAt: t0},
			alice: {FID: alice, Roles: []uint64{roleMod}, JoinedAt: t0},
			bob:   {FID: bob, Nickname: "B", Roles: []uint64{roleHelper}, JoinedAt: t0},
			dave:  {FID: dave, Roles: []uint64{roleAdmin}, JoinedAt: t0},
		},
		Bans: map[string]bool{erin: true},
		Invites: map[string]*Invite{
			"welcome": {Code: "welcome", ChannelID: general, Inviter: owner, CreatedAt: t0.Add(-time.Hour)},
			"once":    {Code: "once", ChannelID: general, MaxUses: 1, Uses: 1, Inviter: owner, CreatedAt: t0.Add(-time.Hour)},
		},
	}
	if diff := cmp.Diff(want, g, guildOpts...); diff != "" {
		t.Fatalf("state (-want +got):\n%s", diff)
	}
	if p := g.Permissions(bob, 1100); p != EveryonePerms&^permissions.SendMessages|permissions.ManageRoles {
		t.Fatalf("bob in chat: %v", p)
	}
	if g.Permissions(erin, general) != 0 || g.CanView(carol, general) {
		t.Fatal("a banned or departed member keeps permissions")
	}
	// Deleting the guild takes every permission away, even the owner's.
	if g, _ = Apply(g, &eventsv1.GuildDeleted{}); g.Permissions(owner, 0) != 0 {
		t.Fatal("the owner keeps permissions in a deleted guild")
	}
}

func TestParseID(t *testing.T) {
	for _, bad := range []string{"", "0", "007", "+7", "-7", "7x", " 7", "18446744073709551616"} {
		if _, err := parseID(bad); err == nil {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
	if id, err := parseID("18446744073709551615"); err != nil || id != 1<<64-1 {
		t.Fatalf("parseID(max) = %d, %v", id, err)
	}
	if _, err := NewProducer(Config{})("abc"); err == nil {
		t.Fatal("producer accepted a non-numeric id")
	}
	if a, err := NewProducer(Config{})("1000"); err != nil || a == nil {
		t.Fatalf("producer: %v", err)
	}
	if Stream(gid) != "guild-1000" {
		t.Fatalf("stream %q", Stream(gid))
	}
}

// TestOrigin: every command's events carry who sent it, from which session, and why.
func TestOrigin(t *testing.T) {
	b := By{FID: alice, SessionID: "s1", Reason: "spam", At: t0}
	want := actors.Origin{ActorFID: alice, SessionID: "s1", Reason: "spam"}
	for _, cmd := range []any{Create{By: b}, Kick{By: b}, Ban{By: b}, SetOverwrite{By: b}, Leave{By: b}} {
		if got := originOf(cmd); got != want {
			t.Fatalf("originOf(%T) = %+v", cmd, got)
		}
	}
	if got := originOf("not a command"); got != (actors.Origin{}) {
		t.Fatalf("originOf(string) = %+v", got)
	}
}

// TestActor: the kind end to end on a memory store: commands are answered once durable, the
// events carry who sent them, and a fresh activation reads the guild back from its stream.
func TestActor(t *testing.T) {
	ctx := context.Background()
	store := memory.New(nil)
	sys := actors.NewSystem(actors.Config{})
	t.Cleanup(func() { _ = sys.Shutdown(ctx) })
	kind, err := sys.Kind(KindName, NewProducer(Config{Store: store}), actors.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := "1000"
	res, err := kind.Request(ctx, id, Create{By: By{FID: owner, Reason: "hello", At: t0}, Name: "Home", GeneralID: general})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(*actors.Result); r.Events != 4 || r.Reply.(*Guild).Owner != owner {
		t.Fatalf("create: %+v", r)
	}
	if _, err := kind.Request(ctx, id, Get{By: by(erin)}); err != nil {
		t.Fatalf("public guild to a stranger: %v", err)
	}
	if _, err := kind.Request(ctx, id, Kick{By: by(erin), FID: owner}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stranger kicks: %v", err)
	}
	if _, err := kind.Request(ctx, "007", Get{By: by(owner)}); err == nil {
		t.Fatal("a non-canonical id reached an actor")
	}

	recs, err := store.ReadStream(ctx, Stream(gid), events.Forwards, 0, 100)
	if err != nil || len(recs) != 4 {
		t.Fatalf("stream: %d events, %v", len(recs), err)
	}
	if m, err := recs[0].Meta(); err != nil || m.GetActorFid() != owner || m.GetReason() != "hello" {
		t.Fatalf("envelope %v, %v", m, err)
	}

	// A second system on the same store loads the guild from the stream.
	sys2 := actors.NewSystem(actors.Config{})
	t.Cleanup(func() { _ = sys2.Shutdown(ctx) })
	kind2, err := sys2.Kind(KindName, NewProducer(Config{Store: store}), actors.KindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = kind2.Request(ctx, id, Authorize{By: by(owner), ChannelID: general})
	if err != nil {
		t.Fatal(err)
	}
	if a := res.(*actors.Result).Reply.(Access); a.Permissions != permissions.All || a.Channel.Name != "general" {
		t.Fatalf("reloaded: %+v", a)
	}
}
