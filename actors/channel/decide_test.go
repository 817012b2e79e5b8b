package channel

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

const (
	chanID  = 7
	guildID = 3
	alice   = "alice@a.test"
	bob     = "bob@b.test"
)

var (
	t0     = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	sig64  = bytes.Repeat([]byte{0xAB}, 64)
	member = permissions.ViewChannel | permissions.SendMessages | permissions.ReadMessageHistory | permissions.AddReactions
	mod    = member | permissions.ManageMessages
	reader = permissions.ViewChannel | permissions.ReadMessageHistory
)

func by(fid string, p permissions.Set) By {
	return By{FID: fid, SessionID: "sess-" + fid[:1], At: t0, Perms: p}
}

func signed(content string, attachments ...string) Signed {
	return Signed{Content: content, Attachments: attachments, TimestampMS: t0.UnixMilli(), CertSerial: 9, Signature: sig64}
}

func send(fid, nonce string, proposed uint64, sg Signed) Send {
	return Send{By: by(fid, member), Signed: sg, GuildID: guildID, ProposedID: proposed, Nonce: nonce}
}

// created is the event of send(fid, nonce, _, signed(content)) stored as id.
func created(id uint64, fid, nonce, content string) *eventsv1.MessageCreated {
	return &eventsv1.MessageCreated{MessageId: id, GuildId: guildID, AuthorFid: fid, Content: content, Nonce: nonce,
		TimestampMs: t0.UnixMilli(), CertSerial: 9, Signature: sig64, SessionId: "sess-" + fid[:1]}
}

func ofAlice() Target { return Target{Exists: true, Author: alice} }
func ofBob() Target   { return Target{Exists: true, Author: bob} }

// history is every case's first events: messages 100 (alice), 101 (bob), 102 (alice).
var history = []proto.Message{created(100, alice, "n1", "hi"), created(101, bob, "n1", "yo"), created(102, alice, "n2", "sup")}

func pins(ids ...uint64) []proto.Message {
	var evs []proto.Message
	for _, id := range ids {
		evs = append(evs, &eventsv1.MessagePinned{MessageId: id})
	}
	return evs
}

func seq(from, n uint64) []uint64 {
	var ids []uint64
	for i := range n {
		ids = append(ids, from+i)
	}
	return ids
}

func with[T any](v T, f func(*T)) T {
	f(&v)
	return v
}

type decideCase struct {
	name    string
	given   []proto.Message // after history
	when    any
	then    []proto.Message
	reply   any
	wantErr error
}

