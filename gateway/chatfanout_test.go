package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors/channel"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// recorder is ChatSessions that records what each actor got; everyone is online.
type recorder struct {
	mu  sync.Mutex
	got map[string][]session.Dispatch
}

func (r *recorder) Deliver(fid string, d session.Dispatch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[fid] = append(r.got[fid], d)
}

func (r *recorder) Online(string) bool { return true }

// types lists what fid got, as "TYPE" or "TYPE/part" for parts after the first.
func (r *recorder) types(fid string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.got[fid] {
		t := d.Type
		if d.Part > 0 {
			t = fmt.Sprintf("%s/%d", t, d.Part)
		}
		out = append(out, t)
	}
	return out
}

const (
	gid     = 100 // guild, and its @everyone role
	general = 101
	secret  = 102
	crew    = 103 // a role that may view secret
)

func appendTo(t *testing.T, s events.Store, stream string, msgs ...proto.Message) events.Position {
	t.Helper()
	evs := make([]events.Event, len(msgs))
	for i, m := range msgs {
		ev, err := events.NewEvent(m)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	res, err := s.Append(context.Background(), stream, events.Any{}, evs...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// TestChatFanout: dispatches reach exactly the actors who may see them, in log order, with
// parts for events that mean several things to one actor; READY and Replay agree with it.
func TestChatFanout(t *testing.T) {
	store := memory.New(nil)
	rec := &recorder{got: map[string][]session.Dispatch{}}
	fan := NewChatEvents(store, nil)
	fan.Sessions = rec
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = fan.Run(ctx) }()
	if _, _, err := fan.Ready(ctx, "nobody@a.test"); err != nil { // live from here on
		t.Fatal(err)
	}

	gs := guild.Stream(gid)
	appendTo(t, store, gs,
		&eventsv1.GuildCreated{GuildId: gid, Name: "g", OwnerFid: "owner@a.test"},
		&eventsv1.RoleCreated{RoleId: gid, Name: "@everyone", Permissions: uint64(guild.EveryonePerms)},
		&eventsv1.ChannelCreated{ChannelId: general, Type: eventsv1.ChannelType_CHANNEL_TYPE_TEXT, Name: "general"},
		&eventsv1.MemberJoined{Fid: "owner@a.test"},
		&eventsv1.RoleCreated{RoleId: crew, Name: "crew", Position: 1},
		&eventsv1.ChannelCreated{ChannelId: secret, Type: eventsv1.ChannelType_CHANNEL_TYPE_TEXT, Name: "secret", Position: 1,
			Overwrites: []*eventsv1.ChannelOverwrite{{RoleId: gid, Deny: uint64(permissions.ViewChannel)}, {RoleId: crew, Allow: uint64(permissions.ViewChannel)}}},
		&eventsv1.MemberJoined{Fid: "bob@b.test", InviteCode: "x"},
		&eventsv1.MemberJoined{Fid: "carol@a.test", InviteCode: "x"},
	)
	wait := func(pos events.Position) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		if err := fan.WaitFor(wctx, pos); err != nil {
			t.Fatal(err)
		}
	}
	ready := appendTo(t, store, gs, &eventsv1.MemberRolesChanged{Fid: "bob@b.test", RoleIds: []uint64{crew}})
	wait(ready)

	// READY for carol: the guild with general only.
	guilds, cursor, err := fan.Ready(ctx, "carol@a.test")
	if err != nil || cursor < ready {
		t.Fatalf("READY at %d (%v), want at least %d", cursor, err, ready)
	}
	var gv []guildJSON
	if err := json.Unmarshal(guilds, &gv); err != nil || len(gv) != 1 || len(gv[0].Channels) != 1 || gv[0].Channels[0].Name != "general" {
		t.Fatalf("carol's READY guilds: %s (%v)", guilds, err)
	}

	cs := channel.Stream(secret)
	before := appendTo(t, store, gs, &eventsv1.MemberNicknameChanged{Fid: "carol@a.test", Nickname: "c"})
	last := appendTo(t, store, cs,
		&eventsv1.MessageCreated{MessageId: 1, GuildId: gid, AuthorFid: "bob@b.test", Content: "psst", Nonce: "n"},
		&eventsv1.ReactionAdded{MessageId: 1, Fid: "owner@a.test", Emoji: "x"},
	)
	last = max(last, appendTo(t, store, gs, &eventsv1.MemberBanned{Fid: "carol@a.test"},
		&eventsv1.InviteCreated{Code: "abc", ChannelId: general, InviterFid: "owner@a.test"}))
	wait(last)
	// A guild event counts as applied before its dispatches leave (READY holds its effect), so
	// the last one may still be on its way.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got := rec.types("owner@a.test"); got[len(got)-1] == "INVITE_CREATE" {
			break
		}
	}

	if got, want := rec.types("carol@a.test"), []string{"GUILD_CREATE", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_UPDATE", "GUILD_DELETE"}; !slices.Equal(got, want) {
		t.Errorf("carol got %v, want %v (nothing of the secret channel)", got, want)
	}
	wantBob := []string{"GUILD_CREATE", "GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "CHANNEL_CREATE/1",
		"GUILD_MEMBER_UPDATE", "MESSAGE_CREATE", "MESSAGE_REACTION_ADD", "GUILD_MEMBER_REMOVE"}
	if got := rec.types("bob@b.test"); !slices.Equal(got, wantBob) {
		t.Errorf("bob got %v\nwant %v", got, wantBob)
	}
	// The owner sees the ban twice over: a member removed, and a ban (BAN_MEMBERS).
	if got := rec.types("owner@a.test"); !slices.Contains(got, "GUILD_BAN_ADD/1") || got[len(got)-1] != "INVITE_CREATE" {
		t.Errorf("owner got %v, want GUILD_BAN_ADD as the ban's second part, and INVITE_CREATE (MANAGE_GUILD)", got)
	}
	var prev events.Position
	for _, d := range rec.got["bob@b.test"] {
		if d.Cursor < prev {
			t.Fatalf("bob's dispatches out of log order: %d after %d", d.Cursor, prev)
		}
		prev = d.Cursor
	}

	// Replay after `before` gives bob the same events as live (minus the live-only channel diff).
	ds, truncated, err := fan.replay(ctx, "bob@b.test", before, 100, 1000)
	if err != nil || truncated {
		t.Fatal(err, truncated)
	}
	var replayed []string
	for _, d := range ds {
		replayed = append(replayed, d.Type)
	}
	if want := []string{"MESSAGE_CREATE", "MESSAGE_REACTION_ADD", "GUILD_MEMBER_REMOVE"}; !slices.Equal(replayed, want) {
		t.Errorf("bob's replay after %d: %v, want %v", before, replayed, want)
	}
	if _, truncated, _ := fan.replay(ctx, "bob@b.test", 0, 2, 1000); !truncated {
		t.Error("a replay over its limit is not truncated")
	}
	if _, truncated, _ := fan.replay(ctx, "bob@b.test", 0, 100, 3); !truncated {
		t.Error("a replay over its scan bound is not truncated")
	}
	if d := rec.got["bob@b.test"][5]; !strings.Contains(string(d.Data), `"content":"psst"`) {
		t.Errorf("MESSAGE_CREATE payload %s", d.Data)
	}
}
