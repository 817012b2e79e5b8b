package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// certServer makes mux answer GET /idcert/actor/{fid} with the certs of sessions, as a home
// server does, and counts the requests.
type certServer struct {
	root      *identity.Root
	sessions  []*Session
	revokedAt *time.Time
	calls     atomic.Int32
}

func (cs *certServer) register(t *testing.T, mux *http.ServeMux) {
	mux.HandleFunc("GET /.p2/core/v1/idcert/actor/{fid}", func(w http.ResponseWriter, r *http.Request) {
		cs.calls.Add(1)
		now := time.Now()
		out := []identity.CacheableCert{}
		for _, s := range cs.sessions {
			if s.FID.String() != r.PathValue("fid") {
				continue
			}
			if sid := r.URL.Query().Get("session_id"); sid != "" && sid != s.SessionID {
				continue
			}
			out = append(out, identity.SignCacheable(cs.root, s.Cert, cs.revokedAt, now, now.Add(time.Hour)))
		}
		writeJSON(t, w, http.StatusOK, out)
	})
}

// signedMessage is a message as the server would store it after s's Chat sent it.
func signedMessage(t *testing.T, ch *Chat, content string) Message {
	t.Helper()
	body, err := ch.signMessage(testDomain(t, ch), 200, "0123456789abcdef", content, []string{"https://x.test/a"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return Message{ID: 900, ChannelID: 200, GuildID: 100, Author: ch.s.FID.String(), Content: content,
		Attachments: []string{"https://x.test/a"}, Nonce: body.Nonce, Timestamp: body.Timestamp,
		CertSerial: ch.s.Cert.Serial, SessionID: ch.s.SessionID, Signature: body.Signature}
}

func signedEdit(t *testing.T, ch *Chat, content string) Message {
	t.Helper()
	body, err := ch.signEdit(testDomain(t, ch), 200, 900, content, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	edited := time.Now()
	return Message{ID: 900, ChannelID: 200, GuildID: 100, Author: ch.s.FID.String(), Content: content,
		Nonce: "0123456789abcdef", Timestamp: body.Timestamp, CertSerial: ch.s.Cert.Serial, SessionID: ch.s.SessionID,
		Signature: body.Signature, Version: 1, EditedAt: &edited}
}

func TestVerifyMessage(t *testing.T) {
	f := newChatFixture(t)
	cs := &certServer{root: f.root, sessions: []*Session{f.s}}
	cs.register(t, f.mux)
	ctx := context.Background()

	m := signedMessage(t, f.chat, "hello")
	if err := f.chat.VerifyMessage(ctx, m); err != nil {
		t.Fatalf("a good message: %v", err)
	}
	e := signedEdit(t, f.chat, "hello, fixed")
	if err := f.chat.VerifyMessage(ctx, e); err != nil {
		t.Fatalf("a good edit: %v", err)
	}
	u := MessageUpdate{ID: e.ID, ChannelID: e.ChannelID, GuildID: e.GuildID, Author: e.Author, Content: e.Content,
		Timestamp: e.Timestamp, CertSerial: e.CertSerial, SessionID: e.SessionID, Signature: e.Signature}
	if err := f.chat.VerifyUpdate(ctx, u); err != nil {
		t.Fatalf("a good MESSAGE_UPDATE: %v", err)
	}
	if n := cs.calls.Load(); n != 1 {
		t.Errorf("%d cert fetches for one cert, want 1 (cached by serial)", n)
	}

	bad := map[string]func(m *Message){
		"content changed":      func(m *Message) { m.Content = "hellO" },
		"attachment dropped":   func(m *Message) { m.Attachments = nil },
		"nonce changed":        func(m *Message) { m.Nonce = "other" },
		"channel changed":      func(m *Message) { m.ChannelID = 201 },
		"timestamp changed":    func(m *Message) { m.Timestamp++ },
		"edit form claimed":    func(m *Message) { m.Version = 1 },
		"signature garbled":    func(m *Message) { m.Signature = "!!" },
		"signature truncated":  func(m *Message) { m.Signature = m.Signature[:20] },
		"other serial":         func(m *Message) { m.CertSerial++ },
		"other session":        func(m *Message) { m.SessionID = "phone" },
		"author is not a FID":  func(m *Message) { m.Author = "alice" },
		"signed long before":   func(m *Message) { m.Timestamp = f.s.Cert.NotBefore.Add(-time.Hour).UnixMilli() },
		"another actor's name": func(m *Message) { m.Author = "bob@a.test" },
	}
	for name, change := range bad {
		t.Run(name, func(t *testing.T) {
			m := signedMessage(t, f.chat, "hello")
			change(&m)
			if err := f.chat.VerifyMessage(ctx, m); !errors.Is(err, ErrUnverified) {
				t.Fatalf("err %v, want ErrUnverified", err)
			}
		})
	}
	// The message form does not verify as an edit, nor the edit form as a message.
	e.Version = 0
	if err := f.chat.VerifyMessage(ctx, e); !errors.Is(err, ErrUnverified) {
		t.Errorf("edit signature as version 0: %v", err)
	}
}

func TestVerifyMessageRevokedCert(t *testing.T) {
	f := newChatFixture(t)
	revoked := time.Now().Add(-10 * time.Second) // the cert was issued a minute ago
	cs := &certServer{root: f.root, sessions: []*Session{f.s}, revokedAt: &revoked}
	cs.register(t, f.mux)

	m := signedMessage(t, f.chat, "after the revocation")
	if err := f.chat.VerifyMessage(context.Background(), m); !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("message signed after its cert was revoked: %v", err)
	}
	// A message signed before the revocation stays valid (its timestamp is re-signed here).
	body, err := f.chat.signMessage(testDomain(t, f.chat), 200, m.Nonce, m.Content, m.Attachments, revoked.Add(-20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m.Timestamp, m.Signature = body.Timestamp, body.Signature
	if err := f.chat.VerifyMessage(context.Background(), m); err != nil {
		t.Errorf("message signed before the revocation: %v", err)
	}
}

// A cert that the author's home server did not issue is refused, even when its key signed.
func TestVerifyMessageForgedCert(t *testing.T) {
	f := newChatFixture(t)
	impostor := testRoot(t, "a.test") // same domain, other key
	forged := testSession(t, impostor, f.s.FID, f.s.SessionID, f.srv)
	cs := &certServer{root: impostor, sessions: []*Session{forged}}
	cs.register(t, f.mux)
	ch, err := newClient(t, f.srv, "").Chat(forged, ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := signedMessage(t, ch, "trust me")
	if err := f.chat.VerifyMessage(context.Background(), m); !errors.Is(err, ErrUnverified) {
		t.Fatalf("err %v, want ErrUnverified", err)
	}
}

// A foreign author's cert comes from its own home server, found through Resolve.
func TestVerifyMessageForeignAuthor(t *testing.T) {
	f := newChatFixture(t)

	bMux := http.NewServeMux()
	bRoot := testRoot(t, "b.test")
	serveRoot(t, bMux, bRoot)
	bSrv := newServer(t, bMux).URL
	bob := testSession(t, bRoot, mustFID(t, "bob@b.test"), "desk", f.srv)
	bCerts := &certServer{root: bRoot, sessions: []*Session{bob}}
	bCerts.register(t, bMux)
	aCerts := &certServer{root: f.root, sessions: []*Session{f.s}}
	aCerts.register(t, f.mux)

	bobChat, err := newClient(t, f.srv, "").Chat(bob, ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := signedMessage(t, bobChat, "hi from b")

	var asked []string
	resolve := func(ctx context.Context, domain string) (string, error) {
		asked = append(asked, domain)
		if domain == "b.test" {
			return bSrv, nil
		}
		return "", nil // the default for the others
	}
	ch, err := newClient(t, f.srv, "").Chat(f.s, ChatOptions{Resolve: resolve})
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.VerifyMessage(context.Background(), m); err != nil {
		t.Fatalf("foreign author: %v", err)
	}
	if bCerts.calls.Load() != 1 || aCerts.calls.Load() != 0 {
		t.Errorf("cert fetches: b %d, a %d; want the author's home server only", bCerts.calls.Load(), aCerts.calls.Load())
	}
	// An author of the Chat's own domain is looked up at its own server when Resolve has no answer.
	if err := ch.VerifyMessage(context.Background(), signedMessage(t, f.chat, "local")); err != nil {
		t.Fatalf("local author with a resolver: %v", err)
	}
	if strings.Join(asked, ",") != "b.test,a.test" {
		t.Errorf("Resolve asked for %v", asked)
	}

	// A resolver pointing at the wrong server: its root is for another domain.
	wrong, err := newClient(t, f.srv, "").Chat(f.s, ChatOptions{Resolve: func(context.Context, string) (string, error) { return f.srv, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.VerifyMessage(context.Background(), m); !errors.Is(err, ErrUnverified) || !strings.Contains(err.Error(), `not of "b.test"`) {
		t.Errorf("cert from the wrong server: %v", err)
	}
}

// A server answering something other than what was asked is not trusted with an unverifiable
// message: fetching failures are errors, but not ErrUnverified.
func TestVerifyMessageFetchFailure(t *testing.T) {
	f := newChatFixture(t)
	f.mux.HandleFunc("GET /.p2/core/v1/idcert/actor/{fid}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(t, w, http.StatusInternalServerError, map[string]string{"code": "P2_CORE_INTERNAL", "message": "down"})
	})
	err := f.chat.VerifyMessage(context.Background(), signedMessage(t, f.chat, "hello"))
	var ae *APIError
	if err == nil || errors.Is(err, ErrUnverified) || !errors.As(err, &ae) || ae.Status != 500 {
		t.Errorf("err %v, want the server's 500 and not ErrUnverified", err)
	}
}

func TestDispatchDecode(t *testing.T) {
	tests := []struct {
		typ, data string
		check     func(v any) bool
	}{
		{EventMessageCreate, `{"id":"9","channel_id":"2","guild_id":"1","author":"a@a.test","content":"hi","attachments":[],"nonce":"n",
			"timestamp":5,"cert_serial":"77","session_id":"s","signature":"x","version":0,"pinned":false,"reactions":[]}`,
			func(v any) bool {
				m, ok := v.(*Message)
				return ok && m.ID == 9 && m.CertSerial == 77 && m.Content == "hi"
			}},
		{EventMessageUpdate, `{"id":"9","channel_id":"2","guild_id":"1","author":"a@a.test","content":"hi!","attachments":[],
			"timestamp":6,"cert_serial":77,"session_id":"s","signature":"x","edited_at":"2025-06-01T10:00:00Z"}`,
			func(v any) bool {
				u, ok := v.(*MessageUpdate)
				return ok && u.CertSerial == 77 && u.EditedAt != nil && u.Content == "hi!"
			}},
		{EventMessageDelete, `{"id":"9","channel_id":"2","guild_id":"1"}`,
			func(v any) bool { d, ok := v.(*MessageDelete); return ok && d.ID == 9 && d.ChannelID == 2 }},
		{EventMessageDeleteBulk, `{"ids":["9","10"],"channel_id":"2","guild_id":"1"}`,
			func(v any) bool { d, ok := v.(*MessageDeleteBulk); return ok && len(d.IDs) == 2 && d.IDs[1] == 10 }},
		{EventGuildCreate, `{"id":"1","name":"g","owner":"a@a.test","created_at":"2025-06-01T10:00:00Z","member_count":1,"roles":[],"channels":[]}`,
			func(v any) bool { g, ok := v.(*Guild); return ok && g.ID == 1 && g.Name == "g" }},
		{EventGuildDelete, `{"id":"1","reason":"kicked"}`,
			func(v any) bool { d, ok := v.(*GuildDelete); return ok && d.Reason == "kicked" }},
		{EventChannelCreate, `{"id":"2","guild_id":"1","type":4,"name":"c","parent_id":null,"permissions":"1"}`,
			func(v any) bool { c, ok := v.(*Channel); return ok && c.Type == ChannelCategory && c.ParentID == 0 }},
		{EventRoleUpdate, `{"guild_id":"1","role":{"id":"3","name":"mod","permissions":"16","position":1,"color":0}}`,
			func(v any) bool { r, ok := v.(*RoleEvent); return ok && r.Role.Permissions == PermManageMessages }},
		{EventMemberAdd, `{"guild_id":"1","member":{"fid":"b@a.test","nick":"","roles":["3"],"joined_at":"2025-06-01T10:00:00Z"}}`,
			func(v any) bool {
				m, ok := v.(*MemberEvent)
				return ok && m.Member.FID == "b@a.test" && m.Member.Roles[0] == 3
			}},
		{EventMemberRemove, `{"guild_id":"1","fid":"b@a.test","reason":"banned"}`,
			func(v any) bool { m, ok := v.(*MemberRemove); return ok && m.Reason == "banned" }},
		{EventMessageReactionAdd, `{"channel_id":"2","guild_id":"1","message_id":"9","fid":"b@a.test","emoji":"👍"}`,
			func(v any) bool { r, ok := v.(*ReactionEvent); return ok && r.Emoji == "👍" && r.MessageID == 9 }},
		{EventTypingStart, `{"channel_id":"2","guild_id":"1","fid":"b@a.test","timestamp":1700000000000}`,
			func(v any) bool { ts, ok := v.(*TypingStart); return ok && ts.Timestamp == 1700000000000 }},
		{"SOMETHING_NEW", `{"x":1}`, func(v any) bool { return v == nil }},
	}
	for _, tt := range tests {
		d := &Dispatch{Type: tt.typ, Data: []byte(tt.data)}
		v, err := d.Decode()
		if err != nil || !tt.check(v) {
			t.Errorf("%s: %#v, %v", tt.typ, v, err)
		}
	}
	if _, err := (&Dispatch{Type: EventMessageCreate, Data: []byte(`{"id":"x"}`)}).Decode(); err == nil {
		t.Error("a MESSAGE_CREATE with a bad id decoded")
	}

	r := &Ready{Guilds: []json.RawMessage{[]byte(`{"id":"1","name":"g","channels":[{"id":"2","name":"general","type":1,"parent_id":null}]}`)}}
	gs, err := r.ChatGuilds()
	if err != nil || len(gs) != 1 || gs[0].Channels[0].Name != "general" {
		t.Errorf("ChatGuilds = %+v, %v", gs, err)
	}
}
