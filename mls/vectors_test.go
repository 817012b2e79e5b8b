package mls

// The official MLS test vectors (mlswg/mls-implementations, see testdata/mls-vectors/README.md),
// for the two suites we accept.
//
// What goes through our own code and what does not:
//   - welcome, passive-client-welcome, passive-client-handling-commit: our Join path (KeyPackage
//     secrets, KeyPackageRef matching, the library's join) and Group.Process / EpochAuthenticator.
//   - messages: ParseKeyPackage's strict parser, ParseMessage, WelcomeRefs.
//   - key-schedule, secret-tree, message-protection: the wrapper has no surface for these (they are
//     internals of every Group), so they run the library's schedule, secrettree and framing
//     packages directly. They check the library build we pin, on our suites, not our code.
//
// Vectors not run, and why (each test logs its counts, and fails if they change):
//   - passive-client-welcome, the 4 per suite with an out-of-band ratchet_tree: mls-go v1.6.0 has
//     no way to take a tree that is not in the GroupInfo's ratchet_tree extension; without one it
//     joins with a placeholder one-leaf tree and skips the tree and GroupInfo-signature checks.
//     JoinWith refuses such a Welcome, and the test checks that it does.
//   - welcome.json carries no ratchet_tree either (the vector only defines decrypting the Welcome
//     and checking the GroupInfo signature and confirmation tag), so it runs joinWelcome, i.e.
//     JoinWith without its ratchet_tree requirement.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/keypackages"
	"github.com/thomas-vilte/mls-go/schedule"
	"github.com/thomas-vilte/mls-go/secrettree"
)

const vecDir = "../testdata/mls-vectors"

// vecSuites are the suites the vector files were cut to; every suite-keyed test must run both.
var vecSuites = []Suite{SuiteX25519AES128, SuiteX25519ChaCha}

func vecLoad[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vecDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return out
}

// vecHex decodes a hex field; the vectors write absent optional values as null or "".
type vecHex []byte

func (h *vecHex) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == nil {
		*h = nil
		return nil
	}
	d, err := hex.DecodeString(*s)
	*h = d
	return err
}

// vecCount tallies what ran per suite, so that the output says it and a silently shrinking run
// (a filtered file, a suite that stopped matching) fails.
type vecCount struct {
	file string
	ran  map[Suite]int
	not  map[string]int // reason -> vectors not run
}

func newVecCount(file string) *vecCount {
	return &vecCount{file: file, ran: map[Suite]int{}, not: map[string]int{}}
}

func (c *vecCount) check(t *testing.T, wantRan map[Suite]int, wantNot map[string]int) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s:", c.file)
	for _, s := range vecSuites {
		fmt.Fprintf(&b, " suite %d ran %d;", s, c.ran[s])
	}
	for r, n := range c.not {
		fmt.Fprintf(&b, " not run %d (%s);", n, r)
	}
	t.Log(b.String())
	for _, s := range vecSuites {
		if c.ran[s] != wantRan[s] {
			t.Errorf("%s: suite %d ran %d vectors, want %d", c.file, s, c.ran[s], wantRan[s])
		}
	}
	for r, n := range wantNot {
		if c.not[r] != n {
			t.Errorf("%s: %d vectors not run (%s), want %d", c.file, c.not[r], r, n)
		}
	}
	if len(c.not) != len(wantNot) {
		t.Errorf("%s: not-run reasons %v, want %v", c.file, c.not, wantNot)
	}
}

func vecSuite(t *testing.T, cs uint16) Suite {
	t.Helper()
	s := Suite(cs)
	if err := s.Check(); err != nil {
		t.Fatalf("vector for suite %d: the files hold only suites 1 and 3", cs)
	}
	return s
}

// vecSigner is the joiner's identity from its Ed25519 seed (the vectors' signature_priv is the
// 32-byte RFC 8032 private key). Only the key matters to a joiner: Signer.Credential is used when
// making our own leaves, never when joining or processing.
func vecSigner(t *testing.T, seed []byte) Signer {
	t.Helper()
	if len(seed) != ed25519.SeedSize {
		t.Fatalf("signature_priv of %d bytes, want an Ed25519 seed", len(seed))
	}
	return Signer{Credential: Credential{FID: "vector@mlswg.invalid", Session: "passive"}, Key: ed25519.NewKeyFromSeed(seed)}
}

// vecLeafKey is the signature key of a KeyPackage MLSMessage's leaf.
func vecLeafKey(t *testing.T, kpMsg []byte) []byte {
	t.Helper()
	kp, err := unmarshalKeyPackage(kpMsg[4:])
	if err != nil {
		t.Fatal(err)
	}
	return kp.LeafNode.SignatureKeyBytes
}

func vecPSKs(psks []vecPSK) map[string][]byte {
	m := map[string][]byte{}
	for _, p := range psks {
		m[string(p.ID)] = p.PSK
	}
	return m
}

type vecPSK struct {
	ID  vecHex `json:"psk_id"`
	PSK vecHex `json:"psk"`
}