func sendCases() []decideCase {
	return []decideCase{
		{name: "send", when: send(alice, "n9", 500, signed("hello")),
			then: []proto.Message{created(500, alice, "n9", "hello")}, reply: Sent{MessageID: 500}},
		{name: "send attachments only", when: send(alice, "n9", 500, signed("", "https://cdn.a.test/x.png", "http://b.test/y?z=1#f")),
			then: []proto.Message{with(created(500, alice, "n9", ""), func(e **eventsv1.MessageCreated) {
				(*e).Attachments = []string{"https://cdn.a.test/x.png", "http://b.test/y?z=1#f"}
			})}, reply: Sent{MessageID: 500}},
		{name: "id monotonic when proposed id is below the last", when: send(bob, "n9", 50, signed("late")),
			then: []proto.Message{created(103, bob, "n9", "late")}, reply: Sent{MessageID: 103}},
		{name: "id monotonic when proposed id equals the last", when: send(bob, "n9", 102, signed("same")),
			then: []proto.Message{created(103, bob, "n9", "same")}, reply: Sent{MessageID: 103}},
		{name: "duplicate nonce returns the stored id", when: send(alice, "n2", 900, signed("sup")),
			reply: Sent{MessageID: 102, Duplicate: true}},
		{name: "duplicate nonce answers even when the retry's content differs", when: send(alice, "n1", 900, signed("other")),
			reply: Sent{MessageID: 100, Duplicate: true}},
		{name: "duplicate nonce answers after the clock-skew window",
			when:  with(send(alice, "n1", 900, signed("hi")), func(s *Send) { s.At = t0.Add(time.Hour) }),
			reply: Sent{MessageID: 100, Duplicate: true}},
		{name: "same nonce by another author is a new message", given: []proto.Message{created(103, bob, "n3", "x")},
			when: send(alice, "n3", 104, signed("mine")), then: []proto.Message{created(104, alice, "n3", "mine")}, reply: Sent{MessageID: 104}},
		{name: "duplicate nonce still needs SEND_MESSAGES",
			when: with(send(alice, "n1", 900, signed("hi")), func(s *Send) { s.Perms = reader }), wantErr: ErrForbidden},
		{name: "send without SEND_MESSAGES", when: with(send(alice, "n9", 500, signed("x")), func(s *Send) { s.Perms = reader }), wantErr: ErrForbidden},
		{name: "4000 runes accepted", when: send(alice, "n9", 500, signed(strings.Repeat("é", 4000))),
			then: []proto.Message{created(500, alice, "n9", strings.Repeat("é", 4000))}, reply: Sent{MessageID: 500}},
		{name: "4001 runes refused", when: send(alice, "n9", 500, signed(strings.Repeat("é", 4001))), wantErr: ErrInvalid},
		{name: "empty content", when: send(alice, "n9", 500, signed("")), wantErr: ErrInvalid},
		{name: "whitespace content", when: send(alice, "n9", 500, signed(" \n\t\u00a0")), wantErr: ErrInvalid},
		{name: "NUL in content", when: send(alice, "n9", 500, signed("a\x00b")), wantErr: ErrInvalid},
		{name: "content not UTF-8", when: send(alice, "n9", 500, signed("a\xffb")), wantErr: ErrInvalid},
		{name: "11 attachments", when: send(alice, "n9", 500, signed("x", slices.Repeat([]string{"https://a.test/"}, 11)...)), wantErr: ErrInvalid},
		{name: "10 attachments", when: send(alice, "n9", 500, signed("", slices.Repeat([]string{"https://a.test/"}, 10)...)),
			then: []proto.Message{with(created(500, alice, "n9", ""), func(e **eventsv1.MessageCreated) {
				(*e).Attachments = slices.Repeat([]string{"https://a.test/"}, 10)
			})}, reply: Sent{MessageID: 500}},
		{name: "attachment ftp", when: send(alice, "n9", 500, signed("x", "ftp://a.test/f")), wantErr: ErrInvalid},
		{name: "attachment relative", when: send(alice, "n9", 500, signed("x", "/f.png")), wantErr: ErrInvalid},
		{name: "attachment without host", when: send(alice, "n9", 500, signed("x", "https:///f.png")), wantErr: ErrInvalid},
		{name: "attachment opaque", when: send(alice, "n9", 500, signed("x", "https:f.png")), wantErr: ErrInvalid},
		{name: "attachment with user info", when: send(alice, "n9", 500, signed("x", "https://bank.test@evil.test/")), wantErr: ErrInvalid},
		{name: "attachment too long", when: send(alice, "n9", 500, signed("x", "https://a.test/"+strings.Repeat("a", 2048))), wantErr: ErrInvalid},
		{name: "attachment with a control character", when: send(alice, "n9", 500, signed("x", "https://a.test/\n")), wantErr: ErrInvalid},
		{name: "empty nonce", when: send(alice, "", 500, signed("x")), wantErr: ErrInvalid},
		{name: "65-byte nonce", when: send(alice, strings.Repeat("n", 65), 500, signed("x")), wantErr: ErrInvalid},
		{name: "64-byte nonce", when: send(alice, strings.Repeat("n", 64), 500, signed("x")),
			then: []proto.Message{created(500, alice, strings.Repeat("n", 64), "x")}, reply: Sent{MessageID: 500}},
		{name: "non-ASCII nonce", when: send(alice, "nö", 500, signed("x")), wantErr: ErrInvalid},
		{name: "control character in nonce", when: send(alice, "n\t", 500, signed("x")), wantErr: ErrInvalid},
		{name: "timestamp 10 minutes ahead", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.TimestampMS += MaxClockSkew.Milliseconds() })),
			then:  []proto.Message{with(created(500, alice, "n9", "x"), func(e **eventsv1.MessageCreated) { (*e).TimestampMs += MaxClockSkew.Milliseconds() })},
			reply: Sent{MessageID: 500}},
		{name: "timestamp too far ahead", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.TimestampMS += MaxClockSkew.Milliseconds() + 1 })), wantErr: ErrInvalid},
		{name: "timestamp too far behind", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.TimestampMS -= MaxClockSkew.Milliseconds() + 1 })), wantErr: ErrInvalid},
		{name: "timestamp at the end of time", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.TimestampMS = 1<<63 - 1 })), wantErr: ErrInvalid},
		{name: "timestamp at the start of time", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.TimestampMS = -1 << 63 })), wantErr: ErrInvalid},
		{name: "short signature", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.Signature = sig64[:63] })), wantErr: ErrInvalid},
		{name: "no signature", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.Signature = nil })), wantErr: ErrInvalid},
		{name: "zero cert serial", when: send(alice, "n9", 500, with(signed("x"), func(s *Signed) { s.CertSerial = 0 })), wantErr: ErrInvalid},
		{name: "zero guild", when: with(send(alice, "n9", 500, signed("x")), func(s *Send) { s.GuildID = 0 }), wantErr: ErrInvalid},
		{name: "zero proposed id", when: send(alice, "n9", 0, signed("x")), wantErr: ErrInvalid},
		{name: "no author", when: with(send(alice, "n9", 500, signed("x")), func(s *Send) { s.FID = "" }), wantErr: ErrInvalid},
	}
}

