package main

// What the CLI keeps about a session's encrypted DMs and groups, next to the SDK's MLS state, and
// how it learns which groups the session is in. The server has no route that lists an actor's
// groups (and READY's "groups" is always empty), so the CLI follows the session's gateway
// dispatches instead: every group event names its recipients, GROUP_CREATE goes to everyone a
// group names, and a Resume with a cursor replays what the session missed since then. The
// cursor of the last look is kept here, not in the SDK's gateway.json, so that another program
// on the same session (p2chat tail, a bot) neither moves it past a group nor has its own point
// moved by us.

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
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/snowflake"
)

// groupStateFile is the CLI's state of one session, in the session's keystore directory
// (<dir>/<fid>/<server host>/<session id>/, the layout of client/keystore.go).
const groupStateFile = "p2chat-groups.json"

// maxPending bounds the gateway dispatches kept per group between two reads.
const maxPending = 1000

// fromLog is the s a discovery Resume names: past anything a connection could have sent, so that
// the server never continues another connection's frames and replays its log after the cursor
// instead ("S is only meaningful while the server still holds that connection's frames").
const fromLog = 1 << 40

// groupState is the content of groupStateFile.
type groupState struct {
	// Cursor is where the next look at the gateway resumes: the chat cursor of the last
	// dispatch seen. "" means never looked: the first look replays the log from its start.
	Cursor string       `json:"cursor,omitempty"`
	Groups []knownGroup `json:"groups"`
	// Pending holds, per group id, the gateway's dispatches of groups this session is in, seen
	// since its last read: they carry what the group's log does not (NEW_DEVICE) or no longer
	// shows this session (the commit that removed it, and what came before).
	Pending map[string][]pendingDispatch `json:"pending,omitempty"`
	// Unread holds what a send, add or remove decrypted while catching up, for the next read.
	Unread map[string][]savedEvent `json:"unread,omitempty"`
}

// knownGroup is a group this session was named in.
type knownGroup struct {
	ID      snowflake.ID `json:"id"`
	Kind    string       `json:"kind,omitempty"` // "" until learnt
	Name    string       `json:"name,omitempty"`
	Members []string     `json:"members,omitempty"` // actors and invited, when last looked at
	Removed bool         `json:"removed,omitempty"` // this session was removed from it
}

type pendingDispatch struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// savedEvent is a client.GroupEvent without what only the SDK needs (the KeyPackage).
type savedEvent struct {
	Type          string       `json:"type"`
	Epoch         uint64       `json:"epoch,omitempty"`
	SenderFID     string       `json:"sender_fid,omitempty"`
	SenderSession string       `json:"sender_session,omitempty"`
	MessageID     snowflake.ID `json:"message_id,omitempty"`
	Plaintext     []byte       `json:"plaintext,omitempty"`
	Removed       bool         `json:"removed,omitempty"`
	FID           string       `json:"fid,omitempty"`
	Session       string       `json:"session,omitempty"`
}

// eventGone is the notice for a group whose log the server no longer shows this session.
const eventGone = "gone"

func saved(evs []client.GroupEvent) []savedEvent {
	out := make([]savedEvent, len(evs))
	for i, e := range evs {
		out[i] = savedEvent{Type: e.Type, Epoch: e.Epoch, SenderFID: e.SenderFID, SenderSession: e.SenderSession,
			MessageID: e.MessageID, Plaintext: e.Plaintext, Removed: e.Removed, FID: e.FID, Session: e.Session}
	}
	return out
}

// mlsSession is what the DM and group commands work with: the stored session, its SDK MLS state
// and the CLI's group state, saved by save.
type mlsSession struct {
	c    *client.Client
	s    *client.Session
	ch   *client.Chat
	ml   *client.MLS
	st   groupState
	path string
}

