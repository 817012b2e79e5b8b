package account

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

var (
	t0  = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ts  = timestamppb.New
	day = 24 * time.Hour
)

func cert(serial uint64, session string) CertData {
	return CertData{Serial: serial, SessionID: session, DER: []byte{byte(serial)}, NotBefore: t0, NotAfter: t0.Add(30 * day)}
}

func hash(b byte) [32]byte { return [32]byte{b} }

var (
	registered = &eventsv1.ActorRegistered{Fid: "alice@a.test", PasswordHash: "$argon2id$x"}
	issued1    = &eventsv1.IdCertIssued{Serial: 1, SessionId: "laptop", CertDer: []byte{1}, TokenHash: []byte{1, 31: 0}, NotBefore: ts(t0), NotAfter: ts(t0.Add(30 * day))}
	foreign7   = &eventsv1.ForeignSessionStarted{Serial: 7, SessionId: "phone", CertDer: []byte{7}, TokenHash: []byte{7, 31: 0}, Challenge: "c1",
		Signature: []byte("sig"), StatusValidUntil: ts(t0.Add(time.Hour)), NotBefore: ts(t0), NotAfter: ts(t0.Add(30 * day)), StartedAt: ts(t0)}
)

// TestDecide: given the events so far, when a command arrives, then these events (or this error).
func TestDecide(t *testing.T) {
	later := t0.Add(time.Hour)
	cases := []struct {
		name    string
		fid     string
		given   []proto.Message
		when    any
		then    []proto.Message
		reply   any
		wantErr error
	}{
		{name: "register", fid: "alice@a.test", when: Register{FID: "alice@a.test", PasswordHash: "$argon2id$x", At: t0}, then: []proto.Message{registered}},
		{name: "register twice", given: []proto.Message{registered}, when: Register{FID: "alice@a.test", PasswordHash: "h", At: t0}, wantErr: ErrAlreadyRegistered},
		{name: "password hash of a stranger", when: PasswordHash{}, wantErr: ErrNotRegistered},
		{name: "password hash", given: []proto.Message{registered}, when: PasswordHash{}, reply: "$argon2id$x"},
		{name: "cert by serial", given: []proto.Message{registered, issued1}, when: CertBySerial{Serial: 1}, reply: []byte{1}},
		{name: "foreign cert by serial", given: []proto.Message{foreign7}, when: CertBySerial{Serial: 7}, reply: []byte{7}},
		{name: "cert by unknown serial", given: []proto.Message{registered, issued1}, when: CertBySerial{Serial: 2}, wantErr: ErrNoSuchSession},
		{name: "issue cert", given: []proto.Message{registered}, when: IssueCert{Cert: cert(1, "laptop"), TokenHash: hash(1), At: t0}, then: []proto.Message{issued1}},
		{name: "issue cert unregistered", when: IssueCert{Cert: cert(1, "laptop"), TokenHash: hash(1), At: t0}, wantErr: ErrNotRegistered},
		{name: "session id in use", given: []proto.Message{registered, issued1}, when: IssueCert{Cert: cert(2, "laptop"), TokenHash: hash(2), At: later}, wantErr: ErrSessionInUse},
		{name: "session id free again after revocation",
			given: []proto.Message{registered, issued1, &eventsv1.SessionRevoked{Serial: 1, SessionId: "laptop", RevokedAt: ts(t0), Reason: "actor"}},
			when:  IssueCert{Cert: cert(2, "laptop"), TokenHash: hash(2), At: later},
			then: []proto.Message{&eventsv1.IdCertIssued{Serial: 2, SessionId: "laptop", CertDer: []byte{2}, TokenHash: []byte{2, 31: 0},
				NotBefore: ts(t0), NotAfter: ts(t0.Add(30 * day))}}},
		{name: "expired cert refused", given: []proto.Message{registered}, when: IssueCert{Cert: cert(1, "x"), TokenHash: hash(1), At: t0.Add(31 * day)}, wantErr: ErrInvalid},
		{name: "authenticate", fid: "alice@a.test", given: []proto.Message{registered, issued1}, when: Authenticate{TokenHash: hash(1), At: later},
			reply: Principal{FID: "alice@a.test", SessionID: "laptop", Serial: 1, NotAfter: t0.Add(30 * day)}},
		{name: "authenticate unknown token", given: []proto.Message{registered, issued1}, when: Authenticate{TokenHash: hash(9), At: later}, wantErr: ErrUnauthorized},
		{name: "authenticate after expiry", given: []proto.Message{registered, issued1}, when: Authenticate{TokenHash: hash(1), At: t0.Add(30 * day)}, wantErr: ErrUnauthorized},
		{name: "authenticate after revocation",
			given: []proto.Message{registered, issued1, &eventsv1.SessionRevoked{Serial: 1, SessionId: "laptop", RevokedAt: ts(t0), Reason: "actor"}},
			when:  Authenticate{TokenHash: hash(1), At: later}, wantErr: ErrUnauthorized},
		{name: "revoke", given: []proto.Message{registered, issued1}, when: RevokeSession{SessionID: "laptop", Reason: "actor", At: later},
			then: []proto.Message{&eventsv1.SessionRevoked{Serial: 1, SessionId: "laptop", RevokedAt: ts(later), Reason: "actor", CertDer: []byte{1}}}},
		{name: "revoke unknown", given: []proto.Message{registered, issued1}, when: RevokeSession{SessionID: "nope", At: later}, wantErr: ErrNoSuchSession},
		{name: "foreign session", fid: "bob@b.test",
			when: StartForeignSession{Cert: cert(7, "phone"), TokenHash: hash(7), Challenge: "c1", Signature: []byte("sig"), StatusValidUntil: t0.Add(time.Hour), At: t0},
			then: []proto.Message{foreign7}},
		{name: "foreign login again replaces the session", fid: "bob@b.test", given: []proto.Message{foreign7},
			when: StartForeignSession{Cert: cert(7, "phone"), TokenHash: hash(8), Challenge: "c2", Signature: []byte("sig2"), StatusValidUntil: later.Add(time.Hour), At: later},
			then: []proto.Message{
				&eventsv1.SessionRevoked{Serial: 7, SessionId: "phone", RevokedAt: ts(later), Reason: "replaced", CertDer: []byte{7}},
				&eventsv1.ForeignSessionStarted{Serial: 7, SessionId: "phone", CertDer: []byte{7}, TokenHash: []byte{8, 31: 0}, Challenge: "c2", Signature: []byte("sig2"),
					StatusValidUntil: ts(later.Add(time.Hour)), NotBefore: ts(t0), NotAfter: ts(t0.Add(30 * day)), StartedAt: ts(later)},
			}},
		{name: "foreign login of a local actor refused", given: []proto.Message{registered},
			when: StartForeignSession{Cert: cert(7, "phone"), TokenHash: hash(7), At: t0}, wantErr: ErrInvalid},
		{name: "foreign principal carries its status deadline", fid: "bob@b.test", given: []proto.Message{foreign7},
			when:  Authenticate{TokenHash: hash(7), At: later},
			reply: Principal{FID: "bob@b.test", SessionID: "phone", Serial: 7, NotAfter: t0.Add(30 * day), Foreign: true, StatusValidUntil: t0.Add(time.Hour)}},
		{name: "refresh foreign status", fid: "bob@b.test", given: []proto.Message{foreign7}, when: RefreshForeignStatus{Serial: 7, ValidUntil: later.Add(time.Hour), At: later},
			then: []proto.Message{&eventsv1.ForeignCertStatusChecked{Serial: 7, StatusValidUntil: ts(later.Add(time.Hour))}}},
		{name: "first service is primary", given: []proto.Message{registered}, when: AddService{Service: "chat", URL: "https://a.test"},
			then: []proto.Message{&eventsv1.ServiceAdded{Service: "chat", Url: "https://a.test", Primary: true}}, reply: Service{Service: "chat", URL: "https://a.test", Primary: true}},
		{name: "second service asked to be primary", given: []proto.Message{registered, &eventsv1.ServiceAdded{Service: "chat", Url: "https://a.test", Primary: true}},
			when:  AddService{Service: "chat", URL: "https://b.test", Primary: true},
			then:  []proto.Message{&eventsv1.ServiceAdded{Service: "chat", Url: "https://b.test"}, &eventsv1.PrimaryServiceChanged{Service: "chat", Url: "https://b.test"}},
			reply: Service{Service: "chat", URL: "https://b.test", Primary: true}},
		{name: "duplicate service", given: []proto.Message{registered, &eventsv1.ServiceAdded{Service: "chat", Url: "https://a.test", Primary: true}},
			when: AddService{Service: "chat", URL: "https://a.test"}, wantErr: ErrServiceExists},
		{name: "removing the primary promotes the next", given: []proto.Message{registered,
			&eventsv1.ServiceAdded{Service: "chat", Url: "https://a.test", Primary: true}, &eventsv1.ServiceAdded{Service: "chat", Url: "https://b.test"}},
			when:  RemoveService{Service: "chat", URL: "https://a.test"},
			then:  []proto.Message{&eventsv1.ServiceRemoved{Service: "chat", Url: "https://a.test", NewPrimaryUrl: "https://b.test"}},
			reply: RemovedService{Service: "chat", NewPrimary: "https://b.test"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Initial(c.fid)
			for _, ev := range c.given {
				var err error
				if s, err = Apply(s, ev); err != nil {
					t.Fatal(err)
				}
			}
			evs, reply, err := Decide(s, c.when)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || len(evs) != 0 {
					t.Fatalf("err = %v with %d events, want %v and none", err, len(evs), c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.then, evs, protocmp.Transform()); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.reply, reply); diff != "" {
				t.Fatalf("reply (-want +got):\n%s", diff)
			}
			for _, ev := range evs { // every decided event must apply
				if _, err := Apply(s, ev); err != nil {
					t.Fatalf("apply %T: %v", ev, err)
				}
			}
		})
	}
}

// TestApplyServices: the services read back after a sequence of events.
func TestApplyServices(t *testing.T) {
	s := Initial("alice@a.test")
	for _, ev := range []proto.Message{registered,
		&eventsv1.ServiceAdded{Service: "chat", Url: "https://a.test", Primary: true},
		&eventsv1.ServiceAdded{Service: "chat", Url: "https://b.test"},
		&eventsv1.PrimaryServiceChanged{Service: "chat", Url: "https://b.test"},
		&eventsv1.ServiceRemoved{Service: "chat", Url: "https://b.test", NewPrimaryUrl: "https://a.test"},
	} {
		s, _ = Apply(s, ev)
	}
	want := []Service{{Service: "chat", URL: "https://a.test", Primary: true}}
	if diff := cmp.Diff(want, s.Services); diff != "" {
		t.Fatal(diff)
	}
}
