package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// session picks the stored session a command acts as: a session at the server c talks to, of the
// actor --as names, or of the only actor with sessions there. Commands of later groups (guilds,
// channels, messages) pick their session the same way.
func (m *Main) session(c *client.Client) (*client.Session, error) {
	all, loadErr := c.StoredSessions()
	var here []*client.Session
	for _, s := range all {
		if s.Server == c.BaseURL() && m.isAs(s.FID) {
			here = append(here, s)
		}
	}
	if len(here) == 0 {
		who := ""
		if m.As != "" {
			who = " of " + m.As
		}
		err := fmt.Errorf("no stored session%s at %s: log in first (p2chat login NAME), or choose the server with --server", who, c.BaseURL())
		// A session that could not be read may be the one the user meant.
		return nil, errors.Join(err, loadErr)
	}

	var fids []string
	for _, s := range here {
		if f := s.FID.String(); !slices.Contains(fids, f) {
			fids = append(fids, f)
		}
	}
	if len(fids) > 1 {
		return nil, usagef("sessions of %s are stored for %s: choose one with --as FID", strings.Join(fids, ", "), c.BaseURL())
	}
	// Several sessions of one actor at one server: the one whose ID-Cert was issued last is the
	// one the user most likely just logged in with. The session id breaks ties (certs issued in
	// the same second), so that the choice is the same on every run.
	slices.SortFunc(here, func(a, b *client.Session) int {
		if c := b.Cert.NotBefore.Compare(a.Cert.NotBefore); c != 0 {
			return c
		}
		return cmp.Compare(a.SessionID, b.SessionID)
	})
	return here[0], nil
}

// isAs reports whether fid is the actor --as names: a full FID, or a bare local name, which is
// enough when only one server's actors are stored. Without --as every actor qualifies.
func (m *Main) isAs(fid identity.FID) bool {
	if m.As == "" {
		return true
	}
	if strings.Contains(m.As, "@") {
		want, err := identity.ParseFID(m.As)
		return err == nil && want == fid
	}
	return strings.EqualFold(m.As, fid.Local)
}
