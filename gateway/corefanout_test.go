package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/identity"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// TestReplayerFromTheLog: a resuming session gets the core events of its account after its
// cursor, in order, never its own session's, and a re-sync instruction past the limit.
func TestReplayerFromTheLog(t *testing.T) {
	ctx := context.Background()
	root, err := identity.NewRoot("a.test", time.Now().Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New(nil)
	stream := account.Stream("alice@a.test")
	certs := map[string]*identity.IDCert{}
	appendEv := func(m proto.Message) events.Position {
		t.Helper()
		ev, err := events.NewEvent(m)
		if err != nil {
			t.Fatal(err)
		}
		res, err := store.Append(ctx, stream, events.Any{}, ev)
		if err != nil {
			t.Fatal(err)
		}
		return res.Position
	}
	issued := func(session string) events.Position {
		f, _ := identity.ParseFID("alice@a.test")
		_, c := issue(t, root, f, session)
		certs[session] = c
		return appendEv(&eventsv1.IdCertIssued{Serial: c.Serial, SessionId: session, CertDer: c.Raw,
			NotBefore: timestamppb.New(c.NotBefore), NotAfter: timestamppb.New(c.NotAfter)})
	}
	appendEv(&eventsv1.ActorRegistered{Fid: "alice@a.test", PasswordHash: "x"})
	issued("laptop")
	cursor := issued("phone")
	issued("tablet")
	appendEv(&eventsv1.SessionRevoked{Serial: certs["phone"].Serial, SessionId: "phone", RevokedAt: timestamppb.Now(),
		Reason: "actor", CertDer: certs["phone"].Raw})
	issued("watch")

	r := &Replayer{Store: store, Core: &CoreEvents{Root: root, CacheTTL: time.Hour, Now: time.Now}}
	laptop := account.Principal{FID: "alice@a.test", SessionID: "laptop"}
	ds, truncated, err := r.Replay(ctx, laptop, cursor, 10)
	if err != nil || truncated {
		t.Fatalf("replay: %v, truncated %v", err, truncated)
	}
	var got []string
	for i, d := range ds {
		if i > 0 && d.Cursor <= ds[i-1].Cursor {
			t.Fatalf("dispatches out of log order at %d", i)
		}
		got = append(got, describe(t, d))
	}
	if want := []string{"new:tablet", "revoked:phone", "new:watch"}; !slices.Equal(got, want) {
		t.Fatalf("replayed %v, want %v", got, want)
	}

	// The tablet does not hear of itself.
	ds, _, _ = r.Replay(ctx, account.Principal{FID: "alice@a.test", SessionID: "tablet"}, cursor, 10)
	if got := len(ds); got != 2 {
		t.Fatalf("tablet got %d dispatches, want 2 (not its own New Session)", got)
	}
	// Past the limit: truncated, nothing half-delivered.
	ds, truncated, err = r.Replay(ctx, laptop, 0, 2)
	if err != nil || !truncated || ds != nil {
		t.Fatalf("over the limit: %d dispatches, truncated %v, %v", len(ds), truncated, err)
	}
	if rd, err := r.Ready(ctx, laptop); err != nil || rd.Cursor != 6 {
		t.Fatalf("READY cursor %d %v, want the head, 6", rd.Cursor, err)
	}
}

func describe(t *testing.T, d session.Dispatch) string {
	t.Helper()
	switch d.Op {
	case session.OpNewSession:
		var ns struct{ Cert string }
		_ = json.Unmarshal(d.Data, &ns)
		c, err := identity.ParseIDCert([]byte(ns.Cert))
		if err != nil {
			t.Fatal(err)
		}
		return "new:" + c.SessionID
	case session.OpActorCertInvalidation:
		var cc identity.CacheableCert
		_ = json.Unmarshal(d.Data, &cc)
		c, err := identity.ParseIDCert([]byte(cc.IDCertPEM))
		if err != nil || cc.InvalidatedAt == nil {
			t.Fatalf("op 4 without a revoked cert: %v", err)
		}
		return "revoked:" + c.SessionID
	}
	return "op?"
}

func issue(t *testing.T, root *identity.Root, fid identity.FID, session string) (*identity.CSR, *identity.IDCert) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, err := identity.NewCSR(key, fid, session)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := identity.ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	c, err := root.Issue(csr, identity.NewSerial(), time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return csr, c
}