type vecPassive struct {
	CipherSuite    uint16   `json:"cipher_suite"`
	KeyPackage     vecHex   `json:"key_package"`
	SignaturePriv  vecHex   `json:"signature_priv"`
	EncryptionPriv vecHex   `json:"encryption_priv"`
	InitPriv       vecHex   `json:"init_priv"`
	Welcome        vecHex   `json:"welcome"`
	RatchetTree    vecHex   `json:"ratchet_tree"`
	ExternalPSKs   []vecPSK `json:"external_psks"`
	InitialEA      vecHex   `json:"initial_epoch_authenticator"`
	Epochs         []struct {
		Proposals []vecHex `json:"proposals"`
		Commit    vecHex   `json:"commit"`
		EA        vecHex   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

// vecJoinPassive joins as the vector's passive client through JoinWith and checks what a join must
// establish: the KeyPackage used, the epoch authenticator, and that our own leaf is the one with
// the vector's signature key.
func vecJoinPassive(t *testing.T, v vecPassive) *Group {
	t.Helper()
	s := vecSigner(t, v.SignaturePriv)
	if pub := s.Key.Public().(ed25519.PublicKey); !bytes.Equal(pub, vecLeafKey(t, v.KeyPackage)) {
		t.Fatal("signature_priv is not the key of the KeyPackage's leaf")
	}
	sec := KeyPackageSecrets{KeyPackage: v.KeyPackage, InitKey: v.InitPriv, EncryptionKey: v.EncryptionPriv}
	_, decoy := mustKP(t, newSigner(t, "decoy@x.test", "d"), Suite(v.CipherSuite))
	g, used, err := JoinWith(s, v.Welcome, []KeyPackageSecrets{decoy, sec}, JoinOptions{PSKs: vecPSKs(v.ExternalPSKs)})
	if err != nil {
		t.Fatalf("JoinWith: %v", err)
	}
	if used != 1 {
		t.Fatalf("used KeyPackage %d, want 1", used)
	}
	if g.Suite() != Suite(v.CipherSuite) {
		t.Fatalf("group suite %d", g.Suite())
	}
	if !bytes.Equal(g.EpochAuthenticator(), v.InitialEA) {
		t.Fatalf("initial epoch authenticator\n got  %x\n want %x", g.EpochAuthenticator(), []byte(v.InitialEA))
	}
	if !g.isMember() {
		t.Fatalf("own leaf %d does not carry our signature key", g.OwnLeaf())
	}
	return g
}

// TestVectorsPassiveClientWelcome: join from another implementation's Welcome, with and without
// external PSKs, and compare the epoch authenticator.
func TestVectorsPassiveClientWelcome(t *testing.T) {
	const oob = "out-of-band ratchet_tree: unsupported by mls-go v1.6.0; JoinWith refusal checked"
	c := newVecCount("passive-client-welcome.json")
	var joinAccepts []int
	for i, v := range vecLoad[vecPassive](t, "passive-client-welcome.json") {
		s := vecSuite(t, v.CipherSuite)
		t.Run(fmt.Sprintf("%d-suite%d", i, s), func(t *testing.T) {
			if v.RatchetTree != nil {
				c.not[oob]++
				sec := KeyPackageSecrets{KeyPackage: v.KeyPackage, InitKey: v.InitPriv, EncryptionKey: v.EncryptionPriv}
				sg := vecSigner(t, v.SignaturePriv)
				_, _, err := JoinWith(sg, v.Welcome, []KeyPackageSecrets{sec}, JoinOptions{PSKs: vecPSKs(v.ExternalPSKs)})
				if !errors.Is(err, ErrGroup) || !strings.Contains(err.Error(), "ratchet_tree") {
					t.Fatalf("JoinWith of a Welcome without ratchet_tree: %v, want a refusal", err)
				}
				// Join must refuse it too (it once joined a placeholder tree unchecked).
				if len(v.ExternalPSKs) == 0 {
					if _, _, err := Join(sg, v.Welcome, []KeyPackageSecrets{sec}); err == nil {
						joinAccepts = append(joinAccepts, i)
					}
				}
				return
			}
			c.ran[s]++
			vecJoinPassive(t, v)
		})
	}
	if len(joinAccepts) > 0 {
		t.Errorf("Join accepted the Welcomes without ratchet_tree of vectors %v: it joins a placeholder tree unchecked", joinAccepts)
	}
	c.check(t, map[Suite]int{1: 4, 3: 4}, map[string]int{oob: 8})
}

// TestVectorsPassiveClientHandlingCommit: join (every vector needs an external PSK), then follow
// other members' proposals and commits through Group.Process, and the server's reading of them
// through ParseMessage.
func TestVectorsPassiveClientHandlingCommit(t *testing.T) {
	c := newVecCount("passive-client-handling-commit.json")
	epochs, props := 0, 0
	outcomes := map[string]int{}
	for i, v := range vecLoad[vecPassive](t, "passive-client-handling-commit.json") {
		s := vecSuite(t, v.CipherSuite)
		t.Run(fmt.Sprintf("%d-suite%d", i, s), func(t *testing.T) {
			if v.RatchetTree != nil {
				t.Fatal("out-of-band ratchet_tree: JoinWith cannot run this vector")
			}
			c.ran[s]++
			g := vecJoinPassive(t, v)
			for e, ep := range v.Epochs {
				before := g.Epoch()
				for p, msg := range ep.Proposals {
					m := vecServerView(t, msg, g, ContentProposal, outcomes)
					r, err := g.Process(msg)
					if err != nil {
						t.Fatalf("epoch %d proposal %d: %v", e, p, err)
					}
					if r.Kind != KindProposal || (m != nil && m.SenderLeaf != r.SenderLeaf) {
						t.Fatalf("epoch %d proposal %d: %+v, server view %+v", e, p, r, m)
					}
					props++
				}
				m := vecServerView(t, ep.Commit, g, ContentCommit, outcomes)
				r, err := g.Process(ep.Commit)
				if err != nil {
					t.Fatalf("epoch %d commit: %v", e, err)
				}
				if r.Kind != KindCommit || r.Removed || (m != nil && m.SenderLeaf != r.SenderLeaf) {
					t.Fatalf("epoch %d commit: %+v, server view %+v", e, r, m)
				}
				if g.Epoch() != before+1 {
					t.Fatalf("epoch %d: group epoch %d after a commit in %d", e, g.Epoch(), before)
				}
				if !bytes.Equal(g.EpochAuthenticator(), ep.EA) {
					t.Fatalf("epoch %d: epoch authenticator\n got  %x\n want %x", e, g.EpochAuthenticator(), []byte(ep.EA))
				}
				epochs++
			}
			// The state must survive a restart mid-history as well.
			st, err := g.State()
			if err != nil {
				t.Fatal(err)
			}
			g2, err := Load(g.signer, st)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(g2.EpochAuthenticator(), g.EpochAuthenticator()) || g2.Epoch() != g.Epoch() {
				t.Fatal("state round trip changed the group")
			}
		})
	}
	t.Logf("passive-client-handling-commit.json: %d epochs followed, %d proposals processed; ParseMessage of them: %v", epochs, props, outcomes)
	c.check(t, map[Suite]int{1: 13, 3: 13}, nil)
}

// vecServerView checks that what the delivery service reads from a member's handshake (ParseMessage)
// agrees with the member about to process it. It returns nil, and counts why, when ParseMessage
// refuses the message for a reason that is right for these vectors.
func vecServerView(t *testing.T, msg []byte, g *Group, want ContentType, outcomes map[string]int) *Message {
	t.Helper()
	m, err := ParseMessage(msg, time.Now())
	if err != nil {
		// An added KeyPackage of the vectors is not a polyproto session's, nor valid now.
		if errors.Is(err, ErrBinding) || errors.Is(err, ErrLifetime) {
			outcomes["refused: "+vecErrClass(t, err)]++
			return nil
		}
		t.Fatalf("ParseMessage: %v", err)
	}
	outcomes["accepted"]++
	if m.Private || m.Content != want || !bytes.Equal(m.GroupID, g.ID()) || m.Epoch != g.Epoch() {
		t.Fatalf("ParseMessage: %+v, group %x epoch %d", m, g.ID(), g.Epoch())
	}
	return m
}

// TestVectorsWelcome: decrypt the Welcome with init_priv, check the confirmation tag and the
// GroupInfo signature by signer_pub. That is all the vector defines; its GroupInfo has no
// ratchet_tree (so JoinWith would refuse it), hence joinWelcome.
func TestVectorsWelcome(t *testing.T) {
	type vec struct {
		CipherSuite uint16 `json:"cipher_suite"`
		InitPriv    vecHex `json:"init_priv"`
		KeyPackage  vecHex `json:"key_package"`
		SignerPub   vecHex `json:"signer_pub"`
		Welcome     vecHex `json:"welcome"`
	}
	c := newVecCount("welcome.json")
	for i, v := range vecLoad[vec](t, "welcome.json") {
		s := vecSuite(t, v.CipherSuite)
		t.Run(fmt.Sprintf("%d-suite%d", i, s), func(t *testing.T) {
			c.ran[s]++
			// The vector has no leaf encryption key; it is only needed for later commits.
			sec := KeyPackageSecrets{KeyPackage: v.KeyPackage, InitKey: v.InitPriv, EncryptionKey: bytes.Repeat([]byte{7}, 32)}
			// Nor a signature key: a joiner signs nothing.
			sg := newSigner(t, "joiner@x.test", "w")

			refs, err := WelcomeRefs(v.Welcome)
			if err != nil {
				t.Fatal(err)
			}
			kp, err := unmarshalKeyPackage(v.KeyPackage[4:])
			if err != nil {
				t.Fatal(err)
			}
			ref := ciphersuite.MakeKeyPackageRef(kp.Marshal(), s.lib().HashFunction()).AsSlice()
			if !slices.ContainsFunc(refs, func(r []byte) bool { return bytes.Equal(r, ref) }) {
				t.Fatal("WelcomeRefs does not list the KeyPackage")
			}

			w, err := parseWelcome(v.Welcome)
			if err != nil {
				t.Fatal(err)
			}
			g, used, err := joinWelcome(sg, w, []KeyPackageSecrets{sec}, nil)
			if err != nil || used != 0 {
				t.Fatalf("join: %v (used %d)", err, used)
			}
			gi := w.GroupInfo
			pub := ciphersuite.NewMLSSignaturePublicKey(v.SignerPub, s.lib().SignatureScheme())
			if err := ciphersuite.VerifyWithLabel(pub, "GroupInfoTBS", gi.MarshalTBS(), ciphersuite.NewSignature(gi.Signature)); err != nil {
				t.Fatalf("GroupInfo signature by signer_pub: %v", err)
			}
			// The library refuses a wrong tag inside the join; check it here too rather than trust that.
			tag := schedule.ComputeConfirmationTag(s.lib(), g.g.EpochSecrets().ConfirmationKey.AsSlice(), gi.GroupContext.ConfirmedTranscriptHash)
			if !bytes.Equal(tag, gi.ConfirmationTag) {
				t.Fatal("confirmation tag")
			}
			if g.Epoch() != gi.GroupContext.Epoch.AsUint64() || !bytes.Equal(g.ID(), gi.GroupContext.GroupID.AsSlice()) {
				t.Fatal("group id or epoch differ from the GroupInfo")
			}
			if hasRatchetTree(gi) {
				t.Fatal("welcome.json now has a ratchet_tree: run it through JoinWith")
			}
			if _, _, err := JoinWith(sg, v.Welcome, []KeyPackageSecrets{sec}, JoinOptions{}); !errors.Is(err, ErrGroup) {
				t.Fatalf("JoinWith without ratchet_tree: %v", err)
			}
		})
	}
	c.check(t, map[Suite]int{1: 1, 3: 1}, nil)
}

// TestVectorsMessages: the structures the server parses, as another implementation encodes them
// (random but valid contents). Their KeyPackages carry Basic credentials that are not polyproto
// sessions, so ParseKeyPackage must refuse them for that alone; every message (all from member
// senders, commits holding only a proposal by reference) must be accepted, canonically re-encoded
// (ParseMessage and WelcomeRefs compare that themselves), and read the same as the library reads it.
func TestVectorsMessages(t *testing.T) {
	type vec struct {
		KeyPackage vecHex `json:"mls_key_package"`
		Welcome    vecHex `json:"mls_welcome"`
		PublicApp  vecHex `json:"public_message_application"`
		PublicProp vecHex `json:"public_message_proposal"`
		PublicComm vecHex `json:"public_message_commit"`
		PrivateMsg vecHex `json:"private_message"`
	}
	c := newVecCount("messages.json")
	commits := map[string]int{}
	for i, v := range vecLoad[vec](t, "messages.json") {
		// messages.json has no cipher_suite key: the KeyPackage's says which suite an entry is.
		kp, err := unmarshalKeyPackage(v.KeyPackage[4:])
		if err != nil || !bytes.HasPrefix(v.KeyPackage, mlsMessageHeader(wireKeyPackage)) {
			t.Fatalf("%d: KeyPackage: %v", i, err)
		}
		s := vecSuite(t, uint16(kp.CipherSuite))
		c.ran[s]++

		// ParseKeyPackage at a time inside the KeyPackage's lifetime, so that what it refuses is
		// not merely the vectors' age. Their Basic credentials are not "<fid>/<session>", so it
		// must refuse them for that; the checks after the credential's then run one by one, since
		// the signatures are valid and our LeafNodeTBS is cut out of the encoding by hand.
		now := time.Now()
		if lt := kp.LeafNode.Lifetime; lt != nil && lt.NotBefore < 1<<62 {
			now = time.Unix(int64(lt.NotBefore), 0)
		}
		if _, err := ParseKeyPackage(v.KeyPackage, now); !errors.Is(err, ErrBinding) {
			t.Fatalf("%d: ParseKeyPackage: %v, want %v for a non-polyproto credential", i, err, ErrBinding)
		}
		if err := kp.Validate(); err != nil {
			t.Fatalf("%d: KeyPackage validation: %v", i, err)
		}
		if err := verifyLeafSignature(kp.LeafNode, s); err != nil {
			t.Fatalf("%d: leaf signature: %v", i, err)
		}
		if err := kp.Verify(s.lib()); err != nil {
			t.Fatalf("%d: KeyPackage signature: %v", i, err)
		}
		bad := *kp.LeafNode
		bad.Signature = bytes.Clone(bad.Signature)
		bad.Signature[len(bad.Signature)-1] ^= 1
		if err := verifyLeafSignature(&bad, s); !errors.Is(err, ErrSignature) {
			t.Fatalf("%d: corrupted leaf signature: %v", i, err)
		}

		refs, err := WelcomeRefs(v.Welcome)
		if err != nil {
			t.Fatalf("%d: WelcomeRefs: %v", i, err)
		}
		w, err := group.UnmarshalWelcome(v.Welcome[4:])
		if err != nil || w.CipherSuite != s.lib() || len(refs) != len(w.Secrets) || len(refs) == 0 {
			t.Fatalf("%d: Welcome %v, %d refs", i, err, len(refs))
		}
		for j, r := range refs {
			if !bytes.Equal(r, w.Secrets[j].NewMember) {
				t.Fatalf("%d: WelcomeRefs[%d]", i, j)
			}
		}

		for name, b := range map[string][]byte{"application": v.PublicApp, "proposal": v.PublicProp, "commit": v.PublicComm, "private": v.PrivateMsg} {
			lib, err := framing.UnmarshalMLSMessage(b)
			if err != nil {
				t.Fatalf("%d %s: library parse: %v", i, name, err)
			}
			m, err := ParseMessage(b, now)
			if err != nil {
				t.Fatalf("%d %s: ParseMessage: %v", i, name, err)
			}
			if pm, ok := lib.AsPrivate(); ok {
				if !m.Private || m.Epoch != pm.Epoch || !bytes.Equal(m.GroupID, pm.GroupID) || m.Content != ContentType(pm.ContentType) {
					t.Fatalf("%d %s: %+v", i, name, m)
				}
				continue
			}
			pm := lib.PublicMessage
			if m.Private || m.Epoch != pm.Content.Epoch || !bytes.Equal(m.GroupID, pm.Content.GroupID) ||
				m.SenderLeaf != pm.Content.Sender.LeafIndex || m.Content != ContentType(pm.Content.ContentType()) {
				t.Fatalf("%d %s: %+v", i, name, m)
			}
			want := map[string]ContentType{"application": ContentApplication, "proposal": ContentProposal, "commit": ContentCommit}[name]
			if m.Content != want || (want == ContentCommit) != (m.Commit != nil) {
				t.Fatalf("%d %s: content %d, commit %v", i, name, m.Content, m.Commit)
			}
			if m.Commit != nil {
				cb, _ := pm.Content.CommitData()
				lc, err := group.UnmarshalCommit(cb)
				if err != nil {
					t.Fatal(err)
				}
				ci := m.Commit
				if len(ci.Adds)+len(ci.Removes)+ci.Other != len(lc.Proposals) || ci.HasPath != (lc.Path != nil) {
					t.Fatalf("%d: CommitInfo %+v for %d proposals", i, ci, len(lc.Proposals))
				}
				commits[fmt.Sprintf("%d adds, %d removes, %d other, path %v", len(ci.Adds), len(ci.Removes), ci.Other, ci.HasPath)]++
			}
		}
	}
	t.Logf("messages.json: commits by CommitInfo: %v", commits)
	c.check(t, map[Suite]int{1: 50, 3: 50}, nil)
}

// vecErrClass names which of our sentinel errors err is; anything else is a bug (an unwrapped
// library error reaching callers).
func vecErrClass(t *testing.T, err error) string {
	t.Helper()
	for _, s := range []error{ErrMalformed, ErrSuite, ErrSignature, ErrLifetime, ErrBinding, ErrGroup} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	t.Fatalf("error wraps none of our sentinels: %v", err)
	return ""
}

// TestVectorsKeySchedule runs the library's key schedule (see the file comment: no wrapper surface).
func TestVectorsKeySchedule(t *testing.T) {
	type epoch struct {
		GroupContext     vecHex `json:"group_context"`
		TreeHash         vecHex `json:"tree_hash"`
		ConfirmedTH      vecHex `json:"confirmed_transcript_hash"`
		CommitSecret     vecHex `json:"commit_secret"`
		PSKSecret        vecHex `json:"psk_secret"`
		JoinerSecret     vecHex `json:"joiner_secret"`
		WelcomeSecret    vecHex `json:"welcome_secret"`
		InitSecret       vecHex `json:"init_secret"`
		SenderDataSecret vecHex `json:"sender_data_secret"`
		EncryptionSecret vecHex `json:"encryption_secret"`
		ExporterSecret   vecHex `json:"exporter_secret"`
		EpochAuth        vecHex `json:"epoch_authenticator"`
		ExternalSecret   vecHex `json:"external_secret"`
		ConfirmationKey  vecHex `json:"confirmation_key"`
		MembershipKey    vecHex `json:"membership_key"`
		ResumptionPSK    vecHex `json:"resumption_psk"`
		ExternalPub      vecHex `json:"external_pub"`
		Exporter         struct {
			Label   string `json:"label"`
			Context vecHex `json:"context"`
			Length  int    `json:"length"`
			Secret  vecHex `json:"secret"`
		} `json:"exporter"`
	}
	type vec struct {
		CipherSuite uint16  `json:"cipher_suite"`
		GroupID     vecHex  `json:"group_id"`
		InitSecret  vecHex  `json:"initial_init_secret"`
		Epochs      []epoch `json:"epochs"`
	}
	c := newVecCount("key-schedule.json")
	n := 0
	for i, v := range vecLoad[vec](t, "key-schedule.json") {
		s := vecSuite(t, v.CipherSuite)
		cs := s.lib()
		t.Run(fmt.Sprintf("%d-suite%d", i, s), func(t *testing.T) {
			c.ran[s]++
			init := []byte(v.InitSecret)
			// HKDFExtract zeroes its inputs: every secret handed to the library is a fresh copy.
			sec := func(b []byte) *ciphersuite.Secret { return ciphersuite.NewSecretForCS(cs, bytes.Clone(b)) }
			for e, ep := range v.Epochs {
				gc := (&group.GroupContext{Version: keypackages.MLS10, CipherSuite: cs, GroupID: group.NewGroupID(bytes.Clone(v.GroupID)),
					Epoch: group.NewGroupEpoch(uint64(e)), TreeHash: ep.TreeHash, ConfirmedTranscriptHash: ep.ConfirmedTH}).Marshal()
				if !bytes.Equal(gc, ep.GroupContext) {
					t.Fatalf("epoch %d: GroupContext encoding", e)
				}
				ks := schedule.NewKeySchedule(cs, sec(init))
				ks.SetCommitSecret(sec(ep.CommitSecret))
				joiner, err := ks.ComputeJoinerSecret(gc)
				if err != nil {
					t.Fatal(err)
				}
				vecEq(t, e, "joiner_secret", joiner.AsSlice(), ep.JoinerSecret)
				if err := ks.SetPskSecretDirect(sec(ep.PSKSecret)); err != nil {
					t.Fatal(err)
				}
				welcome, err := ks.ComputeWelcomeSecret()
				if err != nil {
					t.Fatal(err)
				}
				vecEq(t, e, "welcome_secret", welcome.AsSlice(), ep.WelcomeSecret)
				if _, err := ks.ComputeEpochSecret(gc); err != nil {
					t.Fatal(err)
				}
				d, err := ks.DeriveEpochSecrets()
				if err != nil {
					t.Fatal(err)
				}
				vecEq(t, e, "sender_data_secret", d.SenderDataSecret.AsSlice(), ep.SenderDataSecret)
				vecEq(t, e, "encryption_secret", d.EncryptionSecret.AsSlice(), ep.EncryptionSecret)
				vecEq(t, e, "exporter_secret", d.ExporterSecret.AsSlice(), ep.ExporterSecret)
				vecEq(t, e, "epoch_authenticator", d.AuthenticationSecret.AsSlice(), ep.EpochAuth)
				vecEq(t, e, "external_secret", d.ExternalSecret.AsSlice(), ep.ExternalSecret)
				vecEq(t, e, "confirmation_key", d.ConfirmationKey.AsSlice(), ep.ConfirmationKey)
				vecEq(t, e, "membership_key", d.MembershipKey.AsSlice(), ep.MembershipKey)
				vecEq(t, e, "resumption_psk", d.ResumptionSecret.AsSlice(), ep.ResumptionPSK)
				vecEq(t, e, "init_secret", d.InitSecret.AsSlice(), ep.InitSecret)
				ext, err := ciphersuite.DeriveKeyPair(cs, bytes.Clone(ep.ExternalSecret))
				if err != nil {
					t.Fatal(err)
				}
				vecEq(t, e, "external_pub", ext.PublicKey().Bytes(), ep.ExternalPub)
				x, err := schedule.Exporter(sec(ep.ExporterSecret), cs, schedule.ExporterLabel(ep.Exporter.Label), ep.Exporter.Context, ep.Exporter.Length)
				if err != nil {
					t.Fatal(err)
				}
				vecEq(t, e, "exporter", x, ep.Exporter.Secret)
				init = bytes.Clone(ep.InitSecret)
				n++
			}
		})
	}
	t.Logf("key-schedule.json: %d epochs", n)
	c.check(t, map[Suite]int{1: 1, 3: 1}, nil)
}

func vecEq(t *testing.T, epoch int, name string, got, want []byte) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("epoch %d: vector has no %s", epoch, name)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("epoch %d: %s\n got  %x\n want %x", epoch, name, got, want)
	}
}

