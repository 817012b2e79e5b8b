package mls

// Interop with ts-mls 1.6.4, an MLS implementation independent of the library we wrap: the Node
// peer in ../interop (see its README.md) plays the other members. Both sides must reach the same
// epoch authenticator, roster and exporter output after every step, and read each other's
// messages exactly; the server-side parsers must accept what ts-mls produces.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	interopDir = "../interop" // the test runs in mls/
	// interopTimeout bounds one peer request; ts-mls answers in milliseconds, so hitting it means
	// the peer hung, and failing beats waiting for the whole test binary's timeout.
	interopTimeout = 30 * time.Second
	// interopLifetime is asked of ts-mls KeyPackages: its default (valid for ever) is refused by
	// ParseKeyPackage, and a server would never have handed such a KeyPackage out.
	interopLifetime = 30 * 24 * time.Hour
)

var interopSuites = []Suite{SuiteX25519AES128, SuiteX25519ChaCha}

// interopRequire fails, rather than skips, when the peer cannot run: a skipped interop test would
// let an interop regression through CI unnoticed.
func interopRequire(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("the MLS interop test needs Node.js >= 20 on PATH (%v); then run `npm ci` in interop/ (`make test` does it)", err)
	}
	if _, err := os.Stat(interopDir + "/node_modules/ts-mls"); err != nil {
		t.Fatalf("the MLS interop peer's dependencies are not installed (%v): run `npm ci` in interop/ (`make test` does it)", err)
	}
}

// interopForSuites runs f as one subtest per suite ts-mls can share with us.
func interopForSuites(t *testing.T, f func(t *testing.T, suite Suite)) {
	interopRequire(t)
	for _, suite := range interopSuites {
		t.Run(fmt.Sprintf("suite%d", suite), func(t *testing.T) { f(t, suite) })
	}
}

// peerResponse is the union of every op's response fields (interop/README.md). encoding/json
// reads standard base64 into []byte, which is the peer's encoding of byte strings.
type peerResponse struct {
	OK                 bool         `json:"ok"`
	Error              string       `json:"error"`
	SignatureKey       []byte       `json:"signature_key"`
	KeyPackage         []byte       `json:"key_package"`
	Ref                []byte       `json:"ref"`
	Commit             []byte       `json:"commit"`
	Welcome            []byte       `json:"welcome"`
	Kind               string       `json:"kind"`
	Plaintext          []byte       `json:"plaintext"`
	Removed            bool         `json:"removed"`
	Message            []byte       `json:"message"`
	Epoch              uint64       `json:"epoch"`
	Leaf               uint32       `json:"leaf"`
	Members            []peerMember `json:"members"`
	EpochAuthenticator []byte       `json:"epoch_authenticator"`
	GroupID            []byte       `json:"group_id"`
	Secret             []byte       `json:"secret"`
}

type peerMember struct {
	Leaf     uint32 `json:"leaf"`
	Identity []byte `json:"identity"`
}

// interopPeer is one ts-mls client: a `node peer.mjs` child process, killed at the test's cleanup.
type interopPeer struct {
	t            *testing.T
	name         string // its credential identity, also used in failure messages
	signatureKey []byte
	stdin        *bufio.Writer
	lines        chan []byte // response lines; closed when the peer's stdout ends
	stderr       *peerStderr
}

// peerStderr collects the peer's diagnostics for failure messages. exec copies into it from its
// own goroutine, hence the lock (the tests run with -race).
type peerStderr struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *peerStderr) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *peerStderr) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startPeer starts a peer and inits it with suite and identity ("fid@domain/session", so that
// Group.Members and ParseKeyPackage read it as a polyproto session).
func startPeer(t *testing.T, suite Suite, identity string) *interopPeer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", interopDir+"/peer.mjs") // cancel kills it
	p := &interopPeer{t: t, name: identity, lines: make(chan []byte), stderr: &peerStderr{}}
	cmd.Stderr = p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting the interop peer: %v", err)
	}
	p.stdin = bufio.NewWriter(stdin)
	done := make(chan struct{})
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20) // a Welcome with its ratchet tree is far longer than bufio's 64 KiB default
		for sc.Scan() {
			select {
			case p.lines <- bytes.Clone(sc.Bytes()):
			case <-done:
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		cancel()
		_ = cmd.Wait() // always "signal: killed": the peer only stops when stdin closes
	})
	p.signatureKey = p.call("init", map[string]any{"suite": int(suite), "identity": identity}).SignatureKey
	return p
}

