package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestEncryptedChannel runs an encrypted guild channel end to end (polyproto-chat 3.1, 3.4,
// 3.5): a moderator encrypts it, plaintext is refused from then on, members ask to join with
// a KeyPackage and a gatekeeper lets them in, one actor's two devices ask as one, a member's new
// device is announced to everyone as NEW_DEVICE, messages are read by every device, and a guild
// member who may not view the channel can neither ask nor read.
func TestEncryptedChannel(t *testing.T) {
	base := startTestServer(t, "-data-dir", t.TempDir(), "-domain", "a.test", "-store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newClient(t, base, t.TempDir())
	member := func(name, session string, register bool) *groupMember {
		t.Helper()
		s, ch, m := mlsLogin(t, ctx, c, name, session, register, 0, ChatOptions{})
		return connectMember(t, ctx, c, s, ch, m)
	}
	alice, bob, carol, dave := member("alice", "laptop", true), member("bob", "desk", true), member("carol", "desk", true), member("dave", "desk", true)

	guild, err := alice.ch.CreateGuild(ctx, NewGuild{Name: "club"})
	if err != nil {
		t.Fatal(err)
	}
	general := guild.Channels[0].ID
	inv, err := alice.ch.CreateInvite(ctx, general, InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, gm := range []*groupMember{bob, carol, dave} {
		if _, err := gm.ch.JoinInvite(ctx, inv.Code); err != nil {
			t.Fatal(err)
		}
	}
	// Dave is in the guild but may not view the channel.
	if err := alice.ch.SetOverwrite(ctx, general, MemberOverwrite(dave.s.FID.String(), 0, PermViewChannel)); err != nil {
		t.Fatal(err)
	}

	// A plaintext message from before the encryption stays, but cannot be edited after it.
	before, err := bob.ch.Send(ctx, general, "said in the clear", SendOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Only a moderator encrypts; then plaintext is refused.
	var api *APIError
	if _, err := bob.m.EncryptChannel(ctx, general); !errors.As(err, &api) || api.Status != http.StatusForbidden {
		t.Fatalf("bob encrypts without MANAGE_CHANNEL: %v", err)
	}
	grp, err := alice.m.EncryptChannel(ctx, general)
	if err != nil {
		t.Fatal(err)
	}
	if grp.Kind != "channel" || grp.ChannelID != general || grp.GuildID != guild.ID {
		t.Fatalf("the channel's group: %+v", grp)
	}
	if chn, err := bob.ch.Channel(ctx, general); err != nil || !chn.Encrypted || chn.GroupID != grp.ID {
		t.Fatalf("the channel after encryption: %+v %v", chn, err)
	}
	if _, err := bob.ch.Send(ctx, general, "in the clear", SendOptions{}); !errors.As(err, &api) || api.Code != "P2_CHAT_ENCRYPTED_CHANNEL" {
		t.Fatalf("plaintext to an encrypted channel: %v", err)
	}
	if _, err := bob.ch.Edit(ctx, general, before.ID, "edited", SendOptions{}); !errors.As(err, &api) || api.Code != "P2_CHAT_ENCRYPTED_CHANNEL" {
		t.Fatalf("editing an old plaintext message of an encrypted channel: %v", err)
	}
	if _, err := alice.m.EncryptChannel(ctx, general); !errors.As(err, &api) || api.Status != http.StatusBadRequest {
		t.Fatalf("encrypting twice: %v", err)
	}

	// Bob asks; alice, the gatekeeper, lets him in.
	if err := bob.m.RequestJoin(ctx, grp.ID, 1); err != nil {
		t.Fatal(err)
	}
	req := alice.await(t, "bob's request", func(e GroupEvent) bool { return e.Type == GroupJoinRequest })
	if req.FID != "bob@a.test" || !slices.Equal(req.Sessions, []string{"desk"}) {
		t.Fatalf("bob's request: %+v", req)
	}
	if err := alice.m.AcceptJoin(ctx, grp.ID, bob.s.FID); err != nil {
		t.Fatal(err)
	}
	bob.await(t, "bob's Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined && e.Group == grp.ID })

	// Carol asks from two devices: one request for her, both added in one commit, by bob.
	carolTab := member("carol", "tablet", false)
	if err := carol.m.RequestJoin(ctx, grp.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := carolTab.m.RequestJoin(ctx, grp.ID, 1); err != nil {
		t.Fatal(err)
	}
	req = bob.await(t, "carol's second request", func(e GroupEvent) bool { return e.Type == GroupJoinRequest && e.Session == "tablet" })
	if !slices.Equal(req.Sessions, []string{"desk", "tablet"}) {
		t.Fatalf("carol's requests do not show as one: %+v", req)
	}
	if err := bob.m.AcceptJoin(ctx, grp.ID, carol.s.FID); err != nil {
		t.Fatal(err)
	}
	for _, gm := range []*groupMember{carol, carolTab} {
		gm.await(t, "carol's Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined && e.Group == grp.ID })
	}
	for _, gm := range []*groupMember{alice, bob, carol} {
		e := gm.await(t, "NEW_DEVICE for carol's tablet", func(e GroupEvent) bool { return e.Type == GroupNewDevice })
		if e.FID != "carol@a.test" || e.Session != "tablet" {
			t.Fatalf("%s: NEW_DEVICE %+v", gm.name, e)
		}
	}

	// Bob's new phone: a new device of a member, accepted by any member and announced to all.
	phone := member("bob", "phone", false)
	if err := phone.m.RequestJoin(ctx, grp.ID, 1); err != nil {
		t.Fatal(err)
	}
	// Nobody calls AcceptJoin: the members' SDKs accept a member's new device by default.
	carol.await(t, "the phone's request", func(e GroupEvent) bool { return e.Type == GroupJoinRequest && e.Session == "phone" })
	for _, gm := range []*groupMember{alice, bob, carol, carolTab} {
		e := gm.await(t, "NEW_DEVICE for bob's phone", func(e GroupEvent) bool { return e.Type == GroupNewDevice && e.Session == "phone" })
		if e.FID != "bob@a.test" {
			t.Fatalf("%s: NEW_DEVICE %+v", gm.name, e)
		}
	}
	phone.await(t, "the phone's Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined })

	// Everyone reads everyone.
	for _, from := range []*groupMember{alice, carolTab, phone} {
		text := "secret from " + from.name
		if _, err := from.m.Send(ctx, grp.ID, []byte(text)); err != nil {
			t.Fatal(err)
		}
		for _, gm := range []*groupMember{alice, bob, carol, carolTab, phone} {
			if gm == from {
				continue
			}
			e := gm.await(t, text, func(e GroupEvent) bool { return e.Type == GroupMessage })
			if string(e.Plaintext) != text {
				t.Fatalf("%s read %q, want %q", gm.name, e.Plaintext, text)
			}
		}
	}

	// Dave, who may not view the channel, can neither ask nor read; the group looks absent.
	if err := dave.m.RequestJoin(ctx, grp.ID, 1); !errors.As(err, &api) || api.Status != http.StatusNotFound {
		t.Fatalf("dave asks to join: %v", err)
	}
	if _, err := dave.m.Info(ctx, grp.ID); !errors.As(err, &api) || api.Status != http.StatusNotFound {
		t.Fatalf("dave reads the group: %v", err)
	}
}
