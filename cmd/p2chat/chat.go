package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// chatCommands are the guild chat commands (PROTOCOL.md section 6): guilds, channels, invites,
// messages, roles and moderation. Ids are the decimal snowflakes the server prints.
func chatCommands() []command {
	return []command{
		{name: "guild create", synopsis: "NAME [--private] [--description TEXT]", min: 1, max: 1, setup: (*Main).guildCreate,
			summary: "create a guild you own, with a general channel; prints it"},
		{name: "guild list", synopsis: "", min: 0, max: 0, setup: (*Main).guildList,
			summary: "list the guilds you are a member of: id, name"},
		{name: "guild show", synopsis: "GUILD", min: 1, max: 1, setup: (*Main).guildShow,
			summary: "print a guild with its roles and the channels you may view"},
		{name: "channel create", synopsis: "GUILD NAME [--topic TEXT] [--category PARENT]", min: 2, max: 2,
			setup: (*Main).channelCreate, summary: "create a channel in GUILD; prints it"},
		{name: "channel list", synopsis: "GUILD", min: 1, max: 1, setup: (*Main).channelList,
			summary: "list the channels of GUILD you may view: id, type, parent or -, name"},
		{name: "invite create", synopsis: "CHANNEL [--max-uses N] [--max-age DUR]", min: 1, max: 1, setup: (*Main).inviteCreate,
			summary: "create an invite to CHANNEL; prints its code"},
		{name: "join", synopsis: "CODE", min: 1, max: 1, setup: (*Main).join,
			summary: "join the guild of invite CODE; prints the guild"},
		{name: "send", synopsis: "CHANNEL TEXT... [--attach URL]", min: 2, max: math.MaxInt, setup: (*Main).send,
			summary: "sign and send a message (put -- before text that starts with -); prints its id"},
		{name: "history", synopsis: "CHANNEL [--before ID] [--after ID] [--limit N]", min: 1, max: 1, setup: (*Main).history,
			summary: "print messages, newest first: time author: content, (edited) if edited"},
		{name: "tail", synopsis: "CHANNEL [--ids]", min: 1, max: 1, setup: (*Main).tail,
			summary: "print new, edited and deleted messages of CHANNEL until interrupted, checking signatures"},
		{name: "role create", synopsis: "GUILD NAME [--perms NAME,...]", min: 2, max: 2, setup: (*Main).roleCreate,
			summary: "create a role with these permissions; prints it"},
		{name: "member roles", synopsis: "GUILD FID [ROLE...]", min: 2, max: math.MaxInt, setup: (*Main).memberRoles,
			summary: "set a member's roles (ids or names; none removes all); prints the member"},
		{name: "kick", synopsis: "GUILD FID [--reason TEXT]", min: 2, max: 2, setup: (*Main).kick,
			summary: "remove a member from GUILD"},
		{name: "ban", synopsis: "GUILD FID [--reason TEXT]", min: 2, max: 2, setup: (*Main).ban,
			summary: "ban an actor from GUILD, removing them if they are a member"},
		{name: "unban", synopsis: "GUILD FID [--reason TEXT]", min: 2, max: 2, setup: (*Main).unban,
			summary: "lift a ban"},
	}
}

// readyTimeout bounds the wait for READY in guild list: the server sends it right after the
// subscribe, so a longer wait means something is wrong.
const readyTimeout = 15 * time.Second

// chat returns the guild chat client of the stored session at --server.
func (m *Main) chat() (*client.Client, *client.Chat, error) {
	c, err := m.client()
	if err != nil {
		return nil, nil, err
	}
	s, err := m.session(c)
	if err != nil {
		return nil, nil, err
	}
	ch, err := c.Chat(s, client.ChatOptions{})
	if err != nil {
		return nil, nil, err
	}
	return c, ch, nil
}

func (m *Main) guildCreate(fs *flag.FlagSet) runFunc {
	private := fs.Bool("private", false, "only members see the guild (default: anyone may look at it)")
	desc := fs.String("description", "", "the guild's description `TEXT`")
	return func(ctx context.Context, args []string) error {
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		g, err := ch.CreateGuild(ctx, client.NewGuild{Name: args[0], Description: *desc, Private: *private})
		if err != nil {
			return err
		}
		m.printGuild(g)
		return nil
	}
}

