package session

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/events"
)

// These tests drive session actors on a real actor system through a fake connection; the
// gateway's tests do the same over real WebSockets.

type outbox struct {
	frames chan []byte
	full   atomic.Bool // Send refuses, as a full queue does

	mu     sync.Mutex
	closed int
}

func newOutbox() *outbox { return &outbox{frames: make(chan []byte, 4096)} }

func (o *outbox) Send(f []byte) bool {
	if o.full.Load() {
		return false
	}
	o.frames <- f
	return true
}

func (o *outbox) Close(code int, _ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed == 0 {
		o.closed = code
	}
}

func (o *outbox) closeCode() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

type wire struct {
	N  string          `json:"n"`
	Op int             `json:"op"`
	S  uint64          `json:"s"`
	D  json.RawMessage `json:"d"`
}

func (o *outbox) next(t *testing.T) wire {
	t.Helper()
	select {
	case f := <-o.frames:
		var w wire
		if err := json.Unmarshal(f, &w); err != nil {
			t.Fatalf("frame %s: %v", f, err)
		}
		return w
	case <-time.After(5 * time.Second):
		t.Fatal("no frame within 5 s")
		return wire{}
	}
}

func (o *outbox) expect(t *testing.T, n string, op int) wire {
	t.Helper()
	w := o.next(t)
	if w.N != n || w.Op != op {
		t.Fatalf("got %s/%d s=%d %s, want %s/%d", w.N, w.Op, w.S, w.D, n, op)
	}
	return w
}

func (o *outbox) waitClosed(t *testing.T, code int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for o.closeCode() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := o.closeCode(); got != code {
		t.Fatalf("closed with %d, want %d", got, code)
	}
}

type auth map[string]account.Principal

func (a auth) Authenticate(_ context.Context, token string) (account.Principal, error) {
	if p, ok := a[token]; ok {
		return p, nil
	}
	return account.Principal{}, fmt.Errorf("%w: unknown", ErrInvalidToken)
}

type replayer struct {
	head      events.Position
	ds        []Dispatch
	truncated bool
}

func (r replayer) Replay(context.Context, account.Principal, events.Position, int) ([]Dispatch, bool, error) {
	return r.ds, r.truncated, nil
}
func (r replayer) Ready(context.Context, account.Principal) (Ready, error) {
	return Ready{Cursor: r.head}, nil
}

// textEncoder writes the gateway's wire format with fmt: enough for these tests.
type textEncoder struct{}

func (textEncoder) Frame(n string, op int, s uint64, d []byte) []byte {
	return fmt.Appendf(nil, `{"n":%q,"op":%d,"d":%s,"s":%d}`, n, op, d, s)
}

func (textEncoder) Dispatch(n string, s uint64, t string, c events.Position, withC bool, d []byte) []byte {
	cur := ""
	if withC {
		cur = `,"c":"` + strconv.FormatUint(uint64(c), 10) + `"`
	}
	return fmt.Appendf(nil, `{"n":%q,"op":0,"d":{"t":%q%s,"d":%s},"s":%d}`, n, t, cur, d, s)
}

var (
	alice       = account.Principal{FID: "alice@a.test", SessionID: "laptop"}
	alicePhone  = account.Principal{FID: "alice@a.test", SessionID: "phone"}
	bob         = account.Principal{FID: "bob@a.test", SessionID: "desk"}
	testTokens  = auth{"alice": alice, "alice-phone": alicePhone, "bob": bob}
	newSession3 = Dispatch{Namespace: "core", Op: 3, Data: json.RawMessage(`{"cert":"x"}`)}
)

