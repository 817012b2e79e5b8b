package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/projections/history"
	"github.com/polyproto-chat/server/snowflake"
)

// chatFixture is a fake chat server: every request under /.p2/chat/v1/ is recorded and answered
// by answer (a 200 with "{}" when nil).
type chatFixture struct {
	t    *testing.T
	mux  *http.ServeMux
	srv  string
	root *identity.Root
	s    *Session
	chat *Chat

	mu     sync.Mutex
	reqs   []recorded
	answer func(n int, r recorded) (int, string)
}

type recorded struct {
	method, path, query, body string
	reason                    string
	hasReason                 bool
	auth, contentType         string
}

func newChatFixture(t *testing.T) *chatFixture {
	t.Helper()
	f := &chatFixture{t: t, mux: http.NewServeMux(), root: testRoot(t, "a.test")}
	f.mux.HandleFunc("/.p2/chat/v1/", f.serve)
	serveRoot(t, f.mux, f.root)
	f.srv = newServer(t, f.mux).URL
	f.s = testSession(t, f.root, mustFID(t, "alice@a.test"), "laptop", f.srv)
	chat, err := newClient(t, f.srv, "").Chat(f.s, ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.chat = chat
	return f
}

func (f *chatFixture) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := recorded{
		method: r.Method, path: strings.TrimPrefix(r.URL.EscapedPath(), "/.p2/chat/v1"), query: r.URL.RawQuery,
		body: string(body), reason: r.Header.Get("X-P2-Audit-Reason"), hasReason: len(r.Header.Values("X-P2-Audit-Reason")) > 0,
		auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"),
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, rec)
	answer := f.answer
	f.mu.Unlock()
	status, out := http.StatusOK, "{}"
	if answer != nil {
		status, out = answer(n, rec)
	}
	if status == 0 { // drop the connection without an answer
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, out)
}

