package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/client"
)

type idleConfig struct {
	Server   string
	Conns    int
	Sessions int
	Hold     time.Duration
	DialRate int
	Password string
	Tokens   string // file of session tokens: read if it exists, else written after logging in
}

type report struct {
	Conns, Opened, Failed, Dropped int
	Heartbeats, Acks               int64
	AckP50, AckP99                 time.Duration
	RSSBefore, RSSOpen, RSSEnd     float64
	Live                           [3]float64 // heap in use + goroutine stacks: before, open, end
	OpenTime                       time.Duration
	Hold                           time.Duration
}

func (r report) print(w io.Writer) {
	mb := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
	fmt.Fprintf(w, "connections        %d requested, %d identified, %d failed to open, %d dropped while held\n", r.Conns, r.Opened, r.Failed, r.Dropped)
	fmt.Fprintf(w, "opened in          %s\n", r.OpenTime.Round(time.Millisecond))
	fmt.Fprintf(w, "held for           %s\n", r.Hold)
	fmt.Fprintf(w, "heartbeats         %d sent, %d acknowledged; ack round trip p50 %s, p99 %s\n", r.Heartbeats, r.Acks, r.AckP50, r.AckP99)
	fmt.Fprintf(w, "server RSS         %s before, %s with all open, %s at the end of the hold\n", mb(r.RSSBefore), mb(r.RSSOpen), mb(r.RSSEnd))
	fmt.Fprintf(w, "server heap+stacks %s before, %s with all open, %s at the end of the hold\n", mb(r.Live[0]), mb(r.Live[1]), mb(r.Live[2]))
	if r.Opened > 0 {
		per := func(a, b float64) float64 { return (b - a) / float64(r.Opened) / 1000 }
		fmt.Fprintf(w, "per connection     RSS %.1f KB (all open), %.1f KB (end of hold); heap+stacks %.1f KB, %.1f KB\n",
			per(r.RSSBefore, r.RSSOpen), per(r.RSSBefore, r.RSSEnd), per(r.Live[0], r.Live[1]), per(r.Live[0], r.Live[2]))
	}
}

// idle opens cfg.Conns identified gateway connections spread over cfg.Sessions sessions of one
// fresh actor, heartbeats on each as the server's Hello asks, holds them, and measures.
func idle(ctx context.Context, cfg idleConfig, log io.Writer) (report, error) {
	rep := report{Conns: cfg.Conns, Hold: cfg.Hold}
	c, err := client.New(cfg.Server, client.Options{})
	if err != nil {
		return rep, err
	}
	tokens, err := sessionTokens(ctx, c, cfg, log)
	if err != nil {
		return rep, err
	}
	if rep.RSSBefore, rep.Live[0], err = serverMemory(ctx, cfg.Server); err != nil {
		return rep, err
	}

	wsURL, err := gatewayURL(cfg.Server)
	if err != nil {
		return rep, err
	}
	b := &bench{url: wsURL, dialer: &websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}}
	holdCtx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(cfg.DialRate))
	var wg sync.WaitGroup
	for i := range cfg.Conns {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return rep, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.conn(holdCtx, tokens[i%len(tokens)])
		}()
	}
	tick.Stop()
	// All identified (or failed) before the clock of the hold starts.
	for b.opened.Load()+b.failed.Load() < int64(cfg.Conns) {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return rep, ctx.Err()
		}
	}
	rep.OpenTime = time.Since(start)
	fmt.Fprintf(log, "%d connections identified, %d failed, in %s; holding for %s\n", b.opened.Load(), b.failed.Load(), rep.OpenTime.Round(time.Millisecond), cfg.Hold)
	time.Sleep(2 * time.Second) // let the server's allocations settle
	if rep.RSSOpen, rep.Live[1], err = serverMemory(ctx, cfg.Server); err != nil {
		return rep, err
	}
	select {
	case <-time.After(cfg.Hold):
	case <-ctx.Done():
	}
	if rep.RSSEnd, rep.Live[2], err = serverMemory(ctx, cfg.Server); err != nil {
		return rep, err
	}
	rep.Opened, rep.Failed = int(b.opened.Load()), int(b.failed.Load())
	rep.Dropped = int(b.dropped.Load())
	stop()
	wg.Wait()
	rep.Heartbeats, rep.Acks = b.beats.Load(), b.acks.Load()
	b.mu.Lock()
	slices.Sort(b.rtts)
	if n := len(b.rtts); n > 0 {
		rep.AckP50, rep.AckP99 = b.rtts[n/2], b.rtts[min(n-1, n*99/100)]
	}
	b.mu.Unlock()
	return rep, nil
}

type bench struct {
	url    string
	dialer *websocket.Dialer

	opened, failed, dropped atomic.Int64
	beats, acks             atomic.Int64
	mu                      sync.Mutex
	rtts                    []time.Duration
}

type frame struct {
	Op json.Number     `json:"op"`
	S  json.Number     `json:"s"`
	D  json.RawMessage `json:"d"`
}

