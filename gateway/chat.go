package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/permissions"
	"github.com/polyproto-chat/server/projections/groups"
	"github.com/polyproto-chat/server/projections/history"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
	"github.com/polyproto-chat/server/snowflake"
)

// ChatConfig is what the guild-chat routes need (docs/PROTOCOL.md section 6).
type ChatConfig struct {
	Guilds   *actors.Kind // actors/guild, by decimal guild id
	Channels *actors.Kind // actors/channel, by decimal channel id
	Events   *ChatEvents  // the fan-out's view of every guild, for lookups and read-your-writes
	History  HistoryReader
	// ReadModels waits for a projection to reach a log position (projections.Runner).
	ReadModels interface {
		WaitFor(ctx context.Context, name string, pos events.Position) error
	}
	Groups *actors.Kind // actors/group, by decimal group id
	// GroupList is the read model of each actor's groups (projections/groups.Reader).
	GroupList interface {
		Of(fid string) ([]groups.Group, error)
	}
	Store events.Store // the audit log, channel replay and group logs read streams directly
	IDs   *snowflake.Generator
}

// HistoryReader is the message-history read model (projections/history.Reader).
type HistoryReader interface {
	Page(channelID uint64, q history.Query) ([]byte, error)
	Raw(channelID, id uint64) ([]byte, bool, error)
	Pins(channelID uint64) ([]byte, error)
	Facts(channelID, id uint64, fid, emoji string) (history.Facts, error)
	Exist(channelID uint64, ids []uint64) ([]bool, error)
}

// readWait bounds how long a request waits for the read models to show earlier writes.
const readWait = 2 * time.Second

func (s *Server) chatRoutes(mux *http.ServeMux) {
	const p = "/.p2/chat/v1"
	h := s.authed(mux)
	h("POST "+p+"/guilds", s.createGuild)
	h("GET "+p+"/guilds", s.getGuildQuery)
	h("GET "+p+"/guilds/{guild}", s.getGuild)
	h("PATCH "+p+"/guilds/{guild}", s.updateGuild)
	h("DELETE "+p+"/guilds/{guild}", s.deleteGuild)
	h("GET "+p+"/guilds/{guild}/channels", s.listChannels)
	h("POST "+p+"/guilds/{guild}/channels", s.createChannel)
	h("GET "+p+"/channels/{channel}", s.getChannel)
	h("PATCH "+p+"/channels/{channel}", s.updateChannel)
	h("DELETE "+p+"/channels/{channel}", s.deleteChannel)
	h("PUT "+p+"/channels/{channel}/permissions/{target}", s.setOverwrite)
	h("DELETE "+p+"/channels/{channel}/permissions/{target}", s.removeOverwrite)
	h("GET "+p+"/guilds/{guild}/roles", s.listRoles)
	h("POST "+p+"/guilds/{guild}/roles", s.createRole)
	h("PATCH "+p+"/guilds/{guild}/roles/{role}", s.updateRole)
	h("DELETE "+p+"/guilds/{guild}/roles/{role}", s.deleteRole)
	h("GET "+p+"/guilds/{guild}/members", s.listMembers)
	h("GET "+p+"/guilds/{guild}/members/{fid}", s.getMember)
	h("PATCH "+p+"/guilds/{guild}/members/{fid}", s.updateMember)
	h("DELETE "+p+"/guilds/{guild}/members/{fid}", s.removeMember)
	h("GET "+p+"/guilds/{guild}/bans", s.listBans)
	h("PUT "+p+"/guilds/{guild}/bans/{fid}", s.ban)
	h("DELETE "+p+"/guilds/{guild}/bans/{fid}", s.unban)
	h("POST "+p+"/channels/{channel}/invites", s.createInvite)
	h("GET "+p+"/guilds/{guild}/invites", s.listInvites)
	h("GET "+p+"/invites/{code}", s.previewInvite)
	h("POST "+p+"/invites/{code}", s.joinInvite)
	h("DELETE "+p+"/invites/{code}", s.revokeInvite)
	h("GET "+p+"/guilds/{guild}/audit-log", s.auditLog)
	h("GET "+p+"/channels/{channel}/events", s.channelEvents)
	s.messageRoutes(h)
	s.groupRoutes(h)
	s.noRoute(mux, p)
}

