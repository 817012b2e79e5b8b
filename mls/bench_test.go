package mls

// Benchmarks of one member's MLS operations in a group of 15 (the server's limit, group.MaxActors
// with one device each), suite 0x0001, and of the server's per-request parsing. docs/PERFORMANCE.md
// ("MLS: groups and encrypted messages") reports them:
//
//	go test -run '^$' -bench . -benchmem -benchtime 2s -count 3 ./mls/
//
// Operations that change a member's state (a commit, processing a commit, an add) start each
// iteration from the same saved state, restored with Load while the timer is stopped, so that
// every iteration measures the same step from the same tree.

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

const benchPlaintext = 200 // bytes of an application message

// benchGroup is a group of n members formed the way the SDK forms one: the creator adds the
// other n-1 in one commit and they join from its Welcome.
type benchGroup struct {
	signers []Signer
	groups  []*Group
}

func newBenchGroup(b *testing.B, n int) *benchGroup {
	b.Helper()
	bg := &benchGroup{}
	for i := range n {
		bg.signers = append(bg.signers, newSigner(b, fmt.Sprintf("member%d@bench.test", i), "s1"))
	}
	creator, err := Create(bg.signers[0], SuiteX25519AES128, []byte("bench@bench.test"))
	if err != nil {
		b.Fatal(err)
	}
	bg.groups = []*Group{creator}
	if n == 1 {
		return bg
	}
	kps := make([][]byte, n-1)
	secrets := make([]KeyPackageSecrets, n-1)
	for i := range n - 1 {
		kps[i], secrets[i] = mustKP(b, bg.signers[i+1], SuiteX25519AES128)
	}
	c, err := creator.Commit(kps, nil)
	if err != nil {
		b.Fatal(err)
	}
	creator.Confirm()
	for i := range n - 1 {
		g, _, err := Join(bg.signers[i+1], c.Welcome, secrets[i:i+1])
		if err != nil {
			b.Fatal(err)
		}
		bg.groups = append(bg.groups, g)
	}
	return bg
}

// state saves member i's state, for Load.
func (bg *benchGroup) state(b *testing.B, i int) []byte {
	b.Helper()
	st, err := bg.groups[i].State()
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func mustLoad(b *testing.B, s Signer, st []byte) *Group {
	b.Helper()
	g, err := Load(s, st)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// The committer and the member that processes its commits, neither of them the creator.
const (
	benchCommitter = 5
	benchReceiver  = 10
)

// BenchmarkCommit15: an empty commit (a key update: an UpdatePath encrypted to the other 14
// members) by one member, including what Commit adds around the library's commit (the saved
// state for Discard, the MLSMessage encoding).
func BenchmarkCommit15(b *testing.B) {
	bg := newBenchGroup(b, 15)
	st := bg.state(b, benchCommitter)
	s := bg.signers[benchCommitter]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		g := mustLoad(b, s, st)
		b.StartTimer()
		c, err := g.Commit(nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		g.Confirm()
		if c.Welcome != nil {
			b.Fatal("an empty commit with a Welcome")
		}
	}
}

// BenchmarkProcessCommit15: another member processes that commit.
func BenchmarkProcessCommit15(b *testing.B) {
	bg := newBenchGroup(b, 15)
	c, err := bg.groups[benchCommitter].Commit(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	bg.groups[benchCommitter].Confirm()
	st := bg.state(b, benchReceiver)
	s := bg.signers[benchReceiver]
	epoch := bg.groups[benchReceiver].Epoch()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		g := mustLoad(b, s, st)
		b.StartTimer()
		r, err := g.Process(c.Message)
		if err != nil {
			b.Fatal(err)
		}
		if r.Kind != KindCommit || g.Epoch() != epoch+1 {
			b.Fatalf("%+v at epoch %d", r, g.Epoch())
		}
	}
}

// BenchmarkAdd15: a member of a 14-member group adds the 15th: the commit (with its UpdatePath)
// and the Welcome, which carries the ratchet tree.
func BenchmarkAdd15(b *testing.B) {
	bg := newBenchGroup(b, 14)
	st := bg.state(b, 0)
	s := bg.signers[0]
	kp, _ := mustKP(b, newSigner(b, "member14@bench.test", "s1"), SuiteX25519AES128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		g := mustLoad(b, s, st)
		b.StartTimer()
		c, err := g.Commit([][]byte{kp}, nil)
		if err != nil {
			b.Fatal(err)
		}
		g.Confirm()
		if c.Welcome == nil {
			b.Fatal("no Welcome")
		}
	}
}

// BenchmarkWelcome15: the 15th member joins from that Welcome (decrypt, check the tree and the
// GroupInfo signature, derive the epoch).
func BenchmarkWelcome15(b *testing.B) {
	bg := newBenchGroup(b, 14)
	joiner := newSigner(b, "member14@bench.test", "s1")
	kp, sec := mustKP(b, joiner, SuiteX25519AES128)
	c, err := bg.groups[0].Commit([][]byte{kp}, nil)
	if err != nil {
		b.Fatal(err)
	}
	bg.groups[0].Confirm()
	secrets := []KeyPackageSecrets{sec}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		g, _, err := Join(joiner, c.Welcome, secrets)
		if err != nil {
			b.Fatal(err)
		}
		if len(g.Members()) != 15 {
			b.Fatalf("%d members", len(g.Members()))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(c.Welcome)), "welcome-bytes")
}

// BenchmarkEncrypt: a 200-byte application message in the 15-member group.
func BenchmarkEncrypt(b *testing.B) {
	bg := newBenchGroup(b, 15)
	g := bg.groups[benchCommitter]
	pt := bytes.Repeat([]byte("x"), benchPlaintext)
	var n int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ct, err := g.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		n = len(ct)
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "ciphertext-bytes")
}

