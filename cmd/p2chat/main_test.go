package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/internal/servertest"
)

// serverBin is the real server binary, built once by TestMain: a command cannot import another
// command's package main, and running the binary also covers its flags and its log line.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "p2chat-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if serverBin, err = servertest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startServer runs the server binary for domain on 127.0.0.1:0 until the test ends and returns
// its base URL.
func startServer(t *testing.T, domain string, args ...string) string {
	t.Helper()
	return servertest.Start(t, serverBin, append([]string{"-data-dir", t.TempDir(), "-domain", domain}, args...)...)
}

// env is a test's environment for p2chat; only what it names is set.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func (e env) with(kv ...string) env {
	out := env{}
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

type result struct {
	code           int
	stdout, stderr string
}

// lines are the stdout lines, without the final newline.
func (r result) lines() []string {
	if r.stdout == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
}

// record reads "key value" lines.
func (r result) record() map[string]string {
	out := map[string]string{}
	for _, l := range r.lines() {
		k, v, _ := strings.Cut(l, " ")
		out[k] = v
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// p2chat runs the CLI through run, as main does.
func p2chat(t *testing.T, e env, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(testCtx(t), args, &stdout, &stderr, e.get)
	return result{code, stdout.String(), stderr.String()}
}

// p2chatStdin runs the CLI with stdin, which run leaves to the process.
func p2chatStdin(t *testing.T, e env, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr, Getenv: e.get}
	code := m.Execute(testCtx(t), args)
	return result{code, stdout.String(), stderr.String()}
}

// ok fails the test unless r succeeded silently on stderr.
func ok(t *testing.T, r result, what string) result {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%s: exit %d, stderr %q, stdout %q", what, r.code, r.stderr, r.stdout)
	}
	return r
}

// failed checks that r is a failure with exit code code and one error line containing want.
func failed(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "p2chat: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("stderr is not one line \"p2chat: ...\": %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q lacks %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Fatalf("failure wrote to stdout: %q", r.stdout)
	}
}

const password = "correct horse battery"

