package account

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Decide checks cmd against s: the events to append, the reply once they are durable, or an
// error answered at once. It does not change s.
func Decide(s *State, cmd any) ([]proto.Message, any, error) {
	switch c := cmd.(type) {
	case Register:
		if s.Registered {
			return nil, nil, fmt.Errorf("%s: %w", c.FID, ErrAlreadyRegistered)
		}
		if c.FID == "" || c.PasswordHash == "" {
			return nil, nil, fmt.Errorf("%w: register needs a FID and a password hash", ErrInvalid)
		}
		return one(&eventsv1.ActorRegistered{Fid: c.FID, PasswordHash: c.PasswordHash}), nil, nil

	case PasswordHash:
		if !s.Registered {
			return nil, nil, ErrNotRegistered
		}
		return nil, s.PasswordHash, nil

	case IssueCert:
		if !s.Registered {
			return nil, nil, ErrNotRegistered
		}
		if err := checkCert(c.Cert, c.At); err != nil {
			return nil, nil, err
		}
		if s.sessionInUse(c.Cert.SessionID, c.At) != nil {
			return nil, nil, fmt.Errorf("session %q: %w", c.Cert.SessionID, ErrSessionInUse)
		}
		return one(&eventsv1.IdCertIssued{
			Serial: c.Cert.Serial, SessionId: c.Cert.SessionID, CertDer: c.Cert.DER, TokenHash: c.TokenHash[:],
			NotBefore: timestamppb.New(c.Cert.NotBefore), NotAfter: timestamppb.New(c.Cert.NotAfter),
		}), nil, nil

	case StartForeignSession:
		if s.Registered {
			return nil, nil, fmt.Errorf("%w: %s is registered here, it logs in with its password", ErrInvalid, s.FID)
		}
		if err := checkCert(c.Cert, c.At); err != nil {
			return nil, nil, err
		}
		var evs []proto.Message
		// One token per ID-Cert, one live cert per session id: a new login with the same cert or
		// a newer cert of the same session replaces the old session here.
		for _, old := range s.Certs {
			if old.Live(c.At) && (old.Serial == c.Cert.Serial || old.SessionID == c.Cert.SessionID) {
				evs = append(evs, revoked(old, c.At, "replaced"))
			}
		}
		evs = append(evs, &eventsv1.ForeignSessionStarted{
			Serial: c.Cert.Serial, SessionId: c.Cert.SessionID, CertDer: c.Cert.DER, TokenHash: c.TokenHash[:],
			Challenge: c.Challenge, Signature: c.Signature, StatusValidUntil: timestamppb.New(c.StatusValidUntil),
			NotBefore: timestamppb.New(c.Cert.NotBefore), NotAfter: timestamppb.New(c.Cert.NotAfter),
			StartedAt: timestamppb.New(c.At),
		})
		return evs, nil, nil

	case Authenticate:
		for _, crt := range s.Certs {
			if crt.TokenHash == c.TokenHash && crt.Live(c.At) {
				return nil, Principal{
					FID: s.FID, SessionID: crt.SessionID, Serial: crt.Serial, NotAfter: crt.NotAfter,
					Foreign: crt.Foreign, StatusValidUntil: crt.StatusValidUntil,
				}, nil
			}
		}
		return nil, nil, ErrUnauthorized

	case RefreshForeignStatus:
		crt := s.live(c.Serial)
		if crt == nil || !crt.Foreign {
			return nil, nil, ErrNoSuchSession
		}
		return one(&eventsv1.ForeignCertStatusChecked{Serial: c.Serial, StatusValidUntil: timestamppb.New(c.ValidUntil)}), nil, nil

	case RevokeSession:
		for _, crt := range s.Certs {
			if crt.RevokedAt.IsZero() && (c.SessionID != "" && crt.SessionID == c.SessionID || c.SessionID == "" && crt.Serial == c.Serial) {
				return one(revoked(crt, c.At, c.Reason)), nil, nil
			}
		}
		return nil, nil, ErrNoSuchSession

	case ListSessions:
		var out []Session
		for _, crt := range s.Certs {
			if crt.Live(c.At) {
				out = append(out, Session{SessionID: crt.SessionID, Serial: crt.Serial, NotBefore: crt.NotBefore, NotAfter: crt.NotAfter, Foreign: crt.Foreign})
			}
		}
		return nil, out, nil

	case CertBySerial:
		for _, crt := range s.Certs {
			if crt.Serial == c.Serial {
				return nil, crt.DER, nil
			}
		}
		return nil, nil, ErrNoSuchSession
	case Certs:
		if !s.Registered {
			return nil, nil, ErrNotRegistered
		}
		var out []Cert
		for _, crt := range s.Certs {
			if c.SessionID != "" && crt.SessionID != c.SessionID {
				continue
			}
			if c.ValidAt != nil && (c.ValidAt.Before(crt.NotBefore) || !c.ValidAt.Before(crt.NotAfter)) {
				continue
			}
			out = append(out, *crt)
		}
		return nil, out, nil

	case AddService:
		if !s.Registered {
			return nil, nil, ErrNotRegistered
		}
		first := true
		for _, sv := range s.Services {
			if sv.Service == c.Service {
				first = false
				if sv.URL == c.URL {
					return nil, nil, fmt.Errorf("%s at %s: %w", c.Service, c.URL, ErrServiceExists)
				}
			}
		}
		evs := []proto.Message{&eventsv1.ServiceAdded{Service: c.Service, Url: c.URL, Primary: first}}
		if c.Primary && !first {
			evs = append(evs, &eventsv1.PrimaryServiceChanged{Service: c.Service, Url: c.URL})
		}
		return evs, Service{Service: c.Service, URL: c.URL, Primary: first || c.Primary}, nil

	case RemoveService:
		i := s.serviceIndex(c.Service, c.URL)
		if i < 0 {
			return nil, nil, ErrNoSuchService
		}
		ev := &eventsv1.ServiceRemoved{Service: c.Service, Url: c.URL}
		if s.Services[i].Primary {
			for _, sv := range s.Services {
				if sv.Service == c.Service && sv.URL != c.URL {
					ev.NewPrimaryUrl = sv.URL // the oldest remaining provider
					break
				}
			}
		}
		return one(ev), RemovedService{Service: c.Service, NewPrimary: ev.NewPrimaryUrl}, nil

	case SetPrimaryService:
		i := s.serviceIndex(c.Service, c.URL)
		if i < 0 {
			return nil, nil, ErrNoSuchService
		}
		var changed []Service // the old primary (now not primary) and the new one
		for _, sv := range s.Services {
			if sv.Service == c.Service && sv.Primary && sv.URL != c.URL {
				sv.Primary = false
				changed = append(changed, sv)
			}
		}
		changed = append(changed, Service{Service: c.Service, URL: c.URL, Primary: true})
		if s.Services[i].Primary {
			return nil, changed, nil
		}
		return one(&eventsv1.PrimaryServiceChanged{Service: c.Service, Url: c.URL}), changed, nil

	case ListServices:
		if !s.Registered {
			return nil, nil, ErrNotRegistered
		}
		return nil, slices.Clone(s.Services), nil

	case KeyTrials:
		return nil, slices.Clone(s.Trials), nil
	}
	return nil, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func one(ev proto.Message) []proto.Message { return []proto.Message{ev} }

func revoked(c *Cert, at time.Time, reason string) *eventsv1.SessionRevoked {
	return &eventsv1.SessionRevoked{Serial: c.Serial, SessionId: c.SessionID, RevokedAt: timestamppb.New(at), Reason: reason, CertDer: c.DER}
}

func checkCert(c CertData, at time.Time) error {
	switch {
	case c.Serial == 0 || c.SessionID == "" || len(c.DER) == 0:
		return fmt.Errorf("%w: cert without serial, session id or DER", ErrInvalid)
	case !at.Before(c.NotAfter) || at.Before(c.NotBefore.Add(-clockSkew)):
		return fmt.Errorf("%w: cert not valid at %s", ErrInvalid, at.Format(time.RFC3339))
	}
	return nil
}

// sessionInUse is the live cert with this session id, or nil.
func (s *State) sessionInUse(sessionID string, at time.Time) *Cert {
	for _, c := range s.Certs {
		if c.SessionID == sessionID && c.Live(at) {
			return c
		}
	}
	return nil
}

func (s *State) serviceIndex(service, url string) int {
	return slices.IndexFunc(s.Services, func(sv Service) bool { return sv.Service == service && sv.URL == url })
}