// TestVectorsSecretTree runs the library's secret tree and sender-data key derivation (no wrapper
// surface).
func TestVectorsSecretTree(t *testing.T) {
	type gen struct {
		Generation       uint32 `json:"generation"`
		ApplicationKey   vecHex `json:"application_key"`
		ApplicationNonce vecHex `json:"application_nonce"`
		HandshakeKey     vecHex `json:"handshake_key"`
		HandshakeNonce   vecHex `json:"handshake_nonce"`
	}
	type vec struct {
		CipherSuite uint16 `json:"cipher_suite"`
		SenderData  struct {
			Secret     vecHex `json:"sender_data_secret"`
			Ciphertext vecHex `json:"ciphertext"`
			Key        vecHex `json:"key"`
			Nonce      vecHex `json:"nonce"`
		} `json:"sender_data"`
		EncryptionSecret vecHex  `json:"encryption_secret"`
		Leaves           [][]gen `json:"leaves"`
	}
	c := newVecCount("secret-tree.json")
	checks := 0
	for i, v := range vecLoad[vec](t, "secret-tree.json") {
		s := vecSuite(t, v.CipherSuite)
		cs := s.lib()
		t.Run(fmt.Sprintf("%d-suite%d-%dleaves", i, s, len(v.Leaves)), func(t *testing.T) {
			c.ran[s]++
			sd := ciphersuite.NewSecretForCS(cs, bytes.Clone(v.SenderData.Secret))
			sample := v.SenderData.Ciphertext[:min(len(v.SenderData.Ciphertext), cs.HashLength())]
			k, err := sd.KdfExpandLabel("key", sample, cs.AEADKeyLength())
			if err != nil {
				t.Fatal(err)
			}
			nonce, err := sd.KdfExpandLabel("nonce", sample, cs.AEADNonceLength())
			if err != nil {
				t.Fatal(err)
			}
			vecEq(t, 0, "sender data key", k.AsSlice(), v.SenderData.Key)
			vecEq(t, 0, "sender data nonce", nonce.AsSlice(), v.SenderData.Nonce)
			for leaf, gens := range v.Leaves {
				// A fresh tree per leaf and per ratchet: reading a generation consumes the earlier ones.
				for _, g := range gens {
					for _, f := range []struct {
						name string
						get  func(*secrettree.LeafSecret, uint32) ([]byte, error)
						want []byte
					}{
						{"application_key", (*secrettree.LeafSecret).ApplicationKey, g.ApplicationKey},
						{"application_nonce", (*secrettree.LeafSecret).ApplicationNonce, g.ApplicationNonce},
						{"handshake_key", (*secrettree.LeafSecret).HandshakeKey, g.HandshakeKey},
						{"handshake_nonce", (*secrettree.LeafSecret).HandshakeNonce, g.HandshakeNonce},
					} {
						tree, err := secrettree.NewTree(ciphersuite.NewSecretForCS(cs, bytes.Clone(v.EncryptionSecret)), uint32(len(v.Leaves)), cs)
						if err != nil {
							t.Fatal(err)
						}
						ls, err := tree.LeafForIndex(uint32(leaf))
						if err != nil {
							t.Fatal(err)
						}
						got, err := f.get(ls, g.Generation)
						if err != nil {
							t.Fatalf("leaf %d generation %d: %s: %v", leaf, g.Generation, f.name, err)
						}
						vecEq(t, int(g.Generation), fmt.Sprintf("leaf %d %s", leaf, f.name), got, f.want)
						checks++
					}
				}
			}
		})
	}
	t.Logf("secret-tree.json: %d key/nonce checks", checks)
	c.check(t, map[Suite]int{1: 3, 3: 3}, nil)
}