// guildList reads the guilds from the gateway's READY: no REST route lists an actor's guilds.
func (m *Main) guildList(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		c, ch, err := m.chat()
		if err != nil {
			return err
		}
		ready, err := waitReady(ctx, c, ch.Session())
		if err != nil {
			return err
		}
		guilds, err := ready.ChatGuilds()
		if err != nil {
			return err
		}
		for _, g := range guilds {
			fmt.Fprintln(m.Stdout, g.ID, oneLine(g.Name))
		}
		return nil
	}
}

// waitReady connects to the gateway, subscribes to chat and returns its READY.
func waitReady(ctx context.Context, c *client.Client, s *client.Session) (*client.Ready, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	g, err := c.Connect(ctx, s, client.GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		return nil, err
	}
	defer g.Close()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no READY from the gateway: %w", ctx.Err())
		case ev, ok := <-g.Events():
			switch {
			case !ok:
				return nil, errors.New("the gateway closed before READY")
			case ev.Ready != nil:
				return ev.Ready, nil
			case ev.Service != nil && !ev.Service.Success:
				return nil, fmt.Errorf("subscribing to %s refused: %s", ev.Service.Service, ev.Service.Error)
			case ev.Closed != nil:
				return nil, fmt.Errorf("the gateway closed before READY: %s", describeClose(ev.Closed))
			}
		}
	}
}

func (m *Main) guildShow(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		id, err := parseID("GUILD", args[0])
		if err != nil {
			return err
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		g, err := ch.Guild(ctx, id)
		if err != nil {
			return err
		}
		m.printGuild(g)
		return nil
	}
}

