package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors/channel"
	"github.com/polyproto-chat/server/actors/group"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/actors/keypackages"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/permissions"
	"github.com/polyproto-chat/server/projections/history"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
	"github.com/polyproto-chat/server/snowflake"
)

// ChatSessions is where chat dispatches go: this node's live gateway sessions (session.Registry).
type ChatSessions interface {
	Deliver(fid string, d session.Dispatch)
	Online(fid string) bool
}

// ChatEvents follows the event log and turns guild and channel events into chat dispatches for
// the sessions of this node whose actor may see them. It keeps, in memory, every guild as
// guild.Apply builds it from the same log, so "who may see this" is answered at the exact
// position of each event, and dispatches leave in log order: a session's cursor is then a
// position below which it has everything (docs/PROTOCOL.md section 4). Every node runs one,
// whichever node the guild and channel actors live on.
//
// The same guilds answer READY, the REST edge's lookups (which guild a channel or an invite
// belongs to) and Resume from the log.
type ChatEvents struct {
	// Sessions receives the dispatches; set it before Run (the registry is made after the edge).
	Sessions ChatSessions

	store events.Store
	log   *slog.Logger

	mu       sync.RWMutex
	guilds   map[uint64]*guild.Guild
	channels map[uint64]uint64          // channel -> guild
	invites  map[string]uint64          // invite code -> guild
	groupCh  map[uint64]uint64          // messaging group of an encrypted channel -> channel
	memberOf map[string]map[uint64]bool // fid -> guilds
	applied  events.Position            // everything up to here is in the maps above
	caughtUp bool
	advanced chan struct{} // closed (and replaced) when applied moves at the end of a batch

	// viewers caches, per channel, the members who may view it; only Run's goroutine uses it.
	viewers map[uint64][]string
}

// NewChatEvents returns the fan-out; Run feeds it.
func NewChatEvents(store events.Store, log *slog.Logger) *ChatEvents {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ChatEvents{store: store, log: log,
		guilds: map[uint64]*guild.Guild{}, channels: map[uint64]uint64{}, invites: map[string]uint64{}, groupCh: map[uint64]uint64{},
		memberOf: map[string]map[uint64]bool{}, advanced: make(chan struct{}), viewers: map[uint64][]string{}}
}

var errCaughtUp = errors.New("caught up")

// chatFilter selects the streams chat dispatches come from.
var chatFilter = events.Filter{StreamPrefixes: []string{guild.StreamPrefix, channel.StreamPrefix, keypackages.StreamPrefix, group.StreamPrefix}}

// Run follows the log until ctx ends. It first loads every guild (guild streams only, which
// skips the far longer channel streams), then follows guilds and channels live from there.
// A store error is retried with backoff from where it stopped.
func (c *ChatEvents) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := min(time.Duration(1<<min(attempt, 6))*50*time.Millisecond, 3*time.Second)
		c.log.Warn("chat fan-out: following the log failed; retrying", "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *ChatEvents) follow(ctx context.Context) error {
	c.mu.RLock()
	from, live := c.applied, c.caughtUp
	c.mu.RUnlock()
	if !live {
		err := c.store.SubscribeAll(ctx, from, events.Filter{StreamPrefixes: []string{guild.StreamPrefix}}, func(b events.Batch) error {
			if err := c.batch(b, false); err != nil {
				return err
			}
			if b.CaughtUp {
				return errCaughtUp
			}
			return nil
		})
		if !errors.Is(err, errCaughtUp) {
			return err
		}
		c.mu.Lock()
		c.caughtUp, from = true, c.applied
		c.mu.Unlock()
		c.log.Info("chat fan-out caught up with the log", "position", from)
	}
	return c.store.SubscribeAll(ctx, from, chatFilter, func(b events.Batch) error { return c.batch(b, true) })
}

