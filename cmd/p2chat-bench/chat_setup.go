package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// world is what the chat mode sets up before it sends anything, and what --state keeps between
// runs: the actors (one logged-in session each) and the guilds. Guild g holds channels
// [g*PerGuild, (g+1)*PerGuild) and its members are Actors[g*Members : (g+1)*Members]; member 0
// owns it. Every member may view every channel of its guild, so a message in one channel goes to
// exactly Members connections whatever PerGuild is.
type world struct {
	Server   string       `json:"server"`
	Channels int          `json:"channels"`
	Members  int          `json:"members"`
	PerGuild int          `json:"channels_per_guild"`
	Actors   []actorState `json:"actors"`
	Guilds   []guildState `json:"guilds"`
}

type actorState struct {
	Name      string             `json:"name"`
	FID       string             `json:"fid"`
	SessionID string             `json:"session_id"`
	Key       ed25519.PrivateKey `json:"key"`
	Cert      string             `json:"cert"` // PEM
	Token     string             `json:"token"`

	serial uint64 // of Cert, filled in by load
}

type guildState struct {
	ID       snowflake.ID   `json:"id"`
	Channels []snowflake.ID `json:"channels"`
	Invite   string         `json:"invite"`
}

func guildCount(channels, perGuild int) int { return (channels + perGuild - 1) / perGuild }

// channelAt is the guild index and channel id of channel c (0-based over the whole world).
func (w *world) channelAt(c int) (int, snowflake.ID) {
	g := c / w.PerGuild
	return g, w.Guilds[g].Channels[c%w.PerGuild]
}

// members are the actor indexes of guild g.
func (w *world) members(g int) (from, to int) { return g * w.Members, (g + 1) * w.Members }

// prepare returns the world for cfg: read from cfg.State when that file exists (and fits cfg),
// else set up on the server (and written to cfg.State when given).
func prepare(ctx context.Context, cfg chatConfig, hc *http.Client, log io.Writer) (*world, bool, error) {
	if cfg.State != "" {
		b, err := os.ReadFile(cfg.State)
		switch {
		case err == nil:
			w, err := loadWorld(b, cfg)
			if err != nil {
				return nil, false, fmt.Errorf("state %s: %w", cfg.State, err)
			}
			fmt.Fprintf(log, "using %d actors and %d guilds from %s\n", len(w.Actors), len(w.Guilds), cfg.State)
			return w, true, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, false, err
		}
	}
	w, err := setupWorld(ctx, cfg, hc, log)
	if err != nil {
		return nil, false, err
	}
	if cfg.State != "" {
		b, err := json.Marshal(w)
		if err != nil {
			return nil, false, err
		}
		if err := os.WriteFile(cfg.State, b, 0o600); err != nil {
			return nil, false, err
		}
		fmt.Fprintf(log, "wrote the actors and guilds to %s: later runs with the same --state skip the setup\n", cfg.State)
	}
	return w, false, nil
}

func loadWorld(b []byte, cfg chatConfig) (*world, error) {
	var w world
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if strings.TrimRight(w.Server, "/") != strings.TrimRight(cfg.Server, "/") {
		return nil, fmt.Errorf("made for server %s, not %s: delete it or pass another --state", w.Server, cfg.Server)
	}
	if w.Channels != cfg.Channels || w.Members != cfg.Members || w.PerGuild != cfg.PerGuild {
		return nil, fmt.Errorf("made for --channels %d --members %d --channels-per-guild %d: pass those, or another --state",
			w.Channels, w.Members, w.PerGuild)
	}
	g := guildCount(w.Channels, w.PerGuild)
	if len(w.Guilds) != g || len(w.Actors) != g*w.Members {
		return nil, fmt.Errorf("holds %d guilds and %d actors, want %d and %d", len(w.Guilds), len(w.Actors), g, g*w.Members)
	}
	for i, gs := range w.Guilds {
		if len(gs.Channels) != min(w.PerGuild, w.Channels-i*w.PerGuild) {
			return nil, fmt.Errorf("guild %s has %d channels", gs.ID, len(gs.Channels))
		}
	}
	for i := range w.Actors {
		a := &w.Actors[i]
		cert, err := identity.ParseIDCert([]byte(a.Cert))
		if err != nil {
			return nil, fmt.Errorf("actor %s: %w", a.FID, err)
		}
		if len(a.Key) != ed25519.PrivateKeySize || a.Token == "" {
			return nil, fmt.Errorf("actor %s: no key or token", a.FID)
		}
		a.serial = cert.Serial
	}
	return &w, nil
}

