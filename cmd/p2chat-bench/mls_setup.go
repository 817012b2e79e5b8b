package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// mlsWorld is what the mls mode sets up before it sends, and what --state keeps in
// <dir>/world.json: the actors (one session each, whose key, cert, token and MLS state the SDK
// keeps in <dir>/keystore) and the groups. Group g's members are Actors[g*Members :
// (g+1)*Members]; member 0 created it.
type mlsWorld struct {
	Server   string         `json:"server"`
	Groups   int            `json:"groups"`
	Members  int            `json:"members"`
	Actors   []mlsActor     `json:"actors"`
	GroupIDs []snowflake.ID `json:"group_ids"`
}

type mlsActor struct {
	Name      string `json:"name"`
	FID       string `json:"fid"`
	SessionID string `json:"session_id"`
}

const mlsWorldFile = "world.json"

// prepare reads the world from --state when it holds one, else sets it up on the server (and
// writes it there); either way it fills b.members with each actor's session and MLS state, every
// member in its group at the same epoch. Sessions come from (and go to) c's keystore; the
// members' MLS lives in mc's (mc is c, or a client without a keystore for --keystore memory).
// With --keystore memory, only the actors of a world are reused: the groups are made anew.
func (b *mlsBench) prepare(ctx context.Context, c, mc *client.Client, log io.Writer) (reused bool, caughtUp int, err error) {
	cfg := b.cfg
	if cfg.State != "" {
		data, err := os.ReadFile(filepath.Join(cfg.State, mlsWorldFile))
		switch {
		case err == nil:
			n, err := b.reuse(ctx, c, mc, data, log)
			if err != nil {
				return false, 0, fmt.Errorf("state %s: %w", cfg.State, err)
			}
			return true, n, nil
		case !errors.Is(err, os.ErrNotExist):
			return false, 0, err
		case cfg.Keystore == "memory":
			return false, 0, fmt.Errorf("state %s: no %s: set it up with --keystore disk first (--keystore memory reuses its actors only)", cfg.State, mlsWorldFile)
		}
	}
	if err := b.setupActors(ctx, c, mc, log); err != nil {
		return false, 0, err
	}
	if err := b.setupGroups(ctx, log); err != nil {
		return false, 0, err
	}
	if cfg.State != "" {
		data, err := json.Marshal(b.w)
		if err != nil {
			return false, 0, err
		}
		if err := os.WriteFile(filepath.Join(cfg.State, mlsWorldFile), data, 0o600); err != nil {
			return false, 0, err
		}
		fmt.Fprintf(log, "wrote the actors and groups to %s: later runs with the same --state skip the setup\n", cfg.State)
	}
	return false, 0, nil
}

