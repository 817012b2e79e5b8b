package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// twoServers starts home server A (domain a.test, whose cert statuses may be cached for one
// second) and server B (domain b.test), which reaches A through --peers instead of DNS. A's
// root is created a day in the past so the test can mint an expired cert with A's own key.
func twoServers(t *testing.T) (a, b *Server, aRoot *identity.Root) {
	t.Helper()
	aDir := t.TempDir()
	aRoot, err := identity.LoadOrCreateRoot(filepath.Join(aDir, "identity"), "a.test", time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a, stopA := start(t, aDir, "-domain", "a.test", "-cert-cache-ttl", "1s")
	t.Cleanup(stopA)
	b, stopB := start(t, t.TempDir(), "-domain", "b.test", "-peers", "a.test=http://"+a.Addr())
	t.Cleanup(stopB)
	return a, b, aRoot
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestForeignActorLogin is the end-to-end path of issue 3: an actor registered on A logs in on B
// with its ID-Cert; forged, untrusted, expired and replayed answers are refused; revoking the cert
// on A makes B refuse it once the status A vouched for has expired.
func TestForeignActorLogin(t *testing.T) {
	a, b, aRoot := twoServers(t)
	aURL, bURL := "http://"+a.Addr(), "http://"+b.Addr()
	alice, err := client.New(aURL, client.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Register(ctx(t), "alice", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	home, err := alice.Login(ctx(t), "alice", "correct horse battery", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if home.FID.String() != "alice@a.test" || home.Cert.SessionID != "laptop" {
		t.Fatalf("login gave %s / %s", home.FID, home.Cert.SessionID)
	}

	// The foreign login and a use of its token on B.
	onB, err := alice.LoginForeign(ctx(t), home, bURL)
	if err != nil {
		t.Fatalf("foreign login: %v", err)
	}
	sessions, err := alice.Sessions(ctx(t), onB)
	if err != nil || len(sessions) != 1 || sessions[0].SessionID != "laptop" {
		t.Fatalf("sessions on B: %+v %v", sessions, err)
	}

	t.Run("forged signature", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		code := answer(t, bURL, other, home.Cert.Raw, "")
		if code != "P2_CORE_INVALID_CHALLENGE_ANSWER" {
			t.Fatalf("got %s", code)
		}
	})
	t.Run("cert from another root", func(t *testing.T) {
		rogue, err := identity.NewRoot("a.test", time.Now(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		key, cert := mint(t, rogue, "alice@a.test", "rogue", time.Now(), time.Now().Add(time.Hour))
		if code := answer(t, bURL, key, cert.Raw, ""); code != "P2_CORE_CERT_UNTRUSTED" {
			t.Fatalf("got %s", code)
		}
	})
	t.Run("expired cert", func(t *testing.T) {
		key, cert := mint(t, aRoot, "alice@a.test", "old", time.Now().Add(-23*time.Hour), time.Now().Add(-time.Hour))
		if code := answer(t, bURL, key, cert.Raw, ""); code != "P2_CORE_CERT_EXPIRED" {
			t.Fatalf("got %s", code)
		}
	})
	t.Run("replayed challenge", func(t *testing.T) {
		ch := challenge(t, bURL)
		if code := answer(t, bURL, home.Key, home.Cert.Raw, ch); code != "" {
			t.Fatalf("first use of the challenge refused: %s", code)
		}
		if code := answer(t, bURL, home.Key, home.Cert.Raw, ch); code != "P2_CORE_CHALLENGE_INVALID" {
			t.Fatalf("replay got %s", code)
		}
	})

	// Revocation on A reaches B once the one-second status window has passed.
	if err := alice.Revoke(ctx(t), home, "correct horse battery", "laptop"); err != nil {
		t.Fatalf("revoke on A: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	_, err = alice.Sessions(ctx(t), onB)
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Status != http.StatusUnauthorized {
		t.Fatalf("B still accepts a cert revoked on A: %v", err)
	}
	// And a fresh foreign login with the revoked cert is refused outright.
	if code := answer(t, bURL, home.Key, home.Cert.Raw, ""); code != "P2_CORE_CERT_REVOKED" {
		t.Fatalf("login with a revoked cert: %s", code)
	}
}

// mint issues a cert for fid with root, bypassing the server: for certs the server would never issue.
func mint(t *testing.T, root *identity.Root, fid, session string, notBefore, notAfter time.Time) (ed25519.PrivateKey, *identity.IDCert) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	f, err := identity.ParseFID(fid)
	if err != nil {
		t.Fatal(err)
	}
	der, err := identity.NewCSR(key, f, session)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := identity.ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := root.Issue(csr, identity.NewSerial(), notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func challenge(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/.p2/core/v1/challenge")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Challenge string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Challenge) < 32 {
		t.Fatalf("challenge: %v %q", err, c.Challenge)
	}
	return c.Challenge
}

// answer posts a signed challenge (a fresh one if ch is empty) and returns the error code, "" on success.
func answer(t *testing.T, base string, key ed25519.PrivateKey, certDER []byte, ch string) string {
	t.Helper()
	if ch == "" {
		ch = challenge(t, base)
	}
	cert, err := identity.ParseIDCert(certDER)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{
		"challenge": ch, "signature": hex.EncodeToString(ed25519.Sign(key, []byte(ch))), "idCert": cert.PEM(),
	})
	resp, err := http.Post(base+"/.p2/core/v1/session/auth", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return ""
	}
	var e struct{ Code, Message string }
	_ = json.NewDecoder(resp.Body).Decode(&e)
	t.Logf("%d %s: %s", resp.StatusCode, e.Code, e.Message)
	return e.Code
}