func newRegistry(t *testing.T, r Replayer) *Registry {
	t.Helper()
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	reg, err := NewRegistry(Config{Actors: sys, Auth: testTokens, Replayer: r, Encoder: textEncoder{},
		HeartbeatInterval: time.Minute, ResumeWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Shutdown)
	return reg
}

// identified starts a session and identifies it with token; Hello and a first heartbeat's ACK
// (which proves the Identify was handled) are consumed.
func identified(t *testing.T, reg *Registry, token string) (*Ref, *outbox) {
	t.Helper()
	out := newOutbox()
	ref := reg.Start(out)
	out.expect(t, "core", opHello)
	ref.Tell(Identify{Token: token})
	ref.Tell(Heartbeat{})
	out.expect(t, "core", opHeartbeatACK)
	return ref, out
}

func waitLive(t *testing.T, reg *Registry, fid string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for reg.live(fid) != n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := reg.live(fid); got != n {
		t.Fatalf("%s has %d live sessions, want %d", fid, got, n)
	}
}

func TestIdentifyAndRegistry(t *testing.T) {
	reg := newRegistry(t, replayer{head: 7})
	_, laptop := identified(t, reg, "alice")
	phoneRef, phone := identified(t, reg, "alice-phone")
	_, desk := identified(t, reg, "bob")
	waitLive(t, reg, "alice@a.test", 2)

	// Chat reaches only subscribed sessions; core reaches every session of the actor.
	phoneRef.Tell(ServiceChannel{Action: "subscribe", Service: "chat"})
	phone.expect(t, "core", opServiceChannelACK)
	ready := phone.expect(t, "chat", opDispatch)
	if want := `{"t":"READY","c":"7","d":{"session_id":"phone","fid":"alice@a.test","guilds":[],"channels":[],"groups":[]}}`; string(ready.D) != want {
		t.Fatalf("READY %s, want %s", ready.D, want)
	}
	reg.Deliver("alice@a.test", Dispatch{Namespace: "chat", Type: "MESSAGE_CREATE", Cursor: 8, Data: json.RawMessage(`{}`)})
	reg.Deliver("alice@a.test", Dispatch{Namespace: "chat", Type: "MESSAGE_CREATE", Cursor: 6, Data: json.RawMessage(`{}`)}) // before READY's cursor
	reg.DeliverExcept("alice@a.test", "phone", newSession3)
	reg.Deliver("alice@a.test", newSession3)
	if w := phone.expect(t, "chat", opDispatch); string(w.D) != `{"t":"MESSAGE_CREATE","c":"8","d":{}}` {
		t.Fatalf("phone got %s", w.D)
	}
	phone.expect(t, "core", 3)
	laptop.expect(t, "core", 3)
	laptop.expect(t, "core", 3)
	select {
	case f := <-laptop.frames:
		t.Fatalf("laptop got more: %s", f)
	case f := <-phone.frames:
		t.Fatalf("phone got more: %s", f)
	case f := <-desk.frames:
		t.Fatalf("bob got alice's frames: %s", f)
	case <-time.After(100 * time.Millisecond):
	}

	// Close ends one ID-Cert session; a revoked session does not wait for Resume.
	reg.Close("alice@a.test", "phone", CloseInvalidAuth, "revoked")
	phone.waitClosed(t, CloseInvalidAuth)
	waitLive(t, reg, "alice@a.test", 1)
}

func TestIdentifyFailures(t *testing.T) {
	reg := newRegistry(t, replayer{})
	out := newOutbox()
	ref := reg.Start(out)
	out.expect(t, "core", opHello)
	ref.Tell(Heartbeat{})
	out.waitClosed(t, CloseNotAuthenticated)

	out = newOutbox()
	ref = reg.Start(out)
	ref.Tell(Identify{Token: "nobody"})
	out.waitClosed(t, CloseInvalidAuth)

	ref, out = identified(t, reg, "bob")
	ref.Tell(Identify{Token: "bob"})
	out.waitClosed(t, CloseAlreadyAuth)
	waitLive(t, reg, "bob@a.test", 0)
}

// TestResumeInProcess: a session whose connection dropped keeps recording deliveries; a Resume
// on a new connection gets exactly the frames after its s and continues the numbering.
func TestResumeInProcess(t *testing.T) {
	reg := newRegistry(t, replayer{})
	ref, out := identified(t, reg, "alice") // Hello s=0, ACK s=1
	reg.Deliver("alice@a.test", newSession3)
	if w := out.expect(t, "core", 3); w.S != 2 {
		t.Fatalf("s = %d, want 2", w.S)
	}
	ref.Tell(Disconnected{Code: 1006})
	reg.Deliver("alice@a.test", newSession3) // s=3, recorded only
	reg.Deliver("alice@a.test", newSession3) // s=4

	out2 := newOutbox()
	ref2 := reg.Start(out2)
	out2.expect(t, "core", opHello)
	ref2.Tell(Resume{Token: "alice", S: 2, HasS: true})
	w := out2.expect(t, "core", opResumed)
	var inner []wire
	if err := json.Unmarshal(w.D, &inner); err != nil || len(inner) != 2 || inner[0].S != 3 || inner[1].S != 4 || w.S != 5 {
		t.Fatalf("resumed s=%d %s", w.S, w.D)
	}
	reg.Deliver("alice@a.test", newSession3)
	if w := out2.expect(t, "core", 3); w.S != 6 {
		t.Fatalf("after resume s = %d, want 6", w.S)
	}
	waitLive(t, reg, "alice@a.test", 1)
	select {
	case f := <-out.frames:
		t.Fatalf("the old connection got %s", f)
	default:
	}
}

func TestSlowConnectionIsClosedAndResumable(t *testing.T) {
	reg := newRegistry(t, replayer{})
	_, out := identified(t, reg, "bob") // s 0, 1
	out.full.Store(true)
	reg.Deliver("bob@a.test", newSession3) // s=2: refused
	out.waitClosed(t, CloseTimeout)
	reg.Deliver("bob@a.test", newSession3) // s=3: recorded for the Resume
	waitLive(t, reg, "bob@a.test", 1)

	out2 := newOutbox()
	ref2 := reg.Start(out2)
	out2.expect(t, "core", opHello)
	ref2.Tell(Resume{Token: "bob", S: 1, HasS: true})
	w := out2.expect(t, "core", opResumed)
	var inner []wire
	if err := json.Unmarshal(w.D, &inner); err != nil || len(inner) != 2 || inner[0].S != 2 || inner[1].S != 3 {
		t.Fatalf("resumed %s", w.D)
	}
}

// changingAuth is an Authenticator whose answers a test changes.
type changingAuth struct {
	mu sync.Mutex
	p  map[string]account.Principal
}

func (a *changingAuth) Authenticate(_ context.Context, token string) (account.Principal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.p[token]; ok {
		return p, nil
	}
	return account.Principal{}, ErrInvalidToken
}

func (a *changingAuth) revoke(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.p, token)
}

