package account

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// State is what decide needs; history beyond it (who logged in when) is in the stream.
type State struct {
	FID          string
	Registered   bool
	PasswordHash string
	Certs        []*Cert // every cert issued (local) or presented (foreign) here, oldest first
	Services     []Service
	Trials       []Trial
}

// Cert is one ID-Cert and the session it opened.
type Cert struct {
	CertData
	TokenHash        [32]byte
	Foreign          bool
	RevokedAt        time.Time // zero: not revoked
	StatusValidUntil time.Time // foreign only
}

// clockSkew is how far another server's clock (a foreign cert's notBefore) may run ahead of ours.
const clockSkew = time.Minute

// Live reports whether the cert's session may be used at t.
func (c *Cert) Live(t time.Time) bool {
	return c.RevokedAt.IsZero() && !t.Before(c.NotBefore.Add(-clockSkew)) && t.Before(c.NotAfter)
}

// Service is a discoverable service provider of the actor.
type Service struct {
	Service string
	URL     string
	Primary bool
}

// Trial is one completed key trial (a signed challenge), public by core 4.3.
type Trial struct {
	Challenge   string
	Signature   []byte
	Serial      uint64
	CompletedAt time.Time
}

// Initial is the state of the account of fid before its first event.
func Initial(fid string) *State { return &State{FID: fid} }

// Apply folds one event into s. The recorded time of events that need one is inside them.
func Apply(s *State, ev proto.Message) (*State, error) {
	switch e := ev.(type) {
	case *eventsv1.ActorRegistered:
		s.FID, s.Registered, s.PasswordHash = e.GetFid(), true, e.GetPasswordHash()
	case *eventsv1.IdCertIssued:
		c := &Cert{CertData: CertData{
			Serial: e.GetSerial(), SessionID: e.GetSessionId(), DER: e.GetCertDer(),
			NotBefore: e.GetNotBefore().AsTime(), NotAfter: e.GetNotAfter().AsTime(),
		}}
		copy(c.TokenHash[:], e.GetTokenHash())
		s.Certs = append(s.Certs, c)
	case *eventsv1.ForeignSessionStarted:
		c := &Cert{CertData: CertData{
			Serial: e.GetSerial(), SessionID: e.GetSessionId(), DER: e.GetCertDer(),
			NotBefore: e.GetNotBefore().AsTime(), NotAfter: e.GetNotAfter().AsTime(),
		}, Foreign: true, StatusValidUntil: e.GetStatusValidUntil().AsTime()}
		copy(c.TokenHash[:], e.GetTokenHash())
		s.Certs = append(s.Certs, c)
		s.Trials = append(s.Trials, Trial{Challenge: e.GetChallenge(), Signature: e.GetSignature(), Serial: e.GetSerial(),
			CompletedAt: e.GetStartedAt().AsTime()})
	case *eventsv1.ForeignCertStatusChecked:
		if c := s.live(e.GetSerial()); c != nil {
			c.StatusValidUntil = e.GetStatusValidUntil().AsTime()
		}
	case *eventsv1.SessionRevoked:
		if c := s.live(e.GetSerial()); c != nil {
			c.RevokedAt = e.GetRevokedAt().AsTime()
		}
	case *eventsv1.ServiceAdded:
		s.Services = append(s.Services, Service{Service: e.GetService(), URL: e.GetUrl(), Primary: e.GetPrimary()})
	case *eventsv1.ServiceRemoved:
		for i, sv := range s.Services {
			if sv.Service == e.GetService() && sv.URL == e.GetUrl() {
				s.Services = append(s.Services[:i:i], s.Services[i+1:]...)
				break
			}
		}
		s.setPrimary(e.GetService(), e.GetNewPrimaryUrl())
	case *eventsv1.PrimaryServiceChanged:
		s.setPrimary(e.GetService(), e.GetUrl())
	default:
		return s, fmt.Errorf("account: unexpected event %s", ev.ProtoReflect().Descriptor().FullName())
	}
	return s, nil
}

// live is the not-revoked cert with this serial, or nil.
func (s *State) live(serial uint64) *Cert {
	for _, c := range s.Certs {
		if c.Serial == serial && c.RevokedAt.IsZero() {
			return c
		}
	}
	return nil
}

func (s *State) setPrimary(service, url string) {
	if url == "" {
		return
	}
	for i := range s.Services {
		if s.Services[i].Service == service {
			s.Services[i].Primary = s.Services[i].URL == url
		}
	}
}
