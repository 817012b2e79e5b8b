package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
	"github.com/polyproto-chat/server/snowflake"
)

// mlsCommands are the end-to-end encrypted DMs and groups (PROTOCOL.md section 7): KeyPackages,
// and groups whose messages only their members' devices can read. The MLS state is the SDK's,
// kept with the session (--dir); what the CLI adds (the names of the session's groups and DMs,
// learnt from the server's list) is in mlsstate.go.
func mlsCommands() []command {
	return []command{
		{name: "keys upload", synopsis: "[-n N]", min: 0, max: 0, setup: (*Main).keysUpload,
			summary: "make N one-time KeyPackages and a last-resort one, keep their secrets, upload them; prints the stock"},
		{name: "keys stock", synopsis: "", min: 0, max: 0, setup: (*Main).keysStock,
			summary: "print the KeyPackages the server holds for this session: one_time, last_resort, last_resort_used, low"},
		{name: "dm send", synopsis: "FID TEXT...", min: 2, max: math.MaxInt, setup: (*Main).dmSend,
			summary: "encrypt and send TEXT to FID, starting a DM with FID if there is none; prints the group and message ids" + autoKeys},
		{name: "dm read", synopsis: "FID", min: 1, max: 1, setup: (*Main).dmRead,
			summary: "print what arrived in the DM with FID since the last read: time sender: text, and * notices" + autoKeys},
		{name: "group create", synopsis: "NAME FID...", min: 2, max: 15, setup: (*Main).groupCreate,
			summary: "make an encrypted group with 1-14 other actors and add all their devices; prints it"},
		{name: "group list", synopsis: "", min: 0, max: 0, setup: (*Main).groupList,
			summary: "list the DMs and groups this session is in: id, kind, name (a DM's: the other actor)"},
		{name: "group info", synopsis: "GROUP", min: 1, max: 1, setup: (*Main).groupInfo,
			summary: "print GROUP (an id, or a name from group list) as the server describes it: members, devices, epoch"},
		{name: "group add", synopsis: "GROUP FID...", min: 2, max: math.MaxInt, setup: (*Main).groupAdd,
			summary: "add every device of these actors to GROUP in one commit"},
		{name: "group remove", synopsis: "GROUP FID", min: 2, max: 2, setup: (*Main).groupRemove,
			summary: "remove every device of FID from GROUP"},
		{name: "group send", synopsis: "GROUP TEXT...", min: 2, max: math.MaxInt, setup: (*Main).groupSend,
			summary: "encrypt and send a message to GROUP (put -- before text that starts with -); prints its id" + autoKeys},
		{name: "group read", synopsis: "GROUP", min: 1, max: 1, setup: (*Main).groupRead,
			summary: "print what arrived in GROUP since the last read: time sender: text, and * notices (joins, commits, new devices)" + autoKeys},
	}
}

// autoKeys ends the summary of the commands that upload KeyPackages when the stock is low.
const autoKeys = "; uploads KeyPackages first if the session has few left"

// Auto-uploads: this many one-time KeyPackages when the server says the stock is low (under 10
// one-time, or no unused last-resort one); the server holds at most 100.
const (
	defaultKeyPackages = 20
	maxKeyPackages     = 100
)

func (m *Main) keysUpload(fs *flag.FlagSet) runFunc {
	n := fs.Int("n", defaultKeyPackages, "`N` one-time KeyPackages, 0-100 (the server holds at most 100)")
	return func(ctx context.Context, args []string) error {
		if *n < 0 || *n > maxKeyPackages {
			return usagef("-n %d: want 0 to %d", *n, maxKeyPackages)
		}
		ms, err := m.mlsSession()
		if err != nil {
			return err
		}
		stock, err := ms.ml.UploadKeyPackages(ctx, *n, true)
		if err != nil {
			return err
		}
		m.printStock(stock)
		return nil
	}
}

func (m *Main) keysStock(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		ms, err := m.mlsSession()
		if err != nil {
			return err
		}
		stock, err := ms.ml.Stock(ctx)
		if err != nil {
			return err
		}
		m.printStock(stock)
		return nil
	}
}

func (m *Main) printStock(s client.KeyPackageStock) {
	m.record("one_time", strconv.Itoa(s.OneTime), "last_resort", strconv.FormatBool(s.LastResort),
		"last_resort_used", strconv.FormatBool(s.LastResortUsed), "low", strconv.FormatBool(s.Low))
}