func TestIdentityCommands(t *testing.T) {
	server := startServer(t, "a.test")
	e := env{"P2CHAT_SERVER": server, "P2CHAT_DIR": t.TempDir(), "P2CHAT_PASSWORD": password}

	// register, then the same name again
	if r := ok(t, p2chat(t, e, "register", "alice"), "register"); r.stdout != "alice@a.test\n" {
		t.Fatalf("register printed %q", r.stdout)
	}
	failed(t, p2chat(t, e, "register", "Alice"), 1, "P2_CORE_FEDERATION_ID_TAKEN")
	failed(t, p2chat(t, e, "register", "carol@b.test"), 2, "not an account of")

	// whoami before any login says so
	failed(t, p2chat(t, e, "whoami"), 1, "no stored sessions")

	// login with the password from the environment, flags after the name
	rec := ok(t, p2chat(t, e, "login", "alice", "--session", "laptop"), "login").record()
	if rec["fid"] != "alice@a.test" || rec["session_id"] != "laptop" || rec["server"] != server {
		t.Fatalf("login printed %v", rec)
	}
	if !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(rec["serial"]) {
		t.Fatalf("login serial %q", rec["serial"])
	}
	notAfter, err := time.Parse(time.RFC3339, rec["not_after"])
	if err != nil || notAfter.Before(time.Now().Add(24*time.Hour)) {
		t.Fatalf("login not_after %q: %v", rec["not_after"], err)
	}

	// a wrong password: one line with the server's code, exit 1
	failed(t, p2chat(t, e, "login", "alice", "--password", "wrong password"), 1, "P2_CORE_BAD_CREDENTIALS")

	// login with the password on stdin, the FID spelt out and flags before the name
	noPW := e.with("P2CHAT_PASSWORD", "")
	rec = ok(t, p2chatStdin(t, noPW, password+"\n", "login", "--session", "phone", "alice@a.test"), "login from stdin").record()
	if rec["session_id"] != "phone" {
		t.Fatalf("second login printed %v", rec)
	}
	failed(t, p2chatStdin(t, noPW, "", "login", "alice"), 1, "no password")

	// whoami lists both stored sessions
	r := ok(t, p2chat(t, e, "whoami"), "whoami")
	want := []string{"alice@a.test " + server + " laptop ", "alice@a.test " + server + " phone "}
	if l := r.lines(); len(l) != 2 || !strings.HasPrefix(l[0], want[0]) || !strings.HasPrefix(l[1], want[1]) {
		t.Fatalf("whoami printed %q, want lines starting %q", r.stdout, want)
	}

	// sessions: both live, exactly one of them is the one asking
	r = ok(t, p2chat(t, e, "sessions"), "sessions")
	current := 0
	ids := map[string]bool{}
	for _, l := range r.lines() {
		f := strings.Fields(l)
		if len(f) != 5 {
			t.Fatalf("sessions line %q: want 5 fields", l)
		}
		ids[f[0]] = true
		if f[4] == "current" {
			current++
		}
	}
	if len(ids) != 2 || !ids["laptop"] || !ids["phone"] || current != 1 {
		t.Fatalf("sessions printed %q", r.stdout)
	}

	// services: add two providers, discover them by actor and by service name
	if r := ok(t, p2chat(t, e, "service", "add", "chat", "https://chat.example", "--primary"), "service add"); r.stdout != "chat https://chat.example primary\n" {
		t.Fatalf("service add printed %q", r.stdout)
	}
	if r := ok(t, p2chat(t, e, "service", "add", "chat", "https://chat2.example"), "service add"); r.stdout != "chat https://chat2.example -\n" {
		t.Fatalf("second service add printed %q", r.stdout)
	}
	failed(t, p2chat(t, e, "service", "add", "chat", "https://chat2.example"), 1, "P2_CORE_SERVICE_EXISTS")
	for _, args := range [][]string{{"service", "discover", "alice@a.test"}, {"service", "discover", "alice@a.test", "chat"}} {
		r := ok(t, p2chat(t, e, args...), strings.Join(args, " "))
		if r.stdout != "chat https://chat.example primary\nchat https://chat2.example -\n" {
			t.Fatalf("%v printed %q", args, r.stdout)
		}
	}
	if r := ok(t, p2chat(t, e, "service", "discover", "alice@a.test", "files"), "discover none"); r.stdout != "" {
		t.Fatalf("discover of an unused service printed %q", r.stdout)
	}
	failed(t, p2chat(t, e, "service", "discover", "bob@a.test"), 1, "P2_CORE_ACTOR_NOT_FOUND")
	failed(t, p2chat(t, e, "service", "discover", "not a fid"), 2, "")

	// revoke needs the password at the home server, and the right one
	failed(t, p2chatStdin(t, noPW, "", "revoke", "laptop"), 1, "no password")
	failed(t, p2chat(t, e, "revoke", "laptop", "--password", "wrong password"), 1, "password was refused")
	if r := ok(t, p2chat(t, e, "revoke", "laptop"), "revoke"); r.stdout != "revoked laptop\n" {
		t.Fatalf("revoke printed %q", r.stdout)
	}
	if r := ok(t, p2chat(t, e, "sessions"), "sessions after revoke"); len(r.lines()) != 1 || !strings.HasPrefix(r.stdout, "phone ") {
		t.Fatalf("sessions after revoking laptop: %q", r.stdout)
	}
	if r := ok(t, p2chat(t, e, "whoami"), "whoami after revoke"); len(r.lines()) != 1 || !strings.Contains(r.stdout, " phone ") {
		t.Fatalf("whoami after revoking laptop: %q", r.stdout)
	}
	failed(t, p2chat(t, e, "revoke", "laptop"), 1, "P2_CORE_SESSION_NOT_FOUND")
}