// authed returns the way to register a route of an extension: behind bearer-token
// authentication, with the caller's session handed to the handler.
func (s *Server) authed(mux *http.ServeMux) func(string, func(http.ResponseWriter, *http.Request, account.Principal) error) {
	return func(pattern string, f func(w http.ResponseWriter, r *http.Request, p account.Principal) error) {
		mux.HandleFunc(pattern, s.handler(func(w http.ResponseWriter, r *http.Request) error {
			pr, err := s.authenticate(r)
			if err != nil {
				return err
			}
			return f(w, r, pr)
		}))
	}
}

// noRoute answers every other path under prefix with the extension's not-found body.
func (s *Server) noRoute(mux *http.ServeMux, prefix string) {
	mux.HandleFunc(prefix+"/", s.handler(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%w: no route %s %s", errNotFound, r.Method, r.URL.Path)
	}))
}

// by is who makes request r, with its audit reason.
func (s *Server) by(r *http.Request, p account.Principal) (guild.By, error) {
	reason := r.Header.Get("X-P2-Audit-Reason")
	if reason != "" {
		if dec, err := url.PathUnescape(reason); err == nil {
			reason = dec
		}
		if len(reason) > events.MaxReasonLength || !utf8.ValidString(reason) {
			return guild.By{}, fmt.Errorf("%w: X-P2-Audit-Reason must be at most %d bytes of UTF-8", errBadRequest, events.MaxReasonLength)
		}
	}
	return guild.By{FID: p.FID, SessionID: p.SessionID, Reason: reason, At: s.now()}, nil
}

// askGuild sends cmd to guild id; the reply and the journal's result (for its position).
func (s *Server) askGuild(ctx context.Context, id uint64, cmd any) (any, *actors.Result, error) {
	res, err := s.cfg.Chat.Guilds.Request(ctx, strconv.FormatUint(id, 10), cmd)
	if err != nil {
		return nil, nil, err
	}
	r := res.(*actors.Result)
	return r.Reply, r, nil
}

// writeGuild is askGuild for a command that may write: before answering, it waits until the
// fan-out shows the change, so the client's next request (on this node) sees it.
func (s *Server) writeGuild(ctx context.Context, id uint64, cmd any) (any, error) {
	rep, res, err := s.askGuild(ctx, id, cmd)
	if err != nil {
		return nil, err
	}
	if res.Events > 0 {
		s.waitFanout(ctx, res.Position)
	}
	return rep, nil
}

func (s *Server) waitFanout(ctx context.Context, pos events.Position) {
	ctx, cancel := context.WithTimeout(ctx, readWait)
	defer cancel()
	if err := s.cfg.Chat.Events.WaitFor(ctx, pos); err != nil {
		s.log.Warn("chat fan-out lags; answering anyway", "position", pos, "err", err)
	}
}

func pathID(r *http.Request, name string) (uint64, error) {
	id, err := snowflake.Parse(r.PathValue(name))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", errBadRequest, name, err)
	}
	return uint64(id), nil
}

func pathFID(r *http.Request, name string) (string, error) {
	fid, err := identity.ParseFID(r.PathValue(name))
	if err != nil {
		return "", fmt.Errorf("%w: %s", errBadRequest, err)
	}
	return fid.String(), nil
}

// channelGuild finds the guild of a channel; an unknown channel is guild.ErrNotFound.
func (s *Server) channelGuild(ctx context.Context, ch uint64) (uint64, error) {
	g, ok := s.cfg.Chat.Events.GuildOfChannel(ctx, ch)
	if !ok {
		return 0, fmt.Errorf("channel %d: %w", ch, guild.ErrNotFound)
	}
	return g, nil
}

