package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/snowflake"
)

// chatter is one actor with a chat client and a live gateway connection subscribed to chat.
type chatter struct {
	fid  string
	chat *client.Chat
	gw   *client.Gateway
	seen []client.Dispatch // every chat dispatch received so far, in order
}

// newChatter registers name at home, logs it in there, and, if at is another server, logs the
// session in at that server too (a foreign actor there). Its chat and gateway talk to at.
func newChatter(t *testing.T, home, at, name string, resolve func(context.Context, string) (string, error)) *chatter {
	t.Helper()
	c, err := client.New(home, client.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx(t), name, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Login(ctx(t), name, "correct horse battery", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if at != home {
		if s, err = c.LoginForeign(ctx(t), s, at); err != nil {
			t.Fatalf("%s logs in at %s: %v", name, at, err)
		}
	}
	ch, err := c.Chat(s, client.ChatOptions{Resolve: resolve})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := c.Connect(ctx(t), s, client.GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	u := &chatter{fid: s.FID.String(), chat: ch, gw: gw}
	u.await(t, "READY", func(client.Event) bool { return true })
	return u
}

// await reads events until one of type typ (READY or a dispatch type) satisfies ok.
func (u *chatter) await(t *testing.T, typ string, ok func(client.Event) bool) client.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, open := <-u.gw.Events():
			if !open {
				t.Fatalf("%s: gateway closed while waiting for %s", u.fid, typ)
			}
			if ev.Dispatch != nil {
				u.seen = append(u.seen, *ev.Dispatch)
			}
			if (typ == "READY" && ev.Ready != nil || ev.Dispatch != nil && ev.Dispatch.Type == typ) && ok(ev) {
				return ev
			}
		case <-deadline:
			var got []string
			for _, d := range u.seen {
				got = append(got, d.Type+" "+string(d.Data))
			}
			t.Fatalf("%s: no %s within 10 s; got:\n%s", u.fid, typ, strings.Join(got, "\n"))
		}
	}
}

// awaitMessage waits for MESSAGE_CREATE of content.
func (u *chatter) awaitMessage(t *testing.T, content string) client.Message {
	t.Helper()
	ev := u.await(t, "MESSAGE_CREATE", func(ev client.Event) bool {
		m, err := ev.Dispatch.Decode()
		return err == nil && m.(*client.Message).Content == content
	})
	m, _ := ev.Dispatch.Decode()
	return *m.(*client.Message)
}

func apiCode(err error) string {
	var e *client.APIError
	if errors.As(err, &e) {
		return fmt.Sprintf("%d %s", e.Status, e.Code)
	}
	return fmt.Sprint(err)
}

