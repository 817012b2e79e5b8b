package client

// Messaging groups, the member's side (docs/PROTOCOL.md section 7): every group is an MLS group
// whose state lives only here, on disk under the session's keystore directory (mls/groups/) when
// the Client has a Dir. The server orders commits; when another member's commit wins an epoch,
// the SDK drops its own, catches up from the group's log and tries again.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
	"github.com/polyproto-chat/server/snowflake"
)

// Group kinds.
const (
	GroupDM    = "dm"
	GroupGroup = "group"
)

// GroupInfo is a messaging group as the server describes it.
type GroupInfo struct {
	ID          snowflake.ID `json:"id"`
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Owner       string       `json:"owner"`
	Actors      []string     `json:"actors"`  // with a device in the MLS group
	Invited     []string     `json:"invited"` // named, not added yet
	MLSGroupID  string       `json:"mls_group_id"`
	CipherSuite uint16       `json:"cipher_suite"`
	Epoch       uint64       `json:"epoch"`
	Leaves      []GroupLeaf  `json:"leaves"`
	Pending     []GroupLeaf  `json:"pending"` // join requests not answered yet
	// The encrypted channel whose group this is (kind "channel"); 0 for DMs and groups.
	GuildID   snowflake.ID `json:"guild_id"`
	ChannelID snowflake.ID `json:"channel_id"`
}

// GroupLeaf is a device in a group, or one asking to join (with its KeyPackage).
type GroupLeaf struct {
	Leaf       *uint32 `json:"leaf,omitempty"`
	FID        string  `json:"fid"`
	SessionID  string  `json:"session_id"`
	KeyPackage string  `json:"key_package,omitempty"`
	NewDevice  bool    `json:"new_device,omitempty"`
}

// GroupEvent is what Handle or CatchUp made of a group dispatch.
type GroupEvent struct {
	Group         snowflake.ID
	Type          string // GroupJoined, GroupCommit, GroupMessage, GroupNewDevice, GroupJoinRequest
	Epoch         uint64 // the group's epoch after the event
	SenderFID     string
	SenderSession string
	MessageID     snowflake.ID // GroupMessage
	Plaintext     []byte       // GroupMessage
	Removed       bool         // GroupCommit: it removed this session; the group is closed to it
	FID, Session  string       // GroupNewDevice, GroupJoinRequest: the device
	KeyPackage    []byte       // GroupJoinRequest: what to add it with (AddDevice)
	// GroupJoinRequest: every session of FID asking now, this one included, so that an app shows
	// one request per actor (AcceptJoin adds them all).
	Sessions []string
	// GroupCommit: the devices it added and removed.
	AddedDevices, RemovedDevices []GroupLeaf
}

// GroupEvent types.
const (
	GroupJoined      = "joined"
	GroupCommit      = "commit"
	GroupMessage     = "message"
	GroupNewDevice   = "new_device"
	GroupJoinRequest = "join_request"
)

// Group dispatch types (chat namespace).
const (
	EventGroupCreate      = "GROUP_CREATE"
	EventMLSCommit        = "MLS_COMMIT"
	EventMLSMessage       = "MLS_MESSAGE"
	EventNewDevice        = "NEW_DEVICE"
	EventGroupJoinRequest = "GROUP_JOIN_REQUEST"
)

// memberGroup is one group this session is in.
type memberGroup struct {
	g        *mls.Group
	revision int64 // last stream revision handled; -1: none
	removed  bool
	broken   error // set when a member failed its binding check: the group is not used again
}

// groupEntry is a group dispatch's payload, or an entry of the group log.
type groupEntry struct {
	Type     string       `json:"type"` // log entries only
	GroupID  snowflake.ID `json:"group_id"`
	Revision int64        `json:"revision"`
	Epoch    uint64       `json:"epoch"`
	Commit   string       `json:"commit"`
	Welcome  string       `json:"welcome"`
	Sender   struct {
		FID       string `json:"fid"`
		SessionID string `json:"session_id"`
	} `json:"sender"`
	Added           []GroupLeaf  `json:"added"`
	Removed         []GroupLeaf  `json:"removed"`
	ID              snowflake.ID `json:"id"`
	Message         string       `json:"message"`
	SenderFID       string       `json:"sender_fid"`
	SenderSessionID string       `json:"sender_session_id"`
	FID             string       `json:"fid"`
	SessionID       string       `json:"session_id"`
	KeyPackage      string       `json:"key_package"`
	PendingSessions []string     `json:"pending_sessions"`

	fromLog bool // read from the group log (CatchUp), not a dispatch
}