// access is what by may do in channel ch (guild.Authorize): ErrNotFound unless they may view it.
func (s *Server) access(ctx context.Context, by guild.By, ch uint64) (guild.Access, error) {
	g, err := s.channelGuild(ctx, ch)
	if err != nil {
		return guild.Access{}, err
	}
	rep, _, err := s.askGuild(ctx, g, guild.Authorize{By: by, ChannelID: ch})
	if err != nil {
		return guild.Access{}, err
	}
	return rep.(guild.Access), nil
}

// Guilds.

type guildIn struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Private     *bool   `json:"private"`
}

func (s *Server) createGuild(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	var in guildIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return fmt.Errorf("%w: name is required", errBadRequest)
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	cmd := guild.Create{By: by, Name: *in.Name, GeneralID: uint64(s.cfg.Chat.IDs.Next())}
	if in.Description != nil {
		cmd.Description = *in.Description
	}
	if in.Private != nil {
		cmd.Private = *in.Private
	}
	id := uint64(s.cfg.Chat.IDs.Next())
	rep, err := s.writeGuild(r.Context(), id, cmd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, guildView(rep.(*guild.Guild), p.FID, true))
	return nil
}

func (s *Server) getGuildQuery(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := snowflake.Parse(r.URL.Query().Get("guild_id"))
	if err != nil {
		return fmt.Errorf("%w: guild_id: %w", errBadRequest, err)
	}
	return s.showGuild(w, r, p, uint64(id))
}

func (s *Server) getGuild(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	return s.showGuild(w, r, p, id)
}

func (s *Server) showGuild(w http.ResponseWriter, r *http.Request, p account.Principal, id uint64) error {
	by, _ := s.by(r, p)
	rep, _, err := s.askGuild(r.Context(), id, guild.Get{By: by})
	if err != nil {
		return err
	}
	g := rep.(*guild.Guild)
	_, member := g.Members[p.FID]
	view := guildView(g, p.FID, member)
	if !member { // a stranger's copy has no members to count
		view.MemberCount = s.cfg.Chat.Events.memberCount(id)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (s *Server) updateGuild(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	var in guildIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	rep, err := s.writeGuild(r.Context(), id, guild.Update{By: by, Name: in.Name, Description: in.Description, Private: in.Private})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, guildView(rep.(*guild.Guild), p.FID, true))
	return nil
}

func (s *Server) deleteGuild(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildCommand(w, r, p, func(by guild.By) (any, error) { return guild.Delete{By: by}, nil })
}

// guildCommand runs a command on the guild of the path that answers 204.
func (s *Server) guildCommand(w http.ResponseWriter, r *http.Request, p account.Principal, cmd func(guild.By) (any, error)) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	c, err := cmd(by)
	if err != nil {
		return err
	}
	if _, err := s.writeGuild(r.Context(), id, c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// guildRead runs a query on the guild of the path and writes view(reply) as 200.
func (s *Server) guildRead(w http.ResponseWriter, r *http.Request, p account.Principal, cmd func(guild.By) any, view func(g any) any) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	by, _ := s.by(r, p)
	rep, _, err := s.askGuild(r.Context(), id, cmd(by))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view(rep))
	return nil
}

// Channels.

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildRead(w, r, p, func(by guild.By) any { return guild.Get{By: by} }, func(rep any) any {
		g := rep.(*guild.Guild)
		out := []channelJSON{}
		if _, member := g.Members[p.FID]; member {
			out = guildView(g, p.FID, true).Channels
		}
		return out
	})
}

type channelIn struct {
	Name     *string         `json:"name"`
	Type     *int            `json:"type"`
	Topic    *string         `json:"topic"`
	ParentID json.RawMessage `json:"parent_id"`
	Position *uint32         `json:"position"`
}

