package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
)

// TestKeyPackageDirectory runs the KeyPackage directory against the real server binary: two
// sessions of one actor upload, another actor claims one per session until only the last-resort
// ones are left, the owner hears LOW_KEY_PACKAGES, the secrets survive a new Client on the same
// keystore, and every malformed or unbound upload is refused with its code and stores nothing.
func TestKeyPackageDirectory(t *testing.T) {
	base := startTestServer(t, "-data-dir", t.TempDir(), "-domain", "a.test", "-store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	c := newClient(t, base, dir)
	for _, name := range []string{"alice", "bob", "carol"} {
		if _, err := c.Register(ctx, name, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	login := func(name, session string) (*Session, *MLS) {
		t.Helper()
		s, _, m := mlsLogin(t, ctx, c, name, session, false, 0, ChatOptions{})
		return s, m
	}
	laptopS, laptop := login("alice", "laptop")
	phoneS, phone := login("alice", "phone")
	_, bob := login("bob", "desk")
	login("carol", "desk") // a session, but no KeyPackages

	g, err := c.Connect(ctx, laptopS, GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	waitChatEvent(t, g, func(ev Event) bool { return ev.Ready != nil })

	if st, err := laptop.UploadKeyPackages(ctx, 3, true); err != nil || st != (KeyPackageStock{OneTime: 3, LastResort: true, Low: true}) {
		t.Fatalf("laptop upload: %+v %v", st, err)
	}
	if st, err := phone.UploadKeyPackages(ctx, 1, true); err != nil || st.OneTime != 1 || !st.LastResort {
		t.Fatalf("phone upload: %+v %v", st, err)
	}

	alice := identity.FID{Local: "alice", Domain: "a.test"}
	seen := map[string]bool{}
	for round := range 5 {
		got, err := bob.ClaimKeyPackages(ctx, alice)
		if err != nil {
			t.Fatalf("claim %d: %v", round, err)
		}
		if len(got) != 2 || got[0].SessionID != "laptop" || got[1].SessionID != "phone" {
			t.Fatalf("claim %d: %+v", round, got)
		}
		if want := round >= 3; got[0].LastResort != want {
			t.Fatalf("claim %d: laptop last resort %v, want %v", round, got[0].LastResort, want)
		}
		if want := round >= 1; got[1].LastResort != want {
			t.Fatalf("claim %d: phone last resort %v, want %v", round, got[1].LastResort, want)
		}
		for _, k := range got {
			if seen[string(k.KeyPackage)] && !k.LastResort {
				t.Fatalf("claim %d: a one-time KeyPackage of %s handed out twice", round, k.SessionID)
			}
			seen[string(k.KeyPackage)] = true
		}
	}
	if st, err := laptop.Stock(ctx); err != nil || st != (KeyPackageStock{LastResort: true, LastResortUsed: true, Low: true}) {
		t.Fatalf("laptop stock after the claims: %+v %v", st, err)
	}
	var lowDispatch *Dispatch
	waitChatEvent(t, g, func(ev Event) bool {
		if ev.Dispatch == nil || ev.Dispatch.Type != EventLowKeyPackages {
			return false
		}
		v, err := ev.Dispatch.Decode()
		low := v.(*LowKeyPackages)
		lowDispatch = ev.Dispatch
		return err == nil && low.SessionID == "laptop" && low.LastResortUsed
	})
	// Handed to the laptop's SDK, the notice tops its stock up and replaces the used last resort;
	// the phone's SDK leaves the laptop's notice alone.
	if evs, err := phone.Handle(ctx, lowDispatch); err != nil || evs != nil {
		t.Fatalf("the phone's SDK on the laptop's notice: %v %v", evs, err)
	}
	if st, _ := phone.Stock(ctx); st.OneTime != 0 {
		t.Fatalf("the phone uploaded on the laptop's notice: %+v", st)
	}
	if _, err := laptop.Handle(ctx, lowDispatch); err != nil {
		t.Fatal(err)
	}
	if st, err := laptop.Stock(ctx); err != nil || st != (KeyPackageStock{OneTime: 20, LastResort: true}) {
		t.Fatalf("laptop stock after replenishing: %+v %v", st, err)
	}

	// The secrets are on disk: a new Client on the same keystore has all of the laptop's (the
	// four first uploaded, the 21 of the replenishing).
	again, err := newClient(t, base, dir).Chat(laptopS, ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := again.MLS(); err != nil || len(m.KeyPackageSecrets()) != 4+21 {
		t.Fatalf("reloaded secrets: %d, %v", len(m.KeyPackageSecrets()), err)
	}

	// Bad uploads, each as the laptop: the status and code, and nothing stored.
	fresh := func(s mls.Signer, life time.Duration) []byte {
		msg, _, err := mls.NewKeyPackage(s, mls.DefaultSuite, life)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	signer := func(s *Session) mls.Signer {
		return mls.Signer{Credential: mls.Credential{FID: s.FID.String(), Session: s.SessionID}, Key: s.Key}
	}
	good := fresh(signer(laptopS), KeyPackageLifetime)
	edit := func(f func(b []byte) []byte) string {
		return base64.RawURLEncoding.EncodeToString(f(bytes.Clone(good)))
	}
	enc := base64.RawURLEncoding.EncodeToString
	otherKey := signer(laptopS)
	otherKey.Key = phoneS.Key
	many := make([]string, 101)
	for i := range many {
		many[i] = enc(good)
	}
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"empty upload", map[string]any{"key_packages": []string{}}, 400, "P2_MLS_BAD_REQUEST"},
		{"unknown field", map[string]any{"key_packages": []string{enc(good)}, "x": 1}, 400, "P2_MLS_BAD_REQUEST"},
		{"not base64url", map[string]any{"key_packages": []string{"!!"}}, 400, "P2_MLS_BAD_REQUEST"},
		{"padded base64", map[string]any{"key_packages": []string{base64.URLEncoding.EncodeToString(good)}}, 400, "P2_MLS_BAD_REQUEST"},
		{"oversize", map[string]any{"key_packages": []string{enc(make([]byte, 5000))}}, 400, "P2_MLS_BAD_REQUEST"},
		{"too many", map[string]any{"key_packages": many}, 400, "P2_MLS_BAD_REQUEST"},
		{"not an MLSMessage", map[string]any{"key_packages": []string{edit(func(b []byte) []byte { return b[4:] })}}, 400, "P2_MLS_MALFORMED"},
		{"a Welcome header", map[string]any{"key_packages": []string{edit(func(b []byte) []byte { b[3] = 3; return b })}}, 400, "P2_MLS_MALFORMED"},
		{"truncated", map[string]any{"key_packages": []string{edit(func(b []byte) []byte { return b[:len(b)-1] })}}, 400, "P2_MLS_MALFORMED"},
		{"trailing byte", map[string]any{"key_packages": []string{edit(func(b []byte) []byte { return append(b, 0) })}}, 400, "P2_MLS_MALFORMED"},
		{"other cipher suite", map[string]any{"key_packages": []string{edit(func(b []byte) []byte { b[7] = 2; return b })}}, 400, "P2_MLS_UNSUPPORTED_SUITE"},
		{"bad signature", map[string]any{"key_packages": []string{edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })}}, 400, "P2_MLS_BAD_SIGNATURE"},
		{"valid for too long", map[string]any{"key_packages": []string{enc(fresh(signer(laptopS), 200*24*time.Hour))}}, 400, "P2_MLS_BAD_LIFETIME"},
		{"already expired", map[string]any{"key_packages": []string{enc(fresh(signer(laptopS), -30*time.Minute))}}, 400, "P2_MLS_BAD_LIFETIME"},
		{"another actor's KeyPackage", map[string]any{"key_packages": []string{enc(fresh(signer(phoneS), KeyPackageLifetime))}}, 400, "P2_MLS_NOT_BOUND"},
		{"right name, another session's key", map[string]any{"key_packages": []string{enc(fresh(otherKey, KeyPackageLifetime))}}, 400, "P2_MLS_NOT_BOUND"},
		{"the same KeyPackage twice", map[string]any{"key_packages": []string{enc(good), enc(good)}}, 409, "P2_MLS_DUPLICATE"},
		{"one good, one bad", map[string]any{"key_packages": []string{enc(good), "!!"}}, 400, "P2_MLS_BAD_REQUEST"},
	}
	ch, _ := c.Chat(laptopS, ChatOptions{})
	before, _ := laptop.Stock(ctx)
	for _, tc := range cases {
		err := ch.write(ctx, http.MethodPost, mlsPrefix+"/key-packages", tc.body, nil)
		var api *APIError
		if !errors.As(err, &api) || api.Status != tc.status || api.Code != tc.code {
			t.Errorf("%s: got %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}
	if after, _ := laptop.Stock(ctx); after != before {
		t.Fatalf("bad uploads changed the stock: %+v -> %+v", before, after)
	}

	// Claims that find nothing.
	for _, tc := range []struct {
		name, path string
		status     int
		code       string
	}{
		{"an actor without KeyPackages", "/actors/carol@a.test/key-packages/claim", 404, "P2_MLS_NO_KEY_PACKAGES"},
		{"an actor of another server", "/actors/dave@b.test/key-packages/claim", 404, "P2_CORE_ACTOR_NOT_FOUND"},
		{"not a FID", "/actors/nobody/key-packages/claim", 400, "P2_CORE_INVALID_FID"},
		{"no such route", "/key-packages/x", 404, "P2_MLS_NOT_FOUND"},
	} {
		err := ch.write(ctx, http.MethodPost, mlsPrefix+tc.path, nil, nil)
		var api *APIError
		if !errors.As(err, &api) || api.Status != tc.status || api.Code != tc.code {
			t.Errorf("%s: got %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}
	noAuth, _ := http.Post(base+mlsPrefix+"/key-packages", "application/json", strings.NewReader(`{}`))
	if noAuth == nil || noAuth.StatusCode != http.StatusUnauthorized {
		t.Fatalf("upload without a token: %v", noAuth)
	}
	noAuth.Body.Close()
}
