package keypackages

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
	case Upload:
		return decideUpload(s, c)
	case Claim:
		return decideClaim(s, c)
	case GetStock:
		return nil, s.stock(c.Session, c.At), nil
	}
	return nil, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func decideUpload(s *State, c Upload) ([]proto.Message, any, error) {
	if c.Session == "" || (len(c.OneTime) == 0 && c.LastResort == nil) {
		return nil, nil, fmt.Errorf("%w: nothing to upload", ErrInvalid)
	}
	evs := expired(s, c.Session, c.At)
	live := s.stock(c.Session, c.At).OneTime
	if live+len(c.OneTime) > MaxStock {
		return nil, nil, fmt.Errorf("%w: the session holds %d one-time KeyPackages; %d more would pass the limit of %d", ErrStockFull, live, len(c.OneTime), MaxStock)
	}
	up := &eventsv1.KeyPackagesUploaded{SessionId: c.Session}
	all := slices.Clone(c.OneTime)
	if c.LastResort != nil {
		all = append(all, *c.LastResort)
	}
	for i, p := range all {
		if len(p.Ref) == 0 || len(p.Raw) == 0 || len(p.InitKey) == 0 {
			return nil, nil, fmt.Errorf("%w: KeyPackage %d lacks its ref, bytes or init key", ErrInvalid, i)
		}
		if !p.NotAfter.After(c.At) {
			return nil, nil, fmt.Errorf("%w: KeyPackage %d has expired", ErrInvalid, i)
		}
		dup := s.has(p.Ref, p.InitKey)
		for _, q := range all[:i] {
			dup = dup || string(q.Ref) == string(p.Ref) || string(q.InitKey) == string(p.InitKey)
		}
		if dup {
			return nil, nil, fmt.Errorf("%w: KeyPackage %d (ref %x) or its init_key is already in the stock", ErrDuplicate, i, p.Ref)
		}
		st := &eventsv1.StoredKeyPackage{Ref: p.Ref, KeyPackage: p.Raw, InitKey: p.InitKey, NotAfter: timestamppb.New(p.NotAfter)}
		if i < len(c.OneTime) {
			up.OneTime = append(up.OneTime, st)
		} else {
			up.LastResort = st
		}
	}
	evs = append(evs, up)
	// The reply is the stock once these events are applied.
	next := &State{FID: s.FID, Sessions: map[string]*Session{c.Session: {}}}
	if ss := s.Sessions[c.Session]; ss != nil {
		cp := *ss
		cp.OneTime = slices.Clone(ss.OneTime)
		next.Sessions[c.Session] = &cp
	}
	for _, ev := range evs {
		if _, err := Apply(next, ev); err != nil {
			return nil, nil, err
		}
	}
	return evs, next.stock(c.Session, c.At), nil
}

func decideClaim(s *State, c Claim) ([]proto.Message, any, error) {
	var evs []proto.Message
	ids := make([]string, 0, len(s.Sessions))
	for id := range s.Sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	claimed := []Claimed{}
	for _, id := range ids {
		ss := s.Sessions[id]
		if !slices.Contains(c.Sessions, id) {
			refs := [][]byte{}
			for _, p := range ss.all() {
				refs = append(refs, p.Ref)
			}
			evs = append(evs, &eventsv1.KeyPackagesDropped{SessionId: id, Refs: refs, Reason: "session_ended"})
			continue
		}
		evs = append(evs, expired(s, id, c.At)...)
		left := usable(ss.OneTime, c.At)
		switch {
		case len(left) > 0:
			p := left[0]
			evs = append(evs, &eventsv1.KeyPackageClaimed{SessionId: id, Ref: p.Ref, Remaining: uint32(len(left) - 1)})
			claimed = append(claimed, Claimed{Session: id, KeyPackage: p.Raw})
		case ss.LastResort != nil && ss.LastResort.NotAfter.After(c.At):
			evs = append(evs, &eventsv1.KeyPackageClaimed{SessionId: id, Ref: ss.LastResort.Ref, LastResort: true})
			claimed = append(claimed, Claimed{Session: id, KeyPackage: ss.LastResort.Raw, LastResort: true})
		}
	}
	return evs, claimed, nil
}

// expired is the drop event for the session's KeyPackages past their not_after at t, if any.
func expired(s *State, session string, t time.Time) []proto.Message {
	ss := s.Sessions[session]
	if ss == nil {
		return nil
	}
	var refs [][]byte
	for _, p := range ss.all() {
		if !p.NotAfter.After(t) {
			refs = append(refs, p.Ref)
		}
	}
	if refs == nil {
		return nil
	}
	return []proto.Message{&eventsv1.KeyPackagesDropped{SessionId: session, Refs: refs, Reason: "expired"}}
}

func usable(ps []Package, t time.Time) []Package {
	out := make([]Package, 0, len(ps))
	for _, p := range ps {
		if p.NotAfter.After(t) {
			out = append(out, p)
		}
	}
	return out
}

func (s *State) stock(session string, t time.Time) Stock {
	ss := s.Sessions[session]
	if ss == nil {
		return Stock{}
	}
	return Stock{
		OneTime:        len(usable(ss.OneTime, t)),
		LastResort:     ss.LastResort != nil && ss.LastResort.NotAfter.After(t),
		LastResortUsed: ss.LastResortUsed,
	}
}
