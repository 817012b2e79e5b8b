package main

// What the CLI keeps about a session's encrypted DMs and groups, next to the SDK's MLS state:
// the names, kinds and DM peers of the groups it knows, which it learns from the server's list of
// the actor's groups (MLS.Groups, then MLS.Info for a new one), and what a command that writes
// decrypted on the way, for the next read.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/snowflake"
)

// groupStateFile is the CLI's state of one session, in the session's keystore directory
// (<dir>/<fid>/<server host>/<session id>/, the layout of client/keystore.go). It is written
// with mode 0600: its Unread queue holds decrypted messages.
const groupStateFile = "p2chat-groups.json"

// groupState is the content of groupStateFile.
type groupState struct {
	Groups []knownGroup `json:"groups"`
	// Unread holds, per group id, what a send, add or remove decrypted while catching up
	// (plaintext), until the next read prints it.
	Unread map[string][]savedEvent `json:"unread,omitempty"`
}

// knownGroup is a group of this actor, as the server described it.
type knownGroup struct {
	ID      snowflake.ID `json:"id"`
	Kind    string       `json:"kind,omitempty"`
	Name    string       `json:"name,omitempty"`
	Peer    string       `json:"peer,omitempty"`    // a DM's other actor
	Removed bool         `json:"removed,omitempty"` // this session was removed from it, and was told
}

// savedEvent is what a read prints of a client.GroupEvent.
type savedEvent struct {
	Type      string       `json:"type"`
	Epoch     uint64       `json:"epoch,omitempty"`
	SenderFID string       `json:"sender_fid,omitempty"`
	MessageID snowflake.ID `json:"message_id,omitempty"`
	Plaintext []byte       `json:"plaintext,omitempty"`
	Removed   bool         `json:"removed,omitempty"`
	FID       string       `json:"fid,omitempty"`
	Session   string       `json:"session,omitempty"`
}

// eventGone is the notice for a group whose log the server no longer shows this session.
const eventGone = "gone"

func saved(evs []client.GroupEvent) []savedEvent {
	out := make([]savedEvent, len(evs))
	for i, e := range evs {
		out[i] = savedEvent{Type: e.Type, Epoch: e.Epoch, SenderFID: e.SenderFID, MessageID: e.MessageID, Plaintext: e.Plaintext,
			Removed: e.Removed, FID: e.FID, Session: e.Session}
	}
	return out
}

// mlsSession is what the DM and group commands work with: the stored session, its SDK MLS state
// and the CLI's group state, saved by save.
type mlsSession struct {
	s    *client.Session
	ml   *client.MLS
	st   groupState
	path string
}

// mlsSession opens the MLS state of the stored session at --server.
func (m *Main) mlsSession() (*mlsSession, error) {
	_, ch, err := m.chat()
	if err != nil {
		return nil, err
	}
	ml, err := ch.MLS()
	if err != nil {
		return nil, err
	}
	dir, err := m.dir()
	if err != nil {
		return nil, err
	}
	s := ch.Session()
	u, err := url.Parse(s.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("session %s/%s: server %q has no host", s.FID, s.SessionID, s.Server)
	}
	ms := &mlsSession{s: s, ml: ml, path: filepath.Join(dir, s.FID.String(), u.Host, s.SessionID, groupStateFile)}
	b, err := os.ReadFile(ms.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err == nil {
		if err := json.Unmarshal(b, &ms.st); err != nil {
			return nil, fmt.Errorf("%s: %w", ms.path, err)
		}
	}
	return ms, nil
}

// save writes the group state atomically, mode 0600 (os.CreateTemp's); the session directory
// exists (it holds the key).
func (ms *mlsSession) save() error {
	b, err := json.MarshalIndent(ms.st, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(ms.path), "."+groupStateFile+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), ms.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("save %s: %w", ms.path, err)
	}
	return nil
}

func (ms *mlsSession) me() string { return ms.s.FID.String() }

// find returns the entry of group id, or nil.
func (ms *mlsSession) find(id snowflake.ID) *knownGroup {
	for i := range ms.st.Groups {
		if ms.st.Groups[i].ID == id {
			return &ms.st.Groups[i]
		}
	}
	return nil
}

// known returns the entry of group id, making one if needed.
func (ms *mlsSession) known(id snowflake.ID) *knownGroup {
	if g := ms.find(id); g != nil {
		return g
	}
	ms.st.Groups = append(ms.st.Groups, knownGroup{ID: id})
	return &ms.st.Groups[len(ms.st.Groups)-1]
}

// removed reports whether this session learnt that it was removed from group id.
func (ms *mlsSession) removed(id snowflake.ID) bool {
	g := ms.find(id)
	return g != nil && g.Removed
}