// try sends one request and returns the peer's response, or its error as an error.
func (p *interopPeer) try(op string, args map[string]any) (*peerResponse, error) {
	p.t.Helper()
	req := map[string]any{"op": op}
	for k, v := range args {
		req[k] = v
	}
	line, err := json.Marshal(req)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err == nil {
		err = p.stdin.Flush()
	}
	if err != nil {
		p.t.Fatalf("%s %s: writing to the peer: %v\npeer stderr:\n%s", p.name, op, err, p.stderr)
	}
	var resp peerResponse
	select {
	case out, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("%s %s: the peer exited\npeer stderr:\n%s", p.name, op, p.stderr)
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			p.t.Fatalf("%s %s: bad response %.200q: %v", p.name, op, out, err)
		}
	case <-time.After(interopTimeout):
		p.t.Fatalf("%s %s: no response in %s\npeer stderr:\n%s", p.name, op, interopTimeout, p.stderr)
	}
	if !resp.OK {
		return &resp, errors.New(resp.Error)
	}
	return &resp, nil
}

// call is try for requests that must succeed.
func (p *interopPeer) call(op string, args map[string]any) *peerResponse {
	p.t.Helper()
	resp, err := p.try(op, args)
	if err != nil {
		p.t.Fatalf("%s %s: %v\npeer stderr:\n%s", p.name, op, err, p.stderr)
	}
	return resp
}

// keyPackage is a fresh ts-mls KeyPackage with a lifetime our server accepts, and its ref.
func (p *interopPeer) keyPackage() (kp, ref []byte) {
	p.t.Helper()
	r := p.call("key_package", map[string]any{"lifetime_seconds": int(interopLifetime / time.Second)})
	return r.KeyPackage, r.Ref
}

// interopMember is a member of a mixed group, Go or ts-mls, so that the scenarios can send to and
// check everybody alike.
type interopMember struct {
	name string
	g    *Group       // a Go member, or
	peer *interopPeer // a ts-mls member
}

func goMember(name string, g *Group) *interopMember { return &interopMember{name: name, g: g} }
func tsMember(p *interopPeer) *interopMember        { return &interopMember{name: p.name, peer: p} }

// interopOutcome is what processing a message did, in terms both implementations report.
type interopOutcome struct {
	kind      string // "application", "commit" or "proposal"
	plaintext []byte
	removed   bool
}

func (m *interopMember) encrypt(t *testing.T, text string) []byte {
	t.Helper()
	if m.peer != nil {
		return m.peer.call("encrypt", map[string]any{"plaintext": []byte(text)}).Message
	}
	ct, err := m.g.Encrypt([]byte(text))
	if err != nil {
		t.Fatalf("%s encrypt: %v", m.name, err)
	}
	return ct
}

func (m *interopMember) process(t *testing.T, msg []byte) (interopOutcome, error) {
	t.Helper()
	if m.peer != nil {
		r, err := m.peer.try("process", map[string]any{"message": msg})
		if err != nil {
			return interopOutcome{}, err
		}
		return interopOutcome{kind: r.Kind, plaintext: r.Plaintext, removed: r.Removed}, nil
	}
	r, err := m.g.Process(msg)
	if err != nil {
		return interopOutcome{}, err
	}
	kind := map[Kind]string{KindApplication: "application", KindCommit: "commit", KindProposal: "proposal"}[r.Kind]
	return interopOutcome{kind: kind, plaintext: r.Plaintext, removed: r.Removed}, nil
}

// interopSend has from encrypt text and every member of to decrypt exactly it.
func interopSend(t *testing.T, from *interopMember, text string, to ...*interopMember) {
	t.Helper()
	ct := from.encrypt(t, text)
	for _, m := range to {
		got, err := m.process(t, ct)
		if err != nil {
			t.Fatalf("%s -> %s %q: %v", from.name, m.name, text, err)
		}
		if got.kind != "application" || !bytes.Equal(got.plaintext, []byte(text)) {
			t.Fatalf("%s -> %s %q: got %s %q", from.name, m.name, text, got.kind, got.plaintext)
		}
	}
}