// conn is one gateway client: Hello, Identify, then a heartbeat every interval (and at once on
// op 11) carrying the range of frames received since the last one. It counts as opened when the
// first heartbeat is acknowledged, which only an identified session gets.
func (b *bench) conn(ctx context.Context, token string) {
	ws, _, err := b.dialer.DialContext(ctx, b.url, nil)
	if err != nil {
		b.failed.Add(1)
		return
	}
	defer ws.Close()
	var hello struct {
		D struct {
			Interval json.Number `json:"heartbeat_interval"`
		} `json:"d"`
	}
	if err := ws.ReadJSON(&hello); err != nil {
		b.failed.Add(1)
		return
	}
	ms, _ := hello.D.Interval.Int64()
	interval := time.Duration(max(ms, 100)) * time.Millisecond
	if err := ws.WriteJSON(map[string]any{"n": "core", "op": 2, "d": map[string]string{"token": token}}); err != nil {
		b.failed.Add(1)
		return
	}

	var (
		mu       sync.Mutex
		from, to int64 = -1, 0 // s range received since the last heartbeat; from -1: none
		sentAt   time.Time
		opened   bool
	)
	beatNow := make(chan struct{}, 1)
	beatNow <- struct{}{}
	readerDone := make(chan struct{})
	go func() { // the reader
		defer close(readerDone)
		for {
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				mu.Lock()
				wasOpen := opened
				mu.Unlock()
				switch {
				case ctx.Err() != nil:
				case wasOpen:
					b.dropped.Add(1)
				default:
					b.failed.Add(1)
				}
				return
			}
			op, _ := f.Op.Int64()
			s, _ := f.S.Int64()
			mu.Lock()
			if from < 0 {
				from = s
			}
			to = s
			if op == 7 {
				b.acks.Add(1)
				b.mu.Lock()
				b.rtts = append(b.rtts, time.Since(sentAt))
				b.mu.Unlock()
				if !opened {
					opened = true
					b.opened.Add(1)
				}
			}
			mu.Unlock()
			if op == 11 {
				select {
				case beatNow <- struct{}{}:
				default:
				}
			}
		}
	}()
	timer := time.NewTicker(interval)
	defer timer.Stop()
	for { // the writer
		select {
		case <-ctx.Done():
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench over"), time.Now().Add(time.Second))
			<-readerDone
			return
		case <-readerDone:
			return
		case <-timer.C:
		case <-beatNow:
		}
		mu.Lock()
		d := map[string]int64{}
		if from >= 0 {
			d["from"], d["to"] = from, to
		}
		from = -1
		sentAt = time.Now()
		mu.Unlock()
		if err := ws.WriteJSON(map[string]any{"n": "core", "op": 0, "d": d}); err != nil {
			return
		}
		b.beats.Add(1)
	}
}

func gatewayURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server %q: want http(s)://", server)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/.p2/core/v1/gateway"
	return u.String(), nil
}

// sessionTokens logs in cfg.Sessions sessions of a fresh actor, or reads their tokens from
// cfg.Tokens when it exists. Logging in costs the server an argon2id hash (64 MiB each) per
// session, memory a fresh process has not yet returned to the OS: for a clean baseline, log in
// once with -tokens, restart the server, and run again with the same file.
func sessionTokens(ctx context.Context, c *client.Client, cfg idleConfig, log io.Writer) ([]string, error) {
	if cfg.Tokens != "" {
		if b, err := os.ReadFile(cfg.Tokens); err == nil {
			tokens := strings.Fields(string(b))
			if len(tokens) == 0 {
				return nil, fmt.Errorf("%s holds no tokens", cfg.Tokens)
			}
			fmt.Fprintf(log, "using %d session tokens from %s\n", len(tokens), cfg.Tokens)
			return tokens, nil
		}
	}
	name := "bench" + strings.ToLower(rand.Text()[:10])
	if _, err := c.Register(ctx, name, cfg.Password); err != nil {
		return nil, err
	}
	var tokens []string
	for i := 0; i < cfg.Sessions; {
		s, err := c.Login(ctx, name, cfg.Password, fmt.Sprintf("bench%d", i))
		var cerr *client.Error
		switch {
		case errors.As(err, &cerr) && cerr.Status == http.StatusTooManyRequests:
			// The server limits password checks per address (--auth-rate): wait for a token.
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		case err != nil:
			return nil, err
		}
		tokens = append(tokens, s.Token)
		i++
	}
	fmt.Fprintf(log, "logged in %d sessions of %s\n", len(tokens), name)
	if cfg.Tokens != "" {
		if err := os.WriteFile(cfg.Tokens, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "wrote the tokens to %s: restart the server and run again for a clean memory baseline\n", cfg.Tokens)
	}
	return tokens, nil
}

// serverMemory reads the server's resident memory and its heap in use plus goroutine stacks
// from its /metrics (process and Go collectors).
func serverMemory(ctx context.Context, server string) (rss, live float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("server metrics: %w", err)
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, perr := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch name {
		case "process_resident_memory_bytes":
			rss, found = f, found+1
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes":
			live, found = live+f, found+1
		default:
			continue
		}
		if perr != nil {
			return 0, 0, fmt.Errorf("server metrics: %s: %w", name, perr)
		}
	}
	if found != 3 {
		return 0, 0, fmt.Errorf("server metrics: want process_resident_memory_bytes, go_memstats_heap_inuse_bytes and go_memstats_stack_inuse_bytes")
	}
	return rss, live, nil
}