// parent reads parent_id: absent (nil, nil), null (0), or an id.
func (in channelIn) parent() (*uint64, error) {
	if in.ParentID == nil {
		return nil, nil
	}
	var id uint64
	if string(in.ParentID) != "null" {
		var sid snowflake.ID
		if err := json.Unmarshal(in.ParentID, &sid); err != nil {
			return nil, fmt.Errorf("%w: parent_id: %w", errBadRequest, err)
		}
		id = uint64(sid)
	}
	return &id, nil
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	var in channelIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return fmt.Errorf("%w: name is required", errBadRequest)
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	cmd := guild.CreateChannel{By: by, ChannelID: uint64(s.cfg.Chat.IDs.Next()), Type: eventsv1.ChannelType_CHANNEL_TYPE_TEXT, Name: *in.Name, Position: in.Position}
	if in.Type != nil {
		t, ok := channelTypes[*in.Type]
		if !ok {
			return fmt.Errorf("%w: type must be 1 (text) or 4 (category)", errBadRequest)
		}
		cmd.Type = t
	}
	if in.Topic != nil {
		cmd.Topic = *in.Topic
	}
	if parent, err := in.parent(); err != nil {
		return err
	} else if parent != nil {
		cmd.ParentID = *parent
	}
	rep, err := s.writeGuild(r.Context(), id, cmd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, channelView(id, rep.(*guild.Channel), permissions.All))
	return nil
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	by, _ := s.by(r, p)
	a, err := s.access(r.Context(), by, ch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, channelView(a.GuildID, a.Channel, a.Permissions))
	return nil
}

func (s *Server) updateChannel(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	var in channelIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Type != nil {
		return fmt.Errorf("%w: a channel's type cannot change", errBadRequest)
	}
	parent, err := in.parent()
	if err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	g, err := s.channelGuild(r.Context(), ch)
	if err != nil {
		return err
	}
	rep, err := s.writeGuild(r.Context(), g, guild.UpdateChannel{By: by, ChannelID: ch, Name: in.Name, Topic: in.Topic, ParentID: parent, Position: in.Position})
	if err != nil {
		return err
	}
	a, err := s.access(r.Context(), by, ch)
	if err != nil {
		return err
	}
	c := rep.(*guild.Channel)
	writeJSON(w, http.StatusOK, channelView(g, c, a.Permissions))
	return nil
}

// channelCommand runs a guild command about the channel of the path that answers 204.
func (s *Server) channelCommand(w http.ResponseWriter, r *http.Request, p account.Principal, cmd func(by guild.By, ch uint64) (any, error)) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	c, err := cmd(by, ch)
	if err != nil {
		return err
	}
	g, err := s.channelGuild(r.Context(), ch)
	if err != nil {
		return err
	}
	if _, err := s.writeGuild(r.Context(), g, c); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteChannel(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.channelCommand(w, r, p, func(by guild.By, ch uint64) (any, error) { return guild.DeleteChannel{By: by, ChannelID: ch}, nil })
}

type overwriteIn struct {
	Type  string          `json:"type"`
	Allow permissions.Set `json:"allow"`
	Deny  permissions.Set `json:"deny"`
}

// overwriteTarget reads {target} as a role id or a FID, as type says ("" for a removal: a
// FID has an '@', a role id has not).
func overwriteTarget(r *http.Request, typ string) (role uint64, member string, err error) {
	t := r.PathValue("target")
	isMember := typ == "member" || typ == "" && !isDigits(t)
	switch {
	case typ != "" && typ != "role" && typ != "member":
		return 0, "", fmt.Errorf("%w: type must be role or member", errBadRequest)
	case isMember:
		member, err = pathFID(r, "target")
		return 0, member, err
	}
	role, err = pathID(r, "target")
	return role, "", err
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (s *Server) setOverwrite(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	var in overwriteIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Type == "" {
		return fmt.Errorf("%w: type is required (role or member)", errBadRequest)
	}
	return s.channelCommand(w, r, p, func(by guild.By, ch uint64) (any, error) {
		role, member, err := overwriteTarget(r, in.Type)
		return guild.SetOverwrite{By: by, ChannelID: ch, RoleID: role, MemberFID: member, Allow: in.Allow, Deny: in.Deny}, err
	})
}

func (s *Server) removeOverwrite(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.channelCommand(w, r, p, func(by guild.By, ch uint64) (any, error) {
		role, member, err := overwriteTarget(r, "")
		return guild.RemoveOverwrite{By: by, ChannelID: ch, RoleID: role, MemberFID: member}, err
	})
}

// Roles.

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildRead(w, r, p, func(by guild.By) any { return guild.Get{By: by} }, func(rep any) any {
		g := rep.(*guild.Guild)
		if _, member := g.Members[p.FID]; !member {
			return []roleJSON{}
		}
		return guildView(g, p.FID, true).Roles
	})
}