// interopDeliver has every member of to process a commit that keeps them in the group.
func interopDeliver(t *testing.T, step string, commit []byte, to ...*interopMember) {
	t.Helper()
	for _, m := range to {
		got, err := m.process(t, commit)
		if err != nil {
			t.Fatalf("%s: %s processing the commit: %v", step, m.name, err)
		}
		if got.kind != "commit" || got.removed {
			t.Fatalf("%s: %s got %+v, want a commit that keeps it", step, m.name, got)
		}
	}
}

// interopRemoved has a removed member process the commit that removed it, which it must be told,
// and then a message of the next epoch, which it must not be able to read.
func interopRemoved(t *testing.T, step string, m *interopMember, commit, next []byte) {
	t.Helper()
	got, err := m.process(t, commit)
	if err != nil || got.kind != "commit" || !got.removed {
		t.Fatalf("%s: %s on its removal: %+v %v, want a commit with removed set", step, m.name, got, err)
	}
	if got, err := m.process(t, next); err == nil {
		t.Fatalf("%s: removed %s read a message of the next epoch: %+v", step, m.name, got)
	}
}

// interopAgree checks that all members are in one epoch of one group with the same secrets
// (epoch authenticator and an exporter output: a mismatch in any key schedule input changes
// both) and the same roster.
func interopAgree(t *testing.T, step string, members ...*interopMember) {
	t.Helper()
	type view struct {
		groupID       []byte
		epoch         uint64
		authenticator []byte
		exported      []byte
		roster        string
	}
	const label, length = "polyproto interop", 32
	context := []byte(step)
	views := make([]view, len(members))
	for i, m := range members {
		if p := m.peer; p != nil {
			st := p.call("state", nil)
			var roster []string
			for _, mb := range st.Members {
				roster = append(roster, fmt.Sprintf("%d:%s", mb.Leaf, mb.Identity))
			}
			views[i] = view{st.GroupID, st.Epoch, st.EpochAuthenticator,
				p.call("export", map[string]any{"label": label, "context": context, "length": length}).Secret,
				strings.Join(roster, " ")}
			continue
		}
		g := m.g
		exported, err := g.Export(label, context, length)
		if err != nil {
			t.Fatalf("%s: %s export: %v", step, m.name, err)
		}
		// Not sorted here: Members promises leaf order, as the peer's list has it (mls-go keeps
		// members in a map, whose order differs from one group value to the next).
		var roster []string
		for _, mb := range g.Members() {
			id := mb.Credential.FID // a credential that is not a polyproto session comes back whole as FID
			if mb.Credential.Session != "" {
				id = mb.Credential.String()
			}
			roster = append(roster, fmt.Sprintf("%d:%s", mb.Leaf, id))
		}
		views[i] = view{g.ID(), g.Epoch(), g.EpochAuthenticator(), exported, strings.Join(roster, " ")}
	}
	ref := views[0]
	if len(ref.authenticator) == 0 {
		t.Fatalf("%s: %s has an empty epoch authenticator", step, members[0].name)
	}
	for i, v := range views[1:] {
		who := fmt.Sprintf("%s: %s vs %s", step, members[0].name, members[i+1].name)
		switch {
		case !bytes.Equal(v.groupID, ref.groupID):
			t.Fatalf("%s: group id %q != %q", who, ref.groupID, v.groupID)
		case v.epoch != ref.epoch:
			t.Fatalf("%s: epoch %d != %d", who, ref.epoch, v.epoch)
		case v.roster != ref.roster:
			t.Fatalf("%s: roster [%s] != [%s]", who, ref.roster, v.roster)
		case !bytes.Equal(v.authenticator, ref.authenticator):
			t.Fatalf("%s: epoch authenticator %x != %x", who, ref.authenticator, v.authenticator)
		case !bytes.Equal(v.exported, ref.exported):
			t.Fatalf("%s: exporter output %x != %x", who, ref.exported, v.exported)
		}
	}
}

