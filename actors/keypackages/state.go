package keypackages

import (
	"bytes"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// State is the stock of every session of one actor.
type State struct {
	FID      string
	Sessions map[string]*Session
}

// Session is one session's stock.
type Session struct {
	OneTime        []Package // oldest first: claims take the oldest, which expires first
	LastResort     *Package
	LastResortUsed bool
}

// Initial is the state of an empty stream.
func Initial(fid string) *State { return &State{FID: fid, Sessions: map[string]*Session{}} }

func (s *State) session(id string) *Session {
	if ss := s.Sessions[id]; ss != nil {
		return ss
	}
	ss := &Session{}
	s.Sessions[id] = ss
	return ss
}

// has reports whether any stored KeyPackage has this ref or this init key.
func (s *State) has(ref, initKey []byte) bool {
	for _, ss := range s.Sessions {
		for _, p := range ss.all() {
			if bytes.Equal(p.Ref, ref) || bytes.Equal(p.InitKey, initKey) {
				return true
			}
		}
	}
	return false
}

func (ss *Session) all() []Package {
	if ss.LastResort == nil {
		return ss.OneTime
	}
	return append(slices.Clip(ss.OneTime), *ss.LastResort)
}

func fromStored(p *eventsv1.StoredKeyPackage) Package {
	return Package{Ref: p.GetRef(), Raw: p.GetKeyPackage(), InitKey: p.GetInitKey(), NotAfter: p.GetNotAfter().AsTime()}
}

// Apply folds one event into s.
func Apply(s *State, ev proto.Message) (*State, error) {
	switch e := ev.(type) {
	case *eventsv1.KeyPackagesUploaded:
		ss := s.session(e.GetSessionId())
		for _, p := range e.GetOneTime() {
			ss.OneTime = append(ss.OneTime, fromStored(p))
		}
		if lr := e.GetLastResort(); lr != nil {
			p := fromStored(lr)
			ss.LastResort, ss.LastResortUsed = &p, false
		}
	case *eventsv1.KeyPackageClaimed:
		ss := s.Sessions[e.GetSessionId()]
		if ss == nil {
			return s, fmt.Errorf("claim from unknown session %q", e.GetSessionId())
		}
		if e.GetLastResort() {
			ss.LastResortUsed = true
			return s, nil
		}
		i := slices.IndexFunc(ss.OneTime, func(p Package) bool { return bytes.Equal(p.Ref, e.GetRef()) })
		if i < 0 {
			return s, fmt.Errorf("claim of unknown KeyPackage %x", e.GetRef())
		}
		ss.OneTime = slices.Delete(ss.OneTime, i, i+1)
	case *eventsv1.KeyPackagesDropped:
		ss := s.Sessions[e.GetSessionId()]
		if ss == nil {
			return s, nil
		}
		for _, ref := range e.GetRefs() {
			ss.OneTime = slices.DeleteFunc(ss.OneTime, func(p Package) bool { return bytes.Equal(p.Ref, ref) })
			if ss.LastResort != nil && bytes.Equal(ss.LastResort.Ref, ref) {
				ss.LastResort, ss.LastResortUsed = nil, false
			}
		}
		if len(ss.OneTime) == 0 && ss.LastResort == nil {
			delete(s.Sessions, e.GetSessionId())
		}
	default:
		return s, fmt.Errorf("keypackages: unexpected event %T", ev)
	}
	return s, nil
}

func toStored(p Package) *eventsv1.StoredKeyPackage {
	return &eventsv1.StoredKeyPackage{Ref: p.Ref, KeyPackage: p.Raw, InitKey: p.InitKey, NotAfter: timestamppb.New(p.NotAfter)}
}

// Snapshot is s as a KeyPackagesSnapshot, sessions in id order.
func Snapshot(s *State) (proto.Message, error) {
	snap := &eventsv1.KeyPackagesSnapshot{}
	ids := make([]string, 0, len(s.Sessions))
	for id := range s.Sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		ss := s.Sessions[id]
		out := &eventsv1.SessionKeyPackages{SessionId: id, LastResortUsed: ss.LastResortUsed}
		for _, p := range ss.OneTime {
			out.OneTime = append(out.OneTime, toStored(p))
		}
		if ss.LastResort != nil {
			out.LastResort = toStored(*ss.LastResort)
		}
		snap.Sessions = append(snap.Sessions, out)
	}
	return snap, nil
}

// Restore is the state a KeyPackagesSnapshot holds (the FID is the caller's to set).
func Restore(m proto.Message) (*State, error) {
	snap, ok := m.(*eventsv1.KeyPackagesSnapshot)
	if !ok {
		return nil, fmt.Errorf("keypackages: snapshot of type %T", m)
	}
	s := Initial("")
	for _, in := range snap.GetSessions() {
		ss := &Session{LastResortUsed: in.GetLastResortUsed()}
		for _, p := range in.GetOneTime() {
			ss.OneTime = append(ss.OneTime, fromStored(p))
		}
		if lr := in.GetLastResort(); lr != nil {
			p := fromStored(lr)
			ss.LastResort = &p
		}
		s.Sessions[in.GetSessionId()] = ss
	}
	return s, nil
}