// ensureKeys uploads KeyPackages when the server says the session's stock is low, so that a
// newcomer's first DM works without p2chat keys upload, and others can keep adding it.
func (ms *mlsSession) ensureKeys(ctx context.Context) error {
	stock, err := ms.ml.Stock(ctx)
	if err != nil || !stock.Low {
		return err
	}
	n := 0
	if stock.OneTime < defaultKeyPackages {
		n = min(defaultKeyPackages, maxKeyPackages-stock.OneTime)
	}
	_, err = ms.ml.UploadKeyPackages(ctx, n, true)
	return err
}

// openForWriting is mlsSession with the KeyPackage check of the commands that send or read.
func (m *Main) openForWriting(ctx context.Context) (*mlsSession, error) {
	ms, err := m.mlsSession()
	if err != nil {
		return nil, err
	}
	if err := ms.ensureKeys(ctx); err != nil {
		return nil, fmt.Errorf("uploading KeyPackages: %w", err)
	}
	return ms, nil
}

func (m *Main) dmSend(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		peer, err := parseFID(args[0])
		if err != nil {
			return err
		}
		text := strings.Join(args[1:], " ")
		ms, err := m.openForWriting(ctx)
		if err != nil {
			return err
		}
		if peer == ms.me() {
			return usagef("%s is you: a DM needs another actor", peer)
		}
		group, msg, err := ms.dmSend(ctx, peer, text)
		if err == nil {
			m.record("group", group.String(), "id", msg.String())
		}
		return errors.Join(err, ms.save())
	}
}

// dmSend sends text in the oldest DM with peer this session knows, after asking the server for
// one the peer started, else in a new one; it returns the DM's id and the message's.
func (ms *mlsSession) dmSend(ctx context.Context, peer, text string) (group, msg snowflake.ID, err error) {
	dms := ms.dmsWith(peer)
	if len(dms) == 0 {
		// The peer may have started one that this session has not seen yet.
		if _, err := ms.refresh(ctx); err != nil {
			return 0, 0, err
		}
		dms = ms.dmsWith(peer)
	}
	fid, _ := identity.ParseFID(peer)
	if len(dms) == 0 {
		info, err := ms.ml.CreateGroup(ctx, client.GroupDM, "", []identity.FID{fid})
		if info != nil {
			ms.learn(info)
		}
		if err != nil {
			return 0, 0, hintKeyPackages(err, peer)
		}
		dms = []snowflake.ID{info.ID}
	}
	id := dms[0]
	if err := ms.catchUpToWrite(ctx, id); err != nil {
		return 0, 0, err
	}
	if !ms.inGroup(id) {
		// Named in the peer's DM, but not added: this session had no KeyPackages then.
		return 0, 0, fmt.Errorf("%s started DM %s, but this session is not in it yet: their next dm send adds it", peer, id)
	}
	// A DM whose peer could not be added when it was made (no KeyPackages then) gets them now.
	if g, err := ms.ml.MLSGroup(id); err == nil && !slices.ContainsFunc(g.Members(), func(mem mls.Member) bool { return mem.Credential.FID == peer }) {
		if err := ms.ml.Add(ctx, id, fid); err != nil {
			return 0, 0, hintKeyPackages(err, peer)
		}
	}
	msg, err = ms.ml.Send(ctx, id, []byte(text))
	ms.keepUnread(ctx, id)
	return id, msg, err
}

// hintKeyPackages says what to do when an actor has no KeyPackages to be added with.
func hintKeyPackages(err error, who ...string) error {
	var api *client.APIError
	if errors.As(err, &api) && api.Code == "P2_MLS_NO_KEY_PACKAGES" {
		return fmt.Errorf("%w (%s must upload KeyPackages first: p2chat keys upload, or any dm or group send or read)", err, strings.Join(who, ", "))
	}
	return err
}

func (m *Main) dmRead(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		peer, err := parseFID(args[0])
		if err != nil {
			return err
		}
		ms, err := m.openForWriting(ctx)
		if err != nil {
			return err
		}
		if _, err := ms.refresh(ctx); err != nil {
			return errors.Join(err, ms.save())
		}
		dms := ms.dmsWith(peer)
		if len(dms) == 0 {
			return errors.Join(fmt.Errorf("no DM with %s here yet: p2chat dm send %s TEXT starts one", peer, peer), ms.save())
		}
		var errs []error
		for _, id := range dms {
			evs, err := ms.read(ctx, id)
			m.printEvents(evs)
			errs = append(errs, err)
		}
		if errors.Join(errs...) == nil && !slices.ContainsFunc(dms, ms.inGroup) {
			// Named in the peer's DM, but not added: this session had no KeyPackages then.
			errs = append(errs, fmt.Errorf("no DM with %s to read here yet: %s started DM %s, but this session is not in it: their next dm send adds it", peer, peer, dms[0]))
		}
		return errors.Join(append(errs, ms.save())...)
	}
}