// setupWorld registers and logs in the actors, then makes the guilds, their channels and invites
// and has the members join. Every step runs cfg.SetupConc requests at a time: a login costs the
// server an argon2id hash (~130 ms of one core, 64 MiB), so more buys nothing on a small machine.
func setupWorld(ctx context.Context, cfg chatConfig, hc *http.Client, log io.Writer) (*world, error) {
	c, err := client.New(cfg.Server, client.Options{HTTP: hc})
	if err != nil {
		return nil, err
	}
	w := &world{Server: cfg.Server, Channels: cfg.Channels, Members: cfg.Members, PerGuild: cfg.PerGuild}
	nGuilds := guildCount(cfg.Channels, cfg.PerGuild)
	w.Actors = make([]actorState, nGuilds*cfg.Members)
	w.Guilds = make([]guildState, nGuilds)
	sessions := make([]*client.Session, len(w.Actors))

	prefix := "bench" + strings.ToLower(rand.Text()[:6]) + "-"
	start := time.Now()
	err = forEach(ctx, len(w.Actors), cfg.SetupConc, log, "actors registered and logged in", func(ctx context.Context, i int) error {
		name := fmt.Sprintf("%s%d", prefix, i)
		if err := retryLimited(ctx, func() error { _, err := c.Register(ctx, name, cfg.Password); return err }); err != nil {
			return err
		}
		var s *client.Session
		if err := retryLimited(ctx, func() (err error) { s, err = c.Login(ctx, name, cfg.Password, "bench"); return err }); err != nil {
			return err
		}
		sessions[i] = s
		w.Actors[i] = actorState{Name: name, FID: s.FID.String(), SessionID: s.SessionID, Key: s.Key, Cert: s.Cert.PEM(),
			Token: s.Token, serial: s.Cert.Serial}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "%d actors registered and logged in in %s\n", len(w.Actors), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	err = forEach(ctx, nGuilds, cfg.SetupConc, log, "guilds made", func(ctx context.Context, g int) error {
		owner, err := c.Chat(sessions[g*cfg.Members], client.ChatOptions{})
		if err != nil {
			return err
		}
		gd, err := owner.CreateGuild(ctx, client.NewGuild{Name: fmt.Sprintf("bench guild %d", g)})
		if err != nil {
			return err
		}
		if len(gd.Channels) == 0 {
			return fmt.Errorf("guild %s came without a channel", gd.ID)
		}
		gs := guildState{ID: gd.ID, Channels: []snowflake.ID{gd.Channels[0].ID}}
		for k := 1; k < min(cfg.PerGuild, cfg.Channels-g*cfg.PerGuild); k++ {
			ch, err := owner.CreateChannel(ctx, gd.ID, client.NewChannel{Name: fmt.Sprintf("bench-%d", k)})
			if err != nil {
				return err
			}
			gs.Channels = append(gs.Channels, ch.ID)
		}
		inv, err := owner.CreateInvite(ctx, gs.Channels[0], client.InviteOptions{MaxAge: -1})
		if err != nil {
			return err
		}
		gs.Invite = inv.Code
		w.Guilds[g] = gs
		return nil
	})
	if err != nil {
		return nil, err
	}
	joiners := nGuilds * (cfg.Members - 1)
	err = forEach(ctx, joiners, max(cfg.SetupConc, 16), log, "members joined", func(ctx context.Context, j int) error {
		g, m := j/(cfg.Members-1), j%(cfg.Members-1)+1
		ch, err := c.Chat(sessions[g*cfg.Members+m], client.ChatOptions{})
		if err != nil {
			return err
		}
		_, err = ch.JoinInvite(ctx, w.Guilds[g].Invite)
		return err
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "%d guilds with %d channels made and %d members joined in %s\n", nGuilds, cfg.Channels, joiners,
		time.Since(start).Round(time.Millisecond))
	return w, nil
}

// retryLimited runs f again while the server answers 429 (its --auth-rate limit of password
// checks per address), waiting 2 s each time.
func retryLimited(ctx context.Context, f func() error) error {
	for {
		err := f()
		var cerr *client.Error
		if !errors.As(err, &cerr) || cerr.Status != http.StatusTooManyRequests {
			return err
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// forEach runs f(0..n-1), conc at a time, stopping at the first error, and logs progress every
// 5 s.
func forEach(ctx context.Context, n, conc int, log io.Writer, what string, f func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	start := time.Now()
	stopLog := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopLog:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(log, "  %d/%d %s (%.1f/s)\n", d, n, what, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	defer close(stopLog)
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