// batch applies a batch's events and, once live, delivers their dispatches.
func (c *ChatEvents) batch(b events.Batch, live bool) error {
	for i := range b.Events {
		if err := c.event(&b.Events[i], live); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if b.Checkpoint > c.applied {
		c.applied = b.Checkpoint
	}
	close(c.advanced)
	c.advanced = make(chan struct{})
	c.mu.Unlock()
	return nil
}

func (c *ChatEvents) event(rec *events.RecordedEvent, live bool) error {
	msg, err := events.Decode(rec)
	if err != nil {
		return err
	}
	if id, ok := streamID(rec.Stream, guild.StreamPrefix); ok {
		return c.guildEvent(rec, id, msg, live)
	}
	// KeyPackage and group events name who gets them; nothing of them is kept here.
	if fid, ok := strings.CutPrefix(rec.Stream, keypackages.StreamPrefix); ok {
		if d, ok := keyPackageDispatch(rec, msg); ok && live {
			c.Sessions.Deliver(fid, d)
		}
		c.setApplied(rec.Position)
		return nil
	}
	if id, ok := streamID(rec.Stream, group.StreamPrefix); ok {
		if live {
			ds := groupDispatches(rec, id, msg)
			for _, fid := range recipientsOf(msg) {
				for _, d := range ds {
					c.Sessions.Deliver(fid, d)
				}
			}
		}
		c.setApplied(rec.Position)
		return nil
	}
	id, ok := streamID(rec.Stream, channel.StreamPrefix)
	if !ok {
		return nil
	}
	g := c.guilds[c.channels[id]] // only this goroutine writes the maps
	if live && g != nil {
		if d, ok := channelDispatch(rec, g.ID, id, msg); ok {
			for _, fid := range c.viewersOf(g, id) {
				c.Sessions.Deliver(fid, d)
			}
		}
	}
	// Only now: READY never holds messages, so a READY at this cursor must come after the
	// message reached every subscribed session, or a session would drop it as covered.
	c.mu.Lock()
	c.applied = rec.Position
	c.mu.Unlock()
	return nil
}

// Applied is the log position up to which this node's fan-out has delivered.
func (c *ChatEvents) Applied() events.Position {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.applied
}

func (c *ChatEvents) setApplied(pos events.Position) {
	c.mu.Lock()
	c.applied = pos
	c.mu.Unlock()
}

// guildEvent applies a guild event and delivers what it means to each member: the dispatches
// of the event itself, and, when it changes who may view which channel, CHANNEL_CREATE and
// CHANNEL_DELETE to the online members who gained or lost a channel.
func (c *ChatEvents) guildEvent(rec *events.RecordedEvent, id uint64, msg proto.Message, live bool) error {
	g := c.guilds[id] // only this goroutine writes the maps, so it may read them unlocked
	if g == nil {
		g = guild.Initial(id)
	}
	var before map[string]map[uint64]bool
	var goneChannel []string
	if live {
		switch e := msg.(type) {
		case *eventsv1.RoleUpdated, *eventsv1.RoleDeleted, *eventsv1.MemberRolesChanged,
			*eventsv1.ChannelOverwriteSet, *eventsv1.ChannelOverwriteRemoved:
			before = c.visible(g)
		case *eventsv1.ChannelDeleted:
			goneChannel = c.viewersOf(g, e.GetChannelId())
		}
	}
	c.mu.Lock()
	_, err := guild.Apply(g, msg)
	if err == nil {
		c.guilds[id] = g
		c.index(g, msg)
		c.applied = rec.Position
	}
	c.mu.Unlock()
	if err != nil {
		// The guild actor applied this very event before appending it, so this is a bug;
		// stopping here would stop every dispatch of the node, so log it and go on.
		c.log.Error("chat fan-out: guild event does not apply", "stream", rec.Stream, "revision", rec.Revision, "err", err)
		return nil
	}
	for ch := range g.Channels {
		delete(c.viewers, ch)
	}
	if !live {
		return nil
	}
	// One event may mean several dispatches to one actor; Part numbers them so the session
	// tells the second from a repeat of the first.
	parts := map[string]int{}
	send := func(fid string, d session.Dispatch) {
		d.Part = parts[fid]
		parts[fid]++
		c.Sessions.Deliver(fid, d)
	}
	if goneChannel != nil {
		e := msg.(*eventsv1.ChannelDeleted)
		d := chatDispatch(rec, "CHANNEL_DELETE", map[string]snowflake.ID{"id": snowflake.ID(e.GetChannelId()), "guild_id": snowflake.ID(id)})
		for _, fid := range goneChannel {
			send(fid, d)
		}
	}
	for _, a := range guildDispatches(rec, g, msg) {
		for _, fid := range a.to {
			send(fid, a.d)
		}
	}
	if before != nil {
		c.visibilityChanges(rec, g, before, send)
	}
	return nil
}

// index keeps the lookup maps in step with one applied guild event.
func (c *ChatEvents) index(g *guild.Guild, msg proto.Message) {
	switch e := msg.(type) {
	case *eventsv1.ChannelCreated:
		c.channels[e.GetChannelId()] = g.ID
	case *eventsv1.ChannelDeleted:
		delete(c.channels, e.GetChannelId())
		for grp, ch := range c.groupCh {
			if ch == e.GetChannelId() {
				delete(c.groupCh, grp)
			}
		}
	case *eventsv1.ChannelEncryptionEnabled:
		c.groupCh[e.GetGroupId()] = e.GetChannelId()
	case *eventsv1.InviteCreated:
		c.invites[e.GetCode()] = g.ID
	case *eventsv1.MemberJoined:
		if c.memberOf[e.GetFid()] == nil {
			c.memberOf[e.GetFid()] = map[uint64]bool{}
		}
		c.memberOf[e.GetFid()][g.ID] = true
	case *eventsv1.MemberLeft:
		c.leave(e.GetFid(), g.ID)
	case *eventsv1.MemberKicked:
		c.leave(e.GetFid(), g.ID)
	case *eventsv1.MemberBanned:
		c.leave(e.GetFid(), g.ID)
	case *eventsv1.GuildDeleted:
		for fid := range g.Members {
			c.leave(fid, g.ID)
		}
		for ch, cc := range g.Channels {
			delete(c.channels, ch)
			delete(c.groupCh, cc.GroupID)
		}
		for code := range g.Invites {
			delete(c.invites, code)
		}
	}
}

func (c *ChatEvents) leave(fid string, guildID uint64) {
	delete(c.memberOf[fid], guildID)
	if len(c.memberOf[fid]) == 0 {
		delete(c.memberOf, fid)
	}
}

// viewersOf lists the members who may view channel ch of g (cached until g's next event).
func (c *ChatEvents) viewersOf(g *guild.Guild, ch uint64) []string {
	if v, ok := c.viewers[ch]; ok {
		return v
	}
	v := viewers(g, ch)
	c.viewers[ch] = v
	return v
}

func viewers(g *guild.Guild, ch uint64) []string {
	if g.Deleted {
		return nil
	}
	var out []string
	for fid := range g.Members {
		if g.CanView(fid, ch) {
			out = append(out, fid)
		}
	}
	return out
}

// visible is, for each online member of g, the channels they may view.
func (c *ChatEvents) visible(g *guild.Guild) map[string]map[uint64]bool {
	out := map[string]map[uint64]bool{}
	for fid := range g.Members {
		if !c.Sessions.Online(fid) {
			continue
		}
		set := map[uint64]bool{}
		for ch := range g.Channels {
			if g.CanView(fid, ch) {
				set[ch] = true
			}
		}
		out[fid] = set
	}
	return out
}

func (c *ChatEvents) visibilityChanges(rec *events.RecordedEvent, g *guild.Guild, before map[string]map[uint64]bool, send func(string, session.Dispatch)) {
	for fid, had := range before {
		for ch, gc := range g.Channels {
			now := g.CanView(fid, ch)
			switch {
			case now && !had[ch]:
				send(fid, chatDispatch(rec, "CHANNEL_CREATE", channelView(g.ID, gc, g.Permissions(fid, ch))))
			case !now && had[ch]:
				send(fid, chatDispatch(rec, "CHANNEL_DELETE", map[string]snowflake.ID{"id": snowflake.ID(ch), "guild_id": snowflake.ID(g.ID)}))
			}
		}
	}
}

// addressed is one dispatch and who gets it.
type addressed struct {
	d  session.Dispatch
	to []string
}

// guildDispatches is what a guild event, already applied to g, means to g's members.
func guildDispatches(rec *events.RecordedEvent, g *guild.Guild, msg proto.Message) []addressed {
	members := func() []string {
		out := make([]string, 0, len(g.Members))
		for fid := range g.Members {
			out = append(out, fid)
		}
		return out
	}
	with := func(p permissions.Set) []string {
		var out []string
		for fid := range g.Members {
			if g.Permissions(fid, 0).Has(p) {
				out = append(out, fid)
			}
		}
		return out
	}
	gid := snowflake.ID(g.ID)
	one := func(t string, data any, to []string) []addressed {
		return []addressed{{d: chatDispatch(rec, t, data), to: to}}
	}
	removed := func(fid, reason string) []addressed {
		return []addressed{
			{d: chatDispatch(rec, "GUILD_MEMBER_REMOVE", map[string]any{"guild_id": gid, "fid": fid, "reason": reason}), to: members()},
			{d: chatDispatch(rec, "GUILD_DELETE", map[string]any{"id": gid, "reason": reason}), to: []string{fid}},
		}
	}
	switch e := msg.(type) {
	case *eventsv1.GuildUpdated:
		return one("GUILD_UPDATE", guildView(g, "", false), members())
	case *eventsv1.GuildDeleted:
		return one("GUILD_DELETE", map[string]any{"id": gid}, members())
	case *eventsv1.ChannelCreated, *eventsv1.ChannelUpdated, *eventsv1.ChannelOverwriteSet, *eventsv1.ChannelOverwriteRemoved, *eventsv1.ChannelEncryptionEnabled:
		ch := channelOf(msg)
		c, ok := g.Channels[ch]
		if !ok {
			return nil
		}
		t := "CHANNEL_UPDATE"
		if _, created := e.(*eventsv1.ChannelCreated); created {
			t = "CHANNEL_CREATE"
		}
		var out []addressed
		for _, fid := range viewers(g, ch) {
			// Each viewer's own permissions are part of the channel object.
			out = append(out, addressed{d: chatDispatch(rec, t, channelView(g.ID, c, g.Permissions(fid, ch))), to: []string{fid}})
		}
		return out
	case *eventsv1.RoleCreated:
		if r, ok := g.Roles[e.GetRoleId()]; ok {
			return one("GUILD_ROLE_CREATE", map[string]any{"guild_id": gid, "role": roleView(r)}, members())
		}
	case *eventsv1.RoleUpdated:
		if r, ok := g.Roles[e.GetRoleId()]; ok {
			return one("GUILD_ROLE_UPDATE", map[string]any{"guild_id": gid, "role": roleView(r)}, members())
		}
	case *eventsv1.RoleDeleted:
		return one("GUILD_ROLE_DELETE", map[string]any{"guild_id": gid, "role_id": snowflake.ID(e.GetRoleId())}, members())
	case *eventsv1.MemberJoined:
		m, ok := g.Members[e.GetFid()]
		if !ok {
			return nil
		}
		others := members()
		for i, fid := range others {
			if fid == e.GetFid() {
				others = append(others[:i], others[i+1:]...)
				break
			}
		}
		return []addressed{
			{d: chatDispatch(rec, "GUILD_CREATE", guildView(g, e.GetFid(), true)), to: []string{e.GetFid()}},
			{d: chatDispatch(rec, "GUILD_MEMBER_ADD", map[string]any{"guild_id": gid, "member": memberView(m)}), to: others},
		}
	case *eventsv1.MemberLeft:
		return removed(e.GetFid(), "left")
	case *eventsv1.MemberKicked:
		return removed(e.GetFid(), "kicked")
	case *eventsv1.MemberBanned:
		out := removed(e.GetFid(), "banned")
		return append(out, addressed{d: chatDispatch(rec, "GUILD_BAN_ADD", map[string]any{"guild_id": gid, "fid": e.GetFid()}), to: with(permissions.BanMembers)})
	case *eventsv1.MemberUnbanned:
		return one("GUILD_BAN_REMOVE", map[string]any{"guild_id": gid, "fid": e.GetFid()}, with(permissions.BanMembers))
	case *eventsv1.InviteCreated:
		if i, ok := g.Invites[e.GetCode()]; ok {
			return one("INVITE_CREATE", inviteView(g, i), with(permissions.ManageGuild))
		}
	case *eventsv1.InviteRevoked:
		if i, ok := g.Invites[e.GetCode()]; ok {
			return one("INVITE_DELETE", map[string]any{"code": i.Code, "guild_id": gid, "channel_id": snowflake.ID(i.ChannelID)}, with(permissions.ManageGuild))
		}
	case *eventsv1.MemberNicknameChanged, *eventsv1.MemberRolesChanged:
		fid := memberOfEvent(msg)
		if m, ok := g.Members[fid]; ok {
			return one("GUILD_MEMBER_UPDATE", map[string]any{"guild_id": gid, "member": memberView(m)}, members())
		}
	}
	return nil
}

func channelOf(msg proto.Message) uint64 {
	if e, ok := msg.(interface{ GetChannelId() uint64 }); ok {
		return e.GetChannelId()
	}
	return 0
}

func memberOfEvent(msg proto.Message) string {
	if e, ok := msg.(interface{ GetFid() string }); ok {
		return e.GetFid()
	}
	return ""
}

// messageUpdate is the MESSAGE_UPDATE payload: the new signed version.
type messageUpdate struct {
	ID          snowflake.ID `json:"id"`
	ChannelID   snowflake.ID `json:"channel_id"`
	GuildID     snowflake.ID `json:"guild_id"`
	Author      string       `json:"author"`
	Content     string       `json:"content"`
	Attachments []string     `json:"attachments"`
	Timestamp   int64        `json:"timestamp"`
	CertSerial  string       `json:"cert_serial"`
	SessionID   string       `json:"session_id"`
	Signature   string       `json:"signature"`
	EditedAt    time.Time    `json:"edited_at"`
}

// channelDispatch is what a channel event means to the channel's viewers.
func channelDispatch(rec *events.RecordedEvent, guildID, ch uint64, msg proto.Message) (session.Dispatch, bool) {
	gid, cid := snowflake.ID(guildID), snowflake.ID(ch)
	reaction := func(t string, id uint64, fid, emoji string) session.Dispatch {
		return chatDispatch(rec, t, map[string]any{"channel_id": cid, "guild_id": gid, "message_id": snowflake.ID(id), "fid": fid, "emoji": emoji})
	}
	pins := func(id uint64, pinned bool) session.Dispatch {
		return chatDispatch(rec, "CHANNEL_PINS_UPDATE", map[string]any{"channel_id": cid, "guild_id": gid, "message_id": snowflake.ID(id), "pinned": pinned})
	}
	switch e := msg.(type) {
	case *eventsv1.MessageCreated:
		return chatDispatch(rec, "MESSAGE_CREATE", history.FromCreated(ch, e)), true
	case *eventsv1.MessageEdited:
		var at time.Time
		if meta, err := rec.Meta(); err == nil {
			at = meta.GetRecordedAt().AsTime().UTC()
		}
		// The author is who edited: only authors edit (actors/channel), and the envelope says who.
		author := ""
		if meta, err := rec.Meta(); err == nil {
			author = meta.GetActorFid()
		}
		return chatDispatch(rec, "MESSAGE_UPDATE", messageUpdate{ID: snowflake.ID(e.GetMessageId()), ChannelID: cid, GuildID: gid,
			Author: author, Content: e.GetContent(), Attachments: nonNilStrings(e.GetAttachments()), Timestamp: e.GetTimestampMs(),
			CertSerial: strconv.FormatUint(e.GetCertSerial(), 10), SessionID: e.GetSessionId(),
			Signature: b64(e.GetSignature()), EditedAt: at}), true
	case *eventsv1.MessageDeleted:
		return chatDispatch(rec, "MESSAGE_DELETE", map[string]any{"id": snowflake.ID(e.GetMessageId()), "channel_id": cid, "guild_id": gid}), true
	case *eventsv1.MessagesBulkDeleted:
		ids := make([]snowflake.ID, len(e.GetMessageIds()))
		for i, id := range e.GetMessageIds() {
			ids[i] = snowflake.ID(id)
		}
		return chatDispatch(rec, "MESSAGE_DELETE_BULK", map[string]any{"ids": ids, "channel_id": cid, "guild_id": gid}), true
	case *eventsv1.MessagePinned:
		return pins(e.GetMessageId(), true), true
	case *eventsv1.MessageUnpinned:
		return pins(e.GetMessageId(), false), true
	case *eventsv1.ReactionAdded:
		return reaction("MESSAGE_REACTION_ADD", e.GetMessageId(), e.GetFid(), e.GetEmoji()), true
	case *eventsv1.ReactionRemoved:
		return reaction("MESSAGE_REACTION_REMOVE", e.GetMessageId(), e.GetFid(), e.GetEmoji()), true
	}
	return session.Dispatch{}, false
}

func chatDispatch(rec *events.RecordedEvent, t string, data any) session.Dispatch {
	var cursor events.Position
	if rec != nil {
		cursor = rec.Position
	}
	return session.Dispatch{Namespace: "chat", Type: t, Cursor: cursor, Data: mustMarshal(data)}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// streamID parses "<prefix><decimal id>".
func streamID(stream, prefix string) (uint64, bool) {
	rest, ok := strings.CutPrefix(stream, prefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseUint(rest, 10, 64)
	return id, err == nil && id != 0
}

// Typing tells the viewers of channel ch, except fid, that fid is typing. Not stored, so it
// carries no cursor and is not replayed.
func (c *ChatEvents) Typing(guildID, ch uint64, fid string, at time.Time) {
	c.mu.RLock()
	g := c.guilds[guildID]
	var to []string
	if g != nil {
		to = viewers(g, ch)
	}
	c.mu.RUnlock()
	d := chatDispatch(nil, "TYPING_START", map[string]any{"channel_id": snowflake.ID(ch), "guild_id": snowflake.ID(guildID), "fid": fid, "timestamp": at.UnixMilli()})
	for _, v := range to {
		if v != fid {
			c.Sessions.Deliver(v, d)
		}
	}
}

// CaughtUp reports whether the fan-out has loaded every guild and follows the log live; until
// then READY waits and the node is not ready (/readyz).
func (c *ChatEvents) CaughtUp() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.caughtUp
}

// WaitFor returns once the fan-out has applied the log up to pos, or ctx ends.
func (c *ChatEvents) WaitFor(ctx context.Context, pos events.Position) error {
	for {
		c.mu.RLock()
		done, ch := c.applied >= pos, c.advanced
		c.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chat fan-out still behind position %d: %w", pos, ctx.Err())
		case <-ch:
		}
	}
}

// CatchUp waits until the fan-out has applied everything the store held when called.
func (c *ChatEvents) CatchUp(ctx context.Context) error {
	head, err := c.store.Head(ctx)
	if err != nil {
		return err
	}
	return c.WaitFor(ctx, head)
}

// GuildOfChannel names the guild a channel belongs to. A channel this node does not know yet
// (created a moment ago, maybe through another node) is looked up again after catching up.
func (c *ChatEvents) GuildOfChannel(ctx context.Context, ch uint64) (uint64, bool) {
	return c.lookup(ctx, func() (uint64, bool) { g, ok := c.channels[ch]; return g, ok })
}

// ChannelOfGroup is the encrypted channel whose messaging group id is, if it is one. The request
// that encrypted the channel waited for the fan-out, so a miss here means "not a channel's group"
// (or one encrypted a moment ago on another node, which fails closed: the group refuses
// everyone who is not shown to view the channel).
func (c *ChatEvents) ChannelOfGroup(id uint64) (uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ch, ok := c.groupCh[id]
	return ch, ok
}

// GuildOfInvite names the guild an invite code belongs to, like GuildOfChannel.
func (c *ChatEvents) GuildOfInvite(ctx context.Context, code string) (uint64, bool) {
	return c.lookup(ctx, func() (uint64, bool) { g, ok := c.invites[code]; return g, ok })
}

func (c *ChatEvents) lookup(ctx context.Context, find func() (uint64, bool)) (uint64, bool) {
	c.mu.RLock()
	id, ok := find()
	c.mu.RUnlock()
	if ok {
		return id, true
	}
	// Only a miss waits, and not long: a store that reports progress in windows only
	// (KurrentDB) may never show its head to a narrow subscription.
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.CatchUp(ctx); err != nil {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return find()
}

// Ready is the chat part of READY for fid: the guilds it is a member of, as it sees them, and
// the cursor they are exact at.
func (c *ChatEvents) Ready(ctx context.Context, fid string) (json.RawMessage, events.Position, error) {
	for {
		c.mu.RLock()
		ready, ch := c.caughtUp, c.advanced
		if ready {
			out := make([]guildJSON, 0, len(c.memberOf[fid]))
			for id := range c.memberOf[fid] {
				out = append(out, guildView(c.guilds[id], fid, true))
			}
			cursor := c.applied
			c.mu.RUnlock()
			return mustMarshal(out), cursor, nil
		}
		c.mu.RUnlock()
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("chat fan-out still loading: %w", ctx.Err())
		case <-ch:
		}
	}
}

// replay lists the chat dispatches fid gets for events after `after`, up to the log's head,
// in log order, judged by what fid may see now (the fan-out has no older permissions). At
// most limit; truncated if there were more, or if more than maxScan events had to be read.
func (c *ChatEvents) replay(ctx context.Context, fid string, after events.Position, limit, maxScan int) (out []session.Dispatch, truncated bool, err error) {
	if err := c.CatchUp(ctx); err != nil {
		return nil, false, err
	}
	scanned := 0
	err = c.store.SubscribeAll(ctx, after, chatFilter, func(b events.Batch) error {
		c.mu.RLock()
		defer c.mu.RUnlock()
		for i := range b.Events {
			rec := &b.Events[i]
			if scanned++; scanned > maxScan {
				truncated = true
				return errCaughtUp
			}
			for _, d := range c.dispatchesFor(rec, fid) {
				if len(out) == limit {
					truncated = true
					return errCaughtUp
				}
				out = append(out, d)
			}
		}
		if b.CaughtUp {
			return errCaughtUp
		}
		return nil
	})
	if !errors.Is(err, errCaughtUp) {
		return nil, false, err
	}
	return out, truncated, nil
}

// dispatchesFor is what one stored event means to fid now. Callers hold c.mu.
func (c *ChatEvents) dispatchesFor(rec *events.RecordedEvent, fid string) []session.Dispatch {
	msg, err := events.Decode(rec)
	if err != nil {
		return nil
	}
	if id, ok := streamID(rec.Stream, guild.StreamPrefix); ok {
		g := c.guilds[id]
		if g == nil {
			return nil
		}
		var out []session.Dispatch
		for _, a := range guildDispatches(rec, g, msg) {
			for _, to := range a.to {
				if to == fid {
					a.d.Part = len(out)
					out = append(out, a.d)
				}
			}
		}
		return out
	}
	if owner, ok := strings.CutPrefix(rec.Stream, keypackages.StreamPrefix); ok {
		if d, ok := keyPackageDispatch(rec, msg); ok && owner == fid {
			return []session.Dispatch{d}
		}
		return nil
	}
	if id, ok := streamID(rec.Stream, group.StreamPrefix); ok {
		if slices.Contains(recipientsOf(msg), fid) {
			return groupDispatches(rec, id, msg)
		}
		return nil
	}
	ch, ok := streamID(rec.Stream, channel.StreamPrefix)
	if !ok {
		return nil
	}
	g := c.guilds[c.channels[ch]]
	if g == nil || !g.CanView(fid, ch) {
		return nil
	}
	if d, ok := channelDispatch(rec, g.ID, ch, msg); ok {
		return []session.Dispatch{d}
	}
	return nil
}

// inviteView is invite i of guild id as a preview shows it.
func (c *ChatEvents) inviteView(id uint64, i *guild.Invite) inviteJSON {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if g := c.guilds[id]; g != nil {
		return inviteView(g, i)
	}
	return inviteView(guild.Initial(id), i)
}

func (c *ChatEvents) memberCount(id uint64) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if g := c.guilds[id]; g != nil {
		return len(g.Members)
	}
	return 0
}
