package client

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/polyproto-chat/server/internal/servertest"
	"github.com/polyproto-chat/server/snowflake"
)

// TestChatEndToEnd runs the SDK's chat side against the real server binary: two actors, a guild,
// signed messages and edits verified from both REST and the gateway, the nonce deduplication
// Send's retry relies on, and moderation.
func TestChatEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin, err := servertest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := servertest.Start(t, bin, "-data-dir", t.TempDir(), "-domain", "a.test", "-store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	c := newClient(t, base, "")
	login := func(name string) (*Session, *Chat) {
		t.Helper()
		if _, err := c.Register(ctx, name, "correct horse battery"); err != nil {
			t.Fatalf("Register %s: %v", name, err)
		}
		s, err := c.Login(ctx, name, "correct horse battery", "")
		if err != nil {
			t.Fatalf("Login %s: %v", name, err)
		}
		ch, err := c.Chat(s, ChatOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s, ch
	}
	aliceS, alice := login("alice")
	_, bob := login("bob")

	g, err := c.Connect(ctx, aliceS, GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer g.Close()
	waitChatEvent(t, g, func(ev Event) bool { return ev.Ready != nil })

	guild, err := alice.CreateGuild(ctx, NewGuild{Name: "club", Description: "d"})
	if err != nil {
		t.Fatalf("CreateGuild: %v", err)
	}
	if guild.Owner != "alice@a.test" || len(guild.Channels) != 1 || guild.Channels[0].Name != "general" || len(guild.Roles) != 1 {
		t.Fatalf("CreateGuild = %+v", guild)
	}
	if gc := nextDispatch(t, g, EventGuildCreate).(*Guild); gc.ID != guild.ID {
		t.Fatalf("GUILD_CREATE of %s, want %s", gc.ID, guild.ID)
	}
	general := guild.Channels[0].ID

	inv, err := alice.WithReason("for bob ✓").CreateInvite(ctx, general, InviteOptions{MaxUses: 3, MaxAge: time.Hour})
	if err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	if p, err := bob.Invite(ctx, inv.Code); err != nil || p.Guild.Name != "club" || p.MaxUses != 3 || p.ExpiresAt.IsZero() {
		t.Fatalf("Invite preview = %+v, %v", p, err)
	}
	if jg, err := bob.JoinInvite(ctx, inv.Code); err != nil || jg.ID != guild.ID || jg.MemberCount != 2 {
		t.Fatalf("JoinInvite = %+v, %v", jg, err)
	}

	// A message from bob, verified by alice from REST and from the gateway.
	m, err := bob.Send(ctx, general, "hello", SendOptions{Attachments: []string{"https://x.test/a.png"}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m.Author != "bob@a.test" || m.Version != 0 || m.CertSerial == 0 || m.Signature == "" {
		t.Fatalf("Send = %+v", m)
	}
	if err := alice.VerifyMessage(ctx, m); err != nil {
		t.Fatalf("VerifyMessage of the sent message: %v", err)
	}
	created := nextDispatch(t, g, EventMessageCreate).(*Message)
	if created.ID != m.ID {
		t.Fatalf("MESSAGE_CREATE of %s, want %s", created.ID, m.ID)
	}
	if err := alice.VerifyMessage(ctx, *created); err != nil {
		t.Fatalf("VerifyMessage of MESSAGE_CREATE: %v", err)
	}

	edited, err := bob.Edit(ctx, general, m.ID, "hello, edited", SendOptions{})
	if err != nil {
		t.Fatalf("Edit: %v", err)
	}
	if edited.Version != 1 || !edited.Edited() {
		t.Fatalf("Edit = %+v", edited)
	}
	if err := alice.VerifyMessage(ctx, edited); err != nil {
		t.Fatalf("VerifyMessage of the edit: %v", err)
	}
	upd := nextDispatch(t, g, EventMessageUpdate).(*MessageUpdate)
	if err := alice.VerifyUpdate(ctx, *upd); err != nil || upd.Content != "hello, edited" {
		t.Fatalf("MESSAGE_UPDATE %+v: %v", upd, err)
	}

	// The premise of Send's retry: the very same request again answers the stored message.
	body, err := bob.signMessage(testDomain(t, bob), general, "fixed-nonce-1", "once", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := chatRequest{method: http.MethodPost, path: "/channels/" + general.String() + "/messages", body: body}
	var first, again Message
	s1, err1 := bob.do(ctx, r, &first)
	s2, err2 := bob.do(ctx, r, &again)
	if err1 != nil || err2 != nil || s1 != http.StatusCreated || s2 != http.StatusOK || again.ID != first.ID {
		t.Fatalf("same nonce twice: %d %s %v, then %d %s %v; want 201 then 200 with the same id", s1, first.ID, err1, s2, again.ID, err2)
	}

	page, err := alice.Messages(ctx, general, MessageQuery{Limit: 10})
	if err != nil {
		t.Fatalf("Messages: %v", err)
	}
	if len(page) != 2 || page[0].ID != first.ID || page[1].ID != m.ID || !page[1].Edited() || page[1].Content != "hello, edited" {
		t.Fatalf("Messages = %+v", page)
	}
	for _, pm := range page {
		if err := alice.VerifyMessage(ctx, pm); err != nil {
			t.Errorf("VerifyMessage of history entry %s: %v", pm.ID, err)
		}
	}

	if err := alice.Pin(ctx, general, m.ID); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	if pins, err := alice.Pins(ctx, general); err != nil || len(pins) != 1 || pins[0].ID != m.ID {
		t.Fatalf("Pins = %+v, %v", pins, err)
	}
	if err := bob.React(ctx, general, m.ID, "👍"); err != nil {
		t.Fatalf("React: %v", err)
	}
	if got, err := alice.Message(ctx, general, m.ID); err != nil || len(got.Reactions) != 1 || got.Reactions[0].Emoji != "👍" || !got.Pinned {
		t.Fatalf("Message after pin and reaction = %+v, %v", got, err)
	}
	if err := bob.Typing(ctx, general); err != nil {
		t.Fatalf("Typing: %v", err)
	}
	if err := alice.DeleteMessage(ctx, general, first.ID); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if d := nextDispatch(t, g, EventMessageDelete).(*MessageDelete); d.ID != first.ID {
		t.Fatalf("MESSAGE_DELETE of %s, want %s", d.ID, first.ID)
	}

	// Roles and members.
	role, err := alice.CreateRole(ctx, guild.ID, NewRole{Name: "mods", Permissions: PermKickMembers | PermSendMessages})
	if err != nil || role.Permissions != PermKickMembers|PermSendMessages {
		t.Fatalf("CreateRole = %+v, %v", role, err)
	}
	if mem, err := alice.UpdateMember(ctx, guild.ID, "bob@a.test", MemberUpdate{Roles: []snowflake.ID{role.ID}}); err != nil || !slices.Equal(mem.Roles, []snowflake.ID{role.ID}) {
		t.Fatalf("UpdateMember = %+v, %v", mem, err)
	}
	if members, err := alice.Members(ctx, guild.ID, MemberQuery{}); err != nil || len(members) != 2 {
		t.Fatalf("Members = %+v, %v", members, err)
	}

	// The audit log keeps the reason given with the invite.
	entries, err := alice.AuditLog(ctx, guild.ID, AuditQuery{})
	if err != nil {
		t.Fatalf("AuditLog: %v", err)
	}
	if !slices.ContainsFunc(entries, func(e AuditEntry) bool { return e.Reason == "for bob ✓" && e.Actor == "alice@a.test" }) {
		t.Errorf("AuditLog has no entry with the invite's reason: %+v", entries)
	}
	evs, err := alice.ChannelEvents(ctx, general, 0, 0)
	if err != nil || !slices.ContainsFunc(evs.Events, func(e AuditEntry) bool { return e.Type == "MessageEdited" }) || evs.Next == 0 {
		t.Errorf("ChannelEvents = %+v, %v; want an edit among them", evs, err)
	}

	// Moderation: a banned actor cannot come back, and errors are typed.
	if err := alice.Ban(ctx, guild.ID, "bob@a.test"); err != nil {
		t.Fatalf("Ban: %v", err)
	}
	if bans, err := alice.Bans(ctx, guild.ID); err != nil || len(bans) != 1 || bans[0].FID != "bob@a.test" {
		t.Fatalf("Bans = %+v, %v", bans, err)
	}
	_, err = bob.JoinInvite(ctx, inv.Code)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "P2_CHAT_BANNED" || ae.Status != http.StatusForbidden {
		t.Fatalf("JoinInvite while banned: %v, want 403 P2_CHAT_BANNED", err)
	}
	if _, err := bob.Send(ctx, general, "still here?", SendOptions{}); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("Send after the ban: %v, want 404", err)
	}
}

// nextDispatch waits for the next chat dispatch of type typ, skipping others, and decodes it.
func nextDispatch(t *testing.T, g *Gateway, typ string) any {
	t.Helper()
	var d *Dispatch
	waitChatEvent(t, g, func(ev Event) bool {
		if ev.Dispatch != nil && ev.Dispatch.Type == typ {
			d = ev.Dispatch
			return true
		}
		return false
	})
	v, err := d.Decode()
	if err != nil || v == nil {
		t.Fatalf("decode %s: %v, %v", typ, v, err)
	}
	return v
}

func waitChatEvent(t *testing.T, g *Gateway, match func(Event) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-g.Events():
			if !ok {
				t.Fatal("Events closed")
			}
			if ev.Closed != nil {
				t.Fatalf("gateway closed: %+v", ev.Closed)
			}
			if match(ev) {
				return
			}
		case <-timeout:
			t.Fatal("no matching gateway event within 20s")
		}
	}
}