func (f *chatFixture) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *chatFixture) reset(answer func(n int, r recorded) (int, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs, f.answer = nil, answer
}

// sameJSON compares two JSON texts by value.
func sameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	if got == "" || want == "" {
		return got == want
	}
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Errorf("body %q: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

// TestChatRequestShapes checks method, path, query and body of every route that needs no
// signature, and that the audit reason goes with writes only.
func TestChatRequestShapes(t *testing.T) {
	f := newChatFixture(t)
	ctx := context.Background()
	g, c, m, r := snowflake.ID(100), snowflake.ID(200), snowflake.ID(300), snowflake.ID(400)
	name, private, pos := "renamed", true, 3
	perms := PermSendMessages | PermViewChannel
	parent := snowflake.ID(250)
	ch := f.chat

	tests := []struct {
		name                      string
		call                      func(ch *Chat) error
		method, path, query, body string
	}{
		{"create guild", func(ch *Chat) error {
			_, err := ch.CreateGuild(ctx, NewGuild{Name: "home", Private: true})
			return err
		}, "POST", "/guilds", "", `{"name":"home","private":true}`},
		{"guild", func(ch *Chat) error { _, err := ch.Guild(ctx, g); return err }, "GET", "/guilds/100", "", ""},
		{"update guild", func(ch *Chat) error {
			_, err := ch.UpdateGuild(ctx, g, GuildUpdate{Name: &name, Private: &private})
			return err
		}, "PATCH", "/guilds/100", "", `{"name":"renamed","private":true}`},
		{"delete guild", func(ch *Chat) error { return ch.DeleteGuild(ctx, g) }, "DELETE", "/guilds/100", "", ""},
		{"channels", func(ch *Chat) error { _, err := ch.Channels(ctx, g); return err }, "GET", "/guilds/100/channels", "", ""},
		{"channel", func(ch *Chat) error { _, err := ch.Channel(ctx, c); return err }, "GET", "/channels/200", "", ""},
		{"create channel", func(ch *Chat) error {
			_, err := ch.CreateChannel(ctx, g, NewChannel{Name: "news", Topic: "t", ParentID: parent})
			return err
		}, "POST", "/guilds/100/channels", "", `{"name":"news","topic":"t","parent_id":"250"}`},
		{"create category", func(ch *Chat) error {
			_, err := ch.CreateChannel(ctx, g, NewChannel{Name: "cat", Type: ChannelCategory, Position: &pos})
			return err
		}, "POST", "/guilds/100/channels", "", `{"name":"cat","type":4,"position":3}`},
		{"update channel", func(ch *Chat) error {
			_, err := ch.UpdateChannel(ctx, c, ChannelUpdate{ParentID: &parent})
			return err
		}, "PATCH", "/channels/200", "", `{"parent_id":"250"}`},
		{"move channel out of its category", func(ch *Chat) error {
			none := snowflake.ID(0)
			_, err := ch.UpdateChannel(ctx, c, ChannelUpdate{Name: &name, ParentID: &none, Position: &pos})
			return err
		}, "PATCH", "/channels/200", "", `{"name":"renamed","parent_id":null,"position":3}`},
		{"delete channel", func(ch *Chat) error { return ch.DeleteChannel(ctx, c) }, "DELETE", "/channels/200", "", ""},
		{"set role overwrite", func(ch *Chat) error {
			return ch.SetOverwrite(ctx, c, RoleOverwrite(r, PermSendMessages, PermViewChannel))
		}, "PUT", "/channels/200/permissions/400", "", `{"type":"role","allow":"2","deny":"1"}`},
		{"set member overwrite", func(ch *Chat) error {
			return ch.SetOverwrite(ctx, c, MemberOverwrite("bob@b.test", 0, PermSendMessages))
		}, "PUT", "/channels/200/permissions/bob@b.test", "", `{"type":"member","allow":"0","deny":"2"}`},
		{"delete overwrite", func(ch *Chat) error { return ch.DeleteOverwrite(ctx, c, "bob@b.test") }, "DELETE", "/channels/200/permissions/bob@b.test", "", ""},
		{"roles", func(ch *Chat) error { _, err := ch.Roles(ctx, g); return err }, "GET", "/guilds/100/roles", "", ""},
		{"create role", func(ch *Chat) error {
			_, err := ch.CreateRole(ctx, g, NewRole{Name: "mod", Permissions: perms, Color: 0xff0000})
			return err
		}, "POST", "/guilds/100/roles", "", `{"name":"mod","permissions":"3","color":16711680}`},
		{"update role", func(ch *Chat) error {
			_, err := ch.UpdateRole(ctx, g, r, RoleUpdate{Permissions: &perms})
			return err
		}, "PATCH", "/guilds/100/roles/400", "", `{"permissions":"3"}`},
		{"delete role", func(ch *Chat) error { return ch.DeleteRole(ctx, g, r) }, "DELETE", "/guilds/100/roles/400", "", ""},
		{"members", func(ch *Chat) error {
			_, err := ch.Members(ctx, g, MemberQuery{After: "a@a.test", Limit: 2})
			return err
		}, "GET", "/guilds/100/members", "after=a%40a.test&limit=2", ""},
		{"member", func(ch *Chat) error { _, err := ch.Member(ctx, g, "bob@b.test"); return err }, "GET", "/guilds/100/members/bob@b.test", "", ""},
		{"member roles", func(ch *Chat) error {
			_, err := ch.UpdateMember(ctx, g, "bob@b.test", MemberUpdate{Roles: []snowflake.ID{r}})
			return err
		}, "PATCH", "/guilds/100/members/bob@b.test", "", `{"roles":["400"]}`},
		{"clear roles and nick", func(ch *Chat) error {
			_, err := ch.UpdateMember(ctx, g, "bob@b.test", MemberUpdate{Nick: &name, Roles: []snowflake.ID{}})
			return err
		}, "PATCH", "/guilds/100/members/bob@b.test", "", `{"nick":"renamed","roles":[]}`},
		{"leave", func(ch *Chat) error { return ch.Leave(ctx, g) }, "DELETE", "/guilds/100/members/@me", "", ""},
		{"kick", func(ch *Chat) error { return ch.Kick(ctx, g, "bob@b.test") }, "DELETE", "/guilds/100/members/bob@b.test", "", ""},
		{"bans", func(ch *Chat) error { _, err := ch.Bans(ctx, g); return err }, "GET", "/guilds/100/bans", "", ""},
		{"ban", func(ch *Chat) error { return ch.Ban(ctx, g, "bob@b.test") }, "PUT", "/guilds/100/bans/bob@b.test", "", ""},
		{"unban", func(ch *Chat) error { return ch.Unban(ctx, g, "bob@b.test") }, "DELETE", "/guilds/100/bans/bob@b.test", "", ""},
		{"create invite", func(ch *Chat) error {
			_, err := ch.CreateInvite(ctx, c, InviteOptions{MaxAge: 1500 * time.Millisecond, MaxUses: 5})
			return err
		}, "POST", "/channels/200/invites", "", `{"max_age":2,"max_uses":5}`},
		{"create invite, defaults", func(ch *Chat) error {
			_, err := ch.CreateInvite(ctx, c, InviteOptions{})
			return err
		}, "POST", "/channels/200/invites", "", `{}`},
		{"create invite, never expires", func(ch *Chat) error {
			_, err := ch.CreateInvite(ctx, c, InviteOptions{MaxAge: -1})
			return err
		}, "POST", "/channels/200/invites", "", `{"max_age":0}`},
		{"invites", func(ch *Chat) error { _, err := ch.Invites(ctx, g); return err }, "GET", "/guilds/100/invites", "", ""},
		{"invite", func(ch *Chat) error { _, err := ch.Invite(ctx, "aB3/x"); return err }, "GET", "/invites/aB3%2Fx", "", ""},
		{"join", func(ch *Chat) error { _, err := ch.JoinInvite(ctx, "aB3"); return err }, "POST", "/invites/aB3", "", ""},
		{"revoke invite", func(ch *Chat) error { return ch.RevokeInvite(ctx, "aB3") }, "DELETE", "/invites/aB3", "", ""},
		{"messages", func(ch *Chat) error {
			_, err := ch.Messages(ctx, c, MessageQuery{Before: m, Limit: 10})
			return err
		}, "GET", "/channels/200/messages", "before=300&limit=10", ""},
		{"messages around", func(ch *Chat) error {
			_, err := ch.Messages(ctx, c, MessageQuery{Around: m})
			return err
		}, "GET", "/channels/200/messages", "around=300", ""},
		{"message", func(ch *Chat) error { _, err := ch.Message(ctx, c, m); return err }, "GET", "/channels/200/messages/300", "", ""},
		{"delete message", func(ch *Chat) error { return ch.DeleteMessage(ctx, c, m) }, "DELETE", "/channels/200/messages/300", "", ""},
		{"bulk delete", func(ch *Chat) error { return ch.BulkDelete(ctx, c, []snowflake.ID{m, m + 1}) }, "POST", "/channels/200/messages/bulk-delete", "", `{"messages":["300","301"]}`},
		{"pins", func(ch *Chat) error { _, err := ch.Pins(ctx, c); return err }, "GET", "/channels/200/pins", "", ""},
		{"pin", func(ch *Chat) error { return ch.Pin(ctx, c, m) }, "PUT", "/channels/200/pins/300", "", ""},
		{"unpin", func(ch *Chat) error { return ch.Unpin(ctx, c, m) }, "DELETE", "/channels/200/pins/300", "", ""},
		{"react", func(ch *Chat) error { return ch.React(ctx, c, m, "👍") }, "PUT", "/channels/200/messages/300/reactions/%F0%9F%91%8D/@me", "", ""},
		{"unreact", func(ch *Chat) error { return ch.Unreact(ctx, c, m, "👍") }, "DELETE", "/channels/200/messages/300/reactions/%F0%9F%91%8D/@me", "", ""},
		{"remove reaction", func(ch *Chat) error { return ch.RemoveReaction(ctx, c, m, "x", "bob@b.test") }, "DELETE", "/channels/200/messages/300/reactions/x/bob@b.test", "", ""},
		{"typing", func(ch *Chat) error { return ch.Typing(ctx, c) }, "POST", "/channels/200/typing", "", ""},
		{"audit log", func(ch *Chat) error {
			_, err := ch.AuditLog(ctx, g, AuditQuery{Before: 17, Limit: 5})
			return err
		}, "GET", "/guilds/100/audit-log", "before=17&limit=5", ""},
		{"channel events", func(ch *Chat) error { _, err := ch.ChannelEvents(ctx, c, 0, 1000); return err }, "GET", "/channels/200/events", "from=0&limit=1000", ""},
	}
	for _, withReason := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name
			if withReason {
				name += " with reason"
			}
			t.Run(name, func(t *testing.T) {
				f.reset(func(int, recorded) (int, string) {
					switch {
					case tt.method == "DELETE" || tt.method == "PUT" || tt.name == "typing" || tt.name == "bulk delete":
						return http.StatusNoContent, ""
					case strings.HasSuffix(tt.path, "/events"):
						return http.StatusOK, `{"events":[],"next":0}`
					case tt.method == "GET" && (strings.HasSuffix(tt.path, "s") || strings.HasSuffix(tt.path, "-log")) && !strings.HasPrefix(tt.path, "/invites/"):
						return http.StatusOK, "[]"
					}
					return http.StatusOK, "{}"
				})
				c := ch
				if withReason {
					c = ch.WithReason("spam, 100% sure\nreally ✓")
				}
				if err := tt.call(c); err != nil {
					t.Fatal(err)
				}
				reqs := f.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
				got := reqs[0]
				if got.method != tt.method || got.path != tt.path || got.query != tt.query {
					t.Errorf("request %s %s?%s, want %s %s?%s", got.method, got.path, got.query, tt.method, tt.path, tt.query)
				}
				if !sameJSON(t, got.body, tt.body) {
					t.Errorf("body %s, want %s", got.body, tt.body)
				}
				if got.auth != "Bearer tok-laptop" {
					t.Errorf("Authorization %q", got.auth)
				}
				if (got.body != "") != (got.contentType == "application/json") {
					t.Errorf("Content-Type %q with body %q", got.contentType, got.body)
				}
				wantReason := withReason && tt.method != "GET"
				if got.hasReason != wantReason {
					t.Errorf("X-P2-Audit-Reason present %v, want %v", got.hasReason, wantReason)
				}
				if wantReason && got.reason != "spam, 100%25 sure%0Areally %E2%9C%93" {
					t.Errorf("X-P2-Audit-Reason %q", got.reason)
				}
			})
		}
	}
}

