package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// groupMember is one session in the group tests: its SDK state and a pump that feeds every
// dispatch of its gateway through MLS.Handle.
type groupMember struct {
	name   string
	s      *Session
	ch     *Chat
	m      *MLS
	events chan GroupEvent
	errs   chan error
	gate   sync.Mutex // held by a test to stop the member from processing dispatches
}

func (gm *groupMember) pump(ctx context.Context, g *Gateway) {
	for ev := range g.Events() {
		if ev.Dispatch == nil {
			continue
		}
		gm.gate.Lock()
		evs, err := gm.m.Handle(ctx, ev.Dispatch)
		gm.gate.Unlock()
		if err != nil {
			gm.errs <- err
		}
		for _, e := range evs {
			gm.events <- e
		}
	}
}

// await returns the first group event that matches, failing on a pump error or after 20 s.
func (gm *groupMember) await(t *testing.T, what string, match func(GroupEvent) bool) GroupEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-gm.events:
			if match(e) {
				return e
			}
		case err := <-gm.errs:
			t.Fatalf("%s, waiting for %s: %v", gm.name, what, err)
		case <-timeout:
			t.Fatalf("%s: no %s within 20 s", gm.name, what)
		}
	}
}

// countingTransport counts answers by status for commit posts.
type countingTransport struct {
	conflicts atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/commits") && resp.StatusCode == http.StatusConflict {
		c.conflicts.Add(1)
	}
	return resp, err
}

