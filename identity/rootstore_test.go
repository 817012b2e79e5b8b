package identity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "identity")
	first, err := LoadOrCreateRoot(dir, "polyphony.chat", t0)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "root.key"): 0o600, filepath.Join(dir, "root.pem"): 0o644} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, info.Mode(), want)
		}
	}
	if got := first.Cert.NotAfter.Sub(first.Cert.NotBefore); got != 2*365*24*time.Hour {
		t.Errorf("root validity %s", got)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("root.key is not PKCS#8 PEM: %q", keyPEM[:20])
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want root.key and root.pem only", len(entries))
	}

	second, err := LoadOrCreateRoot(dir, "polyphony.chat", t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !second.Key.Equal(first.Key) || !bytes.Equal(second.Cert.Raw, first.Cert.Raw) {
		t.Error("second call returned a different root")
	}

	_, err = LoadOrCreateRoot(dir, "example.com", t0)
	if err == nil || !strings.Contains(err.Error(), `"polyphony.chat"`) || !strings.Contains(err.Error(), `"example.com"`) {
		t.Errorf("other domain: %v, want an error naming both domains", err)
	}
	if _, err := LoadOrCreateRoot(dir, "polyphony.chat", t0.Add(3*365*24*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired root: %v, want ErrExpired", err)
	}
	if _, err := LoadOrCreateRoot(dir, "Polyphony.chat", t0); !errors.Is(err, ErrInvalidFID) {
		t.Errorf("bad domain: %v", err)
	}
}

func TestLoadOrCreateRootRefusesBrokenState(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateRoot(dir, "polyphony.chat", t0); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if _, err := LoadOrCreateRoot(other, "polyphony.chat", t0); err != nil {
		t.Fatal(err)
	}

	t.Run("key of another root", func(t *testing.T) {
		mixed := t.TempDir()
		copyFile(t, filepath.Join(dir, "root.key"), filepath.Join(mixed, "root.key"))
		copyFile(t, filepath.Join(other, "root.pem"), filepath.Join(mixed, "root.pem"))
		if _, err := LoadOrCreateRoot(mixed, "polyphony.chat", t0); err == nil || !strings.Contains(err.Error(), "does not belong") {
			t.Errorf("mismatched key: %v", err)
		}
	})
	t.Run("key without certificate", func(t *testing.T) {
		lone := t.TempDir()
		copyFile(t, filepath.Join(dir, "root.key"), filepath.Join(lone, "root.key"))
		if _, err := LoadOrCreateRoot(lone, "polyphony.chat", t0); err == nil || !strings.Contains(err.Error(), "refusing to replace") {
			t.Errorf("key only: %v", err)
		}
		if _, err := os.Stat(filepath.Join(lone, "root.pem")); !os.IsNotExist(err) {
			t.Error("a certificate was created next to an existing key")
		}
	})
	t.Run("certificate without key", func(t *testing.T) {
		lone := t.TempDir()
		copyFile(t, filepath.Join(dir, "root.pem"), filepath.Join(lone, "root.pem"))
		if _, err := LoadOrCreateRoot(lone, "polyphony.chat", t0); err == nil || !strings.Contains(err.Error(), "lost") {
			t.Errorf("certificate only: %v", err)
		}
	})
	t.Run("garbage key", func(t *testing.T) {
		bad := t.TempDir()
		copyFile(t, filepath.Join(dir, "root.pem"), filepath.Join(bad, "root.pem"))
		if err := os.WriteFile(filepath.Join(bad, "root.key"), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateRoot(bad, "polyphony.chat", t0); err == nil {
			t.Error("garbage key accepted")
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
