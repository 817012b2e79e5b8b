package mls

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/keypackages"
)

// The fuzz targets cover every decoder of bytes that come from the network: KeyPackages (the
// directory and join requests), group messages and Welcomes (the delivery service), and a
// member processing whatever the server relays. They are seeded with real objects of both
// suites. Beyond "never panic" they check that every error wraps one of the package's sentinels
// and that whatever is accepted is self-consistent.

// fuzzSigner is a signer with a fixed key, so that the seeds of a run differ only in the
// randomness the library draws (init keys, leaf keys, path secrets).
func fuzzSigner(fid, session string, seed byte) Signer {
	return Signer{Credential: Credential{FID: fid, Session: session}, Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

// fuzzWorld is a small group of each suite and what its members sent, made once per target.
type fuzzWorld struct {
	keyPackages [][]byte // MLSMessages
	messages    [][]byte // commits (adds, removes, empty) and application messages
	welcomes    [][]byte
	bobState    map[Suite][]byte // bob at epoch 1, before alice's second commit
	bob         Signer
}

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	alice, bob, carol, dave := fuzzSigner("alice@a.test", "laptop", 1), fuzzSigner("bob@a.test", "phone/1", 2), fuzzSigner("carol@b.test", "s", 3), fuzzSigner("dave@a.test", "d", 5)
	w := &fuzzWorld{bob: bob, bobState: map[Suite][]byte{}}
	for _, suite := range []Suite{SuiteX25519AES128, SuiteX25519ChaCha} {
		ga, err := Create(alice, suite, []byte("fuzz@a.test"))
		if err != nil {
			f.Fatal(err)
		}
		bkp, bsec := mustKP(f, bob, suite)
		ckp, _ := mustKP(f, carol, suite)
		dkp, _ := mustKP(f, dave, suite)
		add := mustFuzzCommit(f, ga, [][]byte{bkp}, nil)
		gb, _, err := Join(bob, add.Welcome, []KeyPackageSecrets{bsec})
		if err != nil {
			f.Fatal(err)
		}
		st, err := gb.State()
		if err != nil {
			f.Fatal(err)
		}
		w.bobState[suite] = st
		// What alice may send at epoch 1, each from its own copy of her state.
		ast, err := ga.State()
		if err != nil {
			f.Fatal(err)
		}
		copyA := func() *Group {
			g, err := Load(alice, ast)
			if err != nil {
				f.Fatal(err)
			}
			return g
		}
		app, err := copyA().Encrypt([]byte("hello bob"))
		if err != nil {
			f.Fatal(err)
		}
		empty := mustFuzzCommit(f, copyA(), nil, nil)
		addTwo := mustFuzzCommit(f, copyA(), [][]byte{ckp, dkp}, nil)
		removeBob := mustFuzzCommit(f, copyA(), nil, []uint32{1})
		addRemove := mustFuzzCommit(f, copyA(), [][]byte{ckp}, []uint32{1})
		bobApp, err := gb.Encrypt([]byte("hello alice"))
		if err != nil {
			f.Fatal(err)
		}
		w.keyPackages = append(w.keyPackages, bkp, ckp)
		w.messages = append(w.messages, add.Message, app, empty.Message, addTwo.Message, removeBob.Message, addRemove.Message, bobApp)
		w.welcomes = append(w.welcomes, add.Welcome, addTwo.Welcome, addRemove.Welcome)
	}
	return w
}

func mustFuzzCommit(f *testing.F, g *Group, adds [][]byte, removes []uint32) *Commit {
	f.Helper()
	c, err := g.Commit(adds, removes)
	if err != nil {
		f.Fatal(err)
	}
	g.Confirm()
	return c
}

// seeds adds every object of the world, and some near misses, to f.
func (w *fuzzWorld) seeds(f *testing.F) {
	var all [][]byte
	all = append(all, w.keyPackages...)
	all = append(all, w.messages...)
	all = append(all, w.welcomes...)
	for _, b := range all {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0, 5})
	f.Add([]byte{0, 1, 0, 1, 0xff, 0xff, 0xff, 0xff})
}

