package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/actors/group"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
	"github.com/polyproto-chat/server/snowflake"
)

// badReq is one bad request to a group route and the error it must get.
type badReq struct {
	name   string
	as     *Chat
	method string
	path   string // below /.p2/chat/v1
	query  url.Values
	body   any // JSON-encoded; a rawBody is sent as is
	status int
	code   string
}

// rawBody is a request body sent byte for byte (malformed JSON and the like).
type rawBody string

// send makes the request and returns the error body it got (nil for a 2xx answer).
func (r badReq) send(ctx context.Context) (*APIError, error) {
	var payload []byte
	switch b := r.body.(type) {
	case nil:
	case rawBody:
		payload = []byte(b)
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return nil, err
		}
	}
	req := chatRequest{method: r.method, path: r.path, query: r.query}
	status, data, err := r.as.roundTrip(ctx, req, payload)
	if err != nil {
		return nil, err
	}
	if status >= 200 && status < 300 {
		return nil, nil
	}
	return decodeError(status, data), nil
}

var b64url = base64.RawURLEncoding.EncodeToString

func commitBody(commit, welcome []byte) map[string]string {
	body := map[string]string{"commit": b64url(commit)}
	if welcome != nil {
		body["welcome"] = b64url(welcome)
	}
	return body
}

func createBody(kind, name string, members ...string) map[string]any {
	return map[string]any{"kind": kind, "name": name, "members": append([]string{}, members...)}
}

// withField sets one more field of a body.
func withField(body map[string]any, key string, value any) map[string]any {
	body[key] = value
	return body
}

func messageBody(msg []byte) map[string]string { return map[string]string{"message": b64url(msg)} }

func joinBody(kp []byte) map[string]string { return map[string]string{"key_package": b64url(kp)} }

// badInputMember is a registered, logged-in session with KeyPackages on the server.
type badInputMember struct {
	s  *Session
	ch *Chat
	m  *MLS
}

func (bm badInputMember) signer() mls.Signer {
	return mls.Signer{Credential: mls.Credential{FID: bm.s.FID.String(), Session: bm.s.SessionID}, Key: bm.s.Key}
}

