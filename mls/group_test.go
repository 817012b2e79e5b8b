package mls

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

func newSigner(t testing.TB, fid, session string) Signer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{Credential: Credential{FID: fid, Session: session}, Key: key}
}

func mustKP(t testing.TB, s Signer, suite Suite) ([]byte, KeyPackageSecrets) {
	t.Helper()
	kp, sec, err := NewKeyPackage(s, suite, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return kp, sec
}

// TestGroupLifecycle walks one group through what the product does: create, add two members in one
// commit, messages every way, an empty commit, a removal after which the removed member can read
// nothing new, and a restart from saved state.
func TestGroupLifecycle(t *testing.T) {
	for _, suite := range []Suite{SuiteX25519AES128, SuiteX25519ChaCha} {
		alice, bob, carol := newSigner(t, "alice@a.test", "s1"), newSigner(t, "bob@b.test", "phone/1"), newSigner(t, "carol@a.test", "s9")
		ga, err := Create(alice, suite, []byte("g1@a.test"))
		if err != nil {
			t.Fatal(err)
		}
		bkp, bsec := mustKP(t, bob, suite)
		ckp, csec := mustKP(t, carol, suite)
		_, other := mustKP(t, bob, suite)
		c, err := ga.Commit([][]byte{bkp, ckp}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ga.Confirm()
		if c.Epoch != 0 || ga.Epoch() != 1 || c.Welcome == nil {
			t.Fatalf("commit epoch %d, group epoch %d", c.Epoch, ga.Epoch())
		}
		gb, used, err := Join(bob, c.Welcome, []KeyPackageSecrets{other, bsec})
		if err != nil || used != 1 {
			t.Fatalf("bob join: %v (used %d)", err, used)
		}
		gc, _, err := Join(carol, c.Welcome, []KeyPackageSecrets{csec})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ga.EpochAuthenticator(), gb.EpochAuthenticator()) || !bytes.Equal(ga.EpochAuthenticator(), gc.EpochAuthenticator()) {
			t.Fatal("epoch authenticators differ after the Welcome")
		}
		if ms := gb.Members(); len(ms) != 3 || ms[1].Credential != bob.Credential || !bytes.Equal(ms[1].SignatureKey, bob.Key.Public().(ed25519.PublicKey)) {
			t.Fatalf("members %+v", ms)
		}

		send := func(from *Group, text string, to ...*Group) {
			t.Helper()
			ct, err := from.Encrypt([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range to {
				r, err := g.Process(ct)
				if err != nil {
					t.Fatalf("%s: %v", text, err)
				}
				if r.Kind != KindApplication || string(r.Plaintext) != text || r.Sender != from.signer.Credential {
					t.Fatalf("%s: got %+v", text, r)
				}
			}
		}
		send(ga, "hello", gb, gc)
		send(gb, "from bob", ga, gc)

		// An empty commit by bob: a key update everybody follows.
		u, err := gb.Commit(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		gb.Confirm()
		for _, g := range []*Group{ga, gc} {
			if r, err := g.Process(u.Message); err != nil || r.Kind != KindCommit || r.Removed {
				t.Fatalf("update: %+v %v", r, err)
			}
		}

		// Alice removes carol; carol learns it and cannot read what follows.
		rm, err := ga.Commit(nil, []uint32{2})
		if err != nil {
			t.Fatal(err)
		}
		ga.Confirm()
		if r, err := gb.Process(rm.Message); err != nil || r.Removed {
			t.Fatalf("bob on remove: %+v %v", r, err)
		}
		if r, err := gc.Process(rm.Message); err != nil || !r.Removed {
			t.Fatalf("carol on her removal: %+v %v", r, err)
		}
		secret, _ := ga.Encrypt([]byte("after carol"))
		if _, err := gc.Process(secret); err == nil {
			t.Fatal("removed member decrypted a message of the next epoch")
		}
		if r, err := gb.Process(secret); err != nil || string(r.Plaintext) != "after carol" {
			t.Fatalf("bob: %+v %v", r, err)
		}

		// Restart: bob's state from bytes still reads alice.
		st, err := gb.State()
		if err != nil {
			t.Fatal(err)
		}
		gb2, err := Load(bob, st)
		if err != nil {
			t.Fatal(err)
		}
		send(ga, "after restart", gb2)
		send(gb2, "bob after restart", ga)
	}
}

// TestCommitConflict: two members commit in the same epoch; the delivery service takes alice's, bob
// discards his own and follows hers.
func TestCommitConflict(t *testing.T) {
	alice, bob := newSigner(t, "alice@a.test", "s1"), newSigner(t, "bob@a.test", "s1")
	ga, _ := Create(alice, DefaultSuite, []byte("g"))
	bkp, bsec := mustKP(t, bob, DefaultSuite)
	c, _ := ga.Commit([][]byte{bkp}, nil)
	ga.Confirm()
	gb, _, err := Join(bob, c.Welcome, []KeyPackageSecrets{bsec})
	if err != nil {
		t.Fatal(err)
	}
	winner, _ := ga.Commit(nil, nil)
	loser, err := gb.Commit(nil, nil)
	if err != nil || winner.Epoch != loser.Epoch {
		t.Fatalf("%v %d %d", err, winner.Epoch, loser.Epoch)
	}
	ga.Confirm()
	if _, err := gb.Process(winner.Message); !errors.Is(err, ErrGroup) {
		t.Fatalf("processing with a pending commit: %v", err)
	}
	if err := gb.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := gb.Process(winner.Message); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ga.EpochAuthenticator(), gb.EpochAuthenticator()) {
		t.Fatal("diverged after discard")
	}
	if _, err := ga.Process(loser.Message); err == nil {
		t.Fatal("alice processed the losing commit of an old epoch")
	}
}

// TestParseMessage reads, as the server would, the messages of a small group.
func TestParseMessage(t *testing.T) {
	now := time.Now()
	alice, bob := newSigner(t, "alice@a.test", "s1"), newSigner(t, "bob@a.test", "s1")
	ga, _ := Create(alice, DefaultSuite, []byte("grp"))
	bkp, bsec := mustKP(t, bob, DefaultSuite)
	c, _ := ga.Commit([][]byte{bkp}, nil)
	ga.Confirm()
	m, err := ParseMessage(c.Message, now)
	if err != nil {
		t.Fatal(err)
	}
	if m.Private || string(m.GroupID) != "grp" || m.Epoch != 0 || m.Content != ContentCommit || m.SenderLeaf != 0 ||
		m.Commit == nil || len(m.Commit.Adds) != 1 || m.Commit.Adds[0].Credential != bob.Credential || m.Commit.Other != 0 {
		t.Fatalf("add commit: %+v %+v", m, m.Commit)
	}
	refs, err := WelcomeRefs(c.Welcome)
	if err != nil || len(refs) != 1 || !bytes.Equal(refs[0], m.Commit.Adds[0].Ref) {
		t.Fatalf("welcome refs %x vs %x: %v", refs, m.Commit.Adds[0].Ref, err)
	}
	gb, _, _ := Join(bob, c.Welcome, []KeyPackageSecrets{bsec})
	ct, _ := gb.Encrypt([]byte("secret"))
	m, err = ParseMessage(ct, now)
	if err != nil || !m.Private || m.Epoch != 1 || m.Content != ContentApplication || bytes.Contains(ct, []byte("secret")) {
		t.Fatalf("application: %+v %v", m, err)
	}
	rm, _ := gb.Commit(nil, []uint32{0})
	m, err = ParseMessage(rm.Message, now)
	if err != nil || m.SenderLeaf != 1 || len(m.Commit.Removes) != 1 || m.Commit.Removes[0] != 0 || !m.Commit.HasPath {
		t.Fatalf("remove: %+v %v", m, err)
	}
	for name, bad := range map[string][]byte{
		"empty":       nil,
		"key package": bkp,
		"welcome":     c.Welcome,
		"trailing":    append(bytes.Clone(ct), 0),
		"truncated":   ct[:len(ct)-1],
	} {
		if _, err := ParseMessage(bad, now); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
