package gateway

// Messaging groups (docs/PROTOCOL.md section 7): DMs and groups, each an MLS group whose
// delivery service this server is. The edge parses every MLS message (package mls) and checks
// that each KeyPackage a commit adds for a local actor is bound to that session's ID-Cert; the
// group actor orders and stores; the chat fan-out delivers.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/group"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
	"github.com/polyproto-chat/server/permissions"
	"github.com/polyproto-chat/server/projections/groups"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
	"github.com/polyproto-chat/server/snowflake"
)

func (s *Server) groupRoutes(h func(string, func(http.ResponseWriter, *http.Request, account.Principal) error)) {
	const p = "/.p2/chat/v1"
	h("POST "+p+"/groups", s.createGroup)
	h("GET "+p+"/groups", s.listGroups)
	h("GET "+p+"/groups/{group}", s.getGroup)
	h("POST "+p+"/groups/{group}/commits", s.postCommit)
	h("POST "+p+"/groups/{group}/messages", s.postGroupMessage)
	h("POST "+p+"/groups/{group}/join-requests", s.requestGroupJoin)
	h("GET "+p+"/groups/{group}/log", s.groupLog)
	h("POST "+p+"/channels/{channel}/encryption", s.encryptChannel)
}

// viewer is what the group of an encrypted channel needs to know of a command's actor: whether
// it may view the channel now, and whether it moderates it. For other groups both are false and
// unused.
func (s *Server) viewer(r *http.Request, p account.Principal, id uint64) (viewer, moderator bool, err error) {
	ch, ok := s.cfg.Chat.Events.ChannelOfGroup(id)
	if !ok {
		return false, false, nil
	}
	gby, err := s.by(r, p)
	if err != nil {
		return false, false, err
	}
	a, err := s.access(r.Context(), gby, ch)
	if errors.Is(err, guild.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return a.Permissions.Has(permissions.ViewChannel), a.Permissions.Has(permissions.ManageChannel), nil
}

type encryptIn struct {
	Suite *uint16 `json:"cipher_suite"`
}

// encryptChannel turns a text channel into an encrypted one (polyproto-chat 3.1): it makes the
// channel's messaging group with the caller's session as its first member, then marks the
// channel, from which moment plaintext messages are refused. MANAGE_CHANNEL.
func (s *Server) encryptChannel(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	var in encryptIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	gby, err := s.by(r, p)
	if err != nil {
		return err
	}
	a, err := s.access(r.Context(), gby, ch)
	if err != nil {
		return err
	}
	if !a.Permissions.Has(permissions.ManageChannel) {
		return fmt.Errorf("%w: MANAGE_CHANNEL", guild.ErrForbidden)
	}
	if a.Channel.GroupID != 0 {
		return fmt.Errorf("%w: channel %d is encrypted already, by group %d", guild.ErrInvalid, ch, a.Channel.GroupID)
	}
	suite := mls.DefaultSuite
	if in.Suite != nil {
		suite = mls.Suite(*in.Suite)
	}
	id := uint64(s.cfg.Chat.IDs.Next())
	rep, _, err := s.askGroup(r.Context(), id, group.Create{Kind: group.KindChannel, By: groupBy(p), GuildID: a.GuildID, ChannelID: ch,
		MLSGroupID: []byte(snowflake.ID(id).String() + "@" + s.cfg.Domain), Suite: suite})
	if err != nil {
		return err
	}
	// A group made here and a channel marked by another request at the same moment would leave
	// this group unused: harmless, and the guild refuses the second marking.
	if _, err := s.writeGuild(r.Context(), a.GuildID, guild.EnableEncryption{By: gby, ChannelID: ch, GroupID: id}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, groupView(rep.(group.View)))
	return nil
}

func (s *Server) askGroup(ctx context.Context, id uint64, cmd any) (any, *actors.Result, error) {
	res, err := s.cfg.Chat.Groups.Request(ctx, strconv.FormatUint(id, 10), cmd)
	if err != nil {
		return nil, nil, err
	}
	r := res.(*actors.Result)
	return r.Reply, r, nil
}

// writeGroup is askGroup for a command that writes: the answer waits until the fan-out has the
// event, so that the client's gateway has the dispatch no later than the answer says it happened.
func (s *Server) writeGroup(ctx context.Context, id uint64, cmd any) (any, error) {
	rep, res, err := s.askGroup(ctx, id, cmd)
	if err != nil {
		return nil, err
	}
	s.waitFanout(ctx, res.Position)
	return rep, nil
}

// groupBy is the session of a request, as the group actor names it.
func groupBy(p account.Principal) group.By { return group.By{FID: p.FID, Session: p.SessionID} }

type groupIn struct {
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
	Suite   *uint16  `json:"cipher_suite"`
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	var in groupIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if len(in.Members) > group.MaxActors {
		return fmt.Errorf("%w: at most %d members", group.ErrLimit, group.MaxActors)
	}
	others := make([]string, len(in.Members))
	for i, m := range in.Members {
		fid, err := identity.ParseFID(m)
		if err != nil {
			return fmt.Errorf("%w: members[%d]: %v", errBadRequest, i, err)
		}
		others[i] = fid.String()
	}
	suite := mls.DefaultSuite
	if in.Suite != nil {
		suite = mls.Suite(*in.Suite)
	}
	id := uint64(s.cfg.Chat.IDs.Next())
	rep, err := s.writeGroup(r.Context(), id, group.Create{Kind: in.Kind, Name: in.Name, By: groupBy(p), Others: others,
		MLSGroupID: []byte(snowflake.ID(id).String() + "@" + s.cfg.Domain), Suite: suite})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, groupView(rep.(group.View)))
	return nil
}