// reuse loads the sessions and MLS state of an earlier run and catches every member up on its
// group's log (messages an interrupted run left unread).
func (b *mlsBench) reuse(ctx context.Context, c, mc *client.Client, data []byte, log io.Writer) (int, error) {
	cfg := b.cfg
	var w mlsWorld
	if err := json.Unmarshal(data, &w); err != nil {
		return 0, err
	}
	if strings.TrimRight(w.Server, "/") != cfg.Server {
		return 0, fmt.Errorf("made for server %s, not %s: delete it or pass another --state", w.Server, cfg.Server)
	}
	if w.Groups != cfg.Groups || w.Members != cfg.Members {
		return 0, fmt.Errorf("made for --groups %d --members %d: pass those, or another --state", w.Groups, w.Members)
	}
	if len(w.Actors) != w.Groups*w.Members || len(w.GroupIDs) != w.Groups {
		return 0, fmt.Errorf("holds %d actors and %d groups, want %d and %d", len(w.Actors), len(w.GroupIDs), w.Groups*w.Members, w.Groups)
	}
	b.members = make([]*mlsMember, len(w.Actors))
	if cfg.Keystore == "memory" {
		// The MLS state of w's groups is on disk, not here: make new groups for this run, and
		// leave world.json as it is.
		w.GroupIDs = make([]snowflake.ID, w.Groups)
		b.w = &w
		err := forEach(ctx, len(w.Actors), 16, log, "sessions loaded", func(ctx context.Context, i int) error {
			s, err := loadSession(c, cfg.Server, w.Actors[i])
			if err != nil {
				return err
			}
			_, err = b.newMember(mc, i, s)
			return err
		})
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(log, "using %d actors from %s; making new groups with their MLS state in memory\n", len(w.Actors), cfg.State)
		return 0, b.setupGroups(ctx, log)
	}
	b.w = &w
	var caught atomic.Int64
	err := forEach(ctx, len(w.Actors), 16, log, "sessions loaded and caught up", func(ctx context.Context, i int) error {
		a := w.Actors[i]
		s, err := loadSession(c, cfg.Server, a)
		if err != nil {
			return err
		}
		mem, err := b.newMember(mc, i, s)
		if err != nil {
			return err
		}
		evs, err := mem.m.CatchUp(ctx, w.GroupIDs[mem.group])
		if err != nil {
			return fmt.Errorf("%s catching up on group %s: %w", a.FID, w.GroupIDs[mem.group], err)
		}
		caught.Add(int64(len(evs)))
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := b.sameEpochs(); err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "using %d actors and %d groups from %s (%d group events of earlier runs caught up)\n", len(w.Actors), w.Groups, cfg.State, caught.Load())
	return int(caught.Load()), nil
}

func loadSession(c *client.Client, server string, a mlsActor) (*client.Session, error) {
	fid, err := identity.ParseFID(a.FID)
	if err != nil {
		return nil, err
	}
	return c.LoadSession(fid, server, a.SessionID)
}

func (b *mlsBench) newMember(c *client.Client, actor int, s *client.Session) (*mlsMember, error) {
	ch, err := c.Chat(s, client.ChatOptions{})
	if err != nil {
		return nil, err
	}
	m, err := ch.MLS() // one per session: a second one would keep its own copy of the group state
	if err != nil {
		return nil, err
	}
	mem := &mlsMember{b: b, actor: actor, group: actor / b.cfg.Members, s: s, m: m}
	b.members[actor] = mem
	return mem, nil
}

// setupActors registers and logs in the actors (their sessions kept in c's keystore, their MLS
// in mc's).
func (b *mlsBench) setupActors(ctx context.Context, c, mc *client.Client, log io.Writer) error {
	cfg := b.cfg
	w := &mlsWorld{Server: cfg.Server, Groups: cfg.Groups, Members: cfg.Members,
		Actors: make([]mlsActor, cfg.Groups*cfg.Members), GroupIDs: make([]snowflake.ID, cfg.Groups)}
	b.w = w
	b.members = make([]*mlsMember, len(w.Actors))
	prefix := "mls" + strings.ToLower(rand.Text()[:6]) + "-"
	start := time.Now()
	err := forEach(ctx, len(w.Actors), cfg.SetupConc, log, "actors registered and logged in", func(ctx context.Context, i int) error {
		name := fmt.Sprintf("%s%d", prefix, i)
		if err := retryLimited(ctx, func() error { _, err := c.Register(ctx, name, cfg.Password); return err }); err != nil {
			return err
		}
		var s *client.Session
		if err := retryLimited(ctx, func() (err error) { s, err = c.Login(ctx, name, cfg.Password, "bench"); return err }); err != nil {
			return err
		}
		w.Actors[i] = mlsActor{Name: name, FID: s.FID.String(), SessionID: s.SessionID}
		_, err := b.newMember(mc, i, s)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "%d actors registered and logged in in %s\n", len(w.Actors), time.Since(start).Round(time.Millisecond))
	return nil
}

// setupGroups has every member but the creators upload a KeyPackage, has each group's first
// member create it with the others (claiming their KeyPackages and committing them with a
// Welcome), and the others join from the group's log; then it checks that all agree.
func (b *mlsBench) setupGroups(ctx context.Context, log io.Writer) error {
	cfg, w := b.cfg, b.w
	start := time.Now()
	err := forEach(ctx, len(w.Actors), 16, log, "KeyPackages uploaded", func(ctx context.Context, i int) error {
		if i%cfg.Members == 0 {
			return nil // creators are in their group from the start
		}
		_, err := b.members[i].m.UploadKeyPackages(ctx, 1, false)
		return err
	})
	if err != nil {
		return err
	}
	err = forEach(ctx, cfg.Groups, cfg.SetupConc, log, "groups made", func(ctx context.Context, g int) error {
		from := g * cfg.Members
		others := make([]identity.FID, 0, cfg.Members-1)
		for _, mem := range b.members[from+1 : from+cfg.Members] {
			others = append(others, mem.s.FID)
		}
		info, err := b.members[from].m.CreateGroup(ctx, client.GroupGroup, fmt.Sprintf("bench group %d", g), others)
		if err != nil {
			return err
		}
		if len(info.Leaves) != cfg.Members {
			return fmt.Errorf("group %s has %d leaves after its creation, want %d", info.ID, len(info.Leaves), cfg.Members)
		}
		w.GroupIDs[g] = info.ID
		return nil
	})
	if err != nil {
		return err
	}
	joiners := cfg.Groups * (cfg.Members - 1)
	err = forEach(ctx, joiners, 16, log, "members joined", func(ctx context.Context, j int) error {
		g, k := j/(cfg.Members-1), j%(cfg.Members-1)+1
		mem := b.members[g*cfg.Members+k]
		evs, err := mem.m.CatchUp(ctx, w.GroupIDs[g])
		if err != nil {
			return fmt.Errorf("%s joining group %s: %w", mem.s.FID, w.GroupIDs[g], err)
		}
		for _, e := range evs {
			if e.Type == client.GroupJoined {
				return nil
			}
		}
		return fmt.Errorf("%s found no Welcome for itself in the log of group %s", mem.s.FID, w.GroupIDs[g])
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "%d KeyPackages uploaded, %d groups made and %d members joined in %s\n", joiners, cfg.Groups, joiners,
		time.Since(start).Round(time.Millisecond))
	return b.sameEpochs()
}

// sameEpochs checks that every member of every group is in it at the same epoch with the same
// secrets (RFC 9420's epoch authenticator).
func (b *mlsBench) sameEpochs() error {
	for g, id := range b.w.GroupIDs {
		var want []byte
		var epoch uint64
		for k := range b.cfg.Members {
			mem := b.members[g*b.cfg.Members+k]
			grp, err := mem.m.MLSGroup(id)
			if err != nil {
				return fmt.Errorf("%s: %w", mem.s.FID, err)
			}
			if k == 0 {
				want, epoch = grp.EpochAuthenticator(), grp.Epoch()
				continue
			}
			if grp.Epoch() != epoch || !bytes.Equal(grp.EpochAuthenticator(), want) {
				return fmt.Errorf("group %s: %s is at epoch %d, its creator at %d, or their secrets differ", id, mem.s.FID, grp.Epoch(), epoch)
			}
		}
	}
	return nil
}
