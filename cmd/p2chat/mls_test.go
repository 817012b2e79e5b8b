package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// messageLines are the "time sender: text" lines of a read, as sender -> texts.
func messageLines(t *testing.T, r result) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, l := range r.lines() {
		if strings.HasPrefix(l, "* ") {
			continue
		}
		m := messageRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("read printed %q: neither a message nor a notice", l)
		}
		if ts, err := time.Parse(time.RFC3339, m[1]); err != nil || time.Since(ts) > time.Minute {
			t.Fatalf("read line %q: time %q is not now", l, m[1])
		}
		out[m[2]] = append(out[m[2]], m[3])
	}
	return out
}

// stateFile is the path of fid's groupStateFile in e's keystore.
func stateFile(t *testing.T, e env, fid string) string {
	t.Helper()
	states, err := filepath.Glob(filepath.Join(e["P2CHAT_DIR"], fid, "*", "*", groupStateFile))
	if err != nil || len(states) != 1 {
		t.Fatalf("%s's state files: %v, %v", fid, states, err)
	}
	return states[0]
}

// TestMLSStory is the README's encrypted part: a DM from alice to bob and back, a group with
// carol, and carol's removal, after which she reads nothing more.
func TestMLSStory(t *testing.T) {
	server := startServer(t, "a.test")
	alice := chatEnv(t, server, "alice", "bob", "carol", "dave")
	bob, carol, dave := alice.with("P2CHAT_AS", "bob"), alice.with("P2CHAT_AS", "carol"), alice.with("P2CHAT_AS", "dave")

	// bob uploads by hand; alice's first dm send uploads hers on its own.
	up := ok(t, p2chat(t, bob, "keys", "upload"), "keys upload").record()
	if up["one_time"] != "20" || up["last_resort"] != "true" || up["low"] != "false" {
		t.Fatalf("keys upload printed %v", up)
	}
	if st := ok(t, p2chat(t, bob, "keys", "stock"), "keys stock").record(); st["one_time"] != "20" || st["last_resort_used"] != "false" {
		t.Fatalf("keys stock printed %v", st)
	}
	if st := ok(t, p2chat(t, alice, "keys", "stock"), "keys stock").record(); st["one_time"] != "0" || st["low"] != "true" {
		t.Fatalf("alice's stock before any upload: %v", st)
	}

	sent := ok(t, p2chat(t, alice, "dm", "send", "bob@a.test", "hello", "bob"), "dm send").record()
	dm := sent["group"]
	if !idRE.MatchString(dm) || !idRE.MatchString(sent["id"]) {
		t.Fatalf("dm send printed %v", sent)
	}
	if st := ok(t, p2chat(t, alice, "keys", "stock"), "keys stock").record(); st["one_time"] != "20" || st["low"] != "false" {
		t.Fatalf("alice's stock after her first dm send: %v", st)
	}
	r := ok(t, p2chat(t, bob, "dm", "read", "alice@a.test"), "dm read")
	if got := messageLines(t, r); len(got["alice@a.test"]) != 1 || got["alice@a.test"][0] != "hello bob" || len(got) != 1 {
		t.Fatalf("bob's dm read printed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "* joined: added by alice@a.test") {
		t.Fatalf("bob's dm read lacks the join notice:\n%s", r.stdout)
	}
	if r := ok(t, p2chat(t, bob, "dm", "read", "alice@a.test"), "dm read again"); r.stdout != "" {
		t.Fatalf("a second dm read printed %q", r.stdout)
	}
	// bob answers in the same DM; alice reads it.
	if back := ok(t, p2chat(t, bob, "dm", "send", "alice@a.test", "--", "-hi-", "alice"), "dm send back").record(); back["group"] != dm {
		t.Fatalf("bob's answer went to group %s, the DM is %s", back["group"], dm)
	}
	r = ok(t, p2chat(t, alice, "dm", "read", "bob@a.test"), "alice's dm read")
	if got := messageLines(t, r); len(got) != 1 || strings.Join(got["bob@a.test"], "|") != "-hi- alice" {
		t.Fatalf("alice's dm read printed:\n%s", r.stdout)
	}

	// dave has no KeyPackages yet: the DM is made but he cannot be added; once he has some
	// (his own dm read uploads them), the next dm send adds him and he reads it.
	failed(t, p2chat(t, alice, "dm", "send", "dave@a.test", "are you there"), 1, "P2_MLS_NO_KEY_PACKAGES")
	failed(t, p2chat(t, dave, "dm", "read", "alice@a.test"), 1, "no DM with alice@a.test")
	ok(t, p2chat(t, alice, "dm", "send", "dave@a.test", "now?"), "dm send to dave")
	r = ok(t, p2chat(t, dave, "dm", "read", "alice@a.test"), "dave's dm read")
	if got := messageLines(t, r); strings.Join(got["alice@a.test"], "|") != "now?" {
		t.Fatalf("dave's dm read printed:\n%s", r.stdout)
	}

	// A group with bob and carol.
	ok(t, p2chat(t, carol, "keys", "upload", "-n", "12"), "carol's keys upload")
	g := ok(t, p2chat(t, alice, "group", "create", "friends", "bob@a.test", "carol@a.test"), "group create")
	rec := g.record()
	group := rec["id"]
	if !idRE.MatchString(group) || rec["kind"] != "group" || rec["name"] != "friends" || rec["owner"] != "alice@a.test" {
		t.Fatalf("group create printed:\n%s", g.stdout)
	}
	for _, who := range []string{"alice@a.test", "bob@a.test", "carol@a.test"} {
		if !strings.Contains(g.stdout, "member "+who+"\n") || !regexp.MustCompile(`(?m)^device \d+ `+who+` \S+$`).MatchString(g.stdout) {
			t.Fatalf("group create does not show %s with a device:\n%s", who, g.stdout)
		}
	}
	ok(t, p2chat(t, alice, "group", "send", group, "hello", "friends"), "group send")
	for _, e := range []env{bob, carol} {
		r := ok(t, p2chat(t, e, "group", "read", group), "group read")
		if got := messageLines(t, r); len(got) != 1 || strings.Join(got["alice@a.test"], "|") != "hello friends" {
			t.Fatalf("%s's group read printed:\n%s", e["P2CHAT_AS"], r.stdout)
		}
	}
	// By name, as group list shows it.
	l := ok(t, p2chat(t, bob, "group", "list"), "group list")
	if !strings.Contains(l.stdout, dm+" dm alice@a.test\n") || !strings.Contains(l.stdout, group+" group friends\n") {
		t.Fatalf("bob's group list printed:\n%s", l.stdout)
	}
	ok(t, p2chat(t, bob, "group", "send", "friends", "bob", "here"), "group send by name")
	for _, e := range []env{alice, carol} {
		r := ok(t, p2chat(t, e, "group", "read", "friends"), "group read by name")
		if got := messageLines(t, r); len(got) != 1 || strings.Join(got["bob@a.test"], "|") != "bob here" {
			t.Fatalf("%s's group read printed:\n%s", e["P2CHAT_AS"], r.stdout)
		}
	}

	// carol is removed; what follows is not hers to read.
	if r := ok(t, p2chat(t, alice, "group", "remove", group, "carol@a.test"), "group remove"); r.stdout != "removed carol@a.test\n" {
		t.Fatalf("group remove printed %q", r.stdout)
	}
	ok(t, p2chat(t, alice, "group", "send", group, "without", "carol"), "group send after the removal")
	r = ok(t, p2chat(t, bob, "group", "read", group), "bob's group read")
	if got := messageLines(t, r); strings.Join(got["alice@a.test"], "|") != "without carol" ||
		!strings.Contains(r.stdout, "* alice@a.test changed the group's members or keys") {
		t.Fatalf("bob's group read after the removal printed:\n%s", r.stdout)
	}
	r = ok(t, p2chat(t, carol, "group", "read", group), "carol's group read")
	if strings.Contains(r.stdout, "without carol") || len(messageLines(t, r)) != 0 ||
		!strings.Contains(r.stdout, "* you are no longer in this group") {
		t.Fatalf("carol's group read after her removal printed:\n%s", r.stdout)
	}
	failed(t, p2chat(t, carol, "group", "read", group), 1, "removed from group "+group)
	failed(t, p2chat(t, carol, "group", "send", group, "still here?"), 1, "removed from group "+group)

	info := ok(t, p2chat(t, bob, "group", "info", group), "group info")
	if strings.Contains(info.stdout, "carol") || !strings.Contains(info.stdout, "member bob@a.test\n") {
		t.Fatalf("group info after the removal printed:\n%s", info.stdout)
	}
	failed(t, p2chat(t, alice, "group", "remove", group, "carol@a.test"), 1, "no device in group")

	// Without the CLI's state (a keystore copied without it), bob finds his groups again in the
	// server's list of them.
	if err := os.Remove(stateFile(t, bob, "bob@a.test")); err != nil {
		t.Fatal(err)
	}
	l = ok(t, p2chat(t, bob, "group", "list"), "group list without state")
	if l.stdout != dm+" dm alice@a.test\n"+group+" group friends\n" {
		t.Fatalf("bob's group list without state printed:\n%s", l.stdout)
	}
	if r := ok(t, p2chat(t, bob, "group", "read", "friends"), "group read without state"); r.stdout != "" {
		t.Fatalf("bob's group read without state printed:\n%s", r.stdout)
	}
	failed(t, p2chat(t, alice, "group", "read", "nosuchgroup"), 2, `GROUP "nosuchgroup"`)
}

// TestMLSUnreadKept: what a send decrypts while catching up is printed by the next read, once,
// and waits in a state file only its owner can read (it holds plaintext).
func TestMLSUnreadKept(t *testing.T) {
	server := startServer(t, "a.test")
	alice := chatEnv(t, server, "alice", "bob")
	bob := alice.with("P2CHAT_AS", "bob")
	ok(t, p2chat(t, bob, "keys", "upload"), "keys upload")
	ok(t, p2chat(t, alice, "dm", "send", "bob@a.test", "one"), "dm send")
	ok(t, p2chat(t, bob, "dm", "send", "alice@a.test", "two"), "bob's dm send") // joins, decrypts "one"

	if fi, err := os.Stat(stateFile(t, bob, "bob@a.test")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bob's state file: %v, %v", fi, err)
	}
	r := ok(t, p2chat(t, bob, "dm", "read", "alice@a.test"), "bob's dm read")
	if got := messageLines(t, r); len(got) != 1 || strings.Join(got["alice@a.test"], "|") != "one" ||
		!strings.Contains(r.stdout, "* joined: added by alice@a.test") {
		t.Fatalf("bob's dm read after his send printed:\n%s", r.stdout)
	}
	if r := ok(t, p2chat(t, bob, "dm", "read", "alice@a.test"), "dm read again"); r.stdout != "" {
		t.Fatalf("a second dm read printed %q", r.stdout)
	}
}

// TestMLSUsage covers the encrypted commands' help and usage errors, which need no server.
func TestMLSUsage(t *testing.T) {
	e := env{"P2CHAT_DIR": t.TempDir(), "P2CHAT_SERVER": "http://127.0.0.1:1"}
	r := ok(t, p2chat(t, e, "help"), "help")
	for _, cmd := range []string{"keys upload [-n N]", "keys stock", "dm send FID TEXT...", "dm read FID", "group create NAME FID...",
		"group list", "group info GROUP", "group add GROUP FID...", "group remove GROUP FID", "group send GROUP TEXT...", "group read GROUP",
		"upload KeyPackages when the"} {
		if !strings.Contains(r.stdout, cmd) {
			t.Errorf("help does not mention %q", cmd)
		}
	}
	if r := ok(t, p2chat(t, e, "help", "dm", "send"), "help dm send"); !strings.Contains(r.stdout, "uploads KeyPackages first") {
		t.Errorf("help dm send does not say it uploads KeyPackages:\n%s", r.stdout)
	}
	for _, u := range []struct {
		args []string
		want string
	}{
		{[]string{"keys"}, "want a subcommand: upload, stock"},
		{[]string{"dm"}, "want a subcommand: send, read"},
		{[]string{"keys", "upload", "-n", "101"}, "-n 101: want 0 to 100"},
		{[]string{"keys", "upload", "-n", "x"}, "invalid value"},
		{[]string{"dm", "send", "bob@a.test"}, "usage: p2chat dm send FID TEXT..."},
		{[]string{"dm", "send", "bob", "hi"}, "bob"},
		{[]string{"dm", "read", "a@@b"}, "a@@b"},
		{[]string{"group", "create", "x"}, "usage: p2chat group create NAME FID..."},
		{[]string{"group", "remove", "1"}, "usage: p2chat group remove GROUP FID"},
	} {
		t.Run(strings.Join(u.args, "_"), func(t *testing.T) {
			failed(t, p2chat(t, e, u.args...), 2, u.want)
		})
	}
}