// listGroups lists the caller's groups: DMs and groups it is named in or has a device in, and
// encrypted channels it has a device in. It waits (a little) for the read model to reach what
// this node's fan-out has seen, so that a group just made or joined through this node is listed.
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ctx, cancel := context.WithTimeout(r.Context(), readWait)
	err := s.cfg.Chat.ReadModels.WaitFor(ctx, groups.Name, s.cfg.Chat.Events.Applied())
	cancel()
	if err != nil {
		s.log.Warn("the groups read model lags; answering anyway", "err", err)
	}
	list, err := s.cfg.Chat.GroupList.Of(p.FID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(list))
	for i, g := range list {
		out[i] = map[string]any{"id": snowflake.ID(g.ID), "kind": g.Kind}
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": out})
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	viewer, _, err := s.viewer(r, p, id)
	if err != nil {
		return err
	}
	rep, _, err := s.askGroup(r.Context(), id, group.Get{By: groupBy(p), Viewer: viewer})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, groupView(rep.(group.View)))
	return nil
}

// mlsField decodes one base64url MLS message of a request, bounded.
func mlsField(name, text string, limit int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: want unpadded base64url", errBadRequest, name)
	}
	if len(b) == 0 || len(b) > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes; 1 to %d", errBadRequest, name, len(b), limit)
	}
	return b, nil
}

// maxHandshake bounds a commit or a Welcome: a commit adding 14 actors' devices carries their
// KeyPackages and an UpdatePath; 256 KiB is far above that.
const maxHandshake = 256 << 10

type commitIn struct {
	Commit  string `json:"commit"`
	Welcome string `json:"welcome"`
}