// interopGoCommit commits on a Go member and confirms at once: in these tests no other commit
// competes for the epoch.
func interopGoCommit(t *testing.T, m *interopMember, adds [][]byte, removes []uint32) *Commit {
	t.Helper()
	c, err := m.g.Commit(adds, removes)
	if err != nil {
		t.Fatalf("%s commit (adds %d, removes %v): %v", m.name, len(adds), removes, err)
	}
	m.g.Confirm()
	return c
}

// interopServerSees is what our delivery service reads from a ts-mls group message: it must
// parse, and say the group, epoch, content type and (for a PublicMessage) sender leaf it has.
func interopServerSees(t *testing.T, step string, msg []byte, groupID []byte, epoch uint64, ct ContentType, private bool, sender uint32) *Message {
	t.Helper()
	m, err := ParseMessage(msg, time.Now())
	if err != nil {
		t.Fatalf("%s: ParseMessage: %v", step, err)
	}
	if m.Private != private || !bytes.Equal(m.GroupID, groupID) || m.Epoch != epoch || m.Content != ct {
		t.Fatalf("%s: ParseMessage read private=%v group %q epoch %d content %d, want %v %q %d %d",
			step, m.Private, m.GroupID, m.Epoch, m.Content, private, groupID, epoch, ct)
	}
	if !private && m.SenderLeaf != sender {
		t.Fatalf("%s: ParseMessage read sender leaf %d, want %d", step, m.SenderLeaf, sender)
	}
	if ct == ContentCommit && !private && m.Commit == nil {
		t.Fatalf("%s: ParseMessage read no commit info from a public commit", step)
	}
	return m
}

// TestInteropGoCreatesGroup: a Go member creates the group and adds a ts-mls KeyPackage; ts-mls
// joins from Go's Welcome, and they talk both ways.
func TestInteropGoCreatesGroup(t *testing.T) {
	interopForSuites(t, func(t *testing.T, suite Suite) {
		alice := newSigner(t, "alice@a.test", "go1")
		ga, err := Create(alice, suite, []byte("interop-go-creates"))
		if err != nil {
			t.Fatal(err)
		}
		a := goMember("alice (go)", ga)
		interopAgree(t, "created", a) // a lone member must at least have an authenticator

		bob := startPeer(t, suite, "bob@b.test/ts1")
		b := tsMember(bob)
		kp, _ := bob.keyPackage()
		c := interopGoCommit(t, a, [][]byte{kp}, nil)
		if c.Welcome == nil {
			t.Fatal("no Welcome for the added member")
		}
		bob.call("join", map[string]any{"welcome": c.Welcome})
		interopAgree(t, "alice adds bob", a, b)
		if st := bob.call("state", nil); st.Leaf != 1 || st.Epoch != 1 {
			t.Fatalf("bob at leaf %d in epoch %d, want leaf 1 in epoch 1", st.Leaf, st.Epoch)
		}

		interopSend(t, a, "hello bob, from go", b)
		interopSend(t, b, "hello alice, from ts-mls", a)
		interopSend(t, a, "second go message: the ratchet moved on", b)
		interopAgree(t, "after messages", a, b)
	})
}

// TestInteropTsCreatesGroup: the reverse; ts-mls creates the group and adds a Go KeyPackage, and
// the Go member joins from the ts-mls Welcome.
func TestInteropTsCreatesGroup(t *testing.T) {
	interopForSuites(t, func(t *testing.T, suite Suite) {
		bob := startPeer(t, suite, "bob@b.test/ts1")
		b := tsMember(bob)
		groupID := []byte("interop-ts-creates")
		bob.call("create_group", map[string]any{"group_id": groupID})

		alice := newSigner(t, "alice@a.test", "go1")
		kp, sec := mustKP(t, alice, suite)
		_, other := mustKP(t, alice, suite) // Join must pick the KeyPackage the Welcome names
		add := bob.call("add", map[string]any{"key_packages": [][]byte{kp}})
		ga, used, err := Join(alice, add.Welcome, []KeyPackageSecrets{other, sec})
		if err != nil || used != 1 {
			t.Fatalf("alice joins from the ts-mls Welcome: %v (used %d)", err, used)
		}
		a := goMember("alice (go)", ga)
		interopAgree(t, "bob adds alice", a, b)
		if ga.OwnLeaf() != 1 || ga.Epoch() != 1 {
			t.Fatalf("alice at leaf %d in epoch %d, want leaf 1 in epoch 1", ga.OwnLeaf(), ga.Epoch())
		}

		// The Go side names the ts-mls sender by its credential.
		ct := b.encrypt(t, "hello alice, from ts-mls")
		r, err := ga.Process(ct)
		if err != nil || r.Kind != KindApplication || string(r.Plaintext) != "hello alice, from ts-mls" ||
			r.SenderLeaf != 0 || r.Sender != (Credential{FID: "bob@b.test", Session: "ts1"}) {
			t.Fatalf("alice reads bob: %+v %v", r, err)
		}
		interopSend(t, a, "hello bob, from go", b)
		interopSend(t, b, "again from ts-mls", a)
		interopAgree(t, "after messages", a, b)
	})
}