// TestGuildChatEndToEnd is issue 5's story on two real servers: alice (registered on A, a
// foreign actor on B, where the guild lives) and bob (local to B) set up a guild with a role and a
// private channel, chat, edit, delete and react; carol, a member without VIEW_CHANNEL there,
// sees nothing of it; history pages exactly; the owner replays the channel's events, edit and
// deletion included, and reads the audit log with its reasons.
func TestGuildChatEndToEnd(t *testing.T) {
	a, b, _ := twoServers(t)
	aURL, bURL := "http://"+a.Addr(), "http://"+b.Addr()
	resolve := func(_ context.Context, domain string) (string, error) {
		return map[string]string{"a.test": aURL, "b.test": bURL}[domain], nil
	}
	alice := newChatter(t, aURL, bURL, "alice", resolve)
	bob := newChatter(t, bURL, bURL, "bob", resolve)
	carol := newChatter(t, bURL, bURL, "carol", resolve)
	c := ctx(t)

	g, err := alice.chat.CreateGuild(c, client.NewGuild{Name: "Garden"})
	if err != nil {
		t.Fatal(err)
	}
	if g.Owner != "alice@a.test" || len(g.Channels) != 1 || g.Channels[0].Name != "general" {
		t.Fatalf("new guild: %+v", g)
	}
	general := g.Channels[0].ID
	alice.await(t, "GUILD_CREATE", func(client.Event) bool { return true })
	crew, err := alice.chat.CreateRole(c, g.ID, client.NewRole{Name: "crew"})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := alice.chat.CreateChannel(c, g.ID, client.NewChannel{Name: "secret", Topic: "crew only"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Overwrite{
		{Type: "role", ID: g.ID.String(), Deny: client.PermViewChannel},
		{Type: "role", ID: crew.ID.String(), Allow: client.PermViewChannel},
	} {
		if err := alice.chat.SetOverwrite(c, secret.ID, o); err != nil {
			t.Fatalf("overwrite %+v: %v", o, err)
		}
	}

	inv, err := alice.chat.CreateInvite(c, general, client.InviteOptions{MaxUses: 5, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*chatter{bob, carol} {
		joined, err := u.chat.JoinInvite(c, inv.Code)
		if err != nil {
			t.Fatalf("%s joins: %v", u.fid, err)
		}
		if slices.ContainsFunc(joined.Channels, func(ch client.Channel) bool { return ch.ID == secret.ID }) {
			t.Fatalf("%s sees the secret channel on joining", u.fid)
		}
		u.await(t, "GUILD_CREATE", func(client.Event) bool { return true })
	}
	if _, err := alice.chat.UpdateMember(c, g.ID, bob.fid, client.MemberUpdate{Roles: []snowflake.ID{crew.ID}}); err != nil {
		t.Fatalf("give bob the crew role: %v", err)
	}
	// Bob gains the channel: it is announced to him as created.
	bob.await(t, "CHANNEL_CREATE", func(ev client.Event) bool {
		ch, _ := ev.Dispatch.Decode()
		return ch.(*client.Channel).ID == secret.ID
	})

	// Chat in the private channel, from the local and the foreign actor.
	hello, err := alice.chat.Send(c, secret.ID, "hello crew", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fromBob, err := bob.chat.Send(c, secret.ID, "hi from b.test", client.SendOptions{})
	if err != nil {
		t.Fatalf("foreign actor sends: %v", err)
	}
	if m := alice.awaitMessage(t, "hi from b.test"); m.Author != "bob@b.test" {
		t.Fatalf("author %q", m.Author)
	} else if err := alice.chat.VerifyMessage(c, m); err != nil {
		t.Fatalf("alice verifies bob's message with his cert: %v", err)
	}
	if m := bob.awaitMessage(t, "hello crew"); bob.chat.VerifyMessage(c, m) != nil {
		t.Fatalf("bob verifies the foreign actor's message with her home server's cert: %v", bob.chat.VerifyMessage(c, m))
	}
	if _, err := bob.chat.Edit(c, secret.ID, fromBob.ID, "hi from b.test (edited)", client.SendOptions{}); err != nil {
		t.Fatalf("edit: %v", err)
	}
	if _, err := alice.chat.Edit(c, secret.ID, fromBob.ID, "forged", client.SendOptions{}); apiCode(err) != "403 P2_CHAT_FORBIDDEN" {
		t.Fatalf("alice edits bob's message: %v", apiCode(err))
	}
	if err := alice.chat.React(c, secret.ID, hello.ID, "👍"); err != nil {
		t.Fatalf("react: %v", err)
	}
	if err := alice.chat.WithReason("off topic").DeleteMessage(c, secret.ID, fromBob.ID); err != nil {
		t.Fatalf("owner deletes bob's message: %v", err)
	}
	bob.await(t, "MESSAGE_DELETE", func(client.Event) bool { return true })
	msgs, err := bob.chat.Messages(c, secret.ID, client.MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].ID != hello.ID || len(msgs[0].Reactions) != 1 || msgs[0].Reactions[0].Emoji != "👍" {
		t.Fatalf("history after the deletion: %+v", msgs)
	}

	// Carol, without VIEW_CHANNEL there, finds nothing; the marker in general shows her stream
	// had every chance to carry secret events before it.
	for name, err := range map[string]error{
		"messages": func() error { _, err := carol.chat.Messages(c, secret.ID, client.MessageQuery{}); return err }(),
		"channel":  func() error { _, err := carol.chat.Channel(c, secret.ID); return err }(),
		"send":     func() error { _, err := carol.chat.Send(c, secret.ID, "let me in", client.SendOptions{}); return err }(),
		"events":   func() error { _, err := carol.chat.ChannelEvents(c, secret.ID, 0, 10); return err }(),
	} {
		if apiCode(err) != "404 P2_CHAT_NOT_FOUND" {
			t.Errorf("carol %s in the secret channel: %v, want 404 P2_CHAT_NOT_FOUND", name, apiCode(err))
		}
	}
	if _, err := alice.chat.Send(c, general, "marker", client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	carol.awaitMessage(t, "marker")
	for _, d := range carol.seen {
		if strings.Contains(string(d.Data), secret.ID.String()) || strings.Contains(string(d.Data), "crew only") {
			t.Errorf("carol got %s about the secret channel: %s", d.Type, d.Data)
		}
	}

	// The owner replays the channel: the edit and the deletion are there, with who and why.
	page, err := alice.chat.ChannelEvents(c, secret.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range page.Events {
		types = append(types, e.Type)
		if e.Type == "MessageDeleted" && (e.Actor != "alice@a.test" || e.Reason != "off topic") {
			t.Errorf("deletion recorded as by %q for %q", e.Actor, e.Reason)
		}
		if e.Type == "MessageEdited" && (e.Actor != "bob@b.test" || !strings.Contains(string(e.Data), "(edited)")) {
			t.Errorf("edit recorded as %+v", e)
		}
	}
	if want := []string{"MessageCreated", "MessageCreated", "MessageEdited", "ReactionAdded", "MessageDeleted"}; !slices.Equal(types, want) {
		t.Fatalf("channel events %v, want %v", types, want)
	}
	if _, err := bob.chat.ChannelEvents(c, secret.ID, 0, 10); apiCode(err) != "403 P2_CHAT_FORBIDDEN" {
		t.Fatalf("bob replays without VIEW_AUDIT_LOG or MANAGE_MESSAGES: %v", apiCode(err))
	}

	// Moderation: a kick with a reason shows in the audit log, and carol is told.
	if err := alice.chat.WithReason("no reason at all").Kick(c, g.ID, carol.fid); err != nil {
		t.Fatal(err)
	}
	carol.await(t, "GUILD_DELETE", func(client.Event) bool { return true })
	audit, err := alice.chat.AuditLog(c, g.ID, client.AuditQuery{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Type != "MemberKicked" || audit[0].Reason != "no reason at all" || audit[0].Actor != "alice@a.test" {
		t.Fatalf("newest audit entry: %+v", audit[0])
	}
	if _, err := bob.chat.AuditLog(c, g.ID, client.AuditQuery{}); apiCode(err) != "403 P2_CHAT_FORBIDDEN" {
		t.Fatalf("bob reads the audit log: %v", apiCode(err))
	}
}

// TestHistoryPaging: pages of a channel's history are exactly the right messages, newest first,
// after deletions, through before, after and around.
func TestHistoryPaging(t *testing.T) {
	srv, stop := start(t, t.TempDir(), "-domain", "a.test")
	t.Cleanup(stop)
	url := "http://" + srv.Addr()
	alice := newChatter(t, url, url, "alice", nil)
	c := ctx(t)
	g, err := alice.chat.CreateGuild(c, client.NewGuild{Name: "Pages"})
	if err != nil {
		t.Fatal(err)
	}
	ch := g.Channels[0].ID
	var ids []snowflake.ID // oldest first
	for i := range 45 {
		m, err := alice.chat.Send(c, ch, fmt.Sprintf("m%02d", i), client.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// Delete m10 and m11: pages skip them.
	if err := alice.chat.BulkDelete(c, ch, []snowflake.ID{ids[10], ids[11]}); err != nil {
		t.Fatal(err)
	}
	live := slices.Delete(slices.Clone(ids), 10, 12) // 43 left
	newest := func(s []snowflake.ID) []snowflake.ID { r := slices.Clone(s); slices.Reverse(r); return r }
	page := func(q client.MessageQuery) []snowflake.ID {
		t.Helper()
		ms, err := alice.chat.Messages(c, ch, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		out := make([]snowflake.ID, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	cases := []struct {
		name string
		q    client.MessageQuery
		want []snowflake.ID
	}{
		{"newest 10", client.MessageQuery{Limit: 10}, newest(live[33:])},
		{"default limit takes all 43", client.MessageQuery{}, newest(live)},
		{"before m20", client.MessageQuery{Before: ids[20], Limit: 10}, newest(live[8:18])},
		{"before the first", client.MessageQuery{Before: ids[0], Limit: 10}, nil},
		{"after m05, across the deleted pair", client.MessageQuery{After: ids[5], Limit: 6}, newest(live[6:12])},
		{"after the newest", client.MessageQuery{After: ids[44], Limit: 10}, nil},
		{"around m30", client.MessageQuery{Around: ids[30], Limit: 5}, newest(live[26:31])},
		{"around the deleted m10", client.MessageQuery{Around: ids[10], Limit: 4}, newest(live[8:12])},
		{"limit 1", client.MessageQuery{Limit: 1}, []snowflake.ID{ids[44]}},
	}
	for _, tc := range cases {
		if got := page(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v\nwant %v", tc.name, got, tc.want)
		}
	}
	// Walking back with before visits every message once.
	var walked []snowflake.ID
	for q := (client.MessageQuery{Limit: 7}); ; {
		p := page(q)
		if len(p) == 0 {
			break
		}
		walked = append(walked, p...)
		q.Before = p[len(p)-1]
	}
	if !slices.Equal(walked, newest(live)) {
		t.Fatalf("walking back: %d messages, want %d in order", len(walked), len(live))
	}
}

// TestChatSurvivesKill: the server is killed with SIGKILL while a sender is sending. After a
// restart on the same data dir every message that was acknowledged is in the history, in
// order, and a listener who was away resumes from its cursor and gets exactly the ones it
// missed, once each.
func TestChatSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	addr, proc := childServer(t, dir)
	base := "http://" + addr
	login := func(name string) (*client.Client, *client.Session) {
		c, err := client.New(base, client.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Register(ctx(t), name, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		s, err := c.Login(ctx(t), name, "correct horse battery", "laptop")
		if err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	aliceC, aliceS := login("alice")
	bobC, bobS := login("bob")
	alice, _ := aliceC.Chat(aliceS, client.ChatOptions{})
	bob, _ := bobC.Chat(bobS, client.ChatOptions{})
	c := ctx(t)
	g, err := alice.CreateGuild(c, client.NewGuild{Name: "Durable"})
	if err != nil {
		t.Fatal(err)
	}
	ch := g.Channels[0].ID
	inv, err := alice.CreateInvite(c, ch, client.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.JoinInvite(c, inv.Code); err != nil {
		t.Fatal(err)
	}
	gw, err := bobC.Connect(c, bobS, client.GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	listener := &chatter{fid: bobS.FID.String(), gw: gw}
	listener.await(t, "READY", func(client.Event) bool { return true })

	// Alice sends until the server dies; bob listens to the first 40, then goes away.
	acked := make(chan int, 10_000)
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for n := 0; ; n++ {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := alice.Send(sctx, ch, fmt.Sprintf("k-%05d", n), client.SendOptions{})
			cancel()
			if err != nil {
				return // the server is gone
			}
			acked <- n
		}
	}()
	received := map[string]bool{}
	var point client.ResumePoint // where bob's app got to: the cursor of the last dispatch it handled
	for len(received) < 40 {
		m := listener.await(t, "MESSAGE_CREATE", func(client.Event) bool { return true })
		d, _ := m.Dispatch.Decode()
		received[d.(*client.Message).Content] = true
		point.Cursor = m.Dispatch.Cursor
	}
	// Not gw.Cursor(): the SDK may already hold dispatches the app has not read.
	_ = gw.Close()
	for len(acked) < 150 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	<-senderDone
	close(acked)
	var ackedN []int
	for n := range acked {
		ackedN = append(ackedN, n)
	}

	addr, _ = childServer(t, dir)
	base = "http://" + addr
	aliceS.Server, bobS.Server = base, base
	alice, _ = aliceC.Chat(aliceS, client.ChatOptions{})

	// History: every acknowledged message, in order; an unacknowledged one may be there too
	// (it was durable but its answer was lost), but only after them and in order.
	var history []int
	for q := (client.MessageQuery{Limit: 100}); ; {
		page, err := alice.Messages(ctx(t), ch, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			var n int
			if _, err := fmt.Sscanf(m.Content, "k-%d", &n); err != nil {
				t.Fatalf("unexpected message %q", m.Content)
			}
			history = append(history, n)
		}
		q.Before = page[len(page)-1].ID
	}
	slices.Reverse(history)
	for i, n := range history {
		if n != i {
			t.Fatalf("history after the kill: message %d is k-%05d; want 0..%d in order", i, n, len(history)-1)
		}
	}
	if len(history) < len(ackedN) {
		t.Fatalf("history holds %d messages, but %d were acknowledged", len(history), len(ackedN))
	}

	t.Logf("%d acknowledged, %d in history after the kill, bob had %d before going away", len(ackedN), len(history), len(received))

	// Bob resumes from his cursor and gets exactly what he missed.
	gw, err = bobC.Connect(ctx(t), bobS, client.GatewayOptions{ResumeFrom: &point})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	listener = &chatter{fid: bobS.FID.String(), gw: gw}
	deadline := time.After(15 * time.Second)
	for len(received) < len(history) {
		select {
		case ev, ok := <-gw.Events():
			if !ok {
				t.Fatal("gateway closed during the resume")
			}
			if ev.Resync != nil {
				t.Fatalf("resume asked for a re-sync: %+v", ev.Resync)
			}
			if ev.Dispatch == nil || ev.Dispatch.Type != "MESSAGE_CREATE" {
				continue
			}
			d, _ := ev.Dispatch.Decode()
			content := d.(*client.Message).Content
			if received[content] {
				t.Fatalf("%s delivered twice", content)
			}
			received[content] = true
		case <-deadline:
			t.Fatalf("after the resume bob has %d of %d messages", len(received), len(history))
		}
	}
}