// TestSeveralActors: with sessions of two actors stored, commands that act as someone need --as.
func TestSeveralActors(t *testing.T) {
	server := startServer(t, "a.test")
	e := env{"P2CHAT_SERVER": server, "P2CHAT_DIR": t.TempDir(), "P2CHAT_PASSWORD": password}
	for _, name := range []string{"alice", "bob"} {
		ok(t, p2chat(t, e, "register", name), "register "+name)
		ok(t, p2chat(t, e, "login", name), "login "+name)
	}
	failed(t, p2chat(t, e, "sessions"), 2, "--as")
	for i, as := range []string{"bob@a.test", "bob"} {
		ok(t, p2chat(t, e, "--as", as, "service", "add", "chat", fmt.Sprintf("https://%d.example", i)), "service add as "+as)
	}
	r := ok(t, p2chat(t, e.with("P2CHAT_AS", "bob"), "service", "discover", "bob@a.test"), "discover")
	if r.stdout != "chat https://0.example primary\nchat https://1.example -\n" {
		t.Fatalf("discover printed %q", r.stdout)
	}
	if r := ok(t, p2chat(t, e, "whoami", "--as", "alice@a.test"), "whoami --as"); len(r.lines()) != 1 || !strings.HasPrefix(r.stdout, "alice@a.test ") {
		t.Fatalf("whoami --as alice printed %q", r.stdout)
	}
	failed(t, p2chat(t, e, "--as", "nobody@a.test", "sessions"), 1, "no stored session of nobody@a.test")
}

// TestLoginForeign: an actor of a.test logs in at b.test, which checks its ID-Cert with a.test
// (found through -peers), then ends that session there without sending its password.
func TestLoginForeign(t *testing.T) {
	a := startServer(t, "a.test")
	b := startServer(t, "b.test", "-peers", "a.test="+a)
	e := env{"P2CHAT_SERVER": a, "P2CHAT_DIR": t.TempDir(), "P2CHAT_PASSWORD": password}
	ok(t, p2chat(t, e, "register", "alice"), "register")
	ok(t, p2chat(t, e, "login", "alice", "--session", "laptop"), "login")

	rec := ok(t, p2chat(t, e, "login-foreign", b), "login-foreign").record()
	if rec["fid"] != "alice@a.test" || rec["server"] != b || rec["session_id"] != "laptop" {
		t.Fatalf("login-foreign printed %v", rec)
	}

	r := ok(t, p2chat(t, e, "whoami"), "whoami")
	if len(r.lines()) != 2 || !strings.Contains(r.stdout, "alice@a.test "+b+" laptop ") {
		t.Fatalf("whoami after foreign login: %q", r.stdout)
	}
	atB := e.with("P2CHAT_SERVER", b, "P2CHAT_PASSWORD", "")
	r = ok(t, p2chat(t, atB, "sessions"), "sessions at b")
	if f := strings.Fields(r.stdout); len(f) != 5 || f[0] != "laptop" || f[4] != "current" {
		t.Fatalf("sessions at b printed %q", r.stdout)
	}

	// Foreign servers end their sessions on the token alone; no password may be asked or sent.
	if r := ok(t, p2chatStdin(t, atB, "", "revoke", "laptop"), "revoke at b"); r.stdout != "revoked laptop\n" {
		t.Fatalf("revoke at b printed %q", r.stdout)
	}
	failed(t, p2chat(t, atB, "sessions"), 1, "no stored session")
	// The home session is untouched.
	ok(t, p2chat(t, e, "sessions"), "sessions at a")

	// Without a home session there is nothing to log in with.
	failed(t, p2chat(t, e.with("P2CHAT_DIR", t.TempDir()), "login-foreign", b), 1, "no stored session")
}