func (m *Main) groupCreate(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		fids := make([]identity.FID, 0, len(args)-1)
		for _, a := range args[1:] {
			f, err := parseFID(a)
			if err != nil {
				return err
			}
			fid, _ := identity.ParseFID(f)
			fids = append(fids, fid)
		}
		ms, err := m.mlsSession()
		if err != nil {
			return err
		}
		info, err := ms.ml.CreateGroup(ctx, client.GroupGroup, args[0], fids)
		if info != nil {
			// Made but not everyone added: show it anyway, so that group add can finish.
			ms.learn(info)
			m.printGroupInfo(info)
		}
		return errors.Join(hintKeyPackages(err, args[1:]...), ms.save())
	}
}

func (m *Main) groupList(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		ms, err := m.mlsSession()
		if err != nil {
			return err
		}
		refs, err := ms.refresh(ctx)
		for _, r := range refs {
			var name string
			if g := ms.find(r.ID); g != nil {
				if g.Removed {
					continue
				}
				name = cmp.Or(g.Peer, g.Name)
			}
			fmt.Fprintln(m.Stdout, r.ID, dashIfEmpty(r.Kind), dashIfEmpty(oneLine(name)))
		}
		return errors.Join(err, ms.save())
	}
}

// resolveGroup reads a GROUP argument: a decimal id, or the name of exactly one group this
// session knows, asking the server for the actor's groups if it knows none by that name yet.
func (ms *mlsSession) resolveGroup(ctx context.Context, arg string) (snowflake.ID, error) {
	if id, err := snowflake.Parse(arg); err == nil {
		return id, nil
	}
	find := func() []snowflake.ID {
		var out []snowflake.ID
		for _, g := range ms.st.Groups {
			if g.Name == arg && g.Kind != client.GroupDM && !g.Removed {
				out = append(out, g.ID)
			}
		}
		return out
	}
	match := find()
	if len(match) == 0 {
		if _, err := ms.refresh(ctx); err != nil {
			return 0, err
		}
		match = find()
	}
	switch len(match) {
	case 0:
		return 0, usagef("GROUP %q: not an id, and no group of that name is known here (see p2chat group list)", arg)
	case 1:
		return match[0], nil
	}
	return 0, usagef("GROUP %q: %d groups have that name: give the id (see p2chat group list)", arg, len(match))
}