func (s *Server) postCommit(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	var in commitIn
	if err := decodeJSONLimit(w, r, &in, 2*maxHandshake); err != nil {
		return err
	}
	raw, err := mlsField("commit", in.Commit, maxHandshake)
	if err != nil {
		return err
	}
	msg, err := mls.ParseMessage(raw, s.now())
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	viewer, moderator, err := s.viewer(r, p, id)
	if err != nil {
		return err
	}
	cmd := group.Commit{By: groupBy(p), Viewer: viewer, Moderator: moderator, Raw: raw, Msg: msg}
	if in.Welcome != "" {
		if cmd.Welcome, err = mlsField("welcome", in.Welcome, maxHandshake); err != nil {
			return err
		}
		if cmd.WelcomeRefs, err = mls.WelcomeRefs(cmd.Welcome); err != nil {
			return fmt.Errorf("welcome: %w", err)
		}
	}
	if msg.Commit != nil {
		for i, kp := range msg.Commit.Adds {
			if err := s.checkBinding(r.Context(), kp); err != nil {
				return fmt.Errorf("added KeyPackage %d: %w", i, err)
			}
		}
	}
	rep, err := s.writeGroup(r.Context(), id, cmd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"epoch": rep.(group.Committed).Epoch})
	return nil
}

// checkBinding checks that a KeyPackage naming a session of a local actor is signed with that
// live session's ID-Cert key. For a foreign actor the KeyPackage came from its home server's
// directory, which checked the same on upload; members check it again against the cert.
func (s *Server) checkBinding(ctx context.Context, kp *mls.KeyPackage) error {
	fid, err := identity.ParseFID(kp.Credential.FID)
	if err != nil {
		return fmt.Errorf("%w: credential %s: %v", mls.ErrBinding, kp.Credential, err)
	}
	if fid.Domain != s.cfg.Domain {
		return nil
	}
	rep, err := s.ask(ctx, fid.String(), account.ListSessions{At: s.now()})
	if err != nil {
		return err
	}
	for _, ss := range rep.([]account.Session) {
		if ss.SessionID != kp.Credential.Session || ss.Foreign {
			continue
		}
		key, err := s.sessionKey(ctx, account.Principal{FID: fid.String(), SessionID: ss.SessionID, Serial: ss.Serial})
		if err != nil {
			return err
		}
		if !bytes.Equal(key.PublicKey(), kp.SignatureKey) {
			return fmt.Errorf("%w: %s is not signed with its session's ID-Cert key", mls.ErrBinding, kp.Credential)
		}
		return nil
	}
	return fmt.Errorf("%w: %s is no live session", mls.ErrBinding, kp.Credential)
}

type groupMessageIn struct {
	Message string `json:"message"`
}

func (s *Server) postGroupMessage(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	var in groupMessageIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	raw, err := mlsField("message", in.Message, maxJSONBody) // the body's bound; the group's is next
	if err != nil {
		return err
	}
	if len(raw) > group.MaxMessage {
		return fmt.Errorf("%w: an MLS message of %d bytes; at most %d", group.ErrLimit, len(raw), group.MaxMessage)
	}
	msg, err := mls.ParseMessage(raw, s.now())
	if err != nil {
		return fmt.Errorf("message: %w", err)
	}
	viewer, _, err := s.viewer(r, p, id)
	if err != nil {
		return err
	}
	rep, err := s.writeGroup(r.Context(), id, group.Send{By: groupBy(p), Viewer: viewer, Raw: raw, Msg: msg, MessageID: uint64(s.cfg.Chat.IDs.Next())})
	if err != nil {
		return err
	}
	sent := rep.(group.Sent)
	writeJSON(w, http.StatusCreated, map[string]any{"id": snowflake.ID(sent.MessageID), "epoch": sent.Epoch})
	return nil
}

type joinRequestIn struct {
	KeyPackage string `json:"key_package"`
}