// TestInteropMixedGroup: a group of Go and ts-mls members in which each implementation processes
// the other's Add, Remove and empty commits (and a ts-mls commit sent as a PrivateMessage), and a
// removed member of either kind learns it and cannot read on.
//
//	epoch 1: alice (go) creates the group and adds bob (ts)
//	epoch 2: bob adds carol (go)              go processes a ts Add; go joins from a ts Welcome
//	epoch 3: alice's empty commit             ts and go process a go empty commit
//	epoch 4: bob's update                     go processes a ts empty commit (PublicMessage)
//	epoch 5: bob's update, private            go processes a ts commit sent as a PrivateMessage
//	epoch 6: bob removes carol                go processes a ts Remove; a removed go member
//	epoch 7: alice adds dave (ts)             ts processes a go Add
//	epoch 8: alice removes dave               ts processes a go Remove; a removed ts member
func TestInteropMixedGroup(t *testing.T) {
	interopForSuites(t, func(t *testing.T, suite Suite) {
		groupID := []byte("interop-mixed")
		alice, carol := newSigner(t, "alice@a.test", "go1"), newSigner(t, "carol@c.test", "go3")
		ga, err := Create(alice, suite, groupID)
		if err != nil {
			t.Fatal(err)
		}
		a := goMember("alice (go)", ga)
		bob := startPeer(t, suite, "bob@b.test/ts2")
		b := tsMember(bob)
		dave := startPeer(t, suite, "dave@d.test/ts4")
		d := tsMember(dave)

		bkp, _ := bob.keyPackage()
		bob.call("join", map[string]any{"welcome": interopGoCommit(t, a, [][]byte{bkp}, nil).Welcome})
		interopAgree(t, "epoch 1: alice adds bob", a, b)

		// bob (ts) adds carol (go): alice processes a ts Add commit, carol joins from its Welcome.
		ckp, csec := mustKP(t, carol, suite)
		add := bob.call("add", map[string]any{"key_packages": [][]byte{ckp}})
		seen := interopServerSees(t, "bob adds carol", add.Commit, groupID, 1, ContentCommit, false, 1)
		if len(seen.Commit.Adds) != 1 || seen.Commit.Adds[0].Credential != carol.Credential {
			t.Fatalf("bob adds carol: server read adds %+v", seen.Commit.Adds)
		}
		interopDeliver(t, "bob adds carol", add.Commit, a)
		gc, _, err := Join(carol, add.Welcome, []KeyPackageSecrets{csec})
		if err != nil {
			t.Fatalf("carol joins from the ts-mls Welcome: %v", err)
		}
		c := goMember("carol (go)", gc)
		interopAgree(t, "epoch 2: bob adds carol", a, b, c)
		interopSend(t, a, "alice to all", b, c)
		interopSend(t, b, "bob to all", a, c)
		interopSend(t, c, "carol to all", a, b)

		// alice's empty commit (a key update): bob (ts) and carol (go) follow it.
		upd := interopGoCommit(t, a, nil, nil)
		interopDeliver(t, "alice's empty commit", upd.Message, b, c)
		interopAgree(t, "epoch 3: alice's empty commit", a, b, c)

		// bob's empty commit, as a PublicMessage then as a PrivateMessage: both go members follow.
		pub := bob.call("update", nil)
		seen = interopServerSees(t, "bob's update", pub.Commit, groupID, 3, ContentCommit, false, 1)
		if ci := seen.Commit; len(ci.Adds)+len(ci.Removes)+ci.Other != 0 || !ci.HasPath {
			t.Fatalf("bob's update: server read %+v, want no proposals and a path", ci)
		}
		interopDeliver(t, "bob's update", pub.Commit, a, c)
		interopAgree(t, "epoch 4: bob's update", a, b, c)
		priv := bob.call("update", map[string]any{"private": true})
		interopServerSees(t, "bob's private update", priv.Commit, groupID, 4, ContentCommit, true, 0)
		// alice reads it directly to see whom it names: bob, whose leaf a PrivateMessage carries
		// encrypted. Errorf, not Fatalf: Group.Process names leaf 0 for every private commit or
		// proposal (its sender is only read from PublicMessages), and the steps after do not
		// depend on it.
		r, err := ga.Process(priv.Commit)
		if err != nil || r.Kind != KindCommit || r.Removed {
			t.Fatalf("bob's private update: alice got %+v %v", r, err)
		}
		if bobCred := (Credential{FID: "bob@b.test", Session: "ts2"}); r.SenderLeaf != 1 || r.Sender != bobCred {
			t.Errorf("bob's private update: Process says sender leaf %d (%s), want leaf 1 (%s)", r.SenderLeaf, r.Sender, bobCred)
		}
		interopDeliver(t, "bob's private update", priv.Commit, c)
		interopAgree(t, "epoch 5: bob's private update", a, b, c)
		interopSend(t, c, "carol after the updates", a, b)

		// bob (ts) removes carol (go): alice follows, carol is told and reads nothing after.
		rm := bob.call("remove", map[string]any{"leaf": gc.OwnLeaf()})
		seen = interopServerSees(t, "bob removes carol", rm.Commit, groupID, 5, ContentCommit, false, 1)
		if !slices.Equal(seen.Commit.Removes, []uint32{2}) {
			t.Fatalf("bob removes carol: server read removes %v", seen.Commit.Removes)
		}
		interopDeliver(t, "bob removes carol", rm.Commit, a)
		interopAgree(t, "epoch 6: bob removes carol", a, b)
		after := b.encrypt(t, "bob, after carol left")
		interopRemoved(t, "bob removes carol", c, rm.Commit, after)
		if got, err := a.process(t, after); err != nil || string(got.plaintext) != "bob, after carol left" {
			t.Fatalf("alice after carol's removal: %+v %v", got, err)
		}

		// alice (go) adds dave (ts): bob processes a go Add commit.
		dkp, _ := dave.keyPackage()
		addD := interopGoCommit(t, a, [][]byte{dkp}, nil)
		interopDeliver(t, "alice adds dave", addD.Message, b)
		dave.call("join", map[string]any{"welcome": addD.Welcome})
		interopAgree(t, "epoch 7: alice adds dave", a, b, d)
		interopSend(t, d, "dave to all", a, b)

		// alice (go) removes dave (ts): bob follows, dave is told and reads nothing after.
		rmD := interopGoCommit(t, a, nil, []uint32{dave.call("state", nil).Leaf})
		interopDeliver(t, "alice removes dave", rmD.Message, b)
		interopAgree(t, "epoch 8: alice removes dave", a, b)
		after = a.encrypt(t, "alice, after dave left")
		interopRemoved(t, "alice removes dave", d, rmD.Message, after)
		if got, err := b.process(t, after); err != nil || string(got.plaintext) != "alice, after dave left" {
			t.Fatalf("bob after dave's removal: %+v %v", got, err)
		}
		interopSend(t, b, "bob, last word", a)
		interopAgree(t, "end", a, b)
	})
}