type roleIn struct {
	Name        *string          `json:"name"`
	Permissions *permissions.Set `json:"permissions"`
	Color       *uint32          `json:"color"`
	Position    *uint32          `json:"position"`
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	var in roleIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return fmt.Errorf("%w: name is required", errBadRequest)
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	cmd := guild.CreateRole{By: by, RoleID: uint64(s.cfg.Chat.IDs.Next()), Name: *in.Name, Position: in.Position}
	if in.Permissions != nil {
		cmd.Permissions = *in.Permissions
	}
	if in.Color != nil {
		cmd.Color = *in.Color
	}
	rep, err := s.writeGuild(r.Context(), id, cmd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, roleView(rep.(*guild.Role)))
	return nil
}

func (s *Server) updateRole(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	role, err := pathID(r, "role")
	if err != nil {
		return err
	}
	var in roleIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	rep, err := s.writeGuild(r.Context(), id, guild.UpdateRole{By: by, RoleID: role, Name: in.Name, Permissions: in.Permissions, Color: in.Color, Position: in.Position})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, roleView(rep.(*guild.Role)))
	return nil
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildCommand(w, r, p, func(by guild.By) (any, error) {
		role, err := pathID(r, "role")
		return guild.DeleteRole{By: by, RoleID: role}, err
	})
}

// Members and bans.

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	after := q.Get("after")
	if after != "" {
		fid, err := identity.ParseFID(after)
		if err != nil {
			return fmt.Errorf("%w: after: %w", errBadRequest, err)
		}
		after = fid.String()
	}
	return s.guildRead(w, r, p, func(by guild.By) any { return guild.Members{By: by, After: after, Limit: limit} }, func(rep any) any {
		ms := rep.([]guild.Member)
		out := make([]memberJSON, len(ms))
		for i := range ms {
			out[i] = memberView(&ms[i])
		}
		return out
	})
}

