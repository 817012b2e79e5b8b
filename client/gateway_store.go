package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// resumeFile sits next to a session's key, cert and token in the keystore (keystore.go):
// {"s": <last server frame delivered>, "cursor": "<last chat cursor>"}. It is written on every
// heartbeat tick when it changed and when a connection ends, not per event: an fsync per chat
// message would cost more than replaying a few seconds of events after a crash. The cursor is
// recorded once an event is in the Events channel, so a program that crashes with events still
// unread there loses those; the next run's READY or REST reload covers that.
const resumeFile = "gateway.json"

// StoredResumePoint reads the resume point a Gateway of s left in the keystore, for
// GatewayOptions.ResumeFrom. It returns nil without an error when there is none (or no keystore).
func (c *Client) StoredResumePoint(s *Session) (*ResumePoint, error) {
	if c.keys == nil || s == nil {
		return nil, nil
	}
	dir, err := c.keys.sessionDir(s.FID, s.Server, s.SessionID)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, resumeFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client: keystore: %w", err)
	}
	var p ResumePoint
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("client: keystore: %s: %w", filepath.Join(dir, resumeFile), err)
	}
	return &p, nil
}

// persist writes the resume point when it changed since the last write. Failures are logged: the
// live connection does not need the file, only a later run does.
func (g *Gateway) persist() {
	keys := g.client.keys
	if keys == nil {
		return
	}
	g.mu.Lock()
	p := g.point
	changed := p != g.persisted
	g.mu.Unlock()
	if !changed || p.Cursor == "" {
		return
	}
	dir, err := keys.sessionDir(g.fid, g.server, g.sessionID)
	if err == nil {
		// Only next to a stored session: a session the keystore never saw has no key there,
		// and a lone resume file would look like a broken session to StoredSessions.
		_, err = os.Stat(filepath.Join(dir, keyFile))
	}
	if err == nil {
		var b []byte
		b, err = json.Marshal(p)
		if err == nil {
			err = writeFileAtomic(filepath.Join(dir, resumeFile), append(b, '\n'), 0o600)
		}
	}
	if err != nil {
		g.log.Warn("gateway: resume point not stored", "err", err)
		return
	}
	g.mu.Lock()
	g.persisted = p
	g.mu.Unlock()
}
