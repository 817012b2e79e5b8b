package keypackages

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

var (
	t0   = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	week = 7 * 24 * time.Hour
)

func pkg(n byte, notAfter time.Time) Package {
	return Package{Ref: []byte{'r', n}, Raw: []byte{'k', n}, InitKey: []byte{'i', n}, NotAfter: notAfter}
}

func stored(n byte, notAfter time.Time) *eventsv1.StoredKeyPackage {
	return &eventsv1.StoredKeyPackage{Ref: []byte{'r', n}, KeyPackage: []byte{'k', n}, InitKey: []byte{'i', n}, NotAfter: timestamppb.New(notAfter)}
}

func uploaded(session string, lastResort *eventsv1.StoredKeyPackage, oneTime ...*eventsv1.StoredKeyPackage) *eventsv1.KeyPackagesUploaded {
	return &eventsv1.KeyPackagesUploaded{SessionId: session, OneTime: oneTime, LastResort: lastResort}
}

// TestDecide: given the events so far, when a command arrives, then these events and this reply
// (or this error).
func TestDecide(t *testing.T) {
	exp := t0.Add(week)
	soon := t0.Add(time.Hour)
	many := make([]Package, MaxStock)
	for i := range many {
		many[i] = pkg(byte(100+i), exp)
	}
	cases := []struct {
		name    string
		given   []proto.Message
		when    any
		then    []proto.Message
		reply   any
		wantErr error
	}{
		{name: "upload one-time and last resort", when: Upload{Session: "s1", OneTime: []Package{pkg(1, exp), pkg(2, exp)}, LastResort: &Package{Ref: []byte("rl"), Raw: []byte("kl"), InitKey: []byte("il"), NotAfter: exp}, At: t0},
			then:  []proto.Message{uploaded("s1", &eventsv1.StoredKeyPackage{Ref: []byte("rl"), KeyPackage: []byte("kl"), InitKey: []byte("il"), NotAfter: timestamppb.New(exp)}, stored(1, exp), stored(2, exp))},
			reply: Stock{OneTime: 2, LastResort: true}},
		{name: "upload nothing", when: Upload{Session: "s1", At: t0}, wantErr: ErrInvalid},
		{name: "upload without session", when: Upload{OneTime: []Package{pkg(1, exp)}, At: t0}, wantErr: ErrInvalid},
		{name: "upload a package without ref", when: Upload{Session: "s1", OneTime: []Package{{Raw: []byte{1}, InitKey: []byte{1}, NotAfter: exp}}, At: t0}, wantErr: ErrInvalid},
		{name: "upload an expired package", when: Upload{Session: "s1", OneTime: []Package{pkg(1, t0)}, At: t0}, wantErr: ErrInvalid},
		{name: "same package twice in one upload", when: Upload{Session: "s1", OneTime: []Package{pkg(1, exp), pkg(1, exp)}, At: t0}, wantErr: ErrDuplicate},
		{name: "same init key under another ref", when: Upload{Session: "s1", OneTime: []Package{pkg(1, exp), {Ref: []byte("x"), Raw: []byte("x"), InitKey: []byte{'i', 1}, NotAfter: exp}}, At: t0}, wantErr: ErrDuplicate},
		{name: "package already in another session's stock", given: []proto.Message{uploaded("s1", nil, stored(1, exp))},
			when: Upload{Session: "s2", OneTime: []Package{pkg(1, exp)}, At: t0}, wantErr: ErrDuplicate},
		{name: "last resort equal to a stocked one-time", given: []proto.Message{uploaded("s1", nil, stored(1, exp))},
			when: Upload{Session: "s1", LastResort: &Package{Ref: []byte{'r', 1}, Raw: []byte{1}, InitKey: []byte{9}, NotAfter: exp}, At: t0}, wantErr: ErrDuplicate},
		{name: "stock full", given: []proto.Message{uploaded("s1", nil, stored(1, exp))}, when: Upload{Session: "s1", OneTime: many, At: t0}, wantErr: ErrStockFull},
		{name: "exactly the limit", when: Upload{Session: "s1", OneTime: many, At: t0}, then: []proto.Message{func() proto.Message {
			u := uploaded("s1", nil)
			for i := range many {
				u.OneTime = append(u.OneTime, stored(byte(100+i), exp))
			}
			return u
		}()}, reply: Stock{OneTime: MaxStock}},
		{name: "upload drops what expired", given: []proto.Message{uploaded("s1", nil, stored(1, soon), stored(2, exp))},
			when:  Upload{Session: "s1", OneTime: []Package{pkg(3, exp)}, At: soon},
			then:  []proto.Message{&eventsv1.KeyPackagesDropped{SessionId: "s1", Refs: [][]byte{{'r', 1}}, Reason: "expired"}, uploaded("s1", nil, stored(3, exp))},
			reply: Stock{OneTime: 2}},
		{name: "a new last resort replaces the used one", given: []proto.Message{uploaded("s1", stored(1, exp)), &eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 1}, LastResort: true}},
			when: Upload{Session: "s1", LastResort: &Package{Ref: []byte{'r', 2}, Raw: []byte{'k', 2}, InitKey: []byte{'i', 2}, NotAfter: exp}, At: t0},
			then: []proto.Message{uploaded("s1", stored(2, exp))}, reply: Stock{LastResort: true}},

		{name: "claim takes the oldest one-time of each live session", given: []proto.Message{uploaded("s1", stored(9, exp), stored(1, exp), stored(2, exp)), uploaded("s2", nil, stored(3, exp))},
			when:  Claim{Sessions: []string{"s1", "s2"}, By: "bob@b.test", At: t0},
			then:  []proto.Message{&eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 1}, Remaining: 1}, &eventsv1.KeyPackageClaimed{SessionId: "s2", Ref: []byte{'r', 3}}},
			reply: []Claimed{{Session: "s1", KeyPackage: []byte{'k', 1}}, {Session: "s2", KeyPackage: []byte{'k', 3}}}},
		{name: "claim falls back to the last resort", given: []proto.Message{uploaded("s1", stored(9, exp))},
			when:  Claim{Sessions: []string{"s1"}, At: t0},
			then:  []proto.Message{&eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 9}, LastResort: true}},
			reply: []Claimed{{Session: "s1", KeyPackage: []byte{'k', 9}, LastResort: true}}},
		{name: "the last resort is reusable", given: []proto.Message{uploaded("s1", stored(9, exp)), &eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 9}, LastResort: true}},
			when:  Claim{Sessions: []string{"s1"}, At: t0},
			then:  []proto.Message{&eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 9}, LastResort: true}},
			reply: []Claimed{{Session: "s1", KeyPackage: []byte{'k', 9}, LastResort: true}}},
		{name: "a claimed one-time package is not handed out again", given: []proto.Message{uploaded("s1", nil, stored(1, exp)), &eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 1}}},
			when: Claim{Sessions: []string{"s1"}, At: t0}, reply: []Claimed{}},
		{name: "claim skips and drops expired packages", given: []proto.Message{uploaded("s1", stored(9, soon), stored(1, soon), stored(2, exp))},
			when: Claim{Sessions: []string{"s1"}, At: soon},
			then: []proto.Message{&eventsv1.KeyPackagesDropped{SessionId: "s1", Refs: [][]byte{{'r', 1}, {'r', 9}}, Reason: "expired"},
				&eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 2}}},
			reply: []Claimed{{Session: "s1", KeyPackage: []byte{'k', 2}}}},
		{name: "claim drops the packages of ended sessions", given: []proto.Message{uploaded("old", stored(9, exp), stored(1, exp)), uploaded("s1", nil, stored(2, exp))},
			when: Claim{Sessions: []string{"s1"}, At: t0},
			then: []proto.Message{&eventsv1.KeyPackagesDropped{SessionId: "old", Refs: [][]byte{{'r', 1}, {'r', 9}}, Reason: "session_ended"},
				&eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 2}}},
			reply: []Claimed{{Session: "s1", KeyPackage: []byte{'k', 2}}}},
		{name: "claim from an actor with nothing", when: Claim{Sessions: []string{"s1"}, At: t0}, reply: []Claimed{}},

		{name: "stock", given: []proto.Message{uploaded("s1", stored(9, exp), stored(1, exp), stored(2, soon)), &eventsv1.KeyPackageClaimed{SessionId: "s1", Ref: []byte{'r', 9}, LastResort: true}},
			when: GetStock{Session: "s1", At: soon}, reply: Stock{OneTime: 1, LastResort: true, LastResortUsed: true}},
		{name: "stock of an unknown session", when: GetStock{Session: "s1", At: t0}, reply: Stock{}},
		{name: "unknown command", when: 42, wantErr: ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Initial("alice@a.test")
			for _, ev := range c.given {
				var err error
				if s, err = Apply(s, ev); err != nil {
					t.Fatal(err)
				}
			}
			before := cloneState(s)
			evs, reply, err := Decide(s, c.when)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("error %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.then, evs, protocmp.Transform()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.reply, reply); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, s); diff != "" {
				t.Errorf("Decide changed the state:\n%s", diff)
			}
			for _, ev := range evs { // what Decide emits, Apply accepts
				if s, err = Apply(s, ev); err != nil {
					t.Fatalf("apply %T: %v", ev, err)
				}
			}
		})
	}
}