func editCases() []decideCase {
	edit := func(fid string, p permissions.Set, id uint64, t Target, sg Signed) Edit {
		return Edit{By: by(fid, p), Signed: sg, MessageID: id, Target: t}
	}
	edited := &eventsv1.MessageEdited{MessageId: 100, Content: "hi!", Attachments: []string{"https://a.test/p"},
		TimestampMs: t0.UnixMilli(), CertSerial: 9, Signature: sig64, SessionId: "sess-a"}
	return []decideCase{
		{name: "edit", when: edit(alice, member, 100, ofAlice(), signed("hi!", "https://a.test/p")), then: []proto.Message{edited}},
		{name: "edit unknown", when: edit(alice, member, 100, Target{}, signed("hi!")), wantErr: ErrNotFound},
		{name: "edit id above the last, whatever the read model says", when: edit(alice, member, 103, ofAlice(), signed("hi!")), wantErr: ErrNotFound},
		{name: "edit someone else's", when: edit(alice, mod, 101, ofBob(), signed("hi!")), wantErr: ErrForbidden},
		{name: "edit without SEND_MESSAGES", when: edit(alice, reader, 100, ofAlice(), signed("hi!")), wantErr: ErrForbidden},
		{name: "edit to 4001 runes", when: edit(alice, member, 100, ofAlice(), signed(strings.Repeat("x", 4001))), wantErr: ErrInvalid},
		{name: "edit to nothing", when: edit(alice, member, 100, ofAlice(), signed(" ")), wantErr: ErrInvalid},
		{name: "edit with a stale timestamp", when: edit(alice, member, 100, ofAlice(), with(signed("a"), func(s *Signed) { s.TimestampMS -= time.Hour.Milliseconds() })), wantErr: ErrInvalid},
		{name: "edit unsigned", when: edit(alice, member, 100, ofAlice(), with(signed("a"), func(s *Signed) { s.Signature = nil })), wantErr: ErrInvalid},
	}
}

