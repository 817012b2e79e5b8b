package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The floor mode answers one question before any optimisation of the chat path: what do the
// parts no implementation of our protocol can avoid cost on this machine? One process plays
// both sides of `p2chat-bench chat` with everything else taken out: senders sign each message
// with Ed25519 and POST it over keep-alive HTTP; the handler verifies the signature, queues one
// shared frame for each of the channel's members and answers with a body the size of a stored
// message; each connection's writer sends everything queued in one write(2) of raw WebSocket
// frames; members read every frame through gorilla/websocket. No JSON, no storage, no fsync, no
// actors, no permission check. Whatever this reaches is an upper bound for the real server on
// the same cores, and its CPU per message is a lower bound.

type floorConfig struct {
	Channels, Members, Inflight int
	Frame                       int
	Duration, Warmup            time.Duration
}

func runFloor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg floorConfig
	fs.IntVar(&cfg.Channels, "channels", 100, "channels, one sender each")
	fs.IntVar(&cfg.Members, "members", 20, "members (connections) per channel")
	fs.IntVar(&cfg.Inflight, "inflight", 4, "requests in flight per sender")
	fs.IntVar(&cfg.Frame, "frame", 470, "bytes per delivered frame (a chat MESSAGE_CREATE is about 470)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "time before the measurement starts")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Channels < 1 || cfg.Members < 1 || cfg.Inflight < 1 || cfg.Frame < 64 || cfg.Duration <= 0 {
		fmt.Fprintln(stderr, "p2chat-bench: -channels, -members, -inflight and -duration must be positive, -frame at least 64")
		return 2
	}
	rep, err := floor(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "p2chat-bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "floor: %d channels x %d members, %d in flight per sender, %d-byte frames, %s measured\n",
		cfg.Channels, cfg.Members, cfg.Inflight, cfg.Frame, cfg.Duration)
	secs := cfg.Duration.Seconds()
	fmt.Fprintf(stdout, "accepted: %.0f msg/s   delivered: %.0f frames/s   errors: %d\n",
		float64(rep.accepted)/secs, float64(rep.delivered)/secs, rep.errors)
	fmt.Fprintf(stdout, "CPU (both sides): %.2f cores, %.0f µs per accepted message\n",
		rep.cpu.Seconds()/secs, float64(rep.cpu.Microseconds())/float64(max(rep.accepted, 1)))
	if rep.errors > 0 {
		return 1
	}
	return 0
}

type floorReport struct {
	accepted, delivered, errors int64
	cpu                         time.Duration
}

// floorMember is one connection as the server side sees it: a queue its writer drains.
type floorMember struct {
	conn  net.Conn
	mu    sync.Mutex
	queue [][]byte
	wake  chan struct{}
}