func (m *Main) channelCreate(fs *flag.FlagSet) runFunc {
	topic := fs.String("topic", "", "the channel's topic `TEXT`")
	var parent idFlag
	fs.Var(&parent, "category", "put it in the category with id `PARENT`")
	kind := fs.String("type", "text", "`KIND` of channel: text or category")
	return func(ctx context.Context, args []string) error {
		guild, err := parseID("GUILD", args[0])
		if err != nil {
			return err
		}
		nc := client.NewChannel{Name: args[1], Topic: *topic, ParentID: parent.id}
		switch *kind {
		case "text":
			nc.Type = client.ChannelText
		case "category":
			nc.Type = client.ChannelCategory
		default:
			return usagef("--type %q: want text or category", *kind)
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		c, err := ch.CreateChannel(ctx, guild, nc)
		if err != nil {
			return err
		}
		m.record("id", c.ID.String(), "guild", c.GuildID.String(), "type", c.Type.String(), "name", oneLine(c.Name),
			"topic", oneLine(c.Topic), "parent", idOrDash(c.ParentID), "position", strconv.Itoa(c.Position))
		return nil
	}
}

func (m *Main) channelList(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		guild, err := parseID("GUILD", args[0])
		if err != nil {
			return err
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		list, err := ch.Channels(ctx, guild)
		if err != nil {
			return err
		}
		for _, c := range list {
			fmt.Fprintln(m.Stdout, c.ID, c.Type, idOrDash(c.ParentID), oneLine(c.Name))
		}
		return nil
	}
}

func (m *Main) inviteCreate(fs *flag.FlagSet) runFunc {
	maxUses := fs.Int("max-uses", 0, "how many times it may be used, `N` up to 100000 (default: unlimited)")
	var maxAge durationFlag
	fs.Var(&maxAge, "max-age", "how long it stays valid, a `DUR` like 2h or 30m; 0 never expires (default: 24h)")
	return func(ctx context.Context, args []string) error {
		channel, err := parseID("CHANNEL", args[0])
		if err != nil {
			return err
		}
		if *maxUses < 0 {
			return usagef("--max-uses %d: want 0 or more", *maxUses)
		}
		opts := client.InviteOptions{MaxUses: *maxUses}
		if maxAge.set {
			opts.MaxAge = maxAge.d
			if maxAge.d == 0 {
				opts.MaxAge = -1 // the SDK's "never"
			}
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		inv, err := ch.CreateInvite(ctx, channel, opts)
		if err != nil {
			return err
		}
		expires := "never"
		if !inv.ExpiresAt.IsZero() {
			expires = stamp(inv.ExpiresAt)
		}
		m.record("code", inv.Code, "guild", inv.GuildID.String(), "channel", inv.ChannelID.String(),
			"max_uses", strconv.Itoa(inv.MaxUses), "expires_at", expires)
		return nil
	}
}

func (m *Main) join(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		g, err := ch.JoinInvite(ctx, args[0])
		if err != nil {
			return err
		}
		m.printGuild(g)
		return nil
	}
}

func (m *Main) send(fs *flag.FlagSet) runFunc {
	var attach listFlag
	fs.Var(&attach, "attach", "attach the http(s) `URL` (repeatable)")
	return func(ctx context.Context, args []string) error {
		channel, err := parseID("CHANNEL", args[0])
		if err != nil {
			return err
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		msg, err := ch.Send(ctx, channel, strings.Join(args[1:], " "), client.SendOptions{Attachments: attach})
		if err != nil {
			return err
		}
		m.record("id", msg.ID.String())
		return nil
	}
}

func (m *Main) history(fs *flag.FlagSet) runFunc {
	var before, after idFlag
	fs.Var(&before, "before", "only messages older than message `ID`")
	fs.Var(&after, "after", "only messages newer than message `ID`")
	limit := fs.Int("limit", 0, "at most `N` messages, 1-100 (default 50)")
	ids := idsFlag(fs)
	return func(ctx context.Context, args []string) error {
		channel, err := parseID("CHANNEL", args[0])
		if err != nil {
			return err
		}
		if before.id != 0 && after.id != 0 {
			return usagef("--before and --after: give one of them")
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		list, err := ch.Messages(ctx, channel, client.MessageQuery{Before: before.id, After: after.id, Limit: *limit})
		if err != nil {
			return err
		}
		// The server answers newest first; printed as it comes, the oldest is at the bottom.
		for _, msg := range list {
			fmt.Fprintln(m.Stdout, messageLine(msg, *ids))
		}
		return nil
	}
}

// tail follows a channel over the gateway until ctx ends (Ctrl-C), which is a normal exit.
func (m *Main) tail(fs *flag.FlagSet) runFunc {
	ids := idsFlag(fs)
	return func(ctx context.Context, args []string) error {
		channel, err := parseID("CHANNEL", args[0])
		if err != nil {
			return err
		}
		c, ch, err := m.chat()
		if err != nil {
			return err
		}
		// A mistyped or invisible channel fails now instead of printing nothing for ever.
		if _, err := ch.Channel(ctx, channel); err != nil {
			return err
		}
		g, err := c.Connect(ctx, ch.Session(), client.GatewayOptions{Services: []string{"chat"}, Reconnect: true})
		if err != nil {
			return err
		}
		defer g.Close()
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev, ok := <-g.Events():
				if !ok {
					return errors.New("the gateway closed")
				}
				if err := m.tailEvent(ctx, ch, g, channel, *ids, ev); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		}
	}
}

// tailEvent prints ev when it is about channel; errors end the tail.
func (m *Main) tailEvent(ctx context.Context, ch *client.Chat, g *client.Gateway, channel snowflake.ID, ids bool, ev client.Event) error {
	switch {
	case ev.Service != nil && !ev.Service.Success:
		return fmt.Errorf("subscribing to %s refused: %s", ev.Service.Service, ev.Service.Error)
	case ev.Closed != nil && ev.Closed.Final:
		return fmt.Errorf("the gateway closed: %s", describeClose(ev.Closed))
	case ev.Resync != nil:
		// The server could not replay what we missed and left chat unsubscribed; what was
		// missed stays missed (history shows it), but the tail goes on.
		return g.Subscribe(ctx, "chat")
	case ev.Dispatch == nil:
		return nil
	}
	v, err := ev.Dispatch.Decode()
	if err != nil {
		return err
	}
	switch d := v.(type) {
	case *client.Message:
		if d.ChannelID == channel {
			fmt.Fprintln(m.Stdout, messageLine(*d, ids)+verified(ch.VerifyMessage(ctx, *d)))
		}
	case *client.MessageUpdate:
		if d.ChannelID == channel {
			msg := client.Message{ID: d.ID, Author: d.Author, Content: d.Content, Attachments: d.Attachments, Version: 1, EditedAt: d.EditedAt}
			fmt.Fprintln(m.Stdout, messageLine(msg, ids)+verified(ch.VerifyUpdate(ctx, *d)))
		}
	case *client.MessageDelete:
		if d.ChannelID == channel {
			fmt.Fprintln(m.Stdout, "deleted", d.ID)
		}
	case *client.MessageDeleteBulk:
		if d.ChannelID == channel {
			for _, id := range d.IDs {
				fmt.Fprintln(m.Stdout, "deleted", id)
			}
		}
	}
	return nil
}

// verified is the mark a tail line gets when its signature could not be checked.
func verified(err error) string {
	if err == nil {
		return ""
	}
	return " [unverified: " + oneLine(err.Error()) + "]"
}

func (m *Main) roleCreate(fs *flag.FlagSet) runFunc {
	perms := fs.String("perms", "", "comma-separated permission `NAMES`, e.g. SEND_MESSAGES,KICK_MEMBERS")
	reason := reasonFlag(fs)
	return func(ctx context.Context, args []string) error {
		guild, err := parseID("GUILD", args[0])
		if err != nil {
			return err
		}
		p, err := client.ParsePermissions(*perms)
		if err != nil {
			return usagef("--perms: %v", err)
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		r, err := ch.WithReason(*reason).CreateRole(ctx, guild, client.NewRole{Name: args[1], Permissions: p})
		if err != nil {
			return err
		}
		m.record("id", r.ID.String(), "name", oneLine(r.Name), "permissions", dashIfEmpty(r.Permissions.String()),
			"position", strconv.Itoa(r.Position))
		return nil
	}
}

func (m *Main) memberRoles(fs *flag.FlagSet) runFunc {
	reason := reasonFlag(fs)
	return func(ctx context.Context, args []string) error {
		guild, err := parseID("GUILD", args[0])
		if err != nil {
			return err
		}
		fid, err := parseFID(args[1])
		if err != nil {
			return err
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		roles, err := resolveRoles(ctx, ch, guild, args[2:])
		if err != nil {
			return err
		}
		mem, err := ch.WithReason(*reason).UpdateMember(ctx, guild, fid, client.MemberUpdate{Roles: roles})
		if err != nil {
			return err
		}
		ids := make([]string, len(mem.Roles))
		for i, r := range mem.Roles {
			ids[i] = r.String()
		}
		m.record("fid", mem.FID, "nick", dashIfEmpty(oneLine(mem.Nick)), "roles", dashIfEmpty(strings.Join(ids, ",")),
			"joined_at", stamp(mem.JoinedAt))
		return nil
	}
}

// resolveRoles turns role arguments into ids: a number is an id, anything else the name of
// exactly one of the guild's roles.
func resolveRoles(ctx context.Context, ch *client.Chat, guild snowflake.ID, args []string) ([]snowflake.ID, error) {
	out := make([]snowflake.ID, 0, len(args)) // not nil: no arguments means "no roles"
	var roles []client.Role
	for _, a := range args {
		if id, err := snowflake.Parse(a); err == nil {
			out = append(out, id)
			continue
		}
		if roles == nil {
			var err error
			if roles, err = ch.Roles(ctx, guild); err != nil {
				return nil, err
			}
		}
		var match []snowflake.ID
		for _, r := range roles {
			if r.Name == a {
				match = append(match, r.ID)
			}
		}
		switch len(match) {
		case 0:
			return nil, usagef("guild %s has no role named %q", guild, a)
		case 1:
			out = append(out, match[0])
		default:
			return nil, usagef("guild %s has %d roles named %q: give the id", guild, len(match), a)
		}
	}
	return out, nil
}

func (m *Main) kick(fs *flag.FlagSet) runFunc {
	return m.moderate(fs, "kicked", (*client.Chat).Kick)
}

func (m *Main) ban(fs *flag.FlagSet) runFunc {
	return m.moderate(fs, "banned", (*client.Chat).Ban)
}

func (m *Main) unban(fs *flag.FlagSet) runFunc {
	return m.moderate(fs, "unbanned", (*client.Chat).Unban)
}

// moderate is the shape kick, ban and unban share: GUILD FID, an audit reason, one call.
func (m *Main) moderate(fs *flag.FlagSet, done string, act func(*client.Chat, context.Context, snowflake.ID, string) error) runFunc {
	reason := reasonFlag(fs)
	return func(ctx context.Context, args []string) error {
		guild, err := parseID("GUILD", args[0])
		if err != nil {
			return err
		}
		fid, err := parseFID(args[1])
		if err != nil {
			return err
		}
		_, ch, err := m.chat()
		if err != nil {
			return err
		}
		if err := act(ch.WithReason(*reason), ctx, guild, fid); err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, done, fid)
		return nil
	}
}

func idsFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("ids", false, "start each message line with the message id")
}

func reasonFlag(fs *flag.FlagSet) *string {
	return fs.String("reason", "", "`TEXT` for the guild's audit log")
}

// printGuild prints a guild as a record, then its roles and channels as repeated keys:
// "role ID POSITION PERMISSIONS NAME" and "channel ID TYPE NAME".
func (m *Main) printGuild(g client.Guild) {
	m.record("id", g.ID.String(), "name", oneLine(g.Name))
	if g.Description != "" {
		m.record("description", oneLine(g.Description))
	}
	m.record("owner", g.Owner, "private", strconv.FormatBool(g.Private), "members", strconv.Itoa(g.MemberCount))
	for _, r := range g.Roles {
		fmt.Fprintln(m.Stdout, "role", r.ID, r.Position, dashIfEmpty(r.Permissions.String()), oneLine(r.Name))
	}
	for _, c := range g.Channels {
		fmt.Fprintln(m.Stdout, "channel", c.ID, c.Type, oneLine(c.Name))
	}
}

// messageLine is "time author: content", the attachments' URLs in angle brackets, and
// "(edited)" for a message with more than one version, after the message id with withID. The
// time is when the server took the message (its id's), not the author's clock.
func messageLine(msg client.Message, withID bool) string {
	var b strings.Builder
	if withID {
		b.WriteString(msg.ID.String() + " ")
	}
	b.WriteString(stamp(msg.ID.Time()) + " " + msg.Author + ": " + oneLine(msg.Content))
	for _, a := range msg.Attachments {
		b.WriteString(" <" + oneLine(a) + ">")
	}
	if msg.Edited() {
		b.WriteString(" (edited)")
	}
	return b.String()
}

// oneLine escapes control characters, so that text from other people can neither break the
// one-item-per-line output nor send escape sequences to the terminal.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func idOrDash(id snowflake.ID) string {
	if id == 0 {
		return "-"
	}
	return id.String()
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func describeClose(c *client.CloseInfo) string {
	s := fmt.Sprintf("code %d", c.Code)
	if c.Reason != "" {
		s += " " + c.Reason
	}
	if c.Err != nil {
		s += ": " + c.Err.Error()
	}
	return s
}

// parseID reads a snowflake argument; a malformed one is a usage error.
func parseID(what, arg string) (snowflake.ID, error) {
	id, err := snowflake.Parse(arg)
	if err != nil {
		return 0, usagef("%s %q: want a decimal id", what, arg)
	}
	return id, nil
}

func parseFID(arg string) (string, error) {
	fid, err := identity.ParseFID(arg)
	if err != nil {
		return "", usageError{err}
	}
	return fid.String(), nil
}

// idFlag is a flag holding a snowflake; unset is 0.
type idFlag struct{ id snowflake.ID }

func (f *idFlag) String() string {
	if f.id == 0 {
		return ""
	}
	return f.id.String()
}

func (f *idFlag) Set(s string) error {
	id, err := snowflake.Parse(s)
	if err != nil {
		return errors.New("want a decimal id")
	}
	f.id = id
	return nil
}

// durationFlag is a flag that remembers whether it was given, since 0 is a meaningful value.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string {
	if !f.set {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("negative duration")
	}
	f.d, f.set = d, true
	return nil
}

// listFlag collects the values of a repeatable flag.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

func (f *listFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}