// isSentinel reports whether err wraps one of the package's documented errors.
func isSentinel(err error) bool {
	for _, s := range []error{ErrMalformed, ErrSuite, ErrSignature, ErrLifetime, ErrBinding, ErrGroup} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// refHash is RFC 9420 section 5.2's RefHash with SHA-256 (the hash of both accepted suites),
// computed here without the library.
func refHash(label string, value []byte) []byte {
	var in []byte
	in = append(in, varint(uint32(len(label)))...)
	in = append(in, label...)
	in = append(in, varint(uint32(len(value)))...)
	in = append(in, value...)
	sum := sha256.Sum256(in)
	return sum[:]
}

// checkKeyPackage checks what an accepted KeyPackage promises.
func checkKeyPackage(t *testing.T, data []byte, kp *KeyPackage, now time.Time) {
	t.Helper()
	if !bytes.Equal(kp.Raw, data) {
		t.Fatal("Raw is not the input")
	}
	lib, err := keypackages.UnmarshalKeyPackage(data[4:])
	if err != nil || !bytes.Equal(append(mlsMessageHeader(wireKeyPackage), lib.Marshal()...), data) {
		t.Fatalf("accepted a KeyPackage that does not re-encode to the input: %v", err)
	}
	if want := refHash("MLS 1.0 KeyPackage Reference", data[4:]); !bytes.Equal(kp.Ref, want) {
		t.Fatalf("Ref %x, recomputed %x", kp.Ref, want)
	}
	if kp.Suite.Check() != nil || len(kp.SignatureKey) != ed25519.PublicKeySize || len(kp.InitKey) == 0 ||
		kp.Credential.FID == "" || kp.Credential.Session == "" || !bytes.Contains([]byte(kp.Credential.FID), []byte("@")) {
		t.Fatalf("accepted %+v", kp)
	}
	if !kp.NotBefore.Before(kp.NotAfter) || kp.NotAfter.Sub(kp.NotBefore) > MaxKeyPackageLifetime ||
		kp.NotBefore.After(now.Add(clockSkew)) || !kp.NotAfter.After(now) {
		t.Fatalf("accepted lifetime %s..%s at %s", kp.NotBefore, kp.NotAfter, now)
	}
}

func FuzzParseKeyPackage(f *testing.F) {
	now := time.Now()
	w := newFuzzWorld(f)
	w.seeds(f)
	long := fuzzSigner("a.very.long.local.part.for.fuzzing@sub.domain.example", "session/with/slashes/"+string(bytes.Repeat([]byte{'x'}, 200)), 4)
	kp, _ := mustKP(f, long, SuiteX25519ChaCha)
	f.Add(kp)
	f.Fuzz(func(t *testing.T, data []byte) {
		kp, err := ParseKeyPackage(data, now)
		if err != nil {
			if !isSentinel(err) || kp != nil {
				t.Fatalf("error %v (KeyPackage %v) wraps no sentinel", err, kp)
			}
			return
		}
		checkKeyPackage(t, data, kp, now)
		again, err := ParseKeyPackage(data, now)
		if err != nil || !bytes.Equal(again.Ref, kp.Ref) || again.Credential != kp.Credential {
			t.Fatalf("a second parse differs: %v", err)
		}
	})
}

func FuzzParseMessage(f *testing.F) {
	now := time.Now()
	w := newFuzzWorld(f)
	w.seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data, now)
		if err != nil {
			if !isSentinel(err) || m != nil {
				t.Fatalf("error %v (message %v) wraps no sentinel", err, m)
			}
			return
		}
		lib, err := framing.UnmarshalMLSMessage(data)
		if err != nil || !bytes.Equal(lib.Marshal(), data) {
			t.Fatalf("accepted a message that does not re-encode to the input: %v", err)
		}
		if m.Content < ContentApplication || m.Content > ContentCommit {
			t.Fatalf("content type %d", m.Content)
		}
		switch {
		case m.Private && (m.Commit != nil || m.SenderLeaf != 0):
			t.Fatalf("a PrivateMessage with a visible commit or sender: %+v", m)
		case (m.Commit != nil) != (!m.Private && m.Content == ContentCommit):
			t.Fatalf("commit info %v on content type %d, private %v", m.Commit, m.Content, m.Private)
		}
		if m.Commit == nil {
			return
		}
		for _, kp := range m.Commit.Adds {
			checkKeyPackage(t, kp.Raw, kp, now)
		}
	})
}

func FuzzWelcomeRefs(f *testing.F) {
	w := newFuzzWorld(f)
	w.seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		refs, err := WelcomeRefs(data)
		if !bytes.Equal(in, data) {
			t.Fatal("WelcomeRefs changed its input")
		}
		if err != nil {
			if !isSentinel(err) || refs != nil {
				t.Fatalf("error %v (refs %x) wraps no sentinel", err, refs)
			}
			return
		}
		if !bytes.HasPrefix(data, mlsMessageHeader(wireWelcome)) {
			t.Fatalf("accepted a Welcome without its header: %x", data[:min(len(data), 4)])
		}
		for _, r := range refs {
			for i := range r {
				r[i] ^= 0xff // the refs are copies: scribbling on them leaves the input alone
			}
		}
		if !bytes.Equal(in, data) {
			t.Fatal("the refs alias the input")
		}
		again, err := WelcomeRefs(data)
		if err != nil || len(again) != len(refs) {
			t.Fatalf("a second call differs: %v", err)
		}
	})
}

// FuzzProcess has bob, at epoch 1 of a group of two, process arbitrary bytes: never a panic,
// errors wrap the package's sentinels, and a refused message leaves him in his epoch.
func FuzzProcess(f *testing.F) {
	w := newFuzzWorld(f)
	w.seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, suite := range []Suite{SuiteX25519AES128, SuiteX25519ChaCha} {
			g, err := Load(w.bob, w.bobState[suite])
			if err != nil {
				t.Fatal(err)
			}
			epoch, auth := g.Epoch(), g.EpochAuthenticator()
			r, err := g.Process(data)
			if err != nil {
				if !isSentinel(err) || r != nil {
					t.Fatalf("error %v (result %+v) wraps no sentinel", err, r)
				}
				if g.Epoch() != epoch || !bytes.Equal(g.EpochAuthenticator(), auth) {
					t.Fatalf("a refused message moved the group from epoch %d to %d", epoch, g.Epoch())
				}
				continue
			}
			switch r.Kind {
			case KindApplication:
				if g.Epoch() != epoch {
					t.Fatal("an application message changed the epoch")
				}
			case KindCommit:
				if !r.Removed && g.Epoch() != epoch+1 {
					t.Fatalf("a commit moved the group from epoch %d to %d", epoch, g.Epoch())
				}
			case KindProposal:
			default:
				t.Fatalf("kind %d", r.Kind)
			}
			if _, err := g.State(); err != nil {
				t.Fatalf("state after processing: %v", err)
			}
		}
	})
}