func (s *Server) requestGroupJoin(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	var in joinRequestIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	raw, err := mlsField("key_package", in.KeyPackage, maxKeyPackage)
	if err != nil {
		return err
	}
	kp, err := mls.ParseKeyPackage(raw, s.now())
	if err != nil {
		return fmt.Errorf("key_package: %w", err)
	}
	key, err := s.sessionKey(r.Context(), p)
	if err != nil {
		return err
	}
	if kp.Credential != (mls.Credential{FID: p.FID, Session: p.SessionID}) || !bytes.Equal(kp.SignatureKey, key.PublicKey()) {
		return fmt.Errorf("key_package: %w: it must name and be signed by the requesting session", mls.ErrBinding)
	}
	viewer, _, err := s.viewer(r, p, id)
	if err != nil {
		return err
	}
	rep, err := s.writeGroup(r.Context(), id, group.RequestJoin{By: groupBy(p), Viewer: viewer, KeyPackage: kp})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, groupView(rep.(group.View)))
	return nil
}

// groupLog pages through a group's stream for a member that missed dispatches or lost a commit
// race: commits (with their Welcomes), messages and join requests, from revision `after`+1.
func (s *Server) groupLog(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	from, err := intParam(r.URL.Query(), "after", -1, -1, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(r.URL.Query(), "limit", 100, 1, 500)
	if err != nil {
		return err
	}
	viewer, _, err := s.viewer(r, p, id)
	if err != nil {
		return err
	}
	if _, _, err := s.askGroup(r.Context(), id, group.Get{By: groupBy(p), Viewer: viewer}); err != nil {
		return err
	}
	recs, err := s.cfg.Chat.Store.ReadStream(r.Context(), group.Stream(id), events.Forwards, uint64(from+1), limit)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(recs))
	for i := range recs {
		msg, err := events.Decode(&recs[i])
		if err != nil {
			return err
		}
		if t, d, ok := groupPayload(id, recs[i].Revision, msg); ok {
			if !slices.Contains(recipientsOf(msg), p.FID) {
				continue // e.g. the messages of an epoch before the actor joined
			}
			d["type"] = t
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
	return nil
}

// recipientsOf is who a group event is delivered to.
func recipientsOf(msg proto.Message) []string {
	switch e := msg.(type) {
	case *eventsv1.GroupCreated:
		return e.GetActors()
	case *eventsv1.GroupCommitted:
		return e.GetRecipients()
	case *eventsv1.GroupMessageSent:
		return e.GetRecipients()
	case *eventsv1.GroupJoinRequested:
		return e.GetRecipients()
	}
	return nil
}

// groupPayload is a group event as the gateway and the log route show it: its dispatch type
// and data.
func groupPayload(id, revision uint64, msg proto.Message) (string, map[string]any, bool) {
	gid := snowflake.ID(id)
	leaves := func(ls []*eventsv1.GroupLeaf) []map[string]any {
		out := make([]map[string]any, len(ls))
		for i, l := range ls {
			out[i] = map[string]any{"leaf": l.GetLeaf(), "fid": l.GetFid(), "session_id": l.GetSessionId(), "new_device": l.GetNewDevice()}
		}
		return out
	}
	switch e := msg.(type) {
	case *eventsv1.GroupCreated:
		v := group.View{ID: id, Kind: e.GetKind(), Name: e.GetName(), Owner: e.GetOwnerFid(), Actors: []string{e.GetOwnerFid()}, Invited: e.GetActors()[1:],
			GuildID: e.GetGuildId(), ChannelID: e.GetChannelId(),
			MLSGroupID: e.GetMlsGroupId(), Suite: mls.Suite(e.GetCipherSuite()), Leaves: []group.Leaf{{FID: e.GetOwnerFid(), Session: e.GetCreatorSessionId()}}}
		return "GROUP_CREATE", map[string]any{"group": groupView(v), "revision": revision}, true
	case *eventsv1.GroupCommitted:
		d := map[string]any{"group_id": gid, "revision": revision, "epoch": e.GetEpoch(), "commit": b64(e.GetCommit()),
			"sender": map[string]any{"leaf": e.GetSenderLeaf(), "fid": e.GetSenderFid(), "session_id": e.GetSenderSessionId()},
			"added":  leaves(e.GetAdded()), "removed": leaves(e.GetRemoved())}
		if len(e.GetWelcome()) > 0 {
			d["welcome"] = b64(e.GetWelcome())
		}
		return "MLS_COMMIT", d, true
	case *eventsv1.GroupMessageSent:
		return "MLS_MESSAGE", map[string]any{"group_id": gid, "revision": revision, "id": snowflake.ID(e.GetMessageId()), "epoch": e.GetEpoch(),
			"sender_fid": e.GetSenderFid(), "sender_session_id": e.GetSenderSessionId(), "message": b64(e.GetMessage())}, true
	case *eventsv1.GroupJoinRequested:
		return "GROUP_JOIN_REQUEST", map[string]any{"group_id": gid, "revision": revision, "fid": e.GetFid(), "session_id": e.GetSessionId(),
			"key_package": b64(e.GetKeyPackage()), "pending_sessions": nonNilStrings(e.GetPendingSessions())}, true
	}
	return "", nil, false
}

// groupDispatches is what a group event means on the gateway: its dispatch to every recipient,
// and NEW_DEVICE for each new device of a member it adds (polyproto-chat 3.5: a join is visible
// to every member).
func groupDispatches(rec *events.RecordedEvent, id uint64, msg proto.Message) []session.Dispatch {
	t, d, ok := groupPayload(id, rec.Revision, msg)
	if !ok {
		return nil
	}
	out := []session.Dispatch{chatDispatch(rec, t, d)}
	if c, ok := msg.(*eventsv1.GroupCommitted); ok {
		for _, a := range c.GetAdded() {
			if a.GetNewDevice() {
				out = append(out, chatDispatch(rec, "NEW_DEVICE", map[string]any{"group_id": snowflake.ID(id), "revision": rec.Revision, "fid": a.GetFid(),
					"session_id": a.GetSessionId(), "leaf": a.GetLeaf(), "added_by": c.GetSenderFid()}))
			}
		}
	}
	for i := range out {
		out[i].Part = i
	}
	return out
}

type groupJSON struct {
	ID          snowflake.ID  `json:"id"`
	Kind        string        `json:"kind"`
	Name        string        `json:"name"`
	Owner       string        `json:"owner"`
	Actors      []string      `json:"actors"`
	Invited     []string      `json:"invited"`
	MLSGroupID  string        `json:"mls_group_id"`
	CipherSuite uint16        `json:"cipher_suite"`
	Epoch       uint64        `json:"epoch"`
	Leaves      []leafJSON    `json:"leaves"`
	Pending     []leafJSON    `json:"pending"`
	GuildID     *snowflake.ID `json:"guild_id,omitempty"`   // kind channel
	ChannelID   *snowflake.ID `json:"channel_id,omitempty"` // kind channel
}

type leafJSON struct {
	Leaf       *uint32 `json:"leaf,omitempty"`
	FID        string  `json:"fid"`
	SessionID  string  `json:"session_id"`
	KeyPackage string  `json:"key_package,omitempty"`
}

func groupView(v group.View) groupJSON {
	out := groupJSON{ID: snowflake.ID(v.ID), Kind: v.Kind, Name: v.Name, Owner: v.Owner, Actors: nonNilStrings(v.Actors), Invited: nonNilStrings(v.Invited),
		MLSGroupID: b64(v.MLSGroupID), CipherSuite: uint16(v.Suite), Epoch: v.Epoch, Leaves: []leafJSON{}, Pending: []leafJSON{}}
	for _, l := range v.Leaves {
		n := l.Leaf
		out.Leaves = append(out.Leaves, leafJSON{Leaf: &n, FID: l.FID, SessionID: l.Session})
	}
	for _, p := range v.Pending {
		out.Pending = append(out.Pending, leafJSON{FID: p.FID, SessionID: p.Session, KeyPackage: b64(p.KeyPackage)})
	}
	if v.ChannelID != 0 {
		g, c := snowflake.ID(v.GuildID), snowflake.ID(v.ChannelID)
		out.GuildID, out.ChannelID = &g, &c
	}
	return out
}
