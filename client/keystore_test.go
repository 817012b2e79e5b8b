package client

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeystoreRoundTrip(t *testing.T) {
	root := testRoot(t, "example.com")
	fid := mustFID(t, "alice@example.com")
	dir := filepath.Join(t.TempDir(), "keys[1]") // pattern characters in Dir must not matter
	c := newClient(t, "https://example.com", dir)

	home := testSession(t, root, fid, "laptop", "https://example.com")
	foreign := *home
	foreign.Server, foreign.Token = "http://127.0.0.1:8443/chat", "foreign-token"
	for _, s := range []*Session{home, &foreign} {
		if err := c.keys.save(s); err != nil {
			t.Fatalf("save: %v", err)
		}
	}

	sdir := filepath.Join(dir, "alice@example.com", "example.com", "laptop")
	modes := map[string]fs.FileMode{
		filepath.Join(dir, "alice@example.com"):                0o700 | fs.ModeDir,
		filepath.Join(dir, "alice@example.com", "example.com"): 0o700 | fs.ModeDir,
		sdir:                            0o700 | fs.ModeDir,
		filepath.Join(sdir, "key.pem"):  0o600,
		filepath.Join(sdir, "token"):    0o600,
		filepath.Join(sdir, "cert.pem"): 0o644,
		filepath.Join(sdir, "server"):   0o644,
	}
	for path, want := range modes {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
		}
	}
	entries, _ := os.ReadDir(sdir)
	if len(entries) != 4 {
		t.Errorf("session directory holds %d entries (temporary files left?), want 4", len(entries))
	}
	key, _ := os.ReadFile(filepath.Join(sdir, "key.pem"))
	if !strings.HasPrefix(string(key), "-----BEGIN PRIVATE KEY-----") {
		t.Errorf("key.pem is not PKCS#8 PEM: %.30q", key)
	}

	for _, server := range []string{"https://example.com/", "example.com"} {
		got, err := c.LoadSession(fid, server, "laptop")
		if err != nil {
			t.Fatalf("LoadSession(%q): %v", server, err)
		}
		sameSession(t, got, home)
	}

	all, err := c.StoredSessions()
	if err != nil || len(all) != 2 {
		t.Fatalf("StoredSessions = %d sessions, %v; want 2", len(all), err)
	}
	// Sorted by host: "127.0.0.1:8443" before "example.com".
	sameSession(t, all[0], &foreign)
	sameSession(t, all[1], home)

	// Saving again replaces the token in place.
	home.Token = "rotated"
	if err := c.keys.save(home); err != nil {
		t.Fatal(err)
	}
	if got, err := c.LoadSession(fid, "example.com", "laptop"); err != nil || got.Token != "rotated" {
		t.Errorf("after re-save: %+v, %v", got, err)
	}
}

func sameSession(t *testing.T, got, want *Session) {
	t.Helper()
	if got.FID != want.FID || got.SessionID != want.SessionID || !got.Key.Equal(want.Key) ||
		string(got.Cert.Raw) != string(want.Cert.Raw) || got.Token != want.Token || got.Server != want.Server {
		t.Errorf("got session %s/%s at %s (token %q), want %s/%s at %s (token %q)",
			got.FID, got.SessionID, got.Server, got.Token, want.FID, want.SessionID, want.Server, want.Token)
	}
}

// Damaged or mixed-up files are refused on load; StoredSessions still returns the good ones.
func TestKeystoreRefusesInconsistentSessions(t *testing.T) {
	root := testRoot(t, "example.com")
	fid := mustFID(t, "alice@example.com")
	dir := t.TempDir()
	c := newClient(t, "https://example.com", dir)
	good := testSession(t, root, fid, "good", "https://example.com")
	a := testSession(t, root, fid, "a", "https://example.com")
	b := testSession(t, root, fid, "b", "https://example.com")
	for _, s := range []*Session{good, a, b} {
		if err := c.keys.save(s); err != nil {
			t.Fatal(err)
		}
	}
	sessionDir := func(sid string) string { return filepath.Join(dir, "alice@example.com", "example.com", sid) }

	// a gets b's key: the cert no longer certifies the key.
	bKey, _ := os.ReadFile(filepath.Join(sessionDir("b"), "key.pem"))
	if err := os.WriteFile(filepath.Join(sessionDir("a"), "key.pem"), bKey, 0o600); err != nil {
		t.Fatal(err)
	}
	// b is moved under another session id: the cert names "b", the directory "moved".
	if err := os.Rename(sessionDir("b"), sessionDir("moved")); err != nil {
		t.Fatal(err)
	}
	// A directory without a key is not a session and is skipped.
	if err := os.MkdirAll(filepath.Join(dir, "alice@example.com", "example.com", "empty"), 0o700); err != nil {
		t.Fatal(err)
	}

	if _, err := c.LoadSession(fid, "example.com", "a"); err == nil {
		t.Error("loaded a session whose cert does not certify its key")
	}
	if _, err := c.LoadSession(fid, "example.com", "moved"); err == nil {
		t.Error("loaded a session whose cert names another session id")
	}
	all, err := c.StoredSessions()
	if len(all) != 1 || all[0].SessionID != "good" {
		t.Errorf("StoredSessions returned %d sessions, want only \"good\"", len(all))
	}
	if err == nil || !strings.Contains(err.Error(), "/a/") || !strings.Contains(err.Error(), "/moved/") {
		t.Errorf("StoredSessions error %v, want one naming a and moved", err)
	}
}

func TestKeystorePathsStayInsideDir(t *testing.T) {
	root := testRoot(t, "example.com")
	fid := mustFID(t, "alice@example.com")
	c := newClient(t, "https://example.com", t.TempDir())
	for _, tt := range []struct{ server, sid string }{
		{"https://example.com", ".."},
		{"https://example.com", "a/b"},
		{"https://example.com", "."},
		{"..", "x"},
		{"a/b", "x"},
		{"", "x"},
	} {
		if _, err := c.keys.sessionDir(fid, tt.server, tt.sid); err == nil {
			t.Errorf("sessionDir(%q, %q) accepted", tt.server, tt.sid)
		}
	}
	s := testSession(t, root, fid, "x", "https://example.com")
	s.SessionID = "../../escape"
	if err := c.keys.save(s); err == nil {
		t.Error("saved a session with a traversing session id")
	}
}

func TestNoKeystore(t *testing.T) {
	c := newClient(t, "https://example.com", "")
	if _, err := c.LoadSession(mustFID(t, "alice@example.com"), "example.com", "x"); err == nil {
		t.Error("LoadSession without a keystore succeeded")
	}
	if all, err := c.StoredSessions(); len(all) != 0 || err != nil {
		t.Errorf("StoredSessions without a keystore = %v, %v", all, err)
	}
	c = newClient(t, "https://example.com", filepath.Join(t.TempDir(), "missing"))
	if all, err := c.StoredSessions(); len(all) != 0 || err != nil {
		t.Errorf("StoredSessions of a missing directory = %v, %v", all, err)
	}
}