// BenchmarkDecrypt: another member decrypts them, in order (each generation of the sender's
// ratchet can be read once, so the b.N messages are made before the timer starts).
func BenchmarkDecrypt(b *testing.B) {
	bg := newBenchGroup(b, 15)
	from, to := bg.groups[benchCommitter], bg.groups[benchReceiver]
	pt := bytes.Repeat([]byte("x"), benchPlaintext)
	cts := make([][]byte, b.N)
	for i := range cts {
		ct, err := from.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		cts[i] = ct
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r, err := to.Process(cts[i])
		if err != nil {
			b.Fatal(err)
		}
		if r.Kind != KindApplication || len(r.Plaintext) != benchPlaintext || r.SenderLeaf != benchCommitter {
			b.Fatalf("%+v", r)
		}
	}
}

// BenchmarkState15 and BenchmarkLoad15: saving and restoring a member's state. The SDK saves it
// after every message it sends or reads (client/groups.go).
func BenchmarkState15(b *testing.B) {
	bg := newBenchGroup(b, 15)
	g := bg.groups[benchReceiver]
	var n int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		st, err := g.State()
		if err != nil {
			b.Fatal(err)
		}
		n = len(st)
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "state-bytes")
}

func BenchmarkLoad15(b *testing.B) {
	bg := newBenchGroup(b, 15)
	st := bg.state(b, benchReceiver)
	s := bg.signers[benchReceiver]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		mustLoad(b, s, st)
	}
}

// BenchmarkParseKeyPackage: the server's validation of an uploaded KeyPackage (two Ed25519
// verifications, canonical re-encoding, lifetime).
func BenchmarkParseKeyPackage(b *testing.B) {
	kp, _ := mustKP(b, newSigner(b, "alice@bench.test", "s1"), SuiteX25519AES128)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := ParseKeyPackage(kp, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMessage: what the server reads from each message it is posted, without group
// secrets: an application message (200 bytes of plaintext), an empty commit, and a commit adding
// one member (whose KeyPackage is validated as ParseKeyPackage does).
func BenchmarkParseMessage(b *testing.B) {
	bg := newBenchGroup(b, 14)
	app, err := bg.groups[benchCommitter].Encrypt(bytes.Repeat([]byte("x"), benchPlaintext))
	if err != nil {
		b.Fatal(err)
	}
	st := bg.state(b, 0)
	empty, err := mustLoad(b, bg.signers[0], st).Commit(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	kp, _ := mustKP(b, newSigner(b, "member14@bench.test", "s1"), SuiteX25519AES128)
	add, err := mustLoad(b, bg.signers[0], st).Commit([][]byte{kp}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		msg     []byte
		content ContentType
	}{
		{"application", app, ContentApplication},
		{"commit", empty.Message, ContentCommit},
		{"add", add.Message, ContentCommit},
	} {
		b.Run(tc.name, func(b *testing.B) {
			now := time.Now()
			b.ReportAllocs()
			for range b.N {
				m, err := ParseMessage(tc.msg, now)
				if err != nil {
					b.Fatal(err)
				}
				if m.Content != tc.content {
					b.Fatalf("%+v", m)
				}
			}
			b.ReportMetric(float64(len(tc.msg)), "msg-bytes")
		})
	}
}