// TestSessionEndsWithItsCredentials: a session ends when its ID-Cert does; a foreign one whose
// home server's answer ran out checks its token again and ends if it no longer passes.
func TestSessionEndsWithItsCredentials(t *testing.T) {
	now := time.Now()
	auth := &changingAuth{p: map[string]account.Principal{
		"short":   {FID: "alice@a.test", SessionID: "laptop", NotAfter: now.Add(300 * time.Millisecond)},
		"foreign": {FID: "bob@b.test", SessionID: "phone", NotAfter: now.Add(time.Hour), Foreign: true, StatusValidUntil: now},
	}}
	sys := actor.NewActorSystem()
	t.Cleanup(sys.Shutdown)
	reg, err := NewRegistry(Config{Actors: sys, Auth: auth, Replayer: replayer{}, Encoder: textEncoder{}, HeartbeatInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Shutdown)
	_, out := identified(t, reg, "short")
	out.waitClosed(t, CloseInvalidAuth)
	waitLive(t, reg, "alice@a.test", 0)

	_, out = identified(t, reg, "foreign")
	auth.revoke("foreign") // the home server now says revoked
	deadline := time.Now().Add(minRecheck + 5*time.Second)
	for out.closeCode() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if out.closeCode() != CloseInvalidAuth {
		t.Fatalf("closed with %d, want 4004", out.closeCode())
	}
}