func deleteCases() []decideCase {
	del := func(fid string, p permissions.Set, id uint64, t Target) Delete {
		return Delete{By: by(fid, p), MessageID: id, Target: t}
	}
	bulk := func(p permissions.Set, ids []uint64, existing ...bool) BulkDelete {
		return BulkDelete{By: by(bob, p), MessageIDs: ids, Existing: existing}
	}
	return []decideCase{
		{name: "delete own", when: del(alice, member, 100, ofAlice()), then: []proto.Message{&eventsv1.MessageDeleted{MessageId: 100}}},
		{name: "delete own without any permission but VIEW_CHANNEL", when: del(alice, permissions.ViewChannel, 100, ofAlice()),
			then: []proto.Message{&eventsv1.MessageDeleted{MessageId: 100}}},
		{name: "delete another's", when: del(alice, member, 101, ofBob()), wantErr: ErrForbidden},
		{name: "moderator deletes another's", when: del(alice, mod, 101, ofBob()), then: []proto.Message{&eventsv1.MessageDeleted{MessageId: 101}}},
		{name: "delete unknown", when: del(alice, mod, 101, Target{}), wantErr: ErrNotFound},
		{name: "delete message zero", when: del(alice, mod, 0, ofAlice()), wantErr: ErrNotFound},
		{name: "bulk delete", when: bulk(mod, []uint64{100, 101, 102}, true, true, true),
			then: []proto.Message{&eventsv1.MessagesBulkDeleted{MessageIds: []uint64{100, 101, 102}}}},
		{name: "bulk delete leaves out missing ones", when: bulk(mod, []uint64{102, 101, 100, 999}, true, false, true, true),
			then: []proto.Message{&eventsv1.MessagesBulkDeleted{MessageIds: []uint64{102, 100}}}},
		{name: "bulk delete of nothing that exists", when: bulk(mod, []uint64{100, 101}, false, false), wantErr: ErrNotFound},
		{name: "bulk delete one", when: bulk(mod, []uint64{100}, true), wantErr: ErrInvalid},
		{name: "bulk delete 101", when: bulk(mod, seq(1, 101), slices.Repeat([]bool{true}, 101)...), wantErr: ErrInvalid},
		{name: "bulk delete 100", given: []proto.Message{created(300, bob, "n300", "x")},
			when: bulk(mod, seq(201, 100), slices.Repeat([]bool{true}, 100)...),
			then: []proto.Message{&eventsv1.MessagesBulkDeleted{MessageIds: seq(201, 100)}}},
		{name: "bulk delete duplicates", when: bulk(mod, []uint64{100, 100}, true, true), wantErr: ErrInvalid},
		{name: "bulk delete id zero", when: bulk(mod, []uint64{0, 100}, true, true), wantErr: ErrInvalid},
		{name: "bulk delete flags mismatch", when: bulk(mod, []uint64{100, 101}, true), wantErr: ErrInvalid},
		{name: "bulk delete without MANAGE_MESSAGES", when: bulk(member, []uint64{100, 101}, true, true), wantErr: ErrForbidden},
	}
}

func pinCases() []decideCase {
	pin := func(p permissions.Set, id uint64, t Target) Pin { return Pin{By: by(bob, p), MessageID: id, Target: t} }
	unpin := func(p permissions.Set, id uint64) Unpin { return Unpin{By: by(bob, p), MessageID: id} }
	fifty := append([]proto.Message{created(200, bob, "n200", "x")}, pins(seq(150, 50)...)...)
	return []decideCase{
		{name: "pin", when: pin(mod, 100, ofAlice()), then: []proto.Message{&eventsv1.MessagePinned{MessageId: 100}}},
		{name: "pin pinned is a no-op", given: pins(100), when: pin(mod, 100, ofAlice())},
		{name: "pin without MANAGE_MESSAGES", when: pin(member, 100, ofAlice()), wantErr: ErrForbidden},
		{name: "pin unknown", when: pin(mod, 100, Target{}), wantErr: ErrNotFound},
		{name: "pin the 51st", given: fifty, when: pin(mod, 100, ofAlice()), wantErr: ErrLimit},
		{name: "pin a pinned one at the limit is still a no-op", given: fifty, when: pin(mod, 150, ofAlice())},
		{name: "pin again after unpinning at the limit", given: append(fifty, &eventsv1.MessageUnpinned{MessageId: 150}),
			when: pin(mod, 100, ofAlice()), then: []proto.Message{&eventsv1.MessagePinned{MessageId: 100}}},
		{name: "pin again after a delete at the limit", given: append(fifty, &eventsv1.MessageDeleted{MessageId: 160}),
			when: pin(mod, 100, ofAlice()), then: []proto.Message{&eventsv1.MessagePinned{MessageId: 100}}},
		{name: "unpin", given: pins(100), when: unpin(mod, 100), then: []proto.Message{&eventsv1.MessageUnpinned{MessageId: 100}}},
		{name: "unpin not pinned", when: unpin(mod, 100), wantErr: ErrNotFound},
		{name: "unpin after the message was deleted", given: append(pins(100), &eventsv1.MessageDeleted{MessageId: 100}), when: unpin(mod, 100), wantErr: ErrNotFound},
		{name: "unpin after a bulk delete", given: append(pins(100, 101), &eventsv1.MessagesBulkDeleted{MessageIds: []uint64{101, 102}}),
			when: unpin(mod, 101), wantErr: ErrNotFound},
		{name: "unpin without MANAGE_MESSAGES", given: pins(100), when: unpin(member, 100), wantErr: ErrForbidden},
	}
}

