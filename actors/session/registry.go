package session

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Config is what the sessions of one node share. Zero durations and limits pick the defaults of
// docs/PROTOCOL.md section 4.
type Config struct {
	Actors   *actor.ActorSystem // where session actors live (actors.System.Actors())
	Auth     Authenticator
	Replayer Replayer
	Encoder  Encoder
	Logger   *slog.Logger

	HeartbeatInterval time.Duration // zero: 30 s
	IdentifyTimeout   time.Duration // from Hello to Identify or Resume; zero: 10 s
	// ResumeWindow is how long a session whose connection dropped keeps its frames and its
	// deliveries for a Resume in this process. Zero: 2 minutes.
	ResumeWindow time.Duration
	ResumeLimit  int           // most events a Resume replays from the log; zero: 1,000
	KeepFrames   int           // last frames remembered for except and Resume; zero: 1,024
	CallTimeout  time.Duration // bounds each Authenticate, Replay and Head call; zero: 10 s
	Now          func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	if c.Actors == nil || c.Auth == nil || c.Replayer == nil || c.Encoder == nil {
		return c, errors.New("session: Actors, Auth, Replayer and Encoder are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatInterval, 30*time.Second)
	def(&c.IdentifyTimeout, 10*time.Second)
	def(&c.ResumeWindow, 2*time.Minute)
	def(&c.CallTimeout, 10*time.Second)
	if c.ResumeLimit <= 0 {
		c.ResumeLimit = 1000
	}
	if c.KeepFrames <= 0 {
		c.KeepFrames = 1024
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Registry is this node's set of gateway sessions: it starts one session actor per connection
// and knows the identified ones by FID, so that fan-out sources (account events now, channel and
// group actors later) can reach an actor's live sessions. A session is registered from its
// Identify or Resume until it stops, including while it waits for a Resume after its connection
// dropped (deliveries then go into the frames it will re-send).
type Registry struct {
	cfg   Config
	root  *actor.RootContext
	hello []byte // the Hello payload, the same for every connection

	mu    sync.RWMutex
	byFID map[string][]*entry // oldest first
}

// entry is one registered session. subs mirrors the session's subscriptions so Deliver skips
// sessions that would drop the dispatch anyway; the session itself stays the authority.
type entry struct {
	fid, sessionID string
	pid            *actor.PID
	subs           atomic.Uint32
	detached       atomic.Bool
}

// NewRegistry checks cfg and returns an empty registry.
func NewRegistry(cfg Config) (*Registry, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ms := strconv.FormatInt(cfg.HeartbeatInterval.Milliseconds(), 10)
	return &Registry{
		cfg:  cfg,
		root: cfg.Actors.Root,
		// Both spellings: heartbeatInterval as a string is what polyproto-rs reads.
		hello: fmt.Appendf(nil, `{"heartbeat_interval":%s,"heartbeatInterval":"%s"}`, ms, ms),
		byFID: map[string][]*entry{},
	}, nil
}

// Ref is how a connection talks to its session.
type Ref struct {
	root *actor.RootContext
	pid  *actor.PID
}

// Tell hands the session a client frame (Identify, Resume, Heartbeat, ServiceChannel, Unknown)
// or Disconnected. It never blocks.
func (r *Ref) Tell(msg any) { r.root.Send(r.pid, msg) }

// Start spawns the session of a new connection. It sends Hello at once and owns everything the
// connection sends from then on.
func (r *Registry) Start(out Outbox) *Ref {
	a := &sessionActor{reg: r, cfg: &r.cfg, out: out, log: r.cfg.Logger, sent: newWindow(r.cfg.KeepFrames), attached: true,
		clock: clock{interval: r.cfg.HeartbeatInterval, resumeWindow: r.cfg.ResumeWindow}}
	pid := r.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	return &Ref{root: r.root, pid: pid}
}

// Deliver sends d to every session of fid that is subscribed to d's namespace ("core": all).
func (r *Registry) Deliver(fid string, d Dispatch) { r.deliver(fid, "", d) }

// DeliverExcept is Deliver to every session of fid but those of the ID-Cert session sessionID
// (core op 3 New Session goes to the other sessions).
func (r *Registry) DeliverExcept(fid, sessionID string, d Dispatch) { r.deliver(fid, sessionID, d) }

func (r *Registry) deliver(fid, except string, d Dispatch) {
	bit := uint32(0)
	if d.Namespace != nsCore {
		if bit = serviceBit(d.Namespace); bit == 0 {
			return
		}
	}
	// The read lock is held while sending: a session that replaces another (Resume) takes the
	// write lock, so every delivery reaches exactly one of the two.
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.byFID[fid] {
		if e.sessionID != except || except == "" {
			if bit == 0 || e.subs.Load()&bit != 0 {
				r.root.Send(e.pid, d)
			}
		}
	}
}

// Online reports whether fid has a registered session on this node.
func (r *Registry) Online(fid string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byFID[fid]) > 0
}

// Close closes the connections of fid's ID-Cert session sessionID ("": all of fid's) with code,
// and ends those sessions unless the code is resumable.
func (r *Registry) Close(fid, sessionID string, code int, reason string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.byFID[fid] {
		if sessionID == "" || e.sessionID == sessionID {
			r.root.Send(e.pid, closeRequest{code: code, reason: reason})
		}
	}
}

// Shutdown stops every registered session, those waiting for a Resume included. Connections
// are the gateway's to close (with 1001) first.
func (r *Registry) Shutdown() {
	r.mu.Lock()
	var pids []*actor.PID
	for _, es := range r.byFID {
		for _, e := range es {
			pids = append(pids, e.pid)
		}
	}
	r.mu.Unlock()
	for _, pid := range pids {
		r.root.Stop(pid)
	}
}

func (r *Registry) add(e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byFID[e.fid] = append(r.byFID[e.fid], e)
}

// replace registers e in place of the session it resumes: of the sessions of the same ID-Cert
// session, the newest one whose connection dropped, else the newest one. It returns that session
// (nil if none), which is no longer registered. Done under one lock, so no delivery is lost or
// doubled between the two.
func (r *Registry) replace(e *entry) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byFID[e.fid]
	best := -1
	for i, x := range list {
		if x.sessionID != e.sessionID {
			continue
		}
		if best < 0 || x.detached.Load() || !list[best].detached.Load() {
			best = i
		}
	}
	var old *entry
	if best >= 0 {
		old = list[best]
		list = append(list[:best:best], list[best+1:]...)
	}
	r.byFID[e.fid] = append(list, e)
	return old
}

// remove unregisters e if it is still registered.
func (r *Registry) remove(e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.byFID[e.fid]
	for i, x := range list {
		if x == e {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.byFID, e.fid)
	} else {
		r.byFID[e.fid] = list
	}
}

// live counts the registered sessions of fid (tests).
func (r *Registry) live(fid string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byFID[fid])
}
