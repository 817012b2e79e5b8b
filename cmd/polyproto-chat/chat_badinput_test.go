package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// TestChatBadInput: every chat route refuses bad input, missing permissions and unknown
// things with the right status and a {code, message} body, and nothing is stored.
func TestChatBadInput(t *testing.T) {
	srv, stop := start(t, t.TempDir(), "-domain", "a.test")
	t.Cleanup(stop)
	base := "http://" + srv.Addr()
	type actor struct {
		s    *client.Session
		chat *client.Chat
	}
	mk := func(name string) actor {
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
		ch, _ := c.Chat(s, client.ChatOptions{})
		return actor{s, ch}
	}
	alice, carol, dave := mk("alice"), mk("carol"), mk("dave")
	c := ctx(t)
	g, err := alice.chat.CreateGuild(c, client.NewGuild{Name: "Rules"})
	if err != nil {
		t.Fatal(err)
	}
	general := g.Channels[0].ID
	quiet, err := alice.chat.CreateChannel(c, g.ID, client.NewChannel{Name: "announcements"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.chat.SetOverwrite(c, quiet.ID, client.Overwrite{Type: "role", ID: g.ID.String(), Deny: client.PermSendMessages}); err != nil {
		t.Fatal(err)
	}
	role, err := alice.chat.CreateRole(c, g.ID, client.NewRole{Name: "mods"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := alice.chat.CreateInvite(c, general, client.InviteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.chat.JoinInvite(c, inv.Code); err != nil {
		t.Fatal(err)
	}
	msg, err := alice.chat.Send(c, general, "first", client.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// signed is a message body alice signs properly, so that only the field under test is bad.
	signed := func(content, nonce string, ts time.Time) string {
		sig := identity.SignMessage(alice.s.Key, identity.MessageSig{Server: "a.test", ChannelID: uint64(general), AuthorFID: alice.s.FID.String(),
			CertSerial: alice.s.Cert.Serial, TimestampMS: ts.UnixMilli(), Nonce: nonce, Content: content}.Bytes())
		b, _ := json.Marshal(map[string]any{"content": content, "nonce": nonce, "timestamp": ts.UnixMilli(), "signature": base64.RawURLEncoding.EncodeToString(sig)})
		return string(b)
	}
	// elsewhere is alice's genuine signature, but for a channel of the same id on another server.
	elsewhere := func() string {
		now := time.Now()
		sig := identity.SignMessage(alice.s.Key, identity.MessageSig{Server: "b.test", ChannelID: uint64(general), AuthorFID: alice.s.FID.String(),
			CertSerial: alice.s.Cert.Serial, TimestampMS: now.UnixMilli(), Nonce: "n-elsewhere", Content: "hi"}.Bytes())
		b, _ := json.Marshal(map[string]any{"content": "hi", "nonce": "n-elsewhere", "timestamp": now.UnixMilli(), "signature": base64.RawURLEncoding.EncodeToString(sig)})
		return string(b)
	}
	forged := func() string {
		_, other, _ := ed25519.GenerateKey(nil)
		now := time.Now()
		sig := identity.SignMessage(other, identity.MessageSig{Server: "a.test", ChannelID: uint64(general), AuthorFID: alice.s.FID.String(),
			CertSerial: alice.s.Cert.Serial, TimestampMS: now.UnixMilli(), Nonce: "n-forged", Content: "hi"}.Bytes())
		b, _ := json.Marshal(map[string]any{"content": "hi", "nonce": "n-forged", "timestamp": now.UnixMilli(), "signature": base64.RawURLEncoding.EncodeToString(sig)})
		return string(b)
	}

	G, C, Q, M, R := g.ID.String(), general.String(), quiet.ID.String(), msg.ID.String(), role.ID.String()
	unknown := snowflake.ID(uint64(g.ID) + 12345).String()
	tokens := map[string]string{"alice": alice.s.Token, "carol": carol.s.Token, "dave": dave.s.Token, "nobody": ""}
	const (
		bad      = "400 P2_CHAT_BAD_REQUEST"
		notFound = "404 P2_CHAT_NOT_FOUND"
		denied   = "403 P2_CHAT_FORBIDDEN"
	)
	cases := []struct {
		who, method, path, body, want string
	}{
		{"nobody", "POST", "/guilds", `{"name":"x"}`, "401 P2_CORE_UNAUTHORIZED"},
		{"alice", "POST", "/guilds", `{}`, bad},
		{"alice", "POST", "/guilds", `{"name":""}`, bad},
		{"alice", "POST", "/guilds", `{"name":"` + strings.Repeat("x", 101) + `"}`, bad},
		{"alice", "POST", "/guilds", `{"name":"x\u0007"}`, bad},
		{"alice", "POST", "/guilds", `{"name":5}`, bad},
		{"alice", "POST", "/guilds", `{"name":"x","owner":"me"}`, bad},
		{"alice", "POST", "/guilds", `not json`, bad},
		{"alice", "POST", "/guilds", `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, "413 P2_CHAT_TOO_LARGE"},
		{"alice", "GET", "/guilds/abc", ``, bad},
		{"alice", "GET", "/guilds/0", ``, bad},
		{"alice", "GET", "/guilds/" + unknown, ``, notFound},
		{"alice", "GET", "/guilds?guild_id=-1", ``, bad},
		{"carol", "PATCH", "/guilds/" + G, `{"name":"mine now"}`, denied},
		{"dave", "PATCH", "/guilds/" + G, `{"name":"mine now"}`, notFound},
		{"alice", "PATCH", "/guilds/" + G, `{}`, bad},
		{"carol", "DELETE", "/guilds/" + G, ``, denied},
		{"carol", "POST", "/guilds/" + G + "/channels", `{"name":"x"}`, denied},
		{"alice", "POST", "/guilds/" + G + "/channels", `{"name":"x","type":7}`, bad},
		{"alice", "POST", "/guilds/" + G + "/channels", `{"name":"x","parent_id":"` + unknown + `"}`, bad},
		{"alice", "POST", "/guilds/" + G + "/channels", `{"name":"x","parent_id":"zero"}`, bad},
		{"alice", "PATCH", "/channels/" + C, `{"type":4}`, bad},
		{"alice", "PATCH", "/channels/" + unknown, `{"name":"x"}`, notFound},
		{"carol", "DELETE", "/channels/" + C, ``, denied},
		{"alice", "PUT", "/channels/" + C + "/permissions/" + R, `{"type":"group"}`, bad},
		{"alice", "PUT", "/channels/" + C + "/permissions/" + R, `{"type":"role","allow":"1","deny":"1"}`, bad},
		{"alice", "PUT", "/channels/" + C + "/permissions/" + R, `{"type":"role","allow":"99999999999999"}`, bad},
		{"alice", "PUT", "/channels/" + C + "/permissions/not-a-fid", `{"type":"member","allow":"1"}`, bad},
		{"carol", "PUT", "/channels/" + C + "/permissions/" + R, `{"type":"role","allow":"1"}`, denied},
		{"alice", "DELETE", "/channels/" + C + "/permissions/" + R, ``, notFound},
		{"carol", "POST", "/guilds/" + G + "/roles", `{"name":"self-made"}`, denied},
		{"alice", "POST", "/guilds/" + G + "/roles", `{"name":"x","permissions":"abc"}`, bad},
		{"alice", "PATCH", "/guilds/" + G + "/roles/" + unknown, `{"name":"x"}`, notFound},
		{"alice", "DELETE", "/guilds/" + G + "/roles/" + G, ``, bad},
		{"alice", "GET", "/guilds/" + G + "/members?limit=0", ``, bad},
		{"alice", "GET", "/guilds/" + G + "/members?limit=abc", ``, bad},
		{"alice", "GET", "/guilds/" + G + "/members?after=@@", ``, bad},
		{"dave", "GET", "/guilds/" + G + "/members", ``, notFound},
		{"alice", "PATCH", "/guilds/" + G + "/members/carol@a.test", `{"roles":["` + unknown + `"]}`, bad},
		{"alice", "PATCH", "/guilds/" + G + "/members/carol@a.test", `{"nick":"` + strings.Repeat("n", 33) + `"}`, bad},
		{"alice", "PATCH", "/guilds/" + G + "/members/carol@a.test", `{}`, bad},
		{"carol", "PATCH", "/guilds/" + G + "/members/alice@a.test", `{"nick":"boss"}`, denied},
		{"alice", "DELETE", "/guilds/" + G + "/members/@me", ``, "400 P2_CHAT_OWNER"},
		{"carol", "DELETE", "/guilds/" + G + "/members/alice@a.test", ``, denied},
		{"alice", "DELETE", "/guilds/" + G + "/members/dave@a.test", ``, notFound},
		{"carol", "PUT", "/guilds/" + G + "/bans/dave@a.test", ``, denied},
		{"alice", "PUT", "/guilds/" + G + "/bans/not-a-fid", ``, bad},
		{"alice", "DELETE", "/guilds/" + G + "/bans/dave@a.test", ``, notFound},
		{"carol", "GET", "/guilds/" + G + "/bans", ``, denied},
		{"alice", "POST", "/channels/" + C + "/invites", `{"max_age":-1}`, bad},
		{"alice", "POST", "/channels/" + C + "/invites", `{"max_uses":1000000}`, bad},
		{"dave", "POST", "/channels/" + C + "/invites", `{}`, notFound},
		{"carol", "GET", "/guilds/" + G + "/invites", ``, denied},
		{"dave", "GET", "/invites/nope", ``, "404 P2_CHAT_INVITE_INVALID"},
		{"dave", "POST", "/invites/nope", ``, "404 P2_CHAT_INVITE_INVALID"},
		{"carol", "DELETE", "/invites/" + inv.Code, ``, denied},
		{"alice", "GET", "/channels/" + C + "/messages?limit=0", ``, bad},
		{"alice", "GET", "/channels/" + C + "/messages?limit=101", ``, bad},
		{"alice", "GET", "/channels/" + C + "/messages?before=abc", ``, bad},
		{"alice", "GET", "/channels/" + C + "/messages?before=" + M + "&after=" + M, ``, bad},
		{"dave", "GET", "/channels/" + C + "/messages", ``, notFound},
		{"alice", "GET", "/channels/" + unknown + "/messages", ``, notFound},
		{"alice", "GET", "/channels/" + C + "/messages/" + unknown, ``, notFound},
		{"alice", "POST", "/channels/" + C + "/messages", signed(strings.Repeat("é", 4001), "n-long", time.Now()), bad},
		{"alice", "POST", "/channels/" + C + "/messages", signed("", "n-empty", time.Now()), bad},
		{"alice", "POST", "/channels/" + C + "/messages", signed("hi", "", time.Now()), bad},
		{"alice", "POST", "/channels/" + C + "/messages", signed("hi", "n-old", time.Now().Add(-time.Hour)), bad},
		{"alice", "POST", "/channels/" + C + "/messages", forged(), "400 P2_CHAT_BAD_SIGNATURE"},
		{"alice", "POST", "/channels/" + C + "/messages", elsewhere(), "400 P2_CHAT_BAD_SIGNATURE"},
		{"alice", "POST", "/channels/" + C + "/messages", `{"content":"hi","nonce":"n","signature":"AAAA"}`, bad},
		{"alice", "POST", "/channels/" + C + "/messages", `{"content":"hi","nonce":"n","timestamp":1,"signature":"!!"}`, bad},
		{"alice", "POST", "/channels/" + C + "/messages", `{"content":"hi","nonce":"n","timestamp":"soon","signature":""}`, bad},
		{"alice", "POST", "/channels/" + unknown + "/messages", signed("hi", "n-x", time.Now()), notFound},
		{"carol", "POST", "/channels/" + Q + "/messages", signed("hi", "n-q", time.Now()), denied},
		{"dave", "POST", "/channels/" + C + "/messages", signed("hi", "n-d", time.Now()), notFound},
		{"carol", "PATCH", "/channels/" + C + "/messages/" + M, signed("mine", "", time.Now()), denied},
		{"alice", "PATCH", "/channels/" + C + "/messages/" + unknown, signed("x", "", time.Now()), notFound},
		{"carol", "DELETE", "/channels/" + C + "/messages/" + M, ``, denied},
		{"alice", "DELETE", "/channels/" + C + "/messages/" + unknown, ``, notFound},
		{"alice", "POST", "/channels/" + C + "/messages/bulk-delete", `{"messages":["` + M + `"]}`, bad},
		{"carol", "POST", "/channels/" + C + "/messages/bulk-delete", `{"messages":["` + M + `","` + unknown + `"]}`, denied},
		{"carol", "PUT", "/channels/" + C + "/pins/" + M, ``, denied},
		{"alice", "PUT", "/channels/" + C + "/pins/" + unknown, ``, notFound},
		{"alice", "DELETE", "/channels/" + C + "/pins/" + M, ``, notFound},
		{"alice", "PUT", "/channels/" + C + "/messages/" + M + "/reactions/" + strings.Repeat("x", 65) + "/@me", ``, bad},
		{"alice", "PUT", "/channels/" + C + "/messages/" + M + "/reactions/x/carol@a.test", ``, bad},
		{"alice", "PUT", "/channels/" + C + "/messages/" + unknown + "/reactions/x/@me", ``, notFound},
		{"carol", "DELETE", "/channels/" + C + "/messages/" + M + "/reactions/x/alice@a.test", ``, denied},
		{"dave", "POST", "/channels/" + C + "/typing", ``, notFound},
		{"carol", "POST", "/channels/" + Q + "/typing", ``, denied},
		{"carol", "GET", "/guilds/" + G + "/audit-log", ``, denied},
		{"alice", "GET", "/guilds/" + G + "/audit-log?limit=0", ``, bad},
		{"alice", "GET", "/guilds/" + G + "/audit-log?before=abc", ``, bad},
		{"carol", "GET", "/channels/" + C + "/events", ``, denied},
		{"alice", "GET", "/channels/" + C + "/events?from=abc", ``, bad},
		{"alice", "GET", "/channels/" + C + "/events?limit=1001", ``, bad},
		{"alice", "GET", "/nothing/here", ``, notFound},
	}
	head, err := srv.store.Head(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, base+"/.p2/chat/v1"+tc.path, strings.NewReader(tc.body))
		if tok := tokens[tc.who]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct{ Code, Message string }
		if err := json.Unmarshal(raw, &body); err != nil || body.Message == "" {
			t.Errorf("%s %s %s: body %q is not {code, message}", tc.who, tc.method, tc.path, raw)
			continue
		}
		if got := fmt.Sprintf("%d %s", resp.StatusCode, body.Code); got != tc.want {
			t.Errorf("%s %s %s: %s (%s), want %s", tc.who, tc.method, tc.path, got, body.Message, tc.want)
		}
	}
	if after, err := srv.store.Head(c); err != nil || after != head {
		t.Fatalf("bad requests stored something: head %d -> %d (%v)", head, after, err)
	}
}