func reactionCases() []decideCase {
	react := func(p permissions.Set, emoji string, t Target) React {
		return React{By: by(bob, p), MessageID: 100, Emoji: emoji, Target: t}
	}
	unreact := func(p permissions.Set, fid, emoji string, t Target) Unreact {
		return Unreact{By: by(bob, p), MessageID: 100, Emoji: emoji, FID: fid, Target: t}
	}
	added := func(emoji string) []proto.Message {
		return []proto.Message{&eventsv1.ReactionAdded{MessageId: 100, Fid: bob, Emoji: emoji}}
	}
	removed := func(fid string) []proto.Message {
		return []proto.Message{&eventsv1.ReactionRemoved{MessageId: 100, Fid: fid, Emoji: "👍"}}
	}
	on := func(f func(*Target)) Target { return with(ofAlice(), f) }
	return []decideCase{
		{name: "react", when: react(member, "👍", ofAlice()), then: added("👍")},
		{name: "react with a ZWJ sequence", when: react(member, "👩‍💻", ofAlice()), then: added("👩‍💻")},
		{name: "react with a custom emoji name", when: react(member, "party_parrot", ofAlice()), then: added("party_parrot")},
		{name: "react twice is a no-op", when: react(member, "👍", on(func(t *Target) { t.Reacted, t.Emoji, t.Distinct = true, true, 1 }))},
		{name: "join an emoji without ADD_REACTIONS", when: react(reader, "👍", on(func(t *Target) { t.Emoji, t.Distinct = true, 1 })), then: added("👍")},
		{name: "new emoji without ADD_REACTIONS", when: react(reader, "👍", ofAlice()), wantErr: ErrForbidden},
		{name: "react without READ_MESSAGE_HISTORY", when: react(member&^permissions.ReadMessageHistory, "👍", on(func(t *Target) { t.Emoji = true })), wantErr: ErrForbidden},
		{name: "21st distinct emoji", when: react(member, "👍", on(func(t *Target) { t.Distinct = MaxReactionKinds })), wantErr: ErrLimit},
		{name: "joining one of 20 emoji", when: react(member, "👍", on(func(t *Target) { t.Emoji, t.Distinct = true, MaxReactionKinds })), then: added("👍")},
		{name: "react to unknown", when: react(member, "👍", Target{}), wantErr: ErrNotFound},
		{name: "react with nothing", when: react(member, "", ofAlice()), wantErr: ErrInvalid},
		{name: "react with a space", when: react(member, "👍 ", ofAlice()), wantErr: ErrInvalid},
		{name: "react with a control character", when: react(member, "a\u0085", ofAlice()), wantErr: ErrInvalid},
		{name: "react with a non-UTF-8 emoji", when: react(member, "\xf0\x9f", ofAlice()), wantErr: ErrInvalid},
		{name: "react with 65 bytes", when: react(member, strings.Repeat("x", 65), ofAlice()), wantErr: ErrInvalid},
		{name: "unreact own", when: unreact(member, "", "👍", on(func(t *Target) { t.Reacted = true })), then: removed(bob)},
		{name: "unreact own, named", when: unreact(permissions.ViewChannel, bob, "👍", on(func(t *Target) { t.Reacted = true })), then: removed(bob)},
		{name: "unreact own that is not there is a no-op", when: unreact(member, "", "👍", ofAlice())},
		{name: "unreact another's", when: unreact(member, alice, "👍", on(func(t *Target) { t.Reacted = true })), wantErr: ErrForbidden},
		{name: "moderator unreacts another's", when: unreact(mod, alice, "👍", on(func(t *Target) { t.Reacted = true })), then: removed(alice)},
		{name: "unreact on unknown", when: unreact(member, "", "👍", Target{}), wantErr: ErrNotFound},
		{name: "unreact with a bad emoji", when: unreact(member, "", "a b", on(func(t *Target) { t.Reacted = true })), wantErr: ErrInvalid},
	}
}

