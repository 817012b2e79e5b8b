package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/polyproto-chat/server/events"
)

// TestMain lets the test binary stand in for the real one: with P2CHAT_TEST_MAIN set it runs
// main() with the given arguments, so process-level behaviour (signals, exit codes) is tested
// on the same code without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("P2CHAT_TEST_MAIN") != "" {
		os.Args = append([]string{"polyproto-chat"}, strings.Fields(os.Getenv("P2CHAT_TEST_MAIN"))...)
		main()
	}
	os.Exit(m.Run())
}

func noEnv(string) string { return "" }

// start runs a server on 127.0.0.1:0 in dir until the test ends; args are further flags.
func start(t *testing.T, dir string, args ...string) (*Server, func()) {
	t.Helper()
	cfg, _, err := parseFlags("test", append([]string{"-listen", "127.0.0.1:0", "-data-dir", dir}, args...), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Open(ctx, cfg, newLogger(io.Discard, "text", 0))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	return s, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServeHealthReadyMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, stop := start(t, dir)
	defer stop()
	base := "http://" + s.Addr()
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "alive") {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after 5s: %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.store.Append(context.Background(), "test-1", events.NoStream{}, events.Event{Type: "test.E", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 || !strings.Contains(body, `p2chat_events_appended_total{store="embedded"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d, missing the append counter or Go metrics", code)
	}
	code, body = get(t, base+"/no/such/route")
	var e errorBody
	if code != 404 || json.Unmarshal([]byte(body), &e) != nil || e.Code != "NOT_FOUND" || e.Message == "" {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	for _, sub := range []string{"events", "views"} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			t.Fatalf("data dir lacks %s: %v", sub, err)
		}
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	s, stop := start(t, dir)
	for i := range 5 {
		var exp events.ExpectedRevision = events.Exact(uint64(i - 1))
		if i == 0 {
			exp = events.NoStream{}
		}
		if _, err := s.store.Append(context.Background(), "test-restart", exp, events.Event{Type: "test.E", Data: fmt.Appendf(nil, "e%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	s, stop = start(t, dir)
	defer stop()
	got, err := s.store.ReadStream(context.Background(), "test-restart", events.Forwards, 0, 100)
	if err != nil || len(got) != 5 || string(got[4].Data) != "e4" {
		t.Fatalf("after restart: %d events, err %v", len(got), err)
	}
}

func TestBadStartExitsWithOneLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad log format", []string{"-log-format", "xml"}, 2, "-log-format"},
		{"bad listen", []string{"-listen", "nope"}, 2, "-listen"},
		{"bad domain", []string{"-domain", "Not_A.Domain"}, 2, "-domain"},
		{"bad store", []string{"-store", "postgres://x"}, 2, "-store"},
		{"bad auth rate", []string{"-auth-rate", "0"}, 2, "-auth-rate"},
		{"bad resume limit", []string{"-resume-limit", "0"}, 2, "-resume-limit"},
		{"stray argument", []string{"serve", "extra"}, 2, "unexpected argument"},
		{"data dir under a file", []string{"-data-dir", filepath.Join(file, "data"), "-listen", "127.0.0.1:0"}, 1, "data dir"},
		{"listen address taken", []string{"-data-dir", t.TempDir(), "-listen", "256.0.0.1:1"}, 1, "listen"},
		{"rebuild unknown projection", []string{"projections", "rebuild", "nope", "-data-dir", t.TempDir()}, 1, "nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), c.args, io.Discard, &stderr, noEnv)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if code != c.code || !strings.HasPrefix(last, "polyproto-chat: ") || !strings.Contains(last, c.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and a last line containing %q", code, stderr.String(), c.code, c.want)
			}
			if c.code == 2 && len(lines) != 1 {
				t.Fatalf("a usage error must be one line, got:\n%s", stderr.String())
			}
		})
	}
}

func TestSecondServerOnSameDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	_, stop := start(t, dir)
	defer stop()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"-data-dir", dir, "-listen", "127.0.0.1:0"}, io.Discard, &stderr, noEnv)
	if code != 1 || !strings.Contains(stderr.String(), "another server") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}

func TestFlagsFallBackToEnv(t *testing.T) {
	env := map[string]string{"P2CHAT_LISTEN": "127.0.0.1:9999", "P2CHAT_DATA_DIR": "/x", "P2CHAT_STORE": "memory",
		"P2CHAT_DOMAIN": "chat.example.org", "P2CHAT_LOG_FORMAT": "json", "P2CHAT_LOG_LEVEL": "debug"}
	cfg, _, err := parseFlags("t", nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.DataDir != "/x" || cfg.Store != "memory" || cfg.Domain != "chat.example.org" || cfg.LogFormat != "json" || cfg.LogLevel.String() != "DEBUG" {
		t.Fatalf("env not used: %+v", cfg)
	}
	cfg, _, err = parseFlags("t", []string{"-domain", "other.example"}, func(k string) string { return env[k] })
	if err != nil || cfg.Domain != "other.example" {
		t.Fatalf("a flag must win over env: %+v %v", cfg, err)
	}
	cfg, _, _ = parseFlags("t", nil, noEnv)
	if cfg.Listen != "127.0.0.1:8080" || cfg.DataDir != "./data" || cfg.Store != "" || cfg.Domain != "localhost" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestSIGTERMShutsDownCleanly runs the real main in a child process on the default store,
// waits for it to serve, sends SIGTERM and expects exit 0 and a closed store that opens again.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "P2CHAT_TEST_MAIN=-listen 127.0.0.1:0 -data-dir "+dir)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		addr := waitForLog(t, stderr, regexp.MustCompile(`serving" addr=(\S+)`))
		if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
			t.Fatalf("healthz %d", code)
		}
		_ = cmd.Process.Signal(sig)
		go io.Copy(io.Discard, stderr)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("after %v: %v", sig, err)
		}
	}
}

func waitForLog(t *testing.T, r io.Reader, re *regexp.Regexp) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				return
			}
		}
	}()
	select {
	case s := <-found:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("no log line matching %v within 5s", re)
		return ""
	}
}