// Arguments the server would refuse anyway are refused before any request.
func TestChatRefusesBadArguments(t *testing.T) {
	f := newChatFixture(t)
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"zero guild":        func() error { _, err := f.chat.Guild(ctx, 0); return err },
		"zero channel":      func() error { _, err := f.chat.Send(ctx, 0, "hi", SendOptions{}); return err },
		"empty fid kick":    func() error { return f.chat.Kick(ctx, 1, "") },
		"two anchors":       func() error { _, err := f.chat.Messages(ctx, 1, MessageQuery{Before: 2, After: 3}); return err },
		"empty emoji":       func() error { return f.chat.React(ctx, 1, 2, "") },
		"empty invite code": func() error { _, err := f.chat.JoinInvite(ctx, ""); return err },
		"long reason":       func() error { return f.chat.WithReason(strings.Repeat("x", 513)).Kick(ctx, 1, "b@a.test") },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	if _, err := newClient(t, f.srv, "").Chat(&Session{FID: f.s.FID}, ChatOptions{}); err == nil {
		t.Error("Chat of a session without token: no error")
	}
}

// TestSendSignsMessage checks the body Send posts and that its signature verifies over the
// message form built from what was sent.
func TestSendSignsMessage(t *testing.T) {
	f := newChatFixture(t)
	stored := `{"id":"900","channel_id":"200","guild_id":"100","author":"alice@a.test","content":"hello","attachments":["https://x.test/a.png"],"nonce":"n","timestamp":1,"cert_serial":"7","session_id":"laptop","signature":"s","version":0,"pinned":false,"reactions":[]}`
	f.reset(func(int, recorded) (int, string) { return http.StatusCreated, stored })
	before := time.Now().UnixMilli()
	m, err := f.chat.Send(context.Background(), 200, "hello", SendOptions{Attachments: []string{"https://x.test/a.png"}})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 900 || m.CertSerial != 7 || m.Content != "hello" {
		t.Errorf("Send returned %+v", m)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].method != "POST" || reqs[0].path != "/channels/200/messages" {
		t.Fatalf("requests %+v", reqs)
	}
	var body struct {
		Content     string   `json:"content"`
		Attachments []string `json:"attachments"`
		Nonce       string   `json:"nonce"`
		Timestamp   int64    `json:"timestamp"`
		Signature   string   `json:"signature"`
	}
	dec := json.NewDecoder(strings.NewReader(reqs[0].body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body %s: %v", reqs[0].body, err)
	}
	if nb, err := hex.DecodeString(body.Nonce); err != nil || len(nb) != 16 {
		t.Errorf("nonce %q: want 16 bytes of hex", body.Nonce)
	}
	if body.Timestamp < before || body.Timestamp > time.Now().UnixMilli() {
		t.Errorf("timestamp %d is not now", body.Timestamp)
	}
	if strings.ContainsAny(body.Signature, "=+/") {
		t.Errorf("signature %q is not unpadded base64url", body.Signature)
	}
	sig, err := base64.RawURLEncoding.DecodeString(body.Signature)
	if err != nil {
		t.Fatal(err)
	}
	want := identity.MessageSig{Server: "a.test", ChannelID: 200, AuthorFID: "alice@a.test", CertSerial: f.s.Cert.Serial,
		TimestampMS: body.Timestamp, Nonce: body.Nonce, Content: "hello", Attachments: []string{"https://x.test/a.png"}}
	if err := identity.VerifyMessage(f.s.Cert.PublicKey, want.Bytes(), sig); err != nil {
		t.Errorf("signature does not verify over the expected message form: %v", err)
	}

	// Two sends never share a nonce.
	if _, err := f.chat.Send(context.Background(), 200, "hello", SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests(); strings.Contains(reqs[1].body, body.Nonce) || strings.Contains(reqs[1].body, "attachments") {
		t.Errorf("second send %s: reused the nonce or sent empty attachments", reqs[1].body)
	}
}

func TestEditSigns(t *testing.T) {
	f := newChatFixture(t)
	f.reset(func(int, recorded) (int, string) { return http.StatusOK, `{"id":"300","version":1,"cert_serial":7}` })
	m, err := f.chat.Edit(context.Background(), 200, 300, "fixed", SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || !m.Edited() {
		t.Errorf("Edit returned %+v", m)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].method != "PATCH" || reqs[0].path != "/channels/200/messages/300" {
		t.Fatalf("requests %+v", reqs)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(reqs[0].body), &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["nonce"]; ok || len(body) != 3 {
		t.Errorf("edit body %s: want content, timestamp, signature only", reqs[0].body)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(body["signature"].(string))
	want := identity.EditSig{Server: "a.test", ChannelID: 200, MessageID: 300, AuthorFID: "alice@a.test", CertSerial: f.s.Cert.Serial,
		TimestampMS: int64(body["timestamp"].(float64)), Content: "fixed"}
	if err := identity.VerifyMessage(f.s.Cert.PublicKey, want.Bytes(), sig); err != nil {
		t.Errorf("edit signature does not verify over the edit form: %v", err)
	}
}

// TestSendRetriesOnceWithSameNonce: a lost answer or a 5xx is retried once with the very same
// request; client errors and second failures are not.
func TestSendRetriesOnceWithSameNonce(t *testing.T) {
	ok := `{"id":"900","channel_id":"200","cert_serial":"7"}`
	tests := []struct {
		name      string
		answers   []int // status per attempt; 0 drops the connection
		wantCalls int
		wantErr   int // status of the *APIError returned, 0 for none, -1 for a transport error
	}{
		{"503 then stored", []int{503, 200}, 2, 0},
		{"dropped then created", []int{0, 201}, 2, 0},
		{"500 twice", []int{500, 500, 201}, 2, 500},
		{"dropped twice", []int{0, 0, 201}, 2, -1},
		{"400 is final", []int{400, 201}, 1, 400},
		{"429 is final", []int{429, 201}, 1, 429},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newChatFixture(t)
			f.reset(func(n int, r recorded) (int, string) {
				status := tt.answers[n]
				if status >= 400 {
					return status, `{"code":"P2_CHAT_X","message":"no"}`
				}
				return status, ok
			})
			_, err := f.chat.Send(context.Background(), 200, "hello", SendOptions{})
			reqs := f.requests()
			if len(reqs) != tt.wantCalls {
				t.Fatalf("%d attempts, want %d", len(reqs), tt.wantCalls)
			}
			for _, r := range reqs[1:] {
				if r.body != reqs[0].body {
					t.Errorf("retry body %s differs from %s", r.body, reqs[0].body)
				}
			}
			var ae *APIError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatalf("err %v", err)
			case tt.wantErr > 0 && (!errors.As(err, &ae) || ae.Status != tt.wantErr):
				t.Fatalf("err %v, want an APIError %d", err, tt.wantErr)
			case tt.wantErr < 0 && (err == nil || errors.As(err, &ae)):
				t.Fatalf("err %v, want a transport error", err)
			}
		})
	}
}

func TestSendDoesNotRetryAfterCancel(t *testing.T) {
	f := newChatFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	f.reset(func(int, recorded) (int, string) {
		cancel()
		return 503, ""
	})
	if _, err := f.chat.Send(ctx, 200, "hello", SendOptions{}); err == nil {
		t.Fatal("no error")
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d attempts after the context was cancelled, want 1", n)
	}
}

func TestChatAPIError(t *testing.T) {
	f := newChatFixture(t)
	f.reset(func(int, recorded) (int, string) {
		return http.StatusForbidden, `{"code":"P2_CHAT_FORBIDDEN","message":"missing MANAGE_ROLES"}`
	})
	_, err := f.chat.CreateRole(context.Background(), 100, NewRole{Name: "mod"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "P2_CHAT_FORBIDDEN" || ae.Message != "missing MANAGE_ROLES" {
		t.Fatalf("err %v, want APIError 403 P2_CHAT_FORBIDDEN", err)
	}
	if !strings.Contains(err.Error(), "create role") {
		t.Errorf("error %q does not say which step failed", err)
	}
	// A proxy's page is still an APIError, with the status.
	f.reset(func(int, recorded) (int, string) { return http.StatusBadGateway, "<html>" })
	if _, err := f.chat.Guild(context.Background(), 1); !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "" {
		t.Fatalf("err %v, want APIError 502 without code", err)
	}
}

func TestChatDecodesObjects(t *testing.T) {
	f := newChatFixture(t)
	guild := `{"id":"100","name":"home","display_name":"home","description":"d","owner":"alice@a.test","owner_id":"alice@a.test",
		"private":true,"created_at":"2025-06-01T10:00:00Z","member_count":2,
		"roles":[{"id":"100","name":"@everyone","permissions":"7","position":0,"color":0}],
		"channels":[{"id":"200","guild_id":"100","type":1,"name":"general","topic":"","parent_id":null,"position":0,
			"permission_overwrites":[{"type":"member","id":"bob@a.test","allow":"0","deny":"2"}],"permissions":"8191"},
			{"id":"201","guild_id":"100","type":1,"name":"sub","topic":"t","parent_id":"250","position":1,"permission_overwrites":[],"permissions":"1"}]}`
	f.reset(func(int, recorded) (int, string) { return http.StatusOK, guild })
	g, err := f.chat.Guild(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != 100 || g.Owner != "alice@a.test" || !g.Private || g.MemberCount != 2 || g.CreatedAt.Year() != 2025 ||
		len(g.Roles) != 1 || g.Roles[0].Permissions != 7 || len(g.Channels) != 2 {
		t.Fatalf("guild %+v", g)
	}
	c0, c1 := g.Channels[0], g.Channels[1]
	if c0.ParentID != 0 || c0.Type != ChannelText || c0.Overwrites[0].Deny != PermSendMessages || !c0.Permissions.Has(PermAdministrator) {
		t.Errorf("channel %+v", c0)
	}
	if c1.ParentID != 250 || c1.Topic != "t" || c1.Position != 1 {
		t.Errorf("channel %+v", c1)
	}

	invite := `{"code":"abc","guild_id":"100","channel_id":"200","inviter":"alice@a.test","uses":1,"max_uses":0,
		"expires_at":null,"created_at":"2025-06-01T10:00:00Z","guild":{"id":"100","name":"home","description":"","member_count":2}}`
	f.reset(func(int, recorded) (int, string) { return http.StatusOK, invite })
	inv, err := f.chat.Invite(context.Background(), "abc")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Code != "abc" || !inv.ExpiresAt.IsZero() || inv.Guild.Name != "home" || inv.Uses != 1 {
		t.Errorf("invite %+v", inv)
	}

	page := `{"events":[{"revision":"3","position":17,"type":"MessageEdited","actor":"alice@a.test","session_id":"laptop",
		"at":"2025-06-01T10:00:00Z","reason":"typo","data":{"content":"x"}}],"next":4}`
	f.reset(func(int, recorded) (int, string) { return http.StatusOK, page })
	p, err := f.chat.ChannelEvents(context.Background(), 200, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Next != 4 || len(p.Events) != 1 || p.Events[0].Revision != 3 || p.Events[0].Position != 17 ||
		p.Events[0].Reason != "typo" || string(p.Events[0].Data) != `{"content":"x"}` {
		t.Errorf("page %+v", p)
	}
}

func TestPermissions(t *testing.T) {
	p, err := ParsePermissions("send_messages, VIEW_CHANNEL,ADMINISTRATOR")
	if err != nil {
		t.Fatal(err)
	}
	if p != PermSendMessages|PermViewChannel|PermAdministrator {
		t.Errorf("parsed %b", p)
	}
	if got := p.String(); got != "VIEW_CHANNEL,SEND_MESSAGES,ADMINISTRATOR" {
		t.Errorf("String() = %q", got)
	}
	if _, err := ParsePermissions("SEND_MESAGES"); err == nil {
		t.Error("a misspelt permission parsed")
	}
	if p, err := ParsePermissions(""); err != nil || p != 0 {
		t.Errorf("empty list = %v, %v", p, err)
	}
	// Bits a newer server defines survive a round trip through names and JSON.
	future := Permissions(1<<40) | PermViewChannel
	if back, err := ParsePermissions(future.String()); err != nil || back != future {
		t.Errorf("round trip of %s: %v, %v", future, back, err)
	}
	b, _ := json.Marshal(future)
	var back Permissions
	if err := json.Unmarshal(b, &back); err != nil || back != future || string(b) != `"1099511627777"` {
		t.Errorf("JSON %s -> %v, %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`8191`), &back); err != nil || back != 8191 {
		t.Errorf("a bare number: %v, %v", back, err)
	}
}

// The client's Message reads what the server's read model serves (projections/history), so
// the two cannot drift apart unnoticed.
func TestMessageMatchesServerJSON(t *testing.T) {
	edited := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	server := history.Message{
		ID: 9, ChannelID: 2, GuildID: 1, Author: "a@a.test", Content: "hi", Attachments: []string{"https://x.test/a"},
		Nonce: "n", Timestamp: 1748772000000, CertSerial: "9223372036854775807", SessionID: "s", Signature: "c2ln",
		Version: 2, EditedAt: &edited, Pinned: true,
		Reactions: []history.Reaction{{Emoji: "👍", Count: 1, FIDs: []string{"b@a.test"}}},
	}
	b, err := json.Marshal(server)
	if err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	want := Message{
		ID: 9, ChannelID: 2, GuildID: 1, Author: "a@a.test", Content: "hi", Attachments: []string{"https://x.test/a"},
		Nonce: "n", Timestamp: 1748772000000, CertSerial: 1<<63 - 1, SessionID: "s", Signature: "c2ln",
		Version: 2, EditedAt: &edited, Pinned: true,
		Reactions: []Reaction{{Emoji: "👍", Count: 1, FIDs: []string{"b@a.test"}}},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("decoded message (-want +got):\n%s", diff)
	}
}

// testDomain is the domain of the server ch talks to, as Send and Edit sign it.
func testDomain(t *testing.T, ch *Chat) string {
	t.Helper()
	d, err := ch.ownDomain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