// groupCommand is the shape of the commands on one group: open the session, resolve GROUP, act,
// save the state whatever happened.
func (m *Main) groupCommand(write bool, act func(ctx context.Context, ms *mlsSession, id snowflake.ID, args []string) error) runFunc {
	return func(ctx context.Context, args []string) error {
		open := m.mlsSession
		if write {
			open = func() (*mlsSession, error) { return m.openForWriting(ctx) }
		}
		ms, err := open()
		if err != nil {
			return err
		}
		id, err := ms.resolveGroup(ctx, args[0])
		if err == nil {
			err = act(ctx, ms, id, args[1:])
		}
		if serr := ms.save(); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
}

func (m *Main) groupInfo(fs *flag.FlagSet) runFunc {
	return m.groupCommand(false, func(ctx context.Context, ms *mlsSession, id snowflake.ID, _ []string) error {
		info, err := ms.ml.Info(ctx, id)
		if err != nil {
			return err
		}
		ms.learn(info)
		m.printGroupInfo(info)
		return nil
	})
}

func (m *Main) groupAdd(fs *flag.FlagSet) runFunc {
	return m.groupCommand(false, func(ctx context.Context, ms *mlsSession, id snowflake.ID, args []string) error {
		fids := make([]identity.FID, 0, len(args))
		for _, a := range args {
			f, err := parseFID(a)
			if err != nil {
				return err
			}
			fid, _ := identity.ParseFID(f)
			fids = append(fids, fid)
		}
		if err := ms.catchUpToWrite(ctx, id); err != nil {
			return err
		}
		err := ms.ml.Add(ctx, id, fids...)
		ms.keepUnread(ctx, id)
		if err != nil {
			return hintKeyPackages(err, args...)
		}
		for _, f := range fids {
			fmt.Fprintln(m.Stdout, "added", f)
		}
		return nil
	})
}

func (m *Main) groupRemove(fs *flag.FlagSet) runFunc {
	return m.groupCommand(false, func(ctx context.Context, ms *mlsSession, id snowflake.ID, args []string) error {
		f, err := parseFID(args[0])
		if err != nil {
			return err
		}
		fid, _ := identity.ParseFID(f)
		if err := ms.catchUpToWrite(ctx, id); err != nil {
			return err
		}
		g, err := ms.ml.MLSGroup(id)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(g.Members(), func(mem mls.Member) bool { return mem.Credential.FID == f }) {
			return fmt.Errorf("%s has no device in group %s", f, id)
		}
		err = ms.ml.Remove(ctx, id, fid)
		ms.keepUnread(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, "removed", f)
		return nil
	})
}

func (m *Main) groupSend(fs *flag.FlagSet) runFunc {
	return m.groupCommand(true, func(ctx context.Context, ms *mlsSession, id snowflake.ID, args []string) error {
		if err := ms.catchUpToWrite(ctx, id); err != nil {
			return err
		}
		msg, err := ms.ml.Send(ctx, id, []byte(strings.Join(args, " ")))
		ms.keepUnread(ctx, id)
		if err != nil {
			return err
		}
		m.record("id", msg.String())
		return nil
	})
}

func (m *Main) groupRead(fs *flag.FlagSet) runFunc {
	return m.groupCommand(true, func(ctx context.Context, ms *mlsSession, id snowflake.ID, _ []string) error {
		evs, err := ms.read(ctx, id)
		m.printEvents(evs)
		return err
	})
}

// printGroupInfo prints a group as a record, then its people and devices as repeated keys:
// "member FID" (with a device in the group), "invited FID" (named, not added yet), "device LEAF
// FID SESSION", and "join_request FID SESSION" for a device waiting to be added.
func (m *Main) printGroupInfo(g *client.GroupInfo) {
	m.record("id", g.ID.String(), "kind", g.Kind, "name", dashIfEmpty(oneLine(g.Name)), "owner", g.Owner,
		"epoch", strconv.FormatUint(g.Epoch, 10))
	for _, f := range g.Actors {
		fmt.Fprintln(m.Stdout, "member", f)
	}
	for _, f := range g.Invited {
		fmt.Fprintln(m.Stdout, "invited", f)
	}
	for _, l := range g.Leaves {
		leaf := "-"
		if l.Leaf != nil {
			leaf = strconv.FormatUint(uint64(*l.Leaf), 10)
		}
		fmt.Fprintln(m.Stdout, "device", leaf, l.FID, oneLine(l.SessionID))
	}
	for _, l := range g.Pending {
		fmt.Fprintln(m.Stdout, "join_request", l.FID, oneLine(l.SessionID))
	}
}

// printEvents prints what a read found, one line each: a message as "time sender: text" (the
// time the server took it, from its id), anything else as a notice starting with "* ".
func (m *Main) printEvents(evs []savedEvent) {
	for _, e := range evs {
		if line := eventLine(e); line != "" {
			fmt.Fprintln(m.Stdout, line)
		}
	}
}

func eventLine(e savedEvent) string {
	device := func(fid, session string) string { return oneLine(fid + "/" + session) }
	switch e.Type {
	case client.GroupMessage:
		return stamp(e.MessageID.Time()) + " " + oneLine(e.SenderFID) + ": " + oneLine(string(e.Plaintext))
	case client.GroupJoined:
		return fmt.Sprintf("* joined: added by %s (epoch %d)", oneLine(e.SenderFID), e.Epoch)
	case client.GroupCommit:
		if e.Removed {
			return fmt.Sprintf("* %s removed you from the group: nothing after this can be read here", oneLine(e.SenderFID))
		}
		return fmt.Sprintf("* %s changed the group's members or keys (epoch %d)", oneLine(e.SenderFID), e.Epoch)
	case client.GroupNewDevice:
		return "* new device: " + device(e.FID, e.Session)
	case client.GroupJoinRequest:
		return "* join request: " + device(e.FID, e.Session)
	case eventGone:
		return "* you are no longer in this group: the server does not show it to you any more"
	}
	return ""
}