// copyGroup loads a copy of the member's MLS state of a group: commits and messages made from it
// are never seen by the member's own state.
func (bm badInputMember) copyGroup(t *testing.T, id snowflake.ID) *mls.Group {
	t.Helper()
	g, err := bm.m.MLSGroup(id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.State()
	if err != nil {
		t.Fatal(err)
	}
	return loadGroup(t, bm.signer(), st)
}

func loadGroup(t *testing.T, s mls.Signer, state []byte) *mls.Group {
	t.Helper()
	g, err := mls.Load(s, state)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustCommit(t *testing.T, g *mls.Group, adds [][]byte, removes []uint32) *mls.Commit {
	t.Helper()
	c, err := g.Commit(adds, removes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustEncrypt(t *testing.T, g *mls.Group, text string) []byte {
	t.Helper()
	ct, err := g.Encrypt([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func mustKeyPackage(t *testing.T, s mls.Signer, suite mls.Suite, life time.Duration) []byte {
	t.Helper()
	kp, _, err := mls.NewKeyPackage(s, suite, life)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// nilCredential returns msg with the Basic credential of identity turned into one of type 0,
// which mls-go v1.6.0 decodes as a nil credential (and then panics re-encoding).
func nilCredential(t *testing.T, msg []byte, identity string) []byte {
	t.Helper()
	basic := append([]byte{0, 1, byte(len(identity))}, identity...)
	if len(identity) > 63 || bytes.Count(msg, basic) != 1 {
		t.Fatalf("no single Basic credential %q", identity)
	}
	out := bytes.Clone(msg)
	out[bytes.Index(out, basic)+1] = 0
	return out
}

// groupSnapshot is what the server stores of a group, as a member reads it: the group and its
// whole log, as the JSON the server sent.
func groupSnapshot(t *testing.T, ctx context.Context, ch *Chat, id snowflake.ID) (info, log json.RawMessage) {
	t.Helper()
	if err := ch.get(ctx, "/groups/"+id.String(), nil, &info); err != nil {
		t.Fatal(err)
	}
	if err := ch.get(ctx, "/groups/"+id.String()+"/log", url.Values{"limit": {"500"}}, &log); err != nil {
		t.Fatal(err)
	}
	return info, log
}

// TestGroupBadInput sends bad requests to every group route of the real server binary and
// checks, for each, the status and code, and that none of them stored anything: the group and
// its log read the same afterwards, and its owner's gateway saw no group dispatch before the
// dispatch of a later, unrelated write.
func TestGroupBadInput(t *testing.T) {
	base := startTestServer(t, "-data-dir", t.TempDir(), "-domain", "a.test", "-store", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newClient(t, base, t.TempDir())
	login := func(name, session string, register, upload bool) badInputMember {
		t.Helper()
		keys := 0
		if upload {
			keys = 3
		}
		s, ch, m := mlsLogin(t, ctx, c, name, session, register, keys, ChatOptions{})
		return badInputMember{s: s, ch: ch, m: m}
	}
	alice := login("alice", "laptop", true, true)
	bob := login("bob", "desk", true, true)
	carol := login("carol", "desk", true, true)  // never in the group
	phone := login("bob", "phone", false, false) // bob's new device, not in the group

	// The group: alice creates it with bob, bob joins from the log, alice updates once (epoch
	// 2), bob follows. Bob's state of epoch 1 is kept for out-of-epoch commits and messages.
	grp, err := alice.m.CreateGroup(ctx, GroupGroup, "bad input", []identity.FID{bob.s.FID})
	if err != nil {
		t.Fatal(err)
	}
	id := grp.ID
	if evs, err := bob.m.CatchUp(ctx, id); err != nil || len(evs) != 1 || evs[0].Type != GroupJoined {
		t.Fatalf("bob joins from the log: %+v %v", evs, err)
	}
	staleState, err := bob.copyGroup(t, id).State()
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.m.Update(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.m.CatchUp(ctx, id); err != nil {
		t.Fatal(err)
	}
	var page struct{ Entries []groupEntry }
	if err := alice.ch.get(ctx, "/groups/"+id.String()+"/log", nil, &page); err != nil {
		t.Fatal(err)
	}
	var accepted []groupEntry // the commits of epochs 0 (adds bob, with his Welcome) and 1
	for _, e := range page.Entries {
		if e.Type == "MLS_COMMIT" {
			accepted = append(accepted, e)
		}
	}
	if len(accepted) != 2 || accepted[0].Welcome == "" {
		t.Fatalf("log %+v", page.Entries)
	}
	decode := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// The MLS material: KeyPackages, and commits and messages made from copies of the members'
	// states (never posted by the SDK, so the members' own states stay as they are).
	life := KeyPackageLifetime
	carolKP := mustKeyPackage(t, carol.signer(), mls.DefaultSuite, life)
	carolKP2 := mustKeyPackage(t, carol.signer(), mls.DefaultSuite, life)
	_, freshKey, _ := ed25519.GenerateKey(nil)
	unboundKP := mustKeyPackage(t, mls.Signer{Credential: bob.signer().Credential, Key: freshKey}, mls.DefaultSuite, life)
	expiredKP := mustKeyPackage(t, phone.signer(), mls.DefaultSuite, -30*time.Minute)
	ghostKP := mustKeyPackage(t, mls.Signer{Credential: mls.Credential{FID: "carol@a.test", Session: "ghost"}, Key: carol.s.Key}, mls.DefaultSuite, life)
	nobodyKP := mustKeyPackage(t, mls.Signer{Credential: mls.Credential{FID: "nobody@a.test", Session: "desk"}, Key: carol.s.Key}, mls.DefaultSuite, life)
	upperPhone := mls.Signer{Credential: mls.Credential{FID: "BOB@a.test", Session: "phone"}, Key: phone.s.Key}
	upperPhoneKP := mustKeyPackage(t, upperPhone, mls.DefaultSuite, life)

	empty := mustCommit(t, alice.copyGroup(t, id), nil, nil)                    // alice's key update, epoch 2
	addCarol := mustCommit(t, alice.copyGroup(t, id), [][]byte{carolKP}, nil)   // with carol's Welcome
	addCarol2 := mustCommit(t, alice.copyGroup(t, id), [][]byte{carolKP2}, nil) // another Welcome
	addUnbound := mustCommit(t, alice.copyGroup(t, id), [][]byte{unboundKP}, nil)
	addGhost := mustCommit(t, alice.copyGroup(t, id), [][]byte{ghostKP}, nil)
	addNobody := mustCommit(t, alice.copyGroup(t, id), [][]byte{nobodyKP}, nil)
	addUpperPhone := mustCommit(t, alice.copyGroup(t, id), [][]byte{upperPhoneKP}, nil)
	bobAddsCarol := mustCommit(t, bob.copyGroup(t, id), [][]byte{carolKP}, nil)
	bobRemovesAlice := mustCommit(t, bob.copyGroup(t, id), nil, []uint32{0})
	aliceRemovesSelf := mustCommit(t, alice.copyGroup(t, id), nil, []uint32{0})
	stale := mustCommit(t, loadGroup(t, bob.signer(), staleState), nil, nil) // epoch 1
	staleMsg := mustEncrypt(t, loadGroup(t, bob.signer(), staleState), "old")
	bobMsg := mustEncrypt(t, bob.copyGroup(t, id), "hello")
	aliceMsg := mustEncrypt(t, alice.copyGroup(t, id), "hello")
	elsewhere, err := mls.Create(alice.signer(), mls.DefaultSuite, []byte("elsewhere@a.test"))
	if err != nil {
		t.Fatal(err)
	}
	otherGroup := mustCommit(t, elsewhere, nil, nil)
	ownKP := mustKeyPackage(t, bob.signer(), mls.DefaultSuite, life)
	phoneKP := mustKeyPackage(t, phone.signer(), mls.DefaultSuite, life)
	phoneKPChaCha := mustKeyPackage(t, phone.signer(), mls.SuiteX25519ChaCha, life)
	carolOwnKP := mustKeyPackage(t, carol.signer(), mls.DefaultSuite, life)
	garbage := []byte("\x00\x01\x00\x01 this is no MLS message at all")

	g := "/groups/" + id.String()
	unknown := "/groups/4194304" // a snowflake of 2025-01-01T00:00:00.001Z: no group
	tooMany := make([]string, group.MaxActors)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("x%d@a.test", i)
	}
	post := http.MethodPost
	const (
		bad       = "P2_CHAT_BAD_REQUEST"
		limit     = "P2_CHAT_LIMIT"
		notFound  = "P2_CHAT_NOT_FOUND"
		forbidden = "P2_CHAT_FORBIDDEN"
		conflict  = "P2_CHAT_EPOCH_CONFLICT"
		malformed = "P2_MLS_MALFORMED"
		notBound  = "P2_MLS_NOT_BOUND"
	)
	a, b, cl, ph := alice.ch, bob.ch, carol.ch, phone.ch
	cases := []badReq{
		// Creating a group.
		{"create: unknown kind", a, post, "/groups", nil, createBody("room", "", "bob@a.test"), 400, bad},
		{"create: kind channel (only encrypting a channel makes one)", a, post, "/groups", nil, map[string]any{"kind": "channel"}, 400, bad},
		{"create: no kind", a, post, "/groups", nil, createBody("", "", "bob@a.test"), 400, bad},
		{"create: DM with nobody", a, post, "/groups", nil, createBody("dm", ""), 400, bad},
		{"create: DM with two others", a, post, "/groups", nil, createBody("dm", "", "bob@a.test", "carol@a.test"), 400, bad},
		{"create: DM with a name", a, post, "/groups", nil, createBody("dm", "us", "bob@a.test"), 400, bad},
		{"create: DM with oneself", a, post, "/groups", nil, createBody("dm", "", "alice@a.test"), 400, bad},
		{"create: group of one", a, post, "/groups", nil, createBody("group", ""), 400, bad},
		{"create: group of 16", a, post, "/groups", nil, createBody("group", "", tooMany...), 400, limit},
		{"create: group of 17", a, post, "/groups", nil, createBody("group", "", append(tooMany, "y@a.test")...), 400, limit},
		{"create: a member twice", a, post, "/groups", nil, createBody("group", "", "bob@a.test", "bob@a.test"), 400, bad},
		{"create: name of 101 characters", a, post, "/groups", nil, createBody("group", strings.Repeat("é", 101), "bob@a.test"), 400, bad},
		{"create: invalid FID", a, post, "/groups", nil, createBody("group", "", "bob"), 400, bad},
		{"create: empty FID", a, post, "/groups", nil, createBody("group", "", ""), 400, bad},
		{"create: member not a string", a, post, "/groups", nil, rawBody(`{"kind":"group","members":[1]}`), 400, bad},
		{"create: cipher suite 2", a, post, "/groups", nil, withField(createBody("group", "", "bob@a.test"), "cipher_suite", 2), 400, bad},
		{"create: cipher suite 0", a, post, "/groups", nil, withField(createBody("group", "", "bob@a.test"), "cipher_suite", 0), 400, bad},
		{"create: cipher suite over 16 bits", a, post, "/groups", nil, withField(createBody("group", "", "bob@a.test"), "cipher_suite", 65537), 400, bad},
		{"create: unknown field", a, post, "/groups", nil, withField(createBody("group", "", "bob@a.test"), "topic", "x"), 400, bad},
		{"create: malformed JSON", a, post, "/groups", nil, rawBody(`{"kind":"group",`), 400, bad},
		{"create: empty body", a, post, "/groups", nil, rawBody(``), 400, bad},
		{"create: two objects", a, post, "/groups", nil, rawBody(`{"kind":"group","members":["bob@a.test"]}{}`), 400, bad},
		{"create: bad token", withToken(a, "nope"), post, "/groups", nil, createBody("group", "", "bob@a.test"), 401, "P2_CORE_UNAUTHORIZED"},

		// Unknown groups, and a stranger to this one: the same answer.
		{"unknown group: read", a, "GET", unknown, nil, nil, 404, notFound},
		{"unknown group: log", a, "GET", unknown + "/log", nil, nil, 404, notFound},
		{"unknown group: commit", a, post, unknown + "/commits", nil, commitBody(empty.Message, nil), 404, notFound},
		{"unknown group: message", a, post, unknown + "/messages", nil, messageBody(aliceMsg), 404, notFound},
		{"unknown group: join request", ph, post, unknown + "/join-requests", nil, joinBody(phoneKP), 404, notFound},
		{"stranger: read", cl, "GET", g, nil, nil, 404, notFound},
		{"stranger: log", cl, "GET", g + "/log", nil, nil, 404, notFound},
		{"stranger: commit", cl, post, g + "/commits", nil, commitBody(empty.Message, nil), 404, notFound},
		{"stranger: message", cl, post, g + "/messages", nil, messageBody(bobMsg), 404, notFound},
		{"stranger: join request", cl, post, g + "/join-requests", nil, joinBody(carolOwnKP), 404, notFound},
		{"bad token: read", withToken(a, "nope"), "GET", g, nil, nil, 401, "P2_CORE_UNAUTHORIZED"},

		// Commits.
		{"commit: not base64url", a, post, g + "/commits", nil, map[string]string{"commit": "!!"}, 400, bad},
		{"commit: padded base64", a, post, g + "/commits", nil, map[string]string{"commit": base64.URLEncoding.EncodeToString(empty.Message)}, 400, bad},
		{"commit: empty", a, post, g + "/commits", nil, map[string]string{"commit": ""}, 400, bad},
		{"commit: missing", a, post, g + "/commits", nil, map[string]string{}, 400, bad},
		{"commit: over 256 KiB", a, post, g + "/commits", nil, commitBody(make([]byte, 256<<10+1), nil), 400, bad},
		{"commit: unknown field", a, post, g + "/commits", nil, map[string]string{"commit": b64url(empty.Message), "x": ""}, 400, bad},
		{"commit: malformed JSON", a, post, g + "/commits", nil, rawBody(`{"commit":`), 400, bad},
		{"commit: garbage", a, post, g + "/commits", nil, commitBody(garbage, nil), 400, malformed},
		{"commit: truncated", a, post, g + "/commits", nil, commitBody(empty.Message[:len(empty.Message)-1], nil), 400, malformed},
		{"commit: trailing byte", a, post, g + "/commits", nil, commitBody(append(bytes.Clone(empty.Message), 0), nil), 400, malformed},
		{"commit: a KeyPackage", a, post, g + "/commits", nil, commitBody(carolKP, nil), 400, malformed},
		{"commit: a Welcome", a, post, g + "/commits", nil, commitBody(addCarol.Welcome, nil), 400, malformed},
		{"commit: an application message", a, post, g + "/commits", nil, commitBody(aliceMsg, nil), 400, bad},
		{"commit: of another MLS group", a, post, g + "/commits", nil, commitBody(otherGroup.Message, nil), 400, bad},
		{"commit: replayed (epoch 1)", a, post, g + "/commits", nil, commitBody(decode(accepted[1].Commit), nil), 409, conflict},
		{"commit: replayed with its Welcome (epoch 0)", a, post, g + "/commits", nil, commitBody(decode(accepted[0].Commit), decode(accepted[0].Welcome)), 409, conflict},
		{"commit: from a stale state", b, post, g + "/commits", nil, commitBody(stale.Message, nil), 409, conflict},
		{"commit: posted by a session not its sender", b, post, g + "/commits", nil, commitBody(empty.Message, nil), 403, forbidden},
		{"commit: add without the Welcome", a, post, g + "/commits", nil, commitBody(addCarol.Message, nil), 400, bad},
		{"commit: add with another KeyPackage's Welcome", a, post, g + "/commits", nil, commitBody(addCarol.Message, addCarol2.Welcome), 400, bad},
		{"commit: a Welcome beside a commit adding nobody", a, post, g + "/commits", nil, commitBody(empty.Message, addCarol.Welcome), 400, bad},
		{"commit: Welcome not base64url", a, post, g + "/commits", nil, map[string]string{"commit": b64url(addCarol.Message), "welcome": "!!"}, 400, bad},
		{"commit: Welcome garbage", a, post, g + "/commits", nil, commitBody(addCarol.Message, garbage), 400, malformed},
		{"commit: a commit as the Welcome", a, post, g + "/commits", nil, commitBody(addCarol.Message, addCarol.Message), 400, malformed},
		{"commit: adds a KeyPackage not signed by its session's key", a, post, g + "/commits", nil, commitBody(addUnbound.Message, addUnbound.Welcome), 400, notBound},
		{"commit: adds a session that is not live", a, post, g + "/commits", nil, commitBody(addGhost.Message, addGhost.Welcome), 400, notBound},
		{"commit: adds an actor without an account", a, post, g + "/commits", nil, commitBody(addNobody.Message, addNobody.Welcome), 400, notBound},
		{"commit: Welcome over 256 KiB", a, post, g + "/commits", nil, commitBody(addCarol.Message, make([]byte, 256<<10+1)), 400, bad},
		{"commit: body over 512 KiB", a, post, g + "/commits", nil, commitBody(make([]byte, 400<<10), nil), 413, "P2_CHAT_TOO_LARGE"},
		{"commit: non-owner adds an actor", b, post, g + "/commits", nil, commitBody(bobAddsCarol.Message, bobAddsCarol.Welcome), 403, forbidden},
		{"commit: non-owner removes the owner", b, post, g + "/commits", nil, commitBody(bobRemovesAlice.Message, nil), 403, forbidden},
		{"commit: removes its own sender", a, post, g + "/commits", nil, commitBody(aliceRemovesSelf.Message, nil), 400, bad},
		{"commit: from a session of a member that holds no leaf", ph, post, g + "/commits", nil, commitBody(empty.Message, nil), 403, forbidden},

		// Application messages.
		{"message: not base64url", a, post, g + "/messages", nil, map[string]string{"message": "!!"}, 400, bad},
		{"message: empty", a, post, g + "/messages", nil, map[string]string{"message": ""}, 400, bad},
		{"message: unknown field", a, post, g + "/messages", nil, map[string]string{"message": b64url(aliceMsg), "x": ""}, 400, bad},
		{"message: malformed JSON", a, post, g + "/messages", nil, rawBody(`[`), 400, bad},
		{"message: MaxMessage+1 bytes", a, post, g + "/messages", nil, messageBody(make([]byte, group.MaxMessage+1)), 400, limit},
		{"message: MaxMessage+3 bytes", a, post, g + "/messages", nil, messageBody(make([]byte, group.MaxMessage+3)), 400, limit},
		{"message: 40 KiB", a, post, g + "/messages", nil, messageBody(make([]byte, 40<<10)), 400, limit},
		{"message: body over 64 KiB", a, post, g + "/messages", nil, messageBody(make([]byte, 64<<10)), 413, "P2_CHAT_TOO_LARGE"},
		{"message: garbage", a, post, g + "/messages", nil, messageBody(garbage), 400, malformed},
		{"message: a commit", a, post, g + "/messages", nil, messageBody(empty.Message), 400, bad},
		{"message: a KeyPackage", a, post, g + "/messages", nil, messageBody(carolKP), 400, malformed},
		{"message: of an old epoch", b, post, g + "/messages", nil, messageBody(staleMsg), 409, conflict},
		{"message: of another member's session that holds no leaf", ph, post, g + "/messages", nil, messageBody(bobMsg), 403, forbidden},

		// Join requests (bob's phone is a new device of an actor in the group).
		{"join: another session's KeyPackage", ph, post, g + "/join-requests", nil, joinBody(ownKP), 400, notBound},
		{"join: another actor's KeyPackage", ph, post, g + "/join-requests", nil, joinBody(carolOwnKP), 400, notBound},
		{"join: its own KeyPackage, FID in upper case", ph, post, g + "/join-requests", nil, joinBody(mustKeyPackage(t, upperPhone, mls.DefaultSuite, life)), 400, notBound},
		{"join: garbage", ph, post, g + "/join-requests", nil, joinBody(garbage), 400, malformed},
		{"join: not base64url", ph, post, g + "/join-requests", nil, map[string]string{"key_package": "!!"}, 400, bad},
		{"join: unknown field", ph, post, g + "/join-requests", nil, map[string]string{"key_package": b64url(phoneKP), "x": ""}, 400, bad},
		{"join: expired KeyPackage", ph, post, g + "/join-requests", nil, joinBody(expiredKP), 400, "P2_MLS_BAD_LIFETIME"},
		{"join: KeyPackage of another cipher suite", ph, post, g + "/join-requests", nil, joinBody(phoneKPChaCha), 400, bad},
		{"join: session already in the group", b, post, g + "/join-requests", nil, joinBody(ownKP), 400, bad},

		// The log.
		{"log: after not a number", a, "GET", g + "/log", url.Values{"after": {"x"}}, nil, 400, bad},
		{"log: after below -1", a, "GET", g + "/log", url.Values{"after": {"-2"}}, nil, 400, bad},
		{"log: after past 2^62", a, "GET", g + "/log", url.Values{"after": {"9223372036854775807"}}, nil, 400, bad},
		{"log: limit 0", a, "GET", g + "/log", url.Values{"limit": {"0"}}, nil, 400, bad},
		{"log: limit 501", a, "GET", g + "/log", url.Values{"limit": {"501"}}, nil, 400, bad},
		{"log: limit not a number", a, "GET", g + "/log", url.Values{"limit": {"1e2"}}, nil, 400, bad},
	}
	// A path id that is no snowflake, on every route.
	for _, badID := range []string{"abc", "0", "01", "-1", "9223372036854775808", "1.5"} {
		for _, r := range []struct {
			method, sub string
			body        any
		}{{"GET", "", nil}, {"GET", "/log", nil}, {post, "/commits", commitBody(empty.Message, nil)},
			{post, "/messages", messageBody(aliceMsg)}, {post, "/join-requests", joinBody(phoneKP)}} {
			cases = append(cases, badReq{"group id " + badID + ": " + r.method + " " + r.sub, a, r.method, "/groups/" + badID + r.sub, nil, r.body, 400, "P2_CHAT_BAD_REQUEST"})
		}
	}

	// Once server bugs (found by this test and the fuzzer), kept with why they mattered.
	fixed := []struct {
		why string
		req badReq
	}{
		{"the commit route checks the binding of an added KeyPackage under the canonical FID (bob@a.test) " +
			"but the group stores the credential's own spelling: BOB@a.test becomes a second actor, and bob's new " +
			"device joins without NEW_DEVICE",
			badReq{"commit: adds a session under an upper-case FID", a, post, g + "/commits", nil, commitBody(addUpperPhone.Message, addUpperPhone.Welcome), 400, notBound}},
		{"a KeyPackage whose credential has type 0 panics the handler inside mls-go (nil *Credential re-encoded): " +
			"no answer at all, the connection drops",
			badReq{"join: KeyPackage with a credential of type 0", ph, post, g + "/join-requests", nil,
				joinBody(nilCredential(t, phoneKP, "bob@a.test/phone")), 400, malformed}},
		{"the same, in the Add of a commit (even for a stranger and an unknown group)",
			badReq{"commit: adds a KeyPackage with a credential of type 0", a, post, g + "/commits", nil,
				commitBody(nilCredential(t, addCarol.Message, "carol@a.test/desk"), addCarol.Welcome), 400, malformed}},
		{"group names take control characters, which guild and channel names refuse",
			badReq{"create: name with control characters", a, post, "/groups", nil, createBody("group", "a\x00b\n", "bob@a.test"), 400, bad}},
	}
	for _, f := range fixed {
		cases = append(cases, f.req)
	}

	gw, err := c.Connect(ctx, alice.s, GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	waitChatEvent(t, gw, func(ev Event) bool { return ev.Ready != nil })
	info, log := groupSnapshot(t, ctx, alice.ch, id)

	for _, tc := range cases {
		got, err := tc.send(ctx)
		switch {
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case got == nil:
			t.Errorf("%s: succeeded, want %d %s", tc.name, tc.status, tc.code)
		case got.Status != tc.status || !slices.Contains(strings.Split(tc.code, "|"), got.Code):
			t.Errorf("%s: got %d %s (%s), want %d %s", tc.name, got.Status, got.Code, got.Message, tc.status, tc.code)
		}
	}

	// A stranger learns nothing: each of carol's answers is, word for word, the one for a group
	// that does not exist.
	for _, route := range []string{"", "/log"} {
		var mine, none *APIError
		mine, _ = badReq{as: cl, method: "GET", path: g + route}.send(ctx)
		none, _ = badReq{as: cl, method: "GET", path: unknown + route}.send(ctx)
		if mine == nil || none == nil || mine.Status != none.Status || mine.Code != none.Code || mine.Message != none.Message {
			t.Errorf("GET %s: a stranger gets %+v, an unknown group gives %+v", route, mine, none)
		}
	}

	// Nothing was stored: the group and its log are as they were, and alice's gateway, which
	// gets every event of her groups (and a new group she makes), gets none before the guild she
	// makes now.
	if info2, log2 := groupSnapshot(t, ctx, alice.ch, id); !bytes.Equal(info, info2) || !bytes.Equal(log, log2) {
		t.Errorf("the bad requests changed the group:\n%s\n%s\nnow:\n%s\n%s", info, log, info2, log2)
	}
	guild, err := alice.ch.CreateGuild(ctx, NewGuild{Name: "sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	waitChatEvent(t, gw, func(ev Event) bool {
		if d := ev.Dispatch; d != nil && (strings.HasPrefix(d.Type, "GROUP_") || strings.HasPrefix(d.Type, "MLS_") || d.Type == EventNewDevice) {
			t.Errorf("a bad request was stored: %s %s", d.Type, d.Data)
		}
		return ev.Dispatch != nil && ev.Dispatch.Type == EventGuildCreate && strings.Contains(string(ev.Dispatch.Data), guild.ID.String())
	})

	// And the group still works: bob's message of this epoch goes through.
	if _, err := bob.m.Send(ctx, id, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if evs, err := alice.m.CatchUp(ctx, id); err != nil || len(evs) != 1 || string(evs[0].Plaintext) != "still here" {
		t.Fatalf("alice after the bad requests: %+v %v", evs, err)
	}
}

// withToken is ch with another bearer token.
func withToken(ch *Chat, token string) *Chat {
	s := *ch.s
	s.Token = token
	cp := *ch
	cp.s = &s
	return &cp
}
