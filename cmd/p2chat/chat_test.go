package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// chatEnv registers and logs in each of names at server, in one keystore, and returns the
// environment that acts as the first of them (use --as or P2CHAT_AS for the others).
func chatEnv(t *testing.T, server string, names ...string) env {
	t.Helper()
	e := env{"P2CHAT_SERVER": server, "P2CHAT_DIR": t.TempDir(), "P2CHAT_PASSWORD": password}
	for _, n := range names {
		ok(t, p2chat(t, e, "register", n), "register "+n)
		ok(t, p2chat(t, e, "login", n), "login "+n)
	}
	if len(names) > 1 {
		e = e.with("P2CHAT_AS", names[0])
	}
	return e
}

// lineWith is the first output line starting with prefix, for the repeated keys (role, channel).
func lineWith(t *testing.T, r result, prefix string) string {
	t.Helper()
	for _, l := range r.lines() {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting %q in:\n%s", prefix, r.stdout)
	return ""
}

var (
	idRE      = regexp.MustCompile(`^[1-9][0-9]*$`)
	messageRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (\S+): (.*)$`)
)

// TestChatStory is the README's story: register, log in, create a guild and a channel, send,
// read the history back.
func TestChatStory(t *testing.T) {
	server := startServer(t, "a.test")
	e := chatEnv(t, server, "alice")

	g := ok(t, p2chat(t, e, "guild", "create", "Home Base", "--description", "our place"), "guild create")
	rec := g.record()
	guild := rec["id"]
	if !idRE.MatchString(guild) || rec["name"] != "Home Base" || rec["owner"] != "alice@a.test" ||
		rec["private"] != "false" || rec["members"] != "1" || rec["description"] != "our place" {
		t.Fatalf("guild create printed:\n%s", g.stdout)
	}
	general := strings.Fields(lineWith(t, g, "channel "))
	if len(general) != 4 || general[2] != "text" || general[3] != "general" {
		t.Fatalf("guild create: channel line %q", general)
	}
	if f := strings.Fields(lineWith(t, g, "role ")); len(f) != 5 || f[1] != guild || f[4] != "@everyone" {
		t.Fatalf("guild create: role line %q, want @everyone with the guild's id", f)
	}

	c := ok(t, p2chat(t, e, "channel", "create", guild, "news", "--topic", "what happened"), "channel create").record()
	channel := c["id"]
	if !idRE.MatchString(channel) || c["guild"] != guild || c["name"] != "news" || c["type"] != "text" ||
		c["topic"] != "what happened" || c["parent"] != "-" {
		t.Fatalf("channel create printed %v", c)
	}

	list := ok(t, p2chat(t, e, "channel", "list", guild), "channel list")
	if want := []string{general[1] + " text - general", channel + " text - news"}; strings.Join(list.lines(), "\n") != strings.Join(want, "\n") {
		t.Fatalf("channel list printed %q, want %q", list.lines(), want)
	}

	var ids []string
	for _, text := range [][]string{{"hello", "world"}, {"--", "-second-", "message"}} {
		r := ok(t, p2chat(t, e, append([]string{"send", channel}, text...)...), "send")
		id := r.record()["id"]
		if !idRE.MatchString(id) || len(r.lines()) != 1 {
			t.Fatalf("send printed %q", r.stdout)
		}
		ids = append(ids, id)
	}

	h := ok(t, p2chat(t, e, "history", channel), "history")
	lines := h.lines()
	if len(lines) != 2 {
		t.Fatalf("history printed %q, want 2 lines", h.stdout)
	}
	// Newest first: the oldest message is at the bottom.
	for i, want := range []string{"-second- message", "hello world"} {
		m := messageRE.FindStringSubmatch(lines[i])
		if m == nil || m[2] != "alice@a.test" || m[3] != want {
			t.Fatalf("history line %d %q, want alice@a.test: %s", i, lines[i], want)
		}
		if ts, err := time.Parse(time.RFC3339, m[1]); err != nil || time.Since(ts) > time.Minute {
			t.Fatalf("history line %d: time %q is not now", i, m[1])
		}
	}
	if r := ok(t, p2chat(t, e, "history", channel, "--before", ids[1], "--ids"), "history --before"); len(r.lines()) != 1 ||
		!strings.HasPrefix(r.stdout, ids[0]+" ") || !strings.HasSuffix(r.stdout, "alice@a.test: hello world\n") {
		t.Fatalf("history --before %s --ids printed %q", ids[1], r.stdout)
	}
	if r := ok(t, p2chat(t, e, "history", channel, "--limit", "1"), "history --limit"); len(r.lines()) != 1 || !strings.Contains(r.stdout, "-second- message") {
		t.Fatalf("history --limit 1 printed %q", r.stdout)
	}

	// The guild shows up in the gateway's READY and in guild show.
	if r := ok(t, p2chat(t, e, "guild", "list"), "guild list"); r.stdout != guild+" Home Base\n" {
		t.Fatalf("guild list printed %q", r.stdout)
	}
	show := ok(t, p2chat(t, e, "guild", "show", guild), "guild show")
	if show.record()["name"] != "Home Base" || !strings.Contains(show.stdout, "channel "+channel+" text news\n") {
		t.Fatalf("guild show printed:\n%s", show.stdout)
	}

	failed(t, p2chat(t, e, "history", "1234"), 1, "P2_CHAT_NOT_FOUND")
	failed(t, p2chat(t, e, "send", "1234", "hi"), 1, "P2_CHAT_NOT_FOUND")
}

// TestChatTwoActors: invites, tail with signature checks, roles, kick and ban.
func TestChatTwoActors(t *testing.T) {
	server := startServer(t, "a.test")
	alice := chatEnv(t, server, "alice", "bob")
	bob := alice.with("P2CHAT_AS", "bob")

	g := ok(t, p2chat(t, alice, "guild", "create", "club", "--private"), "guild create")
	guild := g.record()["id"]
	general := strings.Fields(lineWith(t, g, "channel "))[1]
	failed(t, p2chat(t, bob, "guild", "show", guild), 1, "P2_CHAT_NOT_FOUND") // private: not even visible

	inv := ok(t, p2chat(t, alice, "invite", "create", general, "--max-uses", "5", "--max-age", "1h"), "invite create").record()
	if inv["code"] == "" || inv["channel"] != general || inv["guild"] != guild || inv["max_uses"] != "5" {
		t.Fatalf("invite create printed %v", inv)
	}
	if exp, err := time.Parse(time.RFC3339, inv["expires_at"]); err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Fatalf("invite expires_at %q, want in an hour", inv["expires_at"])
	}
	if r := ok(t, p2chat(t, alice, "invite", "create", general, "--max-age", "0"), "invite create forever"); r.record()["expires_at"] != "never" {
		t.Fatalf("invite --max-age 0 printed %q", r.stdout)
	}
	joined := ok(t, p2chat(t, bob, "join", inv["code"]), "join").record()
	if joined["id"] != guild || joined["members"] != "2" {
		t.Fatalf("join printed %v", joined)
	}
	failed(t, p2chat(t, bob, "join", "no-such-code"), 1, "P2_CHAT_INVITE_INVALID")

	// alice tails general while bob writes; every line is checked against bob's ID-Cert.
	tail := startTail(t, alice, general, "--ids")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tail.output(), "warm-up") { // the subscription is live once one arrives
		if time.Now().After(deadline) {
			tail.stop()
			t.Fatalf("tail printed nothing within 20s:\n%s", tail.output())
		}
		ok(t, p2chat(t, bob, "send", general, "warm-up"), "send warm-up")
		time.Sleep(200 * time.Millisecond)
	}
	id := ok(t, p2chat(t, bob, "send", general, "hi", "alice"), "send").record()["id"]
	tail.waitFor(t, "bob@a.test: hi alice")
	if !regexp.MustCompile(`(?m)^` + id + ` \S+ bob@a.test: hi alice$`).MatchString(tail.output()) {
		t.Fatalf("tail --ids printed:\n%s", tail.output())
	}
	if out := tail.stop(); strings.Contains(out, "[unverified") || tail.code != 0 {
		t.Fatalf("tail exited %d (stderr %q) after printing:\n%s", tail.code, tail.stderr.String(), out)
	}

	h := ok(t, p2chat(t, alice, "history", general, "--ids"), "history")
	if l := h.lines(); len(l) == 0 || !strings.HasPrefix(l[0], id+" ") || !strings.HasSuffix(l[0], "bob@a.test: hi alice") {
		t.Fatalf("history printed:\n%s", h.stdout)
	}

	// Roles: a moderator role for bob, by name; then none.
	role := ok(t, p2chat(t, alice, "role", "create", guild, "mods", "--perms", "kick_members,SEND_MESSAGES", "--reason", "helpers"), "role create").record()
	if !idRE.MatchString(role["id"]) || role["name"] != "mods" || role["permissions"] != "SEND_MESSAGES,KICK_MEMBERS" {
		t.Fatalf("role create printed %v", role)
	}
	failed(t, p2chat(t, alice, "role", "create", guild, "x", "--perms", "FLY"), 2, "unknown permission")
	if r := ok(t, p2chat(t, alice, "member", "roles", guild, "bob@a.test", "mods"), "member roles").record(); r["roles"] != role["id"] || r["fid"] != "bob@a.test" {
		t.Fatalf("member roles printed %v", r)
	}
	if r := ok(t, p2chat(t, alice, "member", "roles", guild, "bob@a.test"), "member roles none").record(); r["roles"] != "-" {
		t.Fatalf("member roles (none) printed %v", r)
	}
	failed(t, p2chat(t, alice, "member", "roles", guild, "bob@a.test", "admins"), 2, `no role named "admins"`)

	// Moderation: bob, without KICK_MEMBERS now, cannot kick; alice kicks bob, bans him, and he cannot come back.
	failed(t, p2chat(t, bob, "kick", guild, "alice@a.test"), 1, "P2_CHAT_FORBIDDEN")
	if r := ok(t, p2chat(t, alice, "kick", guild, "bob@a.test", "--reason", "too loud"), "kick"); r.stdout != "kicked bob@a.test\n" {
		t.Fatalf("kick printed %q", r.stdout)
	}
	ok(t, p2chat(t, bob, "join", inv["code"]), "join again")
	if r := ok(t, p2chat(t, alice, "ban", guild, "bob@a.test"), "ban"); r.stdout != "banned bob@a.test\n" {
		t.Fatalf("ban printed %q", r.stdout)
	}
	failed(t, p2chat(t, bob, "join", inv["code"]), 1, "P2_CHAT_BANNED")
	ok(t, p2chat(t, alice, "unban", guild, "bob@a.test"), "unban")
	ok(t, p2chat(t, bob, "join", inv["code"]), "join after unban")
	if r := ok(t, p2chat(t, bob, "guild", "list"), "guild list"); r.stdout != guild+" club\n" {
		t.Fatalf("bob's guild list printed %q", r.stdout)
	}
}

// tailRun is a p2chat tail running until stop.
type tailRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	stdout syncBuffer
	stderr syncBuffer
	code   int
}

func startTail(t *testing.T, e env, args ...string) *tailRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tailRun{cancel: cancel, done: make(chan struct{})}
	m := &Main{Stdout: &tr.stdout, Stderr: &tr.stderr, Getenv: e.get}
	go func() {
		defer close(tr.done)
		tr.code = m.Execute(ctx, append([]string{"tail"}, args...))
	}()
	t.Cleanup(func() { tr.stop() })
	return tr
}

func (tr *tailRun) output() string { return tr.stdout.String() }

// stop interrupts the tail, as Ctrl-C does, and returns what it printed.
func (tr *tailRun) stop() string {
	tr.cancel()
	<-tr.done
	return tr.output()
}

func (tr *tailRun) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(tr.output(), want) {
		select {
		case <-tr.done:
			t.Fatalf("tail ended (exit %d, stderr %q) before printing %q:\n%s", tr.code, tr.stderr.String(), want, tr.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail did not print %q within 20s:\n%s", want, tr.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestChatUsage covers the chat commands' help and usage errors, which need no server.
func TestChatUsage(t *testing.T) {
	e := env{"P2CHAT_DIR": t.TempDir(), "P2CHAT_SERVER": "http://127.0.0.1:1"}
	r := ok(t, p2chat(t, e, "help"), "help")
	for _, cmd := range []string{"guild create NAME", "guild list", "guild show GUILD", "channel create GUILD NAME", "channel list GUILD",
		"invite create CHANNEL", "join CODE", "send CHANNEL TEXT...", "history CHANNEL", "tail CHANNEL",
		"role create GUILD NAME", "member roles GUILD FID", "kick GUILD FID", "ban GUILD FID", "unban GUILD FID"} {
		if !strings.Contains(r.stdout, cmd) {
			t.Errorf("help does not mention %q", cmd)
		}
	}
	if r := ok(t, p2chat(t, e, "help", "history"), "help history"); !strings.Contains(r.stdout, "--before") || !strings.Contains(r.stdout, "--limit") {
		t.Errorf("help history lacks its flags:\n%s", r.stdout)
	}

	for _, u := range []struct {
		args []string
		want string
	}{
		{[]string{"guild"}, "want a subcommand: create, list, show"},
		{[]string{"guild", "show", "abc"}, `GUILD "abc": want a decimal id`},
		{[]string{"guild", "show", "0"}, "want a decimal id"},
		{[]string{"send", "123"}, "usage: p2chat send CHANNEL TEXT..."},
		{[]string{"send", "x1", "hi"}, `CHANNEL "x1"`},
		{[]string{"history", "123", "--before", "x"}, "want a decimal id"},
		{[]string{"history", "123", "--before", "5", "--after", "6"}, "give one of them"},
		{[]string{"invite", "create", "123", "--max-age", "-1h"}, "negative duration"},
		{[]string{"invite", "create", "123", "--max-uses", "-1"}, "--max-uses -1"},
		{[]string{"channel", "create", "1", "x", "--type", "voice"}, `--type "voice"`},
		{[]string{"role", "create", "1", "x", "--perms", "FLY"}, `unknown permission "FLY"`},
		{[]string{"kick", "1", "bob"}, "bob"},
		{[]string{"member", "roles", "1"}, "usage: p2chat member roles GUILD FID"},
	} {
		t.Run(strings.Join(u.args, "_"), func(t *testing.T) {
			failed(t, p2chat(t, e, u.args...), 2, u.want)
		})
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain text ✓":           "plain text ✓",
		"two\nlines":             `two\nlines`,
		"bell\a and \x1b[31mred": `bell\a and \x1b[31mred`,
		"tab\tand \u0085":        `tab\tand \u0085`,
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTailEvent: only the tailed channel's messages are printed, and one whose signature does
// not check out is marked rather than dropped.
func TestTailEvent(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	fid, _ := identity.ParseFID("alice@a.test")
	s := &client.Session{FID: fid, SessionID: "laptop", Key: key, Token: "t", Server: "http://127.0.0.1:1"}
	c, err := client.New(s.Server, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Chat(s, client.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	m := &Main{Stdout: &out}
	dispatch := func(typ, data string) client.Event {
		return client.Event{Dispatch: &client.Dispatch{Type: typ, Data: []byte(data)}}
	}
	// A bad signature is refused before any cert is fetched, so no server is needed.
	for _, ev := range []client.Event{
		dispatch(client.EventMessageCreate, `{"id":"300","channel_id":"200","author":"bob@a.test","content":"hi\nthere","signature":"!!","cert_serial":"1"}`),
		dispatch(client.EventMessageCreate, `{"id":"301","channel_id":"999","author":"bob@a.test","content":"elsewhere"}`),
		dispatch(client.EventMessageUpdate, `{"id":"300","channel_id":"200","author":"bob@a.test","content":"fixed","signature":"!!","cert_serial":"1"}`),
		dispatch(client.EventMessageDelete, `{"id":"300","channel_id":"200","guild_id":"100"}`),
		dispatch(client.EventMessageDeleteBulk, `{"ids":["301","302"],"channel_id":"999","guild_id":"100"}`),
		dispatch(client.EventTypingStart, `{"channel_id":"200","guild_id":"100","fid":"bob@a.test","timestamp":1}`),
		{Service: &client.ServiceAck{Action: "subscribe", Service: "chat", Success: true}},
	} {
		if err := m.tailEvent(context.Background(), ch, nil, 200, true, ev); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("tail printed %q, want 3 lines", out.String())
	}
	if !regexp.MustCompile(`^300 \S+ bob@a.test: hi\\nthere \[unverified: .*not base64url.*\]$`).MatchString(lines[0]) {
		t.Errorf("create line %q", lines[0])
	}
	if !regexp.MustCompile(`^300 \S+ bob@a.test: fixed \(edited\) \[unverified: .*\]$`).MatchString(lines[1]) {
		t.Errorf("update line %q", lines[1])
	}
	if lines[2] != "deleted 300" {
		t.Errorf("delete line %q", lines[2])
	}

	if err := m.tailEvent(context.Background(), ch, nil, 200, false, client.Event{Service: &client.ServiceAck{Service: "chat", Error: "no"}}); err == nil {
		t.Error("a refused subscribe does not end the tail")
	}
	if err := m.tailEvent(context.Background(), ch, nil, 200, false, client.Event{Closed: &client.CloseInfo{Code: 4004, Final: true}}); err == nil {
		t.Error("a final close does not end the tail")
	}
}