// mlsSession opens the MLS state of the stored session at --server.
func (m *Main) mlsSession() (*mlsSession, error) {
	c, ch, err := m.chat()
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
	ms := &mlsSession{c: c, s: s, ch: ch, ml: ml, path: filepath.Join(dir, s.FID.String(), u.Host, s.SessionID, groupStateFile)}
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

// save writes the group state atomically; the session directory exists (it holds the key).
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

// known returns the entry of group id, making one if needed.
func (ms *mlsSession) known(id snowflake.ID) *knownGroup {
	if g := ms.find(id); g != nil {
		return g
	}
	ms.st.Groups = append(ms.st.Groups, knownGroup{ID: id})
	return &ms.st.Groups[len(ms.st.Groups)-1]
}

// find returns the entry of group id, or nil.
func (ms *mlsSession) find(id snowflake.ID) *knownGroup {
	for i := range ms.st.Groups {
		if ms.st.Groups[i].ID == id {
			return &ms.st.Groups[i]
		}
	}
	return nil
}

// removed reports whether this session learnt that it was removed from group id.
func (ms *mlsSession) removed(id snowflake.ID) bool {
	g := ms.find(id)
	return g != nil && g.Removed
}

// learn records what the server says about a group.
func (ms *mlsSession) learn(info *client.GroupInfo) {
	g := ms.known(info.ID)
	g.Kind, g.Name = info.Kind, info.Name
	g.Members = nil
	for _, f := range slices.Concat([]string{info.Owner}, info.Actors, info.Invited) {
		if f != "" && !slices.Contains(g.Members, f) {
			g.Members = append(g.Members, f)
		}
	}
	slices.Sort(g.Members)
}

// dmsWith lists the DMs with peer this session knows, oldest first. Both sides start one at the
// same time only by a race; then both read both, and send to the oldest.
func (ms *mlsSession) dmsWith(peer string) []snowflake.ID {
	var out []snowflake.ID
	for _, g := range ms.st.Groups {
		if g.Kind == client.GroupDM && !g.Removed && slices.Contains(g.Members, peer) && slices.Contains(g.Members, ms.me()) {
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

// note records what a gateway dispatch says about groups.
func (ms *mlsSession) note(d *client.Dispatch) {
	switch d.Type {
	case client.EventGroupCreate:
		var p struct {
			Group client.GroupInfo `json:"group"`
		}
		if json.Unmarshal(d.Data, &p) == nil && p.Group.ID != 0 {
			ms.learn(&p.Group)
		}
	case client.EventMLSCommit, client.EventMLSMessage, client.EventNewDevice, client.EventGroupJoinRequest:
		var p struct {
			GroupID snowflake.ID `json:"group_id"`
		}
		if json.Unmarshal(d.Data, &p) != nil || p.GroupID == 0 {
			return
		}
		ms.known(p.GroupID)
		// A group the session is not in yet is joined from its log, which has all of it.
		if !ms.inGroup(p.GroupID) {
			return
		}
		if ms.st.Pending == nil {
			ms.st.Pending = map[string][]pendingDispatch{}
		}
		key := p.GroupID.String()
		list := append(ms.st.Pending[key], pendingDispatch{Type: d.Type, Data: slices.Clone(d.Data)})
		if len(list) > maxPending {
			list = list[len(list)-maxPending:]
		}
		ms.st.Pending[key] = list
	}
}

// lookTimeout bounds one look at the gateway.
const lookTimeout = 15 * time.Second

// sync learns the groups this session was named in since the last look: it resumes the gateway
// from the kept cursor and notes every dispatch the server replays. complete is false when the
// server could not replay all of it (too much missed) and the look started afresh, so that
// groups from that gap stay unknown here (their ids still work: p2chat group read ID).
func (ms *mlsSession) sync(ctx context.Context) (complete bool, err error) {
	// The connection is made with a client without a keystore: the SDK's own resume point
	// (gateway.json) belongs to whatever else runs on this session.
	gc, err := client.New(ms.s.Server, client.Options{})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()
	from := &client.ResumePoint{S: fromLog, Cursor: cmp.Or(ms.st.Cursor, "0")}
	g, err := gc.Connect(ctx, ms.s, client.GatewayOptions{ResumeFrom: from})
	if err != nil {
		return false, err
	}
	resumed, resync, closed, err := ms.drain(ctx, g, func(ev client.Event) bool { return ev.Resumed })
	if err != nil {
		return false, err
	}
	switch {
	case closed != nil && !resync:
		return false, fmt.Errorf("looking for groups on the gateway: it closed: %s", describeClose(closed))
	case resumed && !resync:
		ms.st.Cursor = cmp.Or(g.Cursor(), ms.st.Cursor)
		return true, nil
	}
	// Too much was missed for a replay: look from now on.
	return false, ms.startLooking(ctx, gc)
}

// startLooking sets the cursor to the gateway's present: a fresh Identify's READY.
func (ms *mlsSession) startLooking(ctx context.Context, gc *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()
	g, err := gc.Connect(ctx, ms.s, client.GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		return err
	}
	ready, _, closed, err := ms.drain(ctx, g, func(ev client.Event) bool { return ev.Ready != nil })
	if err != nil {
		return err
	}
	if !ready {
		return fmt.Errorf("no READY from the gateway: %s", describeClose(closed))
	}
	ms.st.Cursor = g.Cursor()
	return nil
}

// drain reads g's events, noting dispatches, until done says so, the connection closes or ctx
// ends; then it closes g and notes the dispatches still buffered (their cursor is g's).
func (ms *mlsSession) drain(ctx context.Context, g *client.Gateway, done func(client.Event) bool) (ok, resync bool, closed *client.CloseInfo, err error) {
loop:
	for {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("looking for groups on the gateway: %w", ctx.Err())
			break loop
		case ev, open := <-g.Events():
			switch {
			case !open:
				closed = &client.CloseInfo{Code: 1006, Reason: "connection ended"}
				break loop
			case ev.Dispatch != nil:
				ms.note(ev.Dispatch)
			case ev.Resync != nil:
				resync = true
			case ev.Service != nil && !ev.Service.Success:
				err = fmt.Errorf("subscribing to %s refused: %s", ev.Service.Service, ev.Service.Error)
				break loop
			case ev.Closed != nil:
				closed = ev.Closed
				break loop
			}
			if done(ev) {
				ok = true
				break loop
			}
		}
	}
	g.Close()
	for ev := range g.Events() {
		if ev.Dispatch != nil {
			ms.note(ev.Dispatch)
		}
	}
	return ok, resync, closed, err
}

// startLookingIfNew sets the cursor of a session that never uploaded KeyPackages to the
// present: nobody can have added it to a group before its first upload, so nothing is missed,
// and its first look need not replay the server's log from the start.
func (ms *mlsSession) startLookingIfNew(ctx context.Context, stock client.KeyPackageStock) error {
	if ms.st.Cursor != "" || stock.OneTime > 0 || stock.LastResort || stock.LastResortUsed {
		return nil
	}
	gc, err := client.New(ms.s.Server, client.Options{})
	if err != nil {
		return err
	}
	return ms.startLooking(ctx, gc)
}

// fillIn asks the server about groups known by id only (learnt from a commit or message
// dispatch). Groups it will not show (this session was removed) stay as they are.
func (ms *mlsSession) fillIn(ctx context.Context) {
	for _, g := range slices.Clone(ms.st.Groups) {
		if g.Kind != "" || g.Removed {
			continue
		}
		if info, err := ms.ml.Info(ctx, g.ID); err == nil {
			ms.learn(info)
		}
	}
}

// catchUp reads the group's log for a command that writes to it, keeping what it decrypts for
// the next read.
func (ms *mlsSession) catchUp(ctx context.Context, id snowflake.ID) error {
	if ms.removed(id) {
		return fmt.Errorf("this session was removed from group %s", id)
	}
	evs, err := ms.ml.CatchUp(ctx, id)
	ms.stash(id, saved(evs))
	return err
}

func (ms *mlsSession) stash(id snowflake.ID, evs []savedEvent) {
	if len(evs) == 0 {
		return
	}
	if ms.st.Unread == nil {
		ms.st.Unread = map[string][]savedEvent{}
	}
	ms.st.Unread[id.String()] = append(ms.st.Unread[id.String()], evs...)
	for _, e := range evs {
		if e.Removed {
			ms.known(id).Removed = true
		}
	}
}

// read returns what is new in group id: what earlier commands decrypted, the group's log past
// what this session handled, and the gateway's pending dispatches of it (new devices; and for a
// session that was removed, the commit that removed it, since the log is closed to it then).
func (ms *mlsSession) read(ctx context.Context, id snowflake.ID) ([]savedEvent, error) {
	key := id.String()
	out := ms.st.Unread[key]
	delete(ms.st.Unread, key)
	if ms.removed(id) {
		delete(ms.st.Pending, key)
		if len(out) == 0 {
			return nil, fmt.Errorf("this session was removed from group %s", id)
		}
		return out, nil
	}
	evs, logErr := ms.ml.CatchUp(ctx, id)
	out = append(out, saved(evs)...)
	var api *client.APIError
	if logErr != nil && !(errors.As(logErr, &api) && api.Status == 404) {
		return out, logErr
	}
	var err error
	for _, p := range ms.st.Pending[key] {
		evs, herr := ms.ml.Handle(ctx, &client.Dispatch{Type: p.Type, Data: p.Data})
		out = append(out, saved(evs)...)
		if herr != nil {
			err = herr
			break
		}
	}
	delete(ms.st.Pending, key)
	removed := slices.ContainsFunc(out, func(e savedEvent) bool { return e.Removed })
	if logErr != nil && !removed {
		if !ms.inGroup(id) {
			return out, logErr // a group this session never was in, or none at all
		}
		// It was in the group, and the server no longer shows it: removed while away, and
		// the gateway did not bring the commit (it was missed, or seen before a look).
		out = append(out, savedEvent{Type: eventGone})
		removed = true
	}
	if removed {
		ms.known(id).Removed = true
	}
	return out, err
}