// TestUsage covers what needs no server: help, usage errors and their exit codes.
func TestUsage(t *testing.T) {
	e := env{"P2CHAT_DIR": t.TempDir(), "P2CHAT_SERVER": "http://127.0.0.1:1"}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := ok(t, p2chat(t, e, args...), strings.Join(args, " "))
		for _, cmd := range []string{"register NAME", "login NAME", "login-foreign URL", "whoami", "sessions", "revoke SESSION_ID", "service add NAME URL", "service discover FID", "--server", "--dir", "--as"} {
			if !strings.Contains(r.stdout, cmd) {
				t.Fatalf("%v does not mention %q:\n%s", args, cmd, r.stdout)
			}
		}
	}
	for _, h := range []struct{ args, want string }{
		{"help login", "usage: p2chat login NAME"},
		{"login -h", "usage: p2chat login NAME"},
		{"service add --help", "usage: p2chat service add NAME URL"},
		{"help service discover", "usage: p2chat service discover FID"},
	} {
		if r := ok(t, p2chat(t, e, strings.Fields(h.args)...), h.args); !strings.HasPrefix(r.stdout, h.want) {
			t.Fatalf("%s printed %q", h.args, r.stdout)
		}
	}
	if r := ok(t, p2chat(t, e, "help", "login"), "help login"); !strings.Contains(r.stdout, "--session") || !strings.Contains(r.stdout, "--password") {
		t.Fatalf("help login lacks its flags:\n%s", r.stdout)
	}

	usage := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"service"}, "want a subcommand: add, discover"},
		{[]string{"service", "remove"}, `unknown subcommand "remove"`},
		{[]string{"login"}, "usage: p2chat login NAME"},
		{[]string{"login", "a", "b"}, "usage: p2chat login NAME"},
		{[]string{"whoami", "extra"}, "usage: p2chat whoami"},
		{[]string{"--bogus", "whoami"}, "-bogus"},
		{[]string{"login", "alice", "--bogus"}, "-bogus"},
		{[]string{"login", "alice", "--session"}, "flag needs an argument"},
		{[]string{"--server", "ftp://x", "whoami"}, "scheme must be http or https"},
		{[]string{"--as", "a@@b", "whoami"}, "--as"},
		{[]string{"help", "frobnicate"}, "unknown command"},
	}
	for _, u := range usage {
		t.Run(strings.Join(u.args, "_"), func(t *testing.T) {
			failed(t, p2chat(t, e, u.args...), 2, u.want)
		})
	}
	// No command at all: the usage goes to stderr, after the one error line's worth of help.
	if r := p2chat(t, e, []string{}...); r.code != 2 || !strings.Contains(r.stderr, "p2chat: no command given") || r.stdout != "" {
		t.Fatalf("no arguments: %+v", r)
	}
	// An unreachable server is an error (1) that says where p2chat looked.
	failed(t, p2chat(t, e, "register", "alice", "--password", password), 1, "is a server running at http://127.0.0.1:1")
}

// TestGlobalsFromEnvAndFlags: flags win over the environment, the environment over defaults, and
// the keystore defaults to the XDG config directory.
func TestGlobalsFromEnvAndFlags(t *testing.T) {
	parse := func(e env, args ...string) *Main {
		t.Helper()
		m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: e.get}
		if err := m.ParseFlags(context.Background(), args); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := parse(env{}, "whoami"); m.Server != defaultServer || m.Dir != "" || m.As != "" {
		t.Fatalf("defaults: %+v", m)
	}
	e := env{"P2CHAT_SERVER": "http://env:1", "P2CHAT_DIR": "/env", "P2CHAT_AS": "env@a.test"}
	if m := parse(e, "whoami"); m.Server != "http://env:1" || m.Dir != "/env" || m.As != "env@a.test" {
		t.Fatalf("env: %+v", m)
	}
	m := parse(e, "--server", "http://flag:1", "whoami", "--dir", "/flag", "--as", "flag@a.test")
	if m.Server != "http://flag:1" || m.Dir != "/flag" || m.As != "flag@a.test" {
		t.Fatalf("flags: %+v", m)
	}

	for _, c := range []struct {
		env  env
		want string
	}{
		{env{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/p2chat"},
		{env{"XDG_CONFIG_HOME": "relative", "HOME": "/home/u"}, "/home/u/.config/p2chat"},
		{env{"HOME": "/home/u"}, "/home/u/.config/p2chat"},
	} {
		if got, err := parse(c.env, "whoami").dir(); err != nil || got != c.want {
			t.Fatalf("dir with %v = %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	if _, err := parse(env{}, "whoami").dir(); err == nil {
		t.Fatal("dir without HOME: no error")
	}
}