func cloneState(s *State) *State {
	c := Initial(s.FID)
	for id, ss := range s.Sessions {
		cp := *ss
		cp.OneTime = slices.Clone(ss.OneTime)
		c.Sessions[id] = &cp
	}
	return c
}

// TestApplyRefusesUnknown: a claim of a package the state never had is a broken invariant.
func TestApplyRefusesUnknown(t *testing.T) {
	if _, err := Apply(Initial("a@b.c"), &eventsv1.KeyPackageClaimed{SessionId: "s", Ref: []byte{1}}); err == nil {
		t.Fatal("claim from an unknown session applied")
	}
	s, _ := Apply(Initial("a@b.c"), uploaded("s", nil, stored(1, t0)))
	if _, err := Apply(s, &eventsv1.KeyPackageClaimed{SessionId: "s", Ref: []byte{2}}); err == nil {
		t.Fatal("claim of an unknown package applied")
	}
	if _, err := Apply(s, &eventsv1.GuildCreated{}); err == nil {
		t.Fatal("foreign event applied")
	}
}

// TestSnapshot: a state with one-time, last-resort and used-last-resort sessions comes back whole.
func TestSnapshot(t *testing.T) {
	exp := t0.Add(week)
	s := Initial("alice@a.test")
	for _, ev := range []proto.Message{
		uploaded("s1", stored(9, exp), stored(1, exp), stored(2, exp)),
		uploaded("s2", stored(8, exp)),
		&eventsv1.KeyPackageClaimed{SessionId: "s2", Ref: []byte{'r', 8}, LastResort: true},
	} {
		if _, err := Apply(s, ev); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := Snapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(snap)
	if err != nil {
		t.Fatal(err)
	}
	r.FID = s.FID
	if diff := cmp.Diff(s, r); diff != "" {
		t.Fatalf("snapshot round trip (-state +restored):\n%s", diff)
	}
}