// TestVectorsMessageProtection runs the library's PublicMessage and PrivateMessage framing (no
// wrapper surface: a Group does this inside Encrypt, Process and Commit): unprotect the vector's
// messages, then protect the vector's contents ourselves and unprotect the result. The sender is
// leaf 1 of a two-member group, as the vector format defines.
func TestVectorsMessageProtection(t *testing.T) {
	type vec struct {
		CipherSuite      uint16 `json:"cipher_suite"`
		GroupID          vecHex `json:"group_id"`
		Epoch            uint64 `json:"epoch"`
		TreeHash         vecHex `json:"tree_hash"`
		ConfirmedTH      vecHex `json:"confirmed_transcript_hash"`
		SignaturePriv    vecHex `json:"signature_priv"`
		SignaturePub     vecHex `json:"signature_pub"`
		EncryptionSecret vecHex `json:"encryption_secret"`
		SenderDataSecret vecHex `json:"sender_data_secret"`
		MembershipKey    vecHex `json:"membership_key"`
		Proposal         vecHex `json:"proposal"`
		ProposalPriv     vecHex `json:"proposal_priv"`
		ProposalPub      vecHex `json:"proposal_pub"`
		Commit           vecHex `json:"commit"`
		CommitPriv       vecHex `json:"commit_priv"`
		CommitPub        vecHex `json:"commit_pub"`
		Application      vecHex `json:"application"`
		ApplicationPriv  vecHex `json:"application_priv"`
	}
	c := newVecCount("message-protection.json")
	for i, v := range vecLoad[vec](t, "message-protection.json") {
		s := vecSuite(t, v.CipherSuite)
		cs := s.lib()
		t.Run(fmt.Sprintf("%d-suite%d", i, s), func(t *testing.T) {
			c.ran[s]++
			gc := (&group.GroupContext{Version: keypackages.MLS10, CipherSuite: cs, GroupID: group.NewGroupID(bytes.Clone(v.GroupID)),
				Epoch: group.NewGroupEpoch(v.Epoch), TreeHash: v.TreeHash, ConfirmedTranscriptHash: v.ConfirmedTH}).Marshal()
			if !bytes.Equal(ed25519.NewKeyFromSeed(v.SignaturePriv).Public().(ed25519.PublicKey), v.SignaturePub) {
				t.Fatal("signature_priv and signature_pub differ")
			}
			sigKey := ciphersuite.NewEd25519SignaturePrivateKey(ed25519.NewKeyFromSeed(v.SignaturePriv))
			pub := ciphersuite.NewMLSSignaturePublicKey(v.SignaturePub, cs.SignatureScheme())
			secret := func(b []byte) *ciphersuite.Secret { return ciphersuite.NewSecretForCS(cs, bytes.Clone(b)) }
			tree := func() *secrettree.Tree {
				st, err := secrettree.NewTree(secret(v.EncryptionSecret), 2, cs)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			decrypt := func(name string, msg []byte) *framing.AuthenticatedContent {
				t.Helper()
				m, err := framing.UnmarshalMLSMessage(msg)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				pm, ok := m.AsPrivate()
				if !ok {
					t.Fatalf("%s: not a PrivateMessage", name)
				}
				ac, err := framing.Decrypt(pm, framing.DecryptParams{CipherSuite: cs, SenderDataSecret: secret(v.SenderDataSecret),
					SecretTree: tree(), SigPubKey: pub, GroupContext: gc})
				if err != nil {
					t.Fatalf("%s: unprotect: %v", name, err)
				}
				if ac.Content.Sender.LeafIndex != 1 {
					t.Fatalf("%s: sender leaf %d", name, ac.Content.Sender.LeafIndex)
				}
				return ac
			}
			verify := func(name string, msg []byte) *framing.PublicMessage {
				t.Helper()
				m, err := framing.UnmarshalMLSMessage(msg)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				pm, ok := m.AsPublic()
				if !ok {
					t.Fatalf("%s: not a PublicMessage", name)
				}
				if !bytes.Equal(m.Marshal(), msg) {
					t.Fatalf("%s: re-encoding differs", name)
				}
				ac := &framing.AuthenticatedContent{WireFormat: framing.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth, GroupContext: gc}
				if err := ciphersuite.VerifyWithLabel(pub, "FramedContentTBS", ac.MarshalTBS(), pm.Auth.Signature); err != nil {
					t.Fatalf("%s: signature: %v", name, err)
				}
				if err := pm.VerifyMembershipTagWithContext(cs, secret(v.MembershipKey), gc); err != nil {
					t.Fatalf("%s: membership tag: %v", name, err)
				}
				if pm.Content.Sender.Type != framing.SenderTypeMember || pm.Content.Sender.LeafIndex != 1 {
					t.Fatalf("%s: sender %+v", name, pm.Content.Sender)
				}
				return pm
			}
			body := func(name string, fc framing.FramedContent, want []byte) {
				t.Helper()
				var got []byte
				switch b := fc.Body.(type) {
				case framing.ApplicationData:
					got = b.Data
				case framing.ProposalBody:
					got = b.Data
				case framing.CommitBody:
					got = b.Data
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: content\n got  %x\n want %x", name, got, want)
				}
			}

			cases := []struct {
				name      string
				content   []byte
				priv, pub []byte
				body      framing.FramedContentBody
			}{
				{"proposal", v.Proposal, v.ProposalPriv, v.ProposalPub, framing.ProposalBody{Data: v.Proposal}},
				{"commit", v.Commit, v.CommitPriv, v.CommitPub, framing.CommitBody{Data: v.Commit}},
				{"application", v.Application, v.ApplicationPriv, nil, framing.ApplicationData{Data: v.Application}},
			}
			for _, k := range cases {
				ac := decrypt(k.name+"_priv", k.priv)
				body(k.name+"_priv", ac.Content, k.content)
				tag := ac.Auth.ConfirmationTag
				if k.pub != nil {
					pm := verify(k.name+"_pub", k.pub)
					body(k.name+"_pub", pm.Content, k.content)
				}

				fc := framing.FramedContent{GroupID: v.GroupID, Epoch: v.Epoch, Sender: framing.Sender{Type: framing.SenderTypeMember, LeafIndex: 1}, Body: k.body}
				if k.pub != nil {
					pm, err := framing.NewPublicMessage(fc, sigKey, gc, secret(v.MembershipKey), cs)
					if err != nil {
						t.Fatalf("%s: protect as PublicMessage: %v", k.name, err)
					}
					pm.Auth.ConfirmationTag = tag
					if k.body.ContentType() == framing.ContentTypeCommit {
						// The confirmation tag is under the membership tag: recompute it.
						acm := &framing.AuthenticatedContent{WireFormat: framing.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth, GroupContext: gc}
						pm.MembershipTag = schedule.ComputeMembershipTag(cs, v.MembershipKey, acm.MarshalTBM())
					}
					got := verify(k.name+" (ours, public)", framing.NewMLSMessagePublic(pm).Marshal())
					body(k.name+" (ours, public)", got.Content, k.content)
				}
				priv, err := framing.Encrypt(framing.EncryptParams{Content: fc, SenderLeafIndex: 1, CipherSuite: cs, SenderDataSecret: secret(v.SenderDataSecret),
					SecretTree: tree(), SigKey: sigKey, GroupContext: gc, ConfirmationTag: tag})
				if err != nil {
					t.Fatalf("%s: protect as PrivateMessage: %v", k.name, err)
				}
				got := decrypt(k.name+" (ours, private)", framing.NewMLSMessagePrivate(priv).Marshal())
				body(k.name+" (ours, private)", got.Content, k.content)
				if !bytes.Equal(got.Auth.ConfirmationTag, tag) {
					t.Fatalf("%s: confirmation tag lost", k.name)
				}
			}
		})
	}
	c.check(t, map[Suite]int{1: 1, 3: 1}, nil)
}