func (m *floorMember) push(frame []byte) {
	m.mu.Lock()
	m.queue = append(m.queue, frame)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// writeLoop sends every queued frame, unmasked as a server's are, in one write.
func (m *floorMember) writeLoop(ctx context.Context) {
	defer m.conn.Close() // ends the member's reader
	var buf, spare [][]byte
	var out []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		m.mu.Lock()
		buf, m.queue = m.queue, spare[:0]
		m.mu.Unlock()
		out = out[:0]
		for _, f := range buf {
			out = append(out, 0x81) // FIN, text
			switch n := len(f); {
			case n < 126:
				out = append(out, byte(n))
			case n < 1<<16:
				out = append(out, 126, byte(n>>8), byte(n))
			default:
				out = append(out, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
			}
			out = append(out, f...)
		}
		spare = buf
		if _, err := m.conn.Write(out); err != nil {
			return
		}
	}
}

func floor(ctx context.Context, cfg floorConfig) (floorReport, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pub, key, _ := ed25519.GenerateKey(nil)
	members := make([][]*floorMember, cfg.Channels)
	var regMu sync.Mutex
	answer := bytes.Repeat([]byte{'a'}, cfg.Frame)
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{c}", func(w http.ResponseWriter, r *http.Request) {
		c, err := strconv.Atoi(r.PathValue("c"))
		if err != nil || c < 0 || c >= cfg.Channels {
			http.Error(w, "bad channel", http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		m := &floorMember{conn: ws.NetConn(), wake: make(chan struct{}, 1)}
		regMu.Lock()
		members[c] = append(members[c], m)
		regMu.Unlock()
		go m.writeLoop(ctx)
	})
	mux.HandleFunc("POST /send/{c}", func(w http.ResponseWriter, r *http.Request) {
		c, err := strconv.Atoi(r.PathValue("c"))
		if err != nil || c < 0 || c >= cfg.Channels {
			http.Error(w, "bad channel", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		sigText, msg, ok := bytes.Cut(body, []byte{'.'})
		sig := make([]byte, ed25519.SignatureSize)
		if err != nil || !ok || base64.RawURLEncoding.DecodedLen(len(sigText)) != len(sig) {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if _, err := base64.RawURLEncoding.Decode(sig, sigText); err != nil || !ed25519.Verify(pub, msg, sig) {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		frame := make([]byte, cfg.Frame)
		copy(frame, msg)
		regMu.Lock()
		ms := members[c]
		regMu.Unlock()
		for _, m := range ms {
			m.push(frame)
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(answer)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return floorReport{}, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	var measuring atomic.Bool
	var delivered, accepted, failed atomic.Int64
	dialer := &websocket.Dialer{ReadBufferSize: 4096, WriteBufferSize: 1024}
	var readers sync.WaitGroup
	for c := range cfg.Channels {
		for range cfg.Members {
			ws, _, err := dialer.DialContext(ctx, "ws://"+base+"/ws/"+strconv.Itoa(c), nil)
			if err != nil {
				return floorReport{}, fmt.Errorf("dial: %w", err)
			}
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer ws.Close()
				buf := make([]byte, 0, 1024)
				for {
					_, r, err := ws.NextReader()
					if err != nil {
						return
					}
					buf = buf[:0]
					for {
						if len(buf) == cap(buf) {
							buf = append(buf, 0)[:len(buf)]
						}
						n, err := r.Read(buf[len(buf):cap(buf)])
						buf = buf[:len(buf)+n]
						if errors.Is(err, io.EOF) {
							break
						} else if err != nil {
							return
						}
					}
					if measuring.Load() {
						delivered.Add(1)
					}
				}
			}()
		}
	}
	for {
		regMu.Lock()
		n := 0
		for _, ms := range members {
			n += len(ms)
		}
		regMu.Unlock()
		if n == cfg.Channels*cfg.Members {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Channels * cfg.Inflight, MaxConnsPerHost: cfg.Channels * cfg.Inflight}}
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	var senders sync.WaitGroup
	for c := range cfg.Channels {
		url := "http://" + base + "/send/" + strconv.Itoa(c)
		for range cfg.Inflight {
			senders.Add(1)
			go func() {
				defer senders.Done()
				for seq := 0; sendCtx.Err() == nil; seq++ {
					msg := []byte("p2chat-bench floor message " + strconv.Itoa(c) + "." + strconv.Itoa(seq))
					sig := ed25519.Sign(key, msg)
					body := base64.RawURLEncoding.AppendEncode(nil, sig)
					body = append(append(body, '.'), msg...)
					req, _ := http.NewRequestWithContext(sendCtx, http.MethodPost, url, bytes.NewReader(body))
					resp, err := hc.Do(req)
					if err != nil {
						if sendCtx.Err() == nil {
							failed.Add(1)
						}
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						failed.Add(1)
					} else if measuring.Load() {
						accepted.Add(1)
					}
				}
			}()
		}
	}
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(cfg.Warmup); err != nil {
		return floorReport{}, err
	}
	u0, s0 := processCPU()
	measuring.Store(true)
	if err := sleep(cfg.Duration); err != nil {
		return floorReport{}, err
	}
	measuring.Store(false)
	u1, s1 := processCPU()
	stopSending()
	senders.Wait()
	cancel()
	srv.Close()
	readers.Wait()
	return floorReport{accepted: accepted.Load(), delivered: delivered.Load(), errors: failed.Load(), cpu: u1 - u0 + s1 - s0}, nil
}