func otherCases() []decideCase {
	return []decideCase{
		{name: "unknown command", when: "hello", wantErr: ErrInvalid},
		{name: "pointer command", when: &Pin{By: by(alice, member)}, wantErr: ErrInvalid},
	}
}

// TestDecide: given the events so far (after history), when a command arrives, then these
// events and this reply, or this error and no events. Every case also checks that Decide left
// the state alone and that its events apply.
func TestDecide(t *testing.T) {
	var cases []decideCase
	for _, f := range []func() []decideCase{sendCases, editCases, deleteCases, pinCases, reactionCases, otherCases} {
		cases = append(cases, f()...)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := replay(t, append(slices.Clone(history), c.given...)...)
			before := cloneState(s)
			evs, reply, err := Decide(s, c.when)
			if !reflect.DeepEqual(before, s) {
				t.Fatalf("Decide changed the state (-before +after):\n%s", cmp.Diff(before, s, stateOpts))
			}
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || len(evs) != 0 || reply != nil {
					t.Fatalf("got err %v, %d events, reply %v; want %v and nothing else", err, len(evs), reply, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.then, evs, protocmp.Transform()); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.reply, reply); diff != "" {
				t.Fatalf("reply (-want +got):\n%s", diff)
			}
			for _, ev := range evs {
				if _, err := Apply(s, ev); err != nil {
					t.Fatalf("apply %T: %v", ev, err)
				}
			}
		})
	}
}

// TestInvisibleChannel: without VIEW_CHANNEL every command is "not found", even one that would
// otherwise be allowed (deleting one's own message) or a no-op.
func TestInvisibleChannel(t *testing.T) {
	blind := by(alice, permissions.All&^permissions.ViewChannel)
	cmds := []any{
		Send{By: blind, Signed: signed("x"), GuildID: guildID, ProposedID: 500, Nonce: "n9"},
		Send{By: blind, Signed: signed("x"), GuildID: guildID, ProposedID: 500, Nonce: "n1"}, // a retry
		Edit{By: blind, Signed: signed("x"), MessageID: 100, Target: ofAlice()},
		Delete{By: blind, MessageID: 100, Target: ofAlice()},
		BulkDelete{By: blind, MessageIDs: []uint64{100, 101}, Existing: []bool{true, true}},
		Pin{By: blind, MessageID: 100, Target: ofAlice()},
		Unpin{By: blind, MessageID: 100},
		React{By: blind, MessageID: 100, Emoji: "👍", Target: ofAlice()},
		Unreact{By: blind, MessageID: 100, Emoji: "👍", Target: ofAlice()},
	}
	s := replay(t, history...)
	for _, cmd := range cmds {
		if evs, reply, err := Decide(s, cmd); !errors.Is(err, ErrNotFound) || evs != nil || reply != nil {
			t.Errorf("%T: err = %v, %d events, reply %v; want ErrNotFound", cmd, err, len(evs), reply)
		}
	}
}