// TestInteropServerValidatesTs: our server-side validators accept what ts-mls sends and read the
// same facts out of it: ParseKeyPackage on its KeyPackages, ParseMessage on its commits and
// messages, WelcomeRefs on its Welcomes.
func TestInteropServerValidatesTs(t *testing.T) {
	interopForSuites(t, func(t *testing.T, suite Suite) {
		now := time.Now()
		bob := startPeer(t, suite, "bob@b.test/ts1")
		carol := startPeer(t, suite, "carol@c.test/phone/2") // a session id may contain '/'

		kpMsg, ref := carol.keyPackage()
		kp, err := ParseKeyPackage(kpMsg, now)
		if err != nil {
			t.Fatalf("ParseKeyPackage on a ts-mls KeyPackage: %v", err)
		}
		if !bytes.Equal(kp.Raw, kpMsg) || !bytes.Equal(kp.Ref, ref) || kp.Suite != suite ||
			kp.Credential != (Credential{FID: "carol@c.test", Session: "phone/2"}) ||
			!bytes.Equal(kp.SignatureKey, carol.signatureKey) || len(kp.InitKey) != 32 {
			t.Fatalf("ParseKeyPackage read %+v (peer's ref %x, signature key %x)", kp, ref, carol.signatureKey)
		}
		if span := kp.NotAfter.Sub(kp.NotBefore); kp.NotBefore.After(now) || !kp.NotAfter.After(now) || span > MaxKeyPackageLifetime {
			t.Fatalf("ParseKeyPackage read lifetime %s..%s", kp.NotBefore, kp.NotAfter)
		}
		// ts-mls's default lifetime is unbounded, which the server must refuse: the reason the
		// peer's key_package takes lifetime_seconds.
		unbounded := carol.call("key_package", nil).KeyPackage
		if _, err := ParseKeyPackage(unbounded, now); !errors.Is(err, ErrLifetime) {
			t.Fatalf("ParseKeyPackage on a KeyPackage valid for ever: %v, want ErrLifetime", err)
		}

		groupID := []byte("interop-server-view")
		bob.call("create_group", map[string]any{"group_id": groupID})
		add := bob.call("add", map[string]any{"key_packages": [][]byte{kpMsg}})
		m := interopServerSees(t, "bob adds carol", add.Commit, groupID, 0, ContentCommit, false, 0)
		// No HasPath check: a commit of Adds only may omit the UpdatePath (RFC 9420 section
		// 12.4), and ts-mls does.
		if ci := m.Commit; len(ci.Adds) != 1 || len(ci.Removes) != 0 || ci.Other != 0 ||
			!bytes.Equal(ci.Adds[0].Ref, ref) || !bytes.Equal(ci.Adds[0].Raw, kpMsg) {
			t.Fatalf("bob adds carol: server read %+v", ci)
		}
		refs, err := WelcomeRefs(add.Welcome)
		if err != nil || len(refs) != 1 || !bytes.Equal(refs[0], ref) {
			t.Fatalf("WelcomeRefs on the ts-mls Welcome: %x %v, want [%x]", refs, err, ref)
		}
		carol.call("join", map[string]any{"welcome": add.Welcome})

		app := carol.call("encrypt", map[string]any{"plaintext": []byte("not for the server")}).Message
		interopServerSees(t, "carol's message", app, groupID, 1, ContentApplication, true, 0)
		if bytes.Contains(app, []byte("not for the server")) {
			t.Fatal("the application message carries its plaintext in the clear")
		}

		upd := carol.call("update", nil).Commit
		m = interopServerSees(t, "carol's update", upd, groupID, 1, ContentCommit, false, 1)
		if ci := m.Commit; len(ci.Adds)+len(ci.Removes)+ci.Other != 0 || !ci.HasPath {
			t.Fatalf("carol's update: server read %+v", ci)
		}
		bob.call("process", map[string]any{"message": upd})

		priv := bob.call("update", map[string]any{"private": true}).Commit
		interopServerSees(t, "bob's private update", priv, groupID, 2, ContentCommit, true, 0)
		carol.call("process", map[string]any{"message": priv})

		rm := bob.call("remove", map[string]any{"leaf": 1}).Commit
		m = interopServerSees(t, "bob removes carol", rm, groupID, 3, ContentCommit, false, 0)
		if ci := m.Commit; len(ci.Adds) != 0 || !slices.Equal(ci.Removes, []uint32{1}) || ci.Other != 0 || !ci.HasPath {
			t.Fatalf("bob removes carol: server read %+v", ci)
		}
	})
}