func (s *Server) getMember(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	fid, err := pathFID(r, "fid")
	if err != nil {
		return err
	}
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	by, _ := s.by(r, p)
	rep, _, err := s.askGuild(r.Context(), id, guild.Get{By: by})
	if err != nil {
		return err
	}
	m, ok := rep.(*guild.Guild).Members[fid]
	if !ok {
		return fmt.Errorf("member %s: %w", fid, guild.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, memberView(m))
	return nil
}

type memberIn struct {
	Nick  *string         `json:"nick"`
	Roles *[]snowflake.ID `json:"roles"`
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	fid, err := s.memberPath(r, p)
	if err != nil {
		return err
	}
	var in memberIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Nick == nil && in.Roles == nil {
		return fmt.Errorf("%w: nothing to change: give nick or roles", errBadRequest)
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	var rep any
	if in.Nick != nil {
		if rep, err = s.writeGuild(r.Context(), id, guild.SetNickname{By: by, FID: fid, Nickname: *in.Nick}); err != nil {
			return err
		}
	}
	if in.Roles != nil {
		ids := make([]uint64, len(*in.Roles))
		for i, r := range *in.Roles {
			ids[i] = uint64(r)
		}
		if rep, err = s.writeGuild(r.Context(), id, guild.SetRoles{By: by, FID: fid, RoleIDs: ids}); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, memberView(rep.(*guild.Member)))
	return nil
}

// memberPath is the {fid} of the path, where @me is the caller.
func (s *Server) memberPath(r *http.Request, p account.Principal) (string, error) {
	if r.PathValue("fid") == "@me" {
		return p.FID, nil
	}
	return pathFID(r, "fid")
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildCommand(w, r, p, func(by guild.By) (any, error) {
		fid, err := s.memberPath(r, p)
		if fid == p.FID {
			return guild.Leave{By: by}, err
		}
		return guild.Kick{By: by, FID: fid}, err
	})
}

func (s *Server) listBans(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildRead(w, r, p, func(by guild.By) any { return guild.Bans{By: by} }, func(rep any) any {
		fids := rep.([]string)
		out := make([]map[string]string, len(fids))
		for i, f := range fids {
			out[i] = map[string]string{"fid": f}
		}
		return out
	})
}

func (s *Server) ban(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildCommand(w, r, p, func(by guild.By) (any, error) {
		fid, err := pathFID(r, "fid")
		return guild.Ban{By: by, FID: fid}, err
	})
}

func (s *Server) unban(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.guildCommand(w, r, p, func(by guild.By) (any, error) {
		fid, err := pathFID(r, "fid")
		return guild.Unban{By: by, FID: fid}, err
	})
}

// Invites.

type inviteIn struct {
	MaxAge  *int64  `json:"max_age"`
	MaxUses *uint32 `json:"max_uses"`
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	var in inviteIn
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	age := int64(86400)
	if in.MaxAge != nil {
		age = *in.MaxAge
	}
	if age < 0 || age > int64(guild.MaxInviteAge/time.Second) {
		return fmt.Errorf("%w: max_age must be 0-%d seconds", errBadRequest, int64(guild.MaxInviteAge/time.Second))
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	g, err := s.channelGuild(r.Context(), ch)
	if err != nil {
		return err
	}
	code, _ := identity.NewToken()
	cmd := guild.CreateInvite{By: by, Code: code[:10], ChannelID: ch, MaxAge: time.Duration(age) * time.Second}
	if in.MaxUses != nil {
		cmd.MaxUses = *in.MaxUses
	}
	rep, err := s.writeGuild(r.Context(), g, cmd)
	if err != nil {
		return err
	}
	gs, _, err := s.askGuild(r.Context(), g, guild.Get{By: by})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, inviteView(gs.(*guild.Guild), rep.(*guild.Invite)))
	return nil
}

func (s *Server) listInvites(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	by, _ := s.by(r, p)
	rep, _, err := s.askGuild(r.Context(), id, guild.Invites{By: by})
	if err != nil {
		return err
	}
	gs, _, err := s.askGuild(r.Context(), id, guild.Get{By: by})
	if err != nil {
		return err
	}
	invs := rep.([]guild.Invite)
	out := make([]inviteJSON, len(invs))
	for i := range invs {
		out[i] = inviteView(gs.(*guild.Guild), &invs[i])
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// inviteGuild finds the guild of the code in the path; an unknown code is guild.ErrInvite.
func (s *Server) inviteGuild(r *http.Request) (uint64, string, error) {
	code := r.PathValue("code")
	if code == "" || len(code) > 64 {
		return 0, "", fmt.Errorf("%w: bad invite code", errBadRequest)
	}
	g, ok := s.cfg.Chat.Events.GuildOfInvite(r.Context(), code)
	if !ok {
		return 0, "", fmt.Errorf("invite %q: %w", code, guild.ErrInvite)
	}
	return g, code, nil
}

func (s *Server) previewInvite(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	g, code, err := s.inviteGuild(r)
	if err != nil {
		return err
	}
	by, _ := s.by(r, p)
	rep, _, err := s.askGuild(r.Context(), g, guild.CheckInvite{By: by, Code: code})
	if err != nil {
		return err
	}
	// The guild's summary comes from the fan-out's copy: a stranger may not Get a private guild,
	// but an invite shows its name.
	writeJSON(w, http.StatusOK, s.cfg.Chat.Events.inviteView(g, rep.(*guild.Invite)))
	return nil
}

func (s *Server) joinInvite(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	g, code, err := s.inviteGuild(r)
	if err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	rep, err := s.writeGuild(r.Context(), g, guild.Join{By: by, Code: code})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, guildView(rep.(*guild.Guild), p.FID, true))
	return nil
}

func (s *Server) revokeInvite(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	g, code, err := s.inviteGuild(r)
	if err != nil {
		return err
	}
	by, err := s.by(r, p)
	if err != nil {
		return err
	}
	if _, err := s.writeGuild(r.Context(), g, guild.RevokeInvite{By: by, Code: code}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