// TestDecideDoesNotAliasCommands: the events own their slices, so a caller reusing its
// command's buffers cannot change what is appended or fanned out.
func TestDecideDoesNotAliasCommands(t *testing.T) {
	s := replay(t, history...)
	cmd := send(alice, "n9", 500, signed("x", "https://a.test/1"))
	cmd.Signature = bytes.Clone(sig64)
	evs, _, err := Decide(s, cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Attachments[0], cmd.Signature[0] = "https://evil.test/", 0
	ev := evs[0].(*eventsv1.MessageCreated)
	if ev.GetAttachments()[0] != "https://a.test/1" || ev.GetSignature()[0] != sig64[0] {
		t.Fatal("the event shares memory with the command")
	}
}

// TestDecideDoesNotMutate runs many commands against one state with pins and a full nonce
// window and checks it is unchanged after each.
func TestDecideDoesNotMutate(t *testing.T) {
	evs := slices.Clone(history)
	for i := range uint64(RecentNonces + 5) {
		evs = append(evs, created(200+i, bob, fmt.Sprint("b", i), "x"))
	}
	evs = append(evs, pins(seq(200, MaxPins)...)...)
	s := replay(t, evs...)
	before := cloneState(s)
	var cmds []any
	for _, c := range slices.Concat(sendCases(), editCases(), deleteCases(), pinCases(), reactionCases(), otherCases()) {
		cmds = append(cmds, c.when)
	}
	cmds = append(cmds, send(bob, "b1000", 1, signed("dup")), Unpin{By: by(bob, mod), MessageID: 210},
		BulkDelete{By: by(bob, mod), MessageIDs: seq(200, 100), Existing: slices.Repeat([]bool{true}, 100)})
	for _, cmd := range cmds {
		_, _, _ = Decide(s, cmd)
		if !reflect.DeepEqual(before, s) {
			t.Fatalf("Decide(%T) changed the state (-before +after):\n%s", cmd, cmp.Diff(before, s, stateOpts))
		}
	}
}

func TestApplyRefusesUnknownEvents(t *testing.T) {
	if _, err := Apply(Initial(chanID), &eventsv1.ChannelState{}); err == nil {
		t.Fatal("Apply accepted a ChannelState as an event")
	}
}

// TestNonceWindow: the window holds the last RecentNonces messages, oldest out first.
func TestNonceWindow(t *testing.T) {
	s := Initial(chanID)
	apply := func(ev proto.Message) {
		t.Helper()
		if _, err := Apply(s, ev); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(RecentNonces) {
		apply(created(i+1, alice, fmt.Sprint("n", i), "x"))
	}
	if id, ok := s.recent.lookup(alice, "n0"); !ok || id != 1 {
		t.Fatalf("n0 = %d, %v; want 1 while the window is exactly full", id, ok)
	}
	apply(created(RecentNonces+1, alice, "new", "x"))
	if _, ok := s.recent.lookup(alice, "n0"); ok {
		t.Fatal("n0 still remembered after RecentNonces newer messages")
	}
	if id, ok := s.recent.lookup(alice, "n1"); !ok || id != 2 {
		t.Fatalf("n1 = %d, %v; want 2", id, ok)
	}
	if len(s.recent.entries) != RecentNonces || len(s.recent.index) != RecentNonces {
		t.Fatalf("window holds %d entries, %d keys; want %d", len(s.recent.entries), len(s.recent.index), RecentNonces)
	}
	// A nonce reused after it left the window is remembered again; when its older twin would
	// leave (it already has), the newer one stays.
	apply(created(RecentNonces+2, alice, "n0", "again"))
	if id, ok := s.recent.lookup(alice, "n0"); !ok || id != RecentNonces+2 {
		t.Fatalf("reused n0 = %d, %v", id, ok)
	}
	// A stream holding a key twice inside the window (written by older code) keeps the newer id
	// when the older entry leaves.
	w := nonceWindow{}
	w.add(bob, "k", 1)
	w.add(bob, "k", 2)
	for i := range uint64(RecentNonces - 1) {
		w.add(bob, fmt.Sprint("f", i), 10+i)
	}
	if id, ok := w.lookup(bob, "k"); !ok || id != 2 {
		t.Fatalf("twin k = %d, %v; want 2", id, ok)
	}
	// Messages without a nonce take no room.
	w2 := nonceWindow{}
	w2.add(bob, "", 1)
	if len(w2.entries) != 0 {
		t.Fatal("an empty nonce was remembered")
	}
}

// TestSnapshotRoundTrip: Snapshot, the wire and Restore give back an equal state, nonce
// window included, and the restored state decides the same.
func TestSnapshotRoundTrip(t *testing.T) {
	evs := slices.Clone(history)
	for i := range uint64(RecentNonces + 100) { // past the window, so some nonces were forgotten
		evs = append(evs, created(200+i, bob, fmt.Sprint("b", i), "x"))
	}
	evs = append(evs, pins(205, 100, 300)...)
	evs = append(evs, &eventsv1.MessageDeleted{MessageId: 100})
	for _, s := range []*State{Initial(chanID), replay(t, history...), replay(t, evs...)} {
		snap, err := Snapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := proto.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		back := new(eventsv1.ChannelState)
		if err := proto.Unmarshal(wire, back); err != nil {
			t.Fatal(err)
		}
		got, err := Restore(back)
		if err != nil {
			t.Fatal(err)
		}
		got.ID = s.ID
		if diff := cmp.Diff(s, got, stateOpts, emptyIsNil); diff != "" {
			t.Fatalf("restored state (-want +got):\n%s", diff)
		}
		for _, cmd := range []any{send(bob, "b0", 1, signed("x")), send(bob, "b1123", 1, signed("x")), send(alice, "n1", 1, signed("x"))} {
			_, r1, e1 := Decide(s, cmd)
			_, r2, e2 := Decide(got, cmd)
			if r1 != r2 || (e1 == nil) != (e2 == nil) {
				t.Fatalf("%v: original decides %v/%v, restored %v/%v", cmd, r1, e1, r2, e2)
			}
		}
	}
	s := replay(t, evs...)
	if s.Count != uint64(len(history)+RecentNonces+100) || s.LastID != 200+RecentNonces+99 || !slices.Equal(s.Pinned, []uint64{205, 300}) {
		t.Fatalf("state: count %d, last %d, pinned %v", s.Count, s.LastID, s.Pinned)
	}
}

func TestRestoreRefuses(t *testing.T) {
	for name, m := range map[string]proto.Message{
		"wrong type":    &eventsv1.MessageDeleted{},
		"nil":           nil,
		"typed nil":     (*eventsv1.ChannelState)(nil),
		"too many pins": &eventsv1.ChannelState{Pinned: seq(1, MaxPins+1)},
	} {
		if _, err := Restore(m); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
}

func replay(t *testing.T, evs ...proto.Message) *State {
	t.Helper()
	s := Initial(chanID)
	for _, ev := range evs {
		var err error
		if s, err = Apply(s, ev); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// cloneState is a deep copy written independently of Snapshot/Restore, so the mutation checks
// do not depend on the code they check.
func cloneState(s *State) *State {
	c := *s
	c.Pinned = slices.Clone(s.Pinned)
	c.recent.entries = slices.Clone(s.recent.entries)
	c.recent.index = maps.Clone(s.recent.index)
	return &c
}

var (
	stateOpts  = cmp.AllowUnexported(State{}, nonceWindow{}, recentNonce{}, nonceKey{})
	emptyIsNil = cmp.FilterValues(func(a, b any) bool { return isEmpty(a) && isEmpty(b) }, cmp.Comparer(func(_, _ any) bool { return true }))
)

// isEmpty: a nil or empty slice or map, which a snapshot round trip does not tell apart.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case []uint64:
		return len(x) == 0
	case []recentNonce:
		return len(x) == 0
	case map[nonceKey]uint64:
		return len(x) == 0
	}
	return false
}