// learn records what the server says about a group.
func (ms *mlsSession) learn(info *client.GroupInfo) {
	g := ms.known(info.ID)
	g.Kind, g.Name, g.Peer = info.Kind, info.Name, ""
	if info.Kind == client.GroupDM {
		for _, f := range slices.Concat([]string{info.Owner}, info.Actors, info.Invited) {
			if f != "" && f != ms.me() {
				g.Peer = f
				break
			}
		}
	}
}

// refresh asks the server for this actor's groups, and about each one not known here yet (or
// known from an older state file without its DM peer). It returns the server's list, oldest
// first. A group the server stops listing is left as it is: its next read says the session is
// no longer in it.
func (ms *mlsSession) refresh(ctx context.Context) ([]client.GroupRef, error) {
	refs, err := ms.ml.Groups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing this actor's groups: %w", err)
	}
	slices.SortFunc(refs, func(a, b client.GroupRef) int { return cmp.Compare(a.ID, b.ID) })
	for _, r := range refs {
		if g := ms.find(r.ID); g != nil && g.Kind != "" && (g.Kind != client.GroupDM || g.Peer != "") {
			continue
		}
		// A group the server will not describe now is asked about again at the next refresh.
		if info, err := ms.ml.Info(ctx, r.ID); err == nil {
			ms.learn(info)
		}
	}
	return refs, nil
}

// dmsWith lists the DMs with peer this session knows, oldest first. Both sides start one at the
// same time only by a race; then both read both, and send to the oldest.
func (ms *mlsSession) dmsWith(peer string) []snowflake.ID {
	var out []snowflake.ID
	for _, g := range ms.st.Groups {
		if g.Kind == client.GroupDM && g.Peer == peer && !g.Removed {
			out = append(out, g.ID)
		}
	}
	slices.Sort(out)
	return out
}

// inGroup reports whether this session has MLS state for group id.
func (ms *mlsSession) inGroup(id snowflake.ID) bool {
	_, err := ms.ml.MLSGroup(id)
	return err == nil
}

// catchUp reads the group's log past what this session handled, joining the group from its
// Welcome if the session is not in it yet, and returns what it found. The server closes a group's
// log to an actor removed from it: a session that was in the group then gets the eventGone
// notice, since the commit that removed it cannot be read any more. Either way the group is
// marked removed.
func (ms *mlsSession) catchUp(ctx context.Context, id snowflake.ID) ([]savedEvent, error) {
	evs, err := ms.ml.CatchUp(ctx, id)
	out := saved(evs)
	isRemoval := func(e savedEvent) bool { return e.Removed || e.Type == eventGone }
	var api *client.APIError
	if err != nil && errors.As(err, &api) && api.Status == 404 && ms.inGroup(id) && !slices.ContainsFunc(out, isRemoval) {
		out, err = append(out, savedEvent{Type: eventGone}), nil
	}
	if slices.ContainsFunc(out, isRemoval) {
		ms.known(id).Removed = true
	}
	return out, err
}

// catchUpToWrite catches up before a command that writes to group id, keeping what it decrypts
// for the next read.
func (ms *mlsSession) catchUpToWrite(ctx context.Context, id snowflake.ID) error {
	if !ms.removed(id) {
		evs, err := ms.catchUp(ctx, id)
		ms.stash(id, evs)
		if err != nil {
			return err
		}
	}
	if ms.removed(id) {
		return fmt.Errorf("this session was removed from group %s", id)
	}
	return nil
}

// keepUnread keeps, for the next read, what the SDK read while a send or commit caught up after
// losing an epoch (it hands it out at the next CatchUp), whether or not the write went through.
// A failure here is left to the next read, which reads the log again.
func (ms *mlsSession) keepUnread(ctx context.Context, id snowflake.ID) {
	evs, _ := ms.catchUp(ctx, id)
	ms.stash(id, evs)
}

func (ms *mlsSession) stash(id snowflake.ID, evs []savedEvent) {
	if len(evs) == 0 {
		return
	}
	if ms.st.Unread == nil {
		ms.st.Unread = map[string][]savedEvent{}
	}
	ms.st.Unread[id.String()] = append(ms.st.Unread[id.String()], evs...)
}

// read returns what is new in group id: what earlier commands decrypted, then the group's log
// past what this session handled.
func (ms *mlsSession) read(ctx context.Context, id snowflake.ID) ([]savedEvent, error) {
	key := id.String()
	out := ms.st.Unread[key]
	delete(ms.st.Unread, key)
	if ms.removed(id) {
		if len(out) == 0 {
			return nil, fmt.Errorf("this session was removed from group %s", id)
		}
		return out, nil
	}
	evs, err := ms.catchUp(ctx, id)
	return append(out, evs...), err
}