func (m *MLS) groupFile(id snowflake.ID) string {
	return filepath.Join(m.dir, "groups", id.String()+".json")
}

type savedGroup struct {
	State    []byte `json:"state"`
	Revision int64  `json:"revision"`
	Removed  bool   `json:"removed"`
}

// save writes a group's state; the caller holds m.mu.
func (m *MLS) save(id snowflake.ID, mg *memberGroup) error {
	m.groups[id] = mg
	if m.dir == "" {
		return nil
	}
	st, err := mg.g.State()
	if err != nil {
		return err
	}
	b, _ := json.Marshal(savedGroup{State: st, Revision: mg.revision, Removed: mg.removed})
	if err := os.MkdirAll(filepath.Dir(m.groupFile(id)), 0o700); err != nil {
		return fmt.Errorf("mls keystore: %w", err)
	}
	if err := writeFileAtomic(m.groupFile(id), b, 0o600); err != nil {
		return fmt.Errorf("mls keystore: %w", err)
	}
	return nil
}

// group returns a group of this session, loading it from disk; the caller holds m.mu.
func (m *MLS) group(id snowflake.ID) (*memberGroup, error) {
	if mg := m.groups[id]; mg != nil {
		return mg, nil
	}
	if m.dir == "" {
		return nil, fmt.Errorf("client: this session is not in group %s", id)
	}
	b, err := os.ReadFile(m.groupFile(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("client: this session is not in group %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("mls keystore: %w", err)
	}
	var sg savedGroup
	if err := json.Unmarshal(b, &sg); err != nil {
		return nil, fmt.Errorf("mls keystore: group %s: %w", id, err)
	}
	g, err := mls.Load(m.signer, sg.State)
	if err != nil {
		return nil, err
	}
	mg := &memberGroup{g: g, revision: sg.Revision, removed: sg.Removed}
	m.groups[id] = mg
	return mg, nil
}

// MLSGroup is the session's MLS state of a group, for callers that check it (epoch
// authenticator, members) or test it.
func (m *MLS) MLSGroup(id snowflake.ID) (*mls.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mg, err := m.group(id)
	if err != nil {
		return nil, err
	}
	return mg.g, nil
}

// CreateGroup makes a DM (kind GroupDM, exactly one other actor) or a group (GroupGroup, 1-14
// others) and adds every session of every member, using one KeyPackage of each claimed from the
// server (members of this server only).
func (m *MLS) CreateGroup(ctx context.Context, kind, name string, members []identity.FID) (*GroupInfo, error) {
	fids := make([]string, len(members))
	for i, f := range members {
		fids[i] = f.String()
	}
	var info GroupInfo
	if err := m.ch.write(ctx, http.MethodPost, "/groups", map[string]any{"kind": kind, "name": name, "members": fids}, &info); err != nil {
		return nil, err
	}
	if err := m.start(&info); err != nil {
		return nil, err
	}
	if len(members) > 0 {
		if err := m.Add(ctx, info.ID, members...); err != nil {
			return &info, fmt.Errorf("client: group %s made, adding its members failed: %w", info.ID, err)
		}
	}
	return m.Info(ctx, info.ID)
}

// GroupRef is one entry of Groups.
type GroupRef struct {
	ID   snowflake.ID `json:"id"`
	Kind string       `json:"kind"`
}

// Groups lists this actor's groups at the server: DMs and groups it is named in or has a device
// in, and encrypted channels it has a device in. A device that was offline, or new, finds its
// groups here and joins them with CatchUp.
func (m *MLS) Groups(ctx context.Context) ([]GroupRef, error) {
	var out struct {
		Groups []GroupRef `json:"groups"`
	}
	if err := m.ch.get(ctx, "/groups", nil, &out); err != nil {
		return nil, err
	}
	return out.Groups, nil
}

// Info reads a group from the server.
func (m *MLS) Info(ctx context.Context, id snowflake.ID) (*GroupInfo, error) {
	var info GroupInfo
	if err := m.ch.get(ctx, "/groups/"+id.String(), nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Add adds every session of each actor (one claimed KeyPackage each) in one commit.
func (m *MLS) Add(ctx context.Context, id snowflake.ID, fids ...identity.FID) error {
	var kps [][]byte
	for _, f := range fids {
		claimed, err := m.ClaimKeyPackages(ctx, f)
		if err != nil {
			return fmt.Errorf("KeyPackages of %s: %w", f, err)
		}
		for _, c := range claimed {
			kps = append(kps, c.KeyPackage)
		}
	}
	return m.commit(ctx, id, adding(kps)) // a session already in the group keeps its leaf
}

// AddDevice adds a new device of a member that asked to join (GroupJoinRequest's KeyPackage).
func (m *MLS) AddDevice(ctx context.Context, id snowflake.ID, keyPackage []byte) error {
	return m.commit(ctx, id, adding([][]byte{keyPackage}))
}

// AcceptJoin adds every device of fid that asked to join and is still waiting, in one commit:
// the gatekeeper's answer to GroupJoinRequest in an encrypted channel, and the SDK's way to take
// a member's new device (accepted by default, polyproto-chat 3.4). Each KeyPackage is checked
// as the server checked it.
func (m *MLS) AcceptJoin(ctx context.Context, id snowflake.ID, fid identity.FID) error {
	return m.acceptJoin(ctx, id, fid, false)
}

// acceptJoin is AcceptJoin; quiet, finding nobody waiting (another member was quicker) is not
// an error.
func (m *MLS) acceptJoin(ctx context.Context, id snowflake.ID, fid identity.FID, quiet bool) error {
	info, err := m.Info(ctx, id)
	if err != nil {
		return err
	}
	var kps [][]byte
	for _, p := range info.Pending {
		if p.FID != fid.String() {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(p.KeyPackage)
		if err != nil {
			return fmt.Errorf("client: pending KeyPackage of %s/%s: %w", p.FID, p.SessionID, err)
		}
		kp, err := mls.ParseKeyPackage(raw, time.Now())
		if err != nil {
			return fmt.Errorf("client: pending KeyPackage of %s/%s: %w", p.FID, p.SessionID, err)
		}
		if kp.Credential != (mls.Credential{FID: p.FID, Session: p.SessionID}) {
			return fmt.Errorf("client: the pending KeyPackage of %s/%s names %s", p.FID, p.SessionID, kp.Credential)
		}
		kps = append(kps, raw)
	}
	if len(kps) == 0 {
		if quiet {
			return nil
		}
		return fmt.Errorf("client: no device of %s is waiting to join group %s", fid, id)
	}
	return m.commit(ctx, id, adding(kps))
}

// EncryptChannel turns a guild text channel into an encrypted one (MANAGE_CHANNEL): the server
// makes its messaging group with this session as the first member, and refuses plaintext there
// from then on. Others join with RequestJoin on the group the channel now names.
func (m *MLS) EncryptChannel(ctx context.Context, channel snowflake.ID) (*GroupInfo, error) {
	var info GroupInfo
	if err := m.ch.write(ctx, http.MethodPost, "/channels/"+channel.String()+"/encryption", map[string]any{}, &info); err != nil {
		return nil, err
	}
	return &info, m.start(&info)
}

// start makes the MLS group of a group the server just made with this session at leaf 0.
func (m *MLS) start(info *GroupInfo) error {
	gid, err := base64.RawURLEncoding.DecodeString(info.MLSGroupID)
	if err != nil {
		return fmt.Errorf("client: group %s: mls_group_id: %w", info.ID, err)
	}
	g, err := mls.Create(m.signer, mls.Suite(info.CipherSuite), gid)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.save(info.ID, &memberGroup{g: g, revision: 0}) // GroupCreated is revision 0
}

// Remove removes every device of fid.
func (m *MLS) Remove(ctx context.Context, id snowflake.ID, fid identity.FID) error {
	return m.commit(ctx, id, func(g *mls.Group) ([][]byte, []uint32, bool) {
		var leaves []uint32
		for _, mem := range g.Members() {
			if mem.Credential.FID == fid.String() {
				leaves = append(leaves, mem.Leaf)
			}
		}
		return nil, leaves, len(leaves) > 0
	})
}

// Update is a key update: an empty commit, which gives this member a fresh leaf key and every
// member new epoch secrets.
func (m *MLS) Update(ctx context.Context, id snowflake.ID) error {
	return m.commit(ctx, id, func(*mls.Group) ([][]byte, []uint32, bool) { return nil, nil, true })
}

// changeFunc says what a commit does against the group as it is now; ok false: nothing to do
// (after a lost epoch, the winner may have done it already).
type changeFunc func(g *mls.Group) (adds [][]byte, removes []uint32, ok bool)

// notIn keeps the KeyPackages whose session holds no leaf of g, so that a commit never adds a
// device twice.
func notIn(g *mls.Group, kps [][]byte) [][]byte {
	var out [][]byte
	for _, raw := range kps {
		kp, err := mls.ParseKeyPackage(raw, time.Now())
		if err == nil && slices.ContainsFunc(g.Members(), func(mem mls.Member) bool { return mem.Credential == kp.Credential }) {
			continue
		}
		out = append(out, raw)
	}
	return out
}

// adding is the change that adds what of kps is not in the group yet.
func adding(kps [][]byte) changeFunc {
	return func(g *mls.Group) ([][]byte, []uint32, bool) {
		out := notIn(g, kps)
		return out, nil, len(out) > 0
	}
}

// maxEpochRetries bounds how often a commit or message is redone after losing an epoch.
const maxEpochRetries = 5

// commit makes a commit from what change says against the current epoch, posts it and, if
// another commit won that epoch, drops it, catches up and tries again. The group stays locked
// from the commit to the server's answer: a dispatch cannot be processed against a group whose
// own commit is pending, and is handled after it instead.
func (m *MLS) commit(ctx context.Context, id snowflake.ID, change changeFunc) error {
	for attempt := 0; ; attempt++ {
		err := m.commitOnce(ctx, id, change)
		if !isEpochConflict(err) || attempt == maxEpochRetries {
			return err
		}
		if err := m.catchUpInto(ctx, id); err != nil {
			return err
		}
	}
}

// catchUpInto is CatchUp inside Send or a commit, after a lost epoch: what it reads (messages
// included) is kept for the next Handle or CatchUp to return, so the app still sees it.
func (m *MLS) catchUpInto(ctx context.Context, id snowflake.ID) error {
	evs, err := m.catchUp(ctx, id)
	m.mu.Lock()
	m.backlog = append(m.backlog, evs...)
	m.mu.Unlock()
	return err
}

// drain returns and forgets the kept events; the caller holds m.mu.
func (m *MLS) drain() []GroupEvent {
	out := m.backlog
	m.backlog = nil
	return out
}

func (m *MLS) commitOnce(ctx context.Context, id snowflake.ID, change changeFunc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mg, err := m.group(id)
	if err != nil {
		return err
	}
	if mg.removed {
		return fmt.Errorf("client: this session was removed from group %s", id)
	}
	if mg.broken != nil {
		return mg.broken
	}
	adds, removes, ok := change(mg.g)
	if !ok {
		return nil // nothing left to do at this epoch (someone else did it)
	}
	for i, kp := range adds {
		if err := m.checkKeyPackage(ctx, kp); err != nil {
			return fmt.Errorf("client: KeyPackage %d to add: %w", i, err)
		}
	}
	c, err := mg.g.Commit(adds, removes)
	if err != nil {
		return err
	}
	body := map[string]string{"commit": base64.RawURLEncoding.EncodeToString(c.Message)}
	if c.Welcome != nil {
		body["welcome"] = base64.RawURLEncoding.EncodeToString(c.Welcome)
	}
	if err := m.ch.write(ctx, http.MethodPost, "/groups/"+id.String()+"/commits", body, nil); err != nil {
		if derr := mg.g.Discard(); derr != nil {
			return errors.Join(err, derr)
		}
		return err
	}
	mg.g.Confirm()
	return m.save(id, mg)
}

func isEpochConflict(err error) bool {
	var api *APIError
	return errors.As(err, &api) && api.Code == "P2_CHAT_EPOCH_CONFLICT"
}

// Send encrypts plaintext for the group and posts it; if a commit moved the group on first, it
// catches up and encrypts again.
func (m *MLS) Send(ctx context.Context, id snowflake.ID, plaintext []byte) (snowflake.ID, error) {
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		mg, err := m.group(id)
		if err == nil && mg.broken != nil {
			err = mg.broken
		}
		var ct []byte
		if err == nil {
			ct, err = mg.g.Encrypt(plaintext)
		}
		if err == nil {
			err = m.save(id, mg) // the sending ratchet moved
		}
		m.mu.Unlock()
		if err != nil {
			return 0, err
		}
		msgID, err := m.post(ctx, id, ct)
		if err == nil {
			return msgID, nil
		}
		if !isEpochConflict(err) || attempt == maxEpochRetries {
			return 0, err
		}
		if err := m.catchUpInto(ctx, id); err != nil {
			return 0, err
		}
	}
}

// resends is how often post sends the same message again after losing the answer.
const resends = 2

// post stores an encrypted message. A request that got no answer (a dropped connection, a
// timeout) is sent again with the same bytes: the group recognises them and answers with the
// stored message's id, so this is safe, unlike encrypting again.
func (m *MLS) post(ctx context.Context, id snowflake.ID, ct []byte) (snowflake.ID, error) {
	body := map[string]string{"message": base64.RawURLEncoding.EncodeToString(ct)}
	for try := 0; ; try++ {
		var out struct {
			ID snowflake.ID `json:"id"`
		}
		err := m.ch.write(ctx, http.MethodPost, "/groups/"+id.String()+"/messages", body, &out)
		var api *APIError
		if err == nil || errors.As(err, &api) || ctx.Err() != nil || try == resends {
			return out.ID, err
		}
	}
}

// RequestJoin asks to add this session, a new device of an actor already in the group, with a
// fresh KeyPackage; a member adds it (AddDevice) and its Welcome arrives as a dispatch.
func (m *MLS) RequestJoin(ctx context.Context, id snowflake.ID, suite mls.Suite) error {
	msg, sec, err := mls.NewKeyPackage(m.signer, suite, KeyPackageLifetime)
	if err != nil {
		return err
	}
	kp, err := mls.ParseKeyPackage(msg, time.Now())
	if err != nil {
		return err
	}
	if err := m.keep(kp.Ref, sec); err != nil {
		return err
	}
	return m.ch.write(ctx, http.MethodPost, "/groups/"+id.String()+"/join-requests", map[string]string{"key_package": base64.RawURLEncoding.EncodeToString(msg)}, nil)
}

// Handle processes a chat dispatch if it is a group one (else it returns nothing): it joins on
// a Welcome for this session, follows commits, decrypts messages. Feed it every dispatch in
// order; a dispatch already handled (by CatchUp, or an own commit) is skipped. Events that a
// Send or commit read while catching up after a lost epoch come first.
func (m *MLS) Handle(ctx context.Context, d *Dispatch) ([]GroupEvent, error) {
	if d.Type == EventLowKeyPackages {
		return nil, m.replenish(ctx, d)
	}
	switch d.Type {
	case EventMLSCommit, EventMLSMessage, EventNewDevice, EventGroupJoinRequest:
	default:
		return nil, nil
	}
	var e groupEntry
	if err := json.Unmarshal(d.Data, &e); err != nil {
		return nil, fmt.Errorf("client: %s dispatch: %w", d.Type, err)
	}
	e.Type = map[string]string{EventMLSCommit: "MLS_COMMIT", EventMLSMessage: "MLS_MESSAGE", EventNewDevice: "NEW_DEVICE", EventGroupJoinRequest: "GROUP_JOIN_REQUEST"}[d.Type]
	m.mu.Lock()
	evs, err := m.entry(ctx, e)
	evs = append(m.drain(), evs...)
	// A new device of an actor already in the group is accepted by default (polyproto-chat 3.4):
	// every member that sees the request adds it; whoever loses the race finds it added and does
	// nothing. The binding check of the commit makes sure it is a device the actor's home server
	// certified. A first device of a new actor waits for a member's AcceptJoin (gatekeeping).
	var accept []GroupEvent
	for _, ev := range evs {
		if ev.Type != GroupJoinRequest || !m.AutoAcceptDevices {
			continue
		}
		if mg := m.groups[ev.Group]; mg != nil && !mg.removed && mg.broken == nil &&
			slices.ContainsFunc(mg.g.Members(), func(mem mls.Member) bool { return mem.Credential.FID == ev.FID }) {
			accept = append(accept, ev)
		}
	}
	m.mu.Unlock()
	for _, ev := range accept {
		fid, ferr := identity.ParseFID(ev.FID)
		if ferr == nil {
			ferr = m.acceptJoin(ctx, ev.Group, fid, true)
		}
		if ferr != nil {
			err = errors.Join(err, fmt.Errorf("client: accepting the new device %s/%s: %w", ev.FID, ev.Session, ferr))
		}
	}
	return evs, err
}

// replenishTo is how many one-time KeyPackages the SDK tops a session up to when the server
// says it runs low.
const replenishTo = 20

// replenish answers LOW_KEY_PACKAGES for this session: it uploads one-time KeyPackages up to
// replenishTo, and a new last-resort one if the old one was handed out.
func (m *MLS) replenish(ctx context.Context, d *Dispatch) error {
	var low LowKeyPackages
	if err := json.Unmarshal(d.Data, &low); err != nil {
		return fmt.Errorf("client: %s dispatch: %w", d.Type, err)
	}
	if low.SessionID != m.signer.Credential.Session {
		return nil // another session of the actor: it replenishes itself
	}
	n := max(replenishTo-low.OneTime, 0)
	if n == 0 && !low.LastResortUsed {
		return nil
	}
	if _, err := m.UploadKeyPackages(ctx, n, low.LastResortUsed); err != nil {
		return fmt.Errorf("client: replenishing KeyPackages: %w", err)
	}
	return nil
}

// CatchUp reads the group's log past what this session handled and processes it: after a lost
// epoch, a gap, or a restart while offline; for a group this session is not in yet, it joins
// from the Welcome in the log.
func (m *MLS) CatchUp(ctx context.Context, id snowflake.ID) ([]GroupEvent, error) {
	m.mu.Lock()
	kept := m.drain()
	m.mu.Unlock()
	evs, err := m.catchUp(ctx, id)
	return append(kept, evs...), err
}

func (m *MLS) catchUp(ctx context.Context, id snowflake.ID) ([]GroupEvent, error) {
	var out []GroupEvent
	// A group this session is not in yet starts from the beginning: the commit that added it
	// carries its Welcome.
	after := int64(-1)
	for {
		m.mu.Lock()
		if mg, err := m.group(id); err == nil {
			after = max(after, mg.revision)
		}
		m.mu.Unlock()
		var page struct {
			Entries []groupEntry `json:"entries"`
		}
		q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {"100"}}
		if err := m.ch.get(ctx, "/groups/"+id.String()+"/log", q, &page); err != nil {
			return out, err
		}
		m.mu.Lock()
		for _, e := range page.Entries {
			after = max(after, e.Revision)
			e.fromLog = true
			evs, err := m.entry(ctx, e)
			out = append(out, evs...)
			if err != nil {
				m.mu.Unlock()
				return out, err
			}
		}
		m.mu.Unlock()
		if len(page.Entries) < 100 {
			return out, nil
		}
	}
}

// entry handles one group dispatch or log entry; the caller holds m.mu.
func (m *MLS) entry(ctx context.Context, e groupEntry) ([]GroupEvent, error) {
	me := m.signer.Credential
	mg := m.groups[e.GroupID]
	if mg == nil {
		mg, _ = m.group(e.GroupID)
	}
	if e.Type == "NEW_DEVICE" {
		// It shares its revision with the commit that added the device, which is handled
		// first; the gateway already delivers each dispatch once.
		return []GroupEvent{{Group: e.GroupID, Type: GroupNewDevice, FID: e.FID, Session: e.SessionID}}, nil
	}
	if mg != nil && e.Revision <= mg.revision {
		return nil, nil // handled already
	}
	if mg != nil && mg.broken != nil {
		return nil, nil
	}
	switch e.Type {
	case "MLS_COMMIT":
		for _, a := range e.Added {
			if a.FID == me.FID && a.SessionID == me.Session && (mg == nil || mg.removed) {
				return m.join(ctx, e)
			}
		}
		if mg == nil || mg.removed {
			return nil, nil
		}
		if e.Epoch < mg.g.Epoch() { // our own commit, confirmed (and saved) when the server answered
			// Only the revision moves: not worth a write of the state, and after a restart the
			// entry comes back from the log and is skipped again.
			mg.revision = e.Revision
			return nil, nil
		}
		raw, err := base64.RawURLEncoding.DecodeString(e.Commit)
		if err != nil {
			return nil, fmt.Errorf("client: commit of group %s: %w", e.GroupID, err)
		}
		r, err := mg.g.Process(raw)
		if err != nil {
			return nil, fmt.Errorf("client: commit of group %s for epoch %d: %w", e.GroupID, e.Epoch, err)
		}
		if !r.Removed {
			if err := m.checkMembers(ctx, mg.g); err != nil {
				// The group state moved in memory only (not saved); the group refuses to be
				// used from now on.
				mg.broken = err
				return nil, fmt.Errorf("client: group %s after the commit for epoch %d: %w", e.GroupID, e.Epoch, err)
			}
		}
		mg.revision, mg.removed = e.Revision, r.Removed
		evs := []GroupEvent{{Group: e.GroupID, Type: GroupCommit, Epoch: mg.g.Epoch(), SenderFID: e.Sender.FID, SenderSession: e.Sender.SessionID,
			Removed: r.Removed, AddedDevices: e.Added, RemovedDevices: e.Removed}}
		if e.fromLog { // the log has no NEW_DEVICE entries: the commit says it
			for _, a := range e.Added {
				if a.NewDevice {
					evs = append(evs, GroupEvent{Group: e.GroupID, Type: GroupNewDevice, FID: a.FID, Session: a.SessionID})
				}
			}
		}
		return evs, m.save(e.GroupID, mg)
	case "MLS_MESSAGE":
		if mg == nil || mg.removed {
			return nil, nil
		}
		mg.revision = e.Revision
		if e.SenderFID == me.FID && e.SenderSessionID == me.Session {
			// MLS does not let a sender decrypt its own message; nothing changed but the
			// revision, so no write (as for an own commit above).
			return nil, nil
		}
		raw, err := base64.RawURLEncoding.DecodeString(e.Message)
		if err != nil {
			return nil, fmt.Errorf("client: message of group %s: %w", e.GroupID, err)
		}
		r, err := mg.g.Process(raw)
		if err != nil {
			return nil, fmt.Errorf("client: message %s of group %s: %w", e.ID, e.GroupID, err)
		}
		if r.Sender.FID != e.SenderFID || r.Sender.Session != e.SenderSessionID {
			return nil, fmt.Errorf("client: message %s of group %s: the server says %s/%s sent it, MLS says %s", e.ID, e.GroupID, e.SenderFID, e.SenderSessionID, r.Sender)
		}
		return []GroupEvent{{Group: e.GroupID, Type: GroupMessage, Epoch: mg.g.Epoch(), SenderFID: r.Sender.FID, SenderSession: r.Sender.Session,
			MessageID: e.ID, Plaintext: r.Plaintext}}, m.save(e.GroupID, mg)
	case "GROUP_JOIN_REQUEST":
		if mg != nil {
			mg.revision = e.Revision
			if err := m.save(e.GroupID, mg); err != nil {
				return nil, err
			}
		}
		kp, err := base64.RawURLEncoding.DecodeString(e.KeyPackage)
		if err != nil {
			return nil, fmt.Errorf("client: join request of group %s: %w", e.GroupID, err)
		}
		return []GroupEvent{{Group: e.GroupID, Type: GroupJoinRequest, FID: e.FID, Session: e.SessionID, KeyPackage: kp, Sessions: e.PendingSessions}}, nil
	}
	return nil, nil
}

// join enters a group from the Welcome beside a commit that added this session, and forgets the
// KeyPackage it used; the caller holds m.mu.
func (m *MLS) join(ctx context.Context, e groupEntry) ([]GroupEvent, error) {
	welcome, err := base64.RawURLEncoding.DecodeString(e.Welcome)
	if err != nil {
		return nil, fmt.Errorf("client: Welcome of group %s: %w", e.GroupID, err)
	}
	refs, secrets := m.secretList()
	g, used, err := mls.Join(m.signer, welcome, secrets)
	if err != nil {
		return nil, fmt.Errorf("client: Welcome of group %s: %w", e.GroupID, err)
	}
	if err := m.checkMembers(ctx, g); err != nil {
		return nil, fmt.Errorf("client: not joining group %s: %w", e.GroupID, err)
	}
	if err := m.forget(refs[used]); err != nil {
		return nil, err
	}
	mg := &memberGroup{g: g, revision: e.Revision}
	return []GroupEvent{{Group: e.GroupID, Type: GroupJoined, Epoch: g.Epoch(), SenderFID: e.Sender.FID, SenderSession: e.Sender.SessionID}}, m.save(e.GroupID, mg)
}

// ErrUnboundMember: a leaf of a group is not bound to the polyproto session it names (its
// signature key is no ID-Cert key of that session, per the actor's home server). The SDK stops
// using the group: someone, possibly a server, put an impostor in it.
var ErrUnboundMember = errors.New("client: a group member is not who its credential says")

// checkKeyPackage checks, before adding it, that a KeyPackage is valid now and bound to the
// session it names (polyproto-chat 3.2: "verify Bob's KeyPackages"). The caller holds m.mu.
func (m *MLS) checkKeyPackage(ctx context.Context, raw []byte) error {
	kp, err := mls.ParseKeyPackage(raw, time.Now())
	if err != nil {
		return err
	}
	fid, err := identity.ParseFID(kp.Credential.FID)
	if err != nil {
		return fmt.Errorf("%w: it names %q", ErrUnboundMember, kp.Credential)
	}
	ok, err := m.ch.sessionHasKey(ctx, fid, kp.Credential.Session, kp.SignatureKey)
	if err != nil {
		return fmt.Errorf("checking %s: %w", kp.Credential, err)
	}
	if !ok {
		return fmt.Errorf("%w: the KeyPackage of %s", ErrUnboundMember, kp.Credential)
	}
	m.bound[kp.Credential.String()+"\x00"+string(kp.SignatureKey)] = true
	return nil
}

// checkMembers checks every member of g this process has not checked yet against the ID-Certs
// of its session at its actor's home server (docs/PROTOCOL.md section 7: the binding). The
// caller holds m.mu.
func (m *MLS) checkMembers(ctx context.Context, g *mls.Group) error {
	for _, mem := range g.Members() {
		k := mem.Credential.String() + "\x00" + string(mem.SignatureKey)
		if m.bound[k] {
			continue
		}
		fid, err := identity.ParseFID(mem.Credential.FID)
		if err != nil || mem.Credential.Session == "" {
			return fmt.Errorf("%w: leaf %d names %q", ErrUnboundMember, mem.Leaf, mem.Credential)
		}
		ok, err := m.ch.sessionHasKey(ctx, fid, mem.Credential.Session, mem.SignatureKey)
		if err != nil {
			return fmt.Errorf("client: checking leaf %d (%s): %w", mem.Leaf, mem.Credential, err)
		}
		if !ok {
			return fmt.Errorf("%w: leaf %d (%s)", ErrUnboundMember, mem.Leaf, mem.Credential)
		}
		m.bound[k] = true
	}
	return nil
}