// TestMessagingGroups runs DMs and groups end to end on one server, every member an SDK session
// with its MLS state on disk: a DM both ways (and its refusal of a third actor), a group of five,
// two members committing in the same epoch (one wins, the other catches up and commits after),
// a removal after which the removed member cannot read, a new device that asks to join and
// whose arrival every member sees as NEW_DEVICE, and a scan of the server's data dir that finds
// none of the plaintexts (and does find a guild message's, so the scan can see).
func TestMessagingGroups(t *testing.T) {
	data := t.TempDir()
	base := startTestServer(t, "-data-dir", data, "-domain", "a.test")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	transport := &countingTransport{}
	c, err := New(base, Options{Dir: t.TempDir(), HTTP: &http.Client{Transport: transport, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	join := func(name, session string, register bool) *groupMember {
		t.Helper()
		s, ch, m := mlsLogin(t, ctx, c, name, session, register, 5, ChatOptions{})
		return connectMember(t, ctx, c, s, ch, m)
	}
	alice, bob, carol, dave, erin := join("alice", "laptop", true), join("bob", "desk", true), join("carol", "desk", true), join("dave", "desk", true), join("erin", "desk", true)
	fid := func(gm *groupMember) identity.FID { return gm.s.FID }
	const secret = "PLAINTEXT-MARKER-7f3a"
	message := func(id snowflake.ID, from *groupMember, text string, to ...*groupMember) {
		t.Helper()
		if _, err := from.m.Send(ctx, id, []byte(text)); err != nil {
			t.Fatalf("%s sends %q: %v", from.name, text, err)
		}
		for _, gm := range to {
			e := gm.await(t, "message "+text, func(e GroupEvent) bool { return e.Type == GroupMessage && e.Group == id })
			if string(e.Plaintext) != text || e.SenderFID != from.s.FID.String() || e.SenderSession != from.s.SessionID {
				t.Fatalf("%s got %+v, want %q from %s", gm.name, e, text, from.name)
			}
		}
	}

	// A DM, both ways.
	dm, err := alice.m.CreateGroup(ctx, GroupDM, "", []identity.FID{fid(bob)})
	if err != nil {
		t.Fatal(err)
	}
	bob.await(t, "the DM's Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined && e.Group == dm.ID })
	message(dm.ID, alice, "hello bob "+secret, bob)
	message(dm.ID, bob, "hello alice "+secret, alice)
	// A message posted twice (a resend after a lost answer) is stored once, under one id.
	alice.gate.Lock()
	ag, err := alice.m.MLSGroup(dm.ID)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := ag.Encrypt([]byte("only once " + secret))
	alice.gate.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	var first, again struct {
		ID snowflake.ID `json:"id"`
	}
	body := map[string]string{"message": base64.RawURLEncoding.EncodeToString(twice)}
	if err := alice.ch.write(ctx, "POST", "/groups/"+dm.ID.String()+"/messages", body, &first); err != nil {
		t.Fatal(err)
	}
	if err := alice.ch.write(ctx, "POST", "/groups/"+dm.ID.String()+"/messages", body, &again); err != nil || again.ID != first.ID {
		t.Fatalf("the resend: %v, id %s, first %s", err, again.ID, first.ID)
	}
	bob.await(t, "the message sent twice", func(e GroupEvent) bool { return e.Type == GroupMessage && e.MessageID == first.ID })
	message(dm.ID, alice, "after the resend "+secret, bob) // the next event bob sees: no second copy
	var api *APIError
	if err := alice.m.Add(ctx, dm.ID, fid(carol)); !errors.As(err, &api) || api.Status != 403 || api.Code != "P2_CHAT_FORBIDDEN" {
		t.Fatalf("adding a third actor to a DM: %v", err)
	}
	alice.m.CatchUp(ctx, dm.ID) // the refused commit was discarded; nothing to catch up, but it must not break

	// A group of five.
	five, err := alice.m.CreateGroup(ctx, GroupGroup, "five", []identity.FID{fid(bob), fid(carol), fid(dave), fid(erin)})
	if err != nil {
		t.Fatal(err)
	}
	everyone := []*groupMember{bob, carol, dave, erin}
	for _, gm := range everyone {
		gm.await(t, "the group's Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined && e.Group == five.ID })
	}
	message(five.ID, alice, "to the five "+secret, everyone...)
	message(five.ID, dave, "dave here "+secret, alice, bob, carol, erin)

	// Two members commit in the same epoch. Carol is held so that she has not seen bob's commit
	// when she makes hers: the server takes bob's, refuses carol's, and her SDK catches up and
	// commits in the next epoch.
	carol.gate.Lock()
	if err := bob.m.Update(ctx, five.ID); err != nil {
		t.Fatal(err)
	}
	message(five.ID, dave, "while carol waits "+secret, alice, bob, erin)
	before := transport.conflicts.Load()
	if err := carol.m.Update(ctx, five.ID); err != nil {
		t.Fatalf("carol's update after losing the epoch: %v", err)
	}
	carol.gate.Unlock()
	// Her SDK read dave's message while catching up; it still reaches her, once.
	if e := carol.await(t, "dave's message read during her catch-up", func(e GroupEvent) bool { return e.Type == GroupMessage }); string(e.Plaintext) != "while carol waits "+secret {
		t.Fatalf("carol's first message after the race: %q", e.Plaintext)
	}
	if n := transport.conflicts.Load() - before; n != 1 {
		t.Fatalf("%d epoch conflicts for carol's commit, want exactly 1", n)
	}
	for _, gm := range []*groupMember{alice, dave, erin} { // bob's came before dave's message
		gm.await(t, "carol's update", func(e GroupEvent) bool { return e.Type == GroupCommit && e.SenderFID == carol.s.FID.String() })
	}
	bob.await(t, "carol's update", func(e GroupEvent) bool { return e.Type == GroupCommit && e.SenderFID == carol.s.FID.String() })
	sameEpoch(t, five.ID, alice, bob, carol, dave, erin)
	message(five.ID, carol, "after the race "+secret, alice, bob, dave, erin)

	// The owner removes erin, who learns it and cannot read what follows.
	if err := alice.m.Remove(ctx, five.ID, fid(erin)); err != nil {
		t.Fatal(err)
	}
	if e := erin.await(t, "her removal", func(e GroupEvent) bool { return e.Type == GroupCommit }); !e.Removed {
		t.Fatalf("erin's event for her removal: %+v", e)
	}
	// The list of one's groups follows: bob has both, erin only what she is still in (none).
	if list, err := bob.m.Groups(ctx); err != nil || len(list) != 2 || list[0] != (GroupRef{dm.ID, GroupDM}) || list[1] != (GroupRef{five.ID, GroupGroup}) {
		t.Fatalf("bob's groups: %+v %v", list, err)
	}
	if list, err := erin.m.Groups(ctx); err != nil || len(list) != 0 {
		t.Fatalf("erin's groups after her removal: %+v %v", list, err)
	}
	message(five.ID, alice, "without erin "+secret, bob, carol, dave)
	var page struct {
		Entries []groupEntry `json:"entries"`
	}
	if err := bob.ch.get(ctx, "/groups/"+five.ID.String()+"/log", nil, &page); err != nil {
		t.Fatal(err)
	}
	last := page.Entries[len(page.Entries)-1]
	ct, _ := base64.RawURLEncoding.DecodeString(last.Message)
	if last.Type != "MLS_MESSAGE" || len(ct) == 0 {
		t.Fatalf("last log entry %+v", last)
	}
	eg, err := erin.m.MLSGroup(five.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eg.Process(ct); err == nil {
		t.Fatal("erin decrypted a message sent after her removal")
	}
	if err := erin.ch.get(ctx, "/groups/"+five.ID.String()+"/log", nil, &page); !errors.As(err, &api) || api.Status != 404 {
		t.Fatalf("erin reads the group's log after her removal: %v", err)
	}

	// Bob's new phone asks to join; the members' SDKs accept a member's new device by default
	// (all four try, one commit wins, the others find it done); everyone sees NEW_DEVICE.
	phone := join("bob", "phone", false)
	if err := phone.m.RequestJoin(ctx, five.ID, 1); err != nil {
		t.Fatal(err)
	}
	req := alice.await(t, "the join request", func(e GroupEvent) bool { return e.Type == GroupJoinRequest })
	if req.FID != "bob@a.test" || req.Session != "phone" {
		t.Fatalf("join request %+v", req)
	}
	for _, gm := range []*groupMember{alice, bob, carol, dave} {
		e := gm.await(t, "NEW_DEVICE", func(e GroupEvent) bool { return e.Type == GroupNewDevice })
		if e.FID != "bob@a.test" || e.Session != "phone" || e.Group != five.ID {
			t.Fatalf("%s: NEW_DEVICE %+v", gm.name, e)
		}
	}
	phone.await(t, "the phone's Welcome", func(e GroupEvent) bool { return e.Type == GroupJoined && e.Group == five.ID })
	message(five.ID, alice, "hello phone "+secret, phone, bob, carol, dave)
	sameEpoch(t, five.ID, alice, bob, carol, dave, phone)

	// None of it is in the server's files; a guild message, stored in the clear, is.
	const clear = "CLEARTEXT-CONTROL-22b1"
	guild, err := alice.ch.CreateGuild(ctx, NewGuild{Name: "control"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ch.Send(ctx, guild.Channels[0].ID, clear, SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if !dirContains(t, data, clear) {
		t.Fatal("the scan cannot find a guild message's plaintext: it proves nothing")
	}
	if dirContains(t, data, secret) {
		t.Fatal("the server's data dir holds a group message's plaintext")
	}
}

// sameEpoch waits until every member's MLS group is at the same epoch as the first, then checks
// that their epoch authenticators agree.
func sameEpoch(t *testing.T, id snowflake.ID, gms ...*groupMember) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var auth [][]byte
		var epochs []uint64
		for _, gm := range gms {
			gm.gate.Lock()
			g, err := gm.m.MLSGroup(id)
			if err != nil {
				gm.gate.Unlock()
				t.Fatal(err)
			}
			epochs = append(epochs, g.Epoch())
			auth = append(auth, g.EpochAuthenticator())
			gm.gate.Unlock()
		}
		same := true
		for i := range auth {
			same = same && epochs[i] == epochs[0] && bytes.Equal(auth[i], auth[0])
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members disagree: epochs %v", epochs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dirContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Contains(b, []byte(s))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
