package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/internal/servertest"
	"github.com/polyproto-chat/server/mls"
)

// TestGroupRefusesUnboundMember: a member's client checks every leaf against the ID-Certs of the
// session it names, at that actor's home server, without trusting the group's server. Bob is an
// actor of b.test logged in at a.test, where the group lives; a.test cannot check his
// KeyPackages (they are b.test's to vouch for), so a leaf naming a session of bob with a key
// b.test never certified gets into the group: the SDK of the adder refuses to make that commit,
// and when someone makes it anyway, the other members' SDKs stop using the group.
func TestGroupRefusesUnboundMember(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin, err := servertest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := servertest.Start(t, bin, "-data-dir", t.TempDir(), "-domain", "b.test", "-store", "memory")
	a := servertest.Start(t, bin, "-data-dir", t.TempDir(), "-domain", "a.test", "-store", "memory", "-peers", "b.test="+b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resolve := func(_ context.Context, domain string) (string, error) {
		if domain == "b.test" {
			return b, nil
		}
		return "", nil
	}
	local := func(name string) *groupMember {
		t.Helper()
		c := newClient(t, a, t.TempDir())
		s, ch, m := mlsLogin(t, ctx, c, name, "desk", true, 3, ChatOptions{Resolve: resolve})
		return connectMember(t, ctx, c, s, ch, m)
	}
	alice, carol := local("alice"), local("carol")

	// Bob, at home on b.test, logged in at a.test too.
	cb := newClient(t, b, t.TempDir())
	if _, err := cb.Register(ctx, "bob", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	bobHome, err := cb.Login(ctx, "bob", "correct horse battery", "desk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cb.LoginForeign(ctx, bobHome, a); err != nil {
		t.Fatal(err)
	}
	kp := func(session string, key ed25519.PrivateKey) []byte {
		msg, _, err := mls.NewKeyPackage(mls.Signer{Credential: mls.Credential{FID: "bob@b.test", Session: session}, Key: key}, mls.DefaultSuite, KeyPackageLifetime)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	_, stranger, _ := ed25519.GenerateKey(nil)

	grp, err := alice.m.CreateGroup(ctx, GroupGroup, "mixed", []identity.FID{carol.s.FID})
	if err != nil {
		t.Fatal(err)
	}
	carol.await(t, "the Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined })

	// Bob's real KeyPackage (his session's key, which b.test certified): added, and carol's
	// SDK checks him at b.test and carries on.
	if err := alice.m.AddDevice(ctx, grp.ID, kp("desk", bobHome.Key)); err != nil {
		t.Fatalf("adding bob's real KeyPackage: %v", err)
	}
	carol.await(t, "bob's add", func(e GroupEvent) bool { return e.Type == GroupCommit })

	// A KeyPackage naming bob's session with another key: alice's SDK refuses to add it.
	forged := kp("desk2", stranger)
	if err := alice.m.AddDevice(ctx, grp.ID, forged); !errors.Is(err, ErrUnboundMember) {
		t.Fatalf("alice adds a forged KeyPackage: %v", err)
	}
	// Made anyway, past the SDK: a.test takes it (it cannot check b.test's actors), carol does not.
	alice.gate.Lock()
	g, err := alice.m.MLSGroup(grp.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Commit([][]byte{forged}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = alice.ch.write(ctx, "POST", "/groups/"+grp.ID.String()+"/commits", map[string]string{
		"commit": base64.RawURLEncoding.EncodeToString(c.Message), "welcome": base64.RawURLEncoding.EncodeToString(c.Welcome)}, nil)
	g.Confirm()
	alice.gate.Unlock()
	if err != nil {
		t.Fatalf("the server refused the forged add: %v", err)
	}
	select {
	case err := <-carol.errs:
		if !errors.Is(err, ErrUnboundMember) {
			t.Fatalf("carol's SDK on the forged add: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("carol's SDK took the forged member without a word")
	}
	if _, err := carol.m.Send(ctx, grp.ID, []byte("still there?")); !errors.Is(err, ErrUnboundMember) {
		t.Fatalf("carol sends into a group with an impostor: %v", err)
	}
}
