package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/mls"
	"github.com/polyproto-chat/server/snowflake"
)

// The mls mode: end-to-end encrypted group messages through the SDK, as clients send and read
// them. Every member is a client.MLS of its own session; senders call MLS.Send (encrypt, save
// the group state, POST), and every member's gateway dispatches go through MLS.Handle (decrypt,
// save). The plaintext names the run, the message's sequence number, its sender and its
// intended send time, so each decrypted message is matched to its send and timed.

type mlsConfig struct {
	Server     string
	Groups     int
	Members    int // per group, each one actor with one session and one gateway connection
	Senders    int // per group: its first members
	Rate       float64
	Inflight   int // sends in flight per sender at most
	Size       int // plaintext bytes
	Duration   time.Duration
	Warmup     time.Duration
	Password   string
	State      string // directory: world.json and the SDK's keystore (sessions and MLS state)
	Keystore   string // "disk" or "memory"
	SetupConc  int
	CPUProfile string
}

func runMLS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg mlsConfig
	fs.StringVar(&cfg.Server, "server", envOr("P2CHAT_SERVER", "http://127.0.0.1:8080"), "server base URL (env P2CHAT_SERVER)")
	fs.IntVar(&cfg.Groups, "groups", 100, "messaging groups (MLS groups)")
	fs.IntVar(&cfg.Members, "members", 5, "members per group (2 to 15), each an actor with one session and one gateway connection subscribed to chat")
	fs.IntVar(&cfg.Senders, "senders", 1, "senders per group: its first members (the first one created the group)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second over all senders, on a fixed schedule (open loop); 0 = as fast as possible, --inflight per sender (closed loop)")
	fs.IntVar(&cfg.Inflight, "inflight", 1, "sends in flight per sender at most (more than 1 lets the server receive a sender's messages out of order)")
	fs.IntVar(&cfg.Size, "size", 200, "plaintext bytes per message (at least the header the tool needs to match it, about 50)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "sending before the measured time, left out of the figures")
	fs.StringVar(&cfg.Password, "password", "bench password 1234", "password of the benchmark actors")
	fs.StringVar(&cfg.State, "state", "", "directory of the actors, their groups and the SDK's keystore (sessions and MLS group state): used if it holds world.json, else set up and written there")
	fs.StringVar(&cfg.Keystore, "keystore", "disk", "where the SDK keeps MLS state: disk (the keystore, as a real client: every send and every decrypted message saves the group state with an fsync) or memory (with --state, only the actors are reused: new groups are made every run)")
	fs.IntVar(&cfg.SetupConc, "setup-concurrency", 4, "registrations, logins and group writes in flight during the setup")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the tool's own CPU profile over the measured time to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case cfg.Groups < 1 || cfg.Inflight < 1 || cfg.SetupConc < 1:
		fmt.Fprintln(stderr, "p2chat-bench: --groups, --inflight and --setup-concurrency must be positive")
		return 2
	case cfg.Members < 2 || cfg.Members > 15:
		fmt.Fprintln(stderr, "p2chat-bench: --members must be 2 to 15 (the server's limit of actors per group)")
		return 2
	case cfg.Senders < 1 || cfg.Senders > cfg.Members:
		fmt.Fprintln(stderr, "p2chat-bench: --senders must be 1 to --members")
		return 2
	case cfg.Rate < 0 || cfg.Duration <= 0 || cfg.Warmup < 0:
		fmt.Fprintln(stderr, "p2chat-bench: --rate and --warmup must not be negative, --duration must be positive")
		return 2
	case cfg.Size < mlsHeaderMax || cfg.Size > 16<<10:
		fmt.Fprintf(stderr, "p2chat-bench: --size must be %d to %d bytes\n", mlsHeaderMax, 16<<10)
		return 2
	case cfg.Keystore != "disk" && cfg.Keystore != "memory":
		fmt.Fprintln(stderr, "p2chat-bench: --keystore is disk or memory")
		return 2
	}
	rep, err := runMLSBench(ctx, cfg, stderr)
	return finish(rep, err, stdout, stderr)
}

// mlsBench is one run of the mls mode. Times are ns since t0.
type mlsBench struct {
	cfg   mlsConfig
	w     *mlsWorld
	runID string

	sendClock
	closing              atomic.Bool
	ackHist, decHist     latHist
	acked, winAcked      atomic.Int64
	late, maxLag         atomic.Int64
	members              []*mlsMember // by actor index
	senders              []*mlsSender
	foreign, mismatched  atomic.Int64 // decrypted messages not of this run; of this run but not what was sent
	otherEvents, resyncs atomic.Int64

	errMu                  sync.Mutex
	errs, recvErrs         map[string]int64
	errExample, recvSample map[string]string
	winErrs                int64
}

// mlsMember is one actor: its session, its MLS state and its gateway connection, whose every
// dispatch goes through MLS.Handle.
type mlsMember struct {
	b      *mlsBench
	actor  int
	group  int
	s      *client.Session
	m      *client.MLS
	gw     *client.Gateway
	ready  chan struct{}
	done   chan struct{}
	closed string // why the connection closed, if it did before the end
}

// mlsSender is a member that sends into its group.
type mlsSender struct {
	idx int
	mem *mlsMember
	gid snowflake.ID
}

type mlsReport struct {
	cfg                       mlsConfig
	Actors, Conns, SendersAll int
	StateReused               bool
	CaughtUp                  int
	SetupTime, ConnectTime    time.Duration
	Window                    time.Duration
	WinSent, WinAcked         int64
	WinErrors                 int64
	Sent, Acked               int64
	Errors, RecvErrors        map[string]int64
	ErrExample, RecvExample   map[string]string
	WinDelivered, WinExpected int64
	Delivered, Expected       int64
	Missing, Duplicates       int64
	UnackedDeliveries         int64
	Foreign, Mismatched       int64
	OtherEvents, Resyncs      int64
	DrainTime                 time.Duration
	AckP50, AckP99, AckMax    time.Duration
	DecP50, DecP99, DecP999   time.Duration
	DecMax                    time.Duration
	Late                      int64
	MaxLag                    time.Duration
	Dropped                   int
	CloseReasons              map[string]int
	ServerCPU                 float64
	ServerRSS                 [2]float64
	ToolUser, ToolSys         time.Duration
	MachineBusy               float64 // CPU seconds of every process in the measured time; -1 if unknown
}

func (r *mlsReport) clean() bool {
	return r.Sent > 0 && r.Acked == r.Sent && len(r.Errors) == 0 && len(r.RecvErrors) == 0 && r.Missing == 0 &&
		r.Duplicates == 0 && r.Mismatched == 0 && r.Dropped == 0
}

func runMLSBench(ctx context.Context, cfg mlsConfig, log io.Writer) (*mlsReport, error) {
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	rep := &mlsReport{cfg: cfg}
	senders := cfg.Groups * cfg.Senders
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        senders*cfg.Inflight + 64,
		MaxIdleConnsPerHost: senders*cfg.Inflight + 64,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}

	keys := ""
	switch {
	case cfg.State != "":
		if err := os.MkdirAll(cfg.State, 0o700); err != nil {
			return nil, err
		}
		keys = filepath.Join(cfg.State, "keystore")
	case cfg.Keystore == "disk":
		tmp, err := os.MkdirTemp("", "p2chat-bench-mls-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		keys = tmp
	}
	// Sessions are kept in the keystore (if any); MLS state too, unless --keystore memory, where
	// the members' Chat (and so their MLS) come from a client without one.
	c, err := client.New(cfg.Server, client.Options{HTTP: hc, Dir: keys})
	if err != nil {
		return nil, err
	}
	mc := c
	if cfg.Keystore == "memory" {
		if mc, err = client.New(cfg.Server, client.Options{HTTP: hc}); err != nil {
			return nil, err
		}
	}
	b := &mlsBench{cfg: cfg, runID: strings.ToLower(rand.Text()[:8]), sendClock: sendClock{t0: time.Now()},
		errs: map[string]int64{}, errExample: map[string]string{}, recvErrs: map[string]int64{}, recvSample: map[string]string{}}
	setupStart := time.Now()
	reused, caughtUp, err := b.prepare(ctx, c, mc, log)
	if err != nil {
		return nil, err
	}
	rep.SetupTime, rep.StateReused, rep.CaughtUp = time.Since(setupStart), reused, caughtUp
	rep.Actors, rep.Conns, rep.SendersAll = len(b.members), len(b.members), senders
	for g := range cfg.Groups {
		for k := range cfg.Senders {
			mem := b.members[g*cfg.Members+k]
			b.senders = append(b.senders, &mlsSender{idx: len(b.senders), mem: mem, gid: b.w.GroupIDs[g]})
		}
	}

	connStart := time.Now()
	err = b.connectAll(ctx, c, log)
	defer b.closeAll()
	if err != nil {
		return nil, err
	}
	rep.ConnectTime = time.Since(connStart)
	fmt.Fprintf(log, "%d gateway connections subscribed to chat and READY in %s\n", len(b.members), rep.ConnectTime.Round(time.Millisecond))

	b.sendStart = b.since()
	b.winFrom.Store(b.sendStart + int64(cfg.Warmup))
	b.winTo.Store(b.sendStart + int64(cfg.Warmup+cfg.Duration))
	mode := "as fast as possible"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("at %g messages/s", cfg.Rate)
	}
	fmt.Fprintf(log, "sending %s from %d senders for %s warmup + %s (run %s)\n", mode, senders, cfg.Warmup, cfg.Duration, b.runID)

	readings, waitReadings := b.readEdges(ctx)
	b.drive(ctx)
	waitReadings()
	fmt.Fprintf(log, "sending over: %d messages accepted; waiting for the deliveries\n", b.acked.Load())

	rep.DrainTime = drain(ctx, b.tally)
	b.closeAll()

	for _, r := range readings {
		if r.err != nil {
			return nil, r.err
		}
	}
	t := b.tally()
	rep.Window = cfg.Duration
	rep.WinSent, rep.WinAcked, rep.WinErrors = t.winSent, b.winAcked.Load(), b.winErrs
	rep.Sent, rep.Acked = int64(b.msgs.issued()), b.acked.Load()
	rep.Errors, rep.ErrExample, rep.RecvErrors, rep.RecvExample = b.errs, b.errExample, b.recvErrs, b.recvSample
	for _, m := range []map[string]string{b.errExample, b.recvSample} { // the report shortens them
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(log, "first error of kind %q: %s\n", k, m[k])
		}
	}
	rep.WinDelivered, rep.WinExpected = t.winDelivered, t.winExpected
	rep.Delivered, rep.Expected, rep.Missing, rep.Duplicates, rep.UnackedDeliveries = t.delivered, t.expected, t.missing, t.duplicates, t.unacked
	rep.Foreign, rep.Mismatched, rep.OtherEvents, rep.Resyncs = b.foreign.Load(), b.mismatched.Load(), b.otherEvents.Load(), b.resyncs.Load()
	rep.AckP50, rep.AckP99, rep.AckMax = b.ackHist.quantile(0.5), b.ackHist.quantile(0.99), b.ackHist.maxDur()
	rep.DecP50, rep.DecP99, rep.DecP999, rep.DecMax = b.decHist.quantile(0.5), b.decHist.quantile(0.99), b.decHist.quantile(0.999), b.decHist.maxDur()
	rep.Late, rep.MaxLag = b.late.Load(), time.Duration(b.maxLag.Load())
	rep.CloseReasons = map[string]int{}
	for _, m := range b.members {
		if m.closed != "" {
			rep.Dropped++
			rep.CloseReasons[m.closed]++
		}
	}
	rep.ServerCPU = readings[1].m["process_cpu_seconds_total"] - readings[0].m["process_cpu_seconds_total"]
	rep.ServerRSS = [2]float64{readings[0].m["process_resident_memory_bytes"], readings[1].m["process_resident_memory_bytes"]}
	rep.ToolUser, rep.ToolSys = readings[1].user-readings[0].user, readings[1].sys-readings[0].sys
	rep.MachineBusy = -1
	if readings[0].busy >= 0 && readings[1].busy >= 0 {
		rep.MachineBusy = readings[1].busy - readings[0].busy
	}
	return rep, nil
}

// edgeReading is what is read at each edge of the measured time, while sending goes on.
type edgeReading struct {
	m         map[string]float64
	user, sys time.Duration
	busy      float64 // seconds of CPU the whole machine has been busy; -1 if unknown
	err       error
}

// readEdges reads the server's CPU and RSS and the tool's CPU at the start and the end of the
// measured time (and runs the tool's CPU profile between them); wait returns once both are read.
func (b *mlsBench) readEdges(ctx context.Context) (*[2]edgeReading, func()) {
	var readings [2]edgeReading
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var prof *os.File
		defer func() {
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
			}
		}()
		for i, at := range []int64{b.winFrom.Load(), b.winTo.Load()} {
			if d := at - b.since(); d > 0 {
				select {
				case <-time.After(time.Duration(d)):
				case <-ctx.Done():
					readings[i].err = ctx.Err()
					return
				}
			}
			r := &readings[i]
			if b.cfg.CPUProfile != "" {
				if i == 0 {
					prof, r.err = startProfile(b.cfg.CPUProfile)
				} else {
					pprof.StopCPUProfile()
					r.err, prof = prof.Close(), nil
				}
				if r.err != nil {
					return
				}
			}
			r.user, r.sys = processCPU()
			r.busy = machineBusy()
			if r.m, r.err = serverMetrics(ctx, b.cfg.Server, "process_cpu_seconds_total", "process_resident_memory_bytes"); r.err != nil {
				return
			}
		}
	}()
	return &readings, wg.Wait
}

// connectAll opens every member's gateway connection, 64 at a time, and starts its pump; it
// returns once every connection has its chat READY.
func (b *mlsBench) connectAll(ctx context.Context, c *client.Client, log io.Writer) error {
	return forEach(ctx, len(b.members), 64, log, "gateway connections ready", func(ctx context.Context, i int) error {
		mem := b.members[i]
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		gw, err := c.Connect(cctx, mem.s, client.GatewayOptions{Services: []string{"chat"}})
		if err != nil {
			return err
		}
		mem.gw, mem.ready, mem.done = gw, make(chan struct{}), make(chan struct{})
		go mem.pump()
		select {
		case <-mem.ready:
			return nil
		case <-mem.done:
			return fmt.Errorf("gateway connection of %s closed before READY: %s", mem.s.FID, mem.closed)
		case <-cctx.Done():
			return fmt.Errorf("gateway connection of %s: no READY within a minute", mem.s.FID)
		}
	})
}

// closeAll closes every open gateway connection and waits for the pumps; it is idempotent.
func (b *mlsBench) closeAll() {
	b.closing.Store(true)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, mem := range b.members {
		if mem.gw == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			mem.gw.Close()
			<-mem.done
		}()
	}
	wg.Wait()
}

// pump feeds every dispatch of the member's gateway through MLS.Handle, in order, and matches
// each decrypted message to its send.
func (mem *mlsMember) pump() {
	b := mem.b
	defer close(mem.done)
	ready := false
	for ev := range mem.gw.Events() {
		switch {
		case ev.Ready != nil:
			if !ready {
				ready = true
				close(mem.ready)
			}
		case ev.Dispatch != nil:
			evs, err := mem.m.Handle(context.Background(), ev.Dispatch)
			now := b.since()
			if err != nil {
				b.recvFail(err)
			}
			for _, e := range evs {
				if e.Type == client.GroupMessage {
					b.received(mem, e, now)
				} else {
					b.otherEvents.Add(1)
				}
			}
		case ev.Resync != nil:
			b.resyncs.Add(1)
		case ev.Closed != nil:
			if !b.closing.Load() {
				mem.closed = fmt.Sprintf("%d %s", ev.Closed.Code, ev.Closed.Reason)
				if ev.Closed.Err != nil {
					mem.closed += ": " + ev.Closed.Err.Error()
				}
			}
		}
	}
}

// The plaintext of message seq: "p2mls <run> <seq> <sender> <intended ns>|" and filler up to
// --size. The intended time is on the tool's clock (ns since its start): sender and members are
// in this process.
const mlsHeaderMax = len("p2mls ") + 8 + 3*21 + 1

func (b *mlsBench) plaintext(seq uint64, sender int, intended int64) []byte {
	p := make([]byte, 0, b.cfg.Size)
	p = append(p, "p2mls "...)
	p = append(p, b.runID...)
	p = append(p, ' ')
	p = strconv.AppendUint(p, seq, 10)
	p = append(p, ' ')
	p = strconv.AppendInt(p, int64(sender), 10)
	p = append(p, ' ')
	p = strconv.AppendInt(p, intended, 10)
	p = append(p, '|')
	for i := len(p); i < b.cfg.Size; i++ {
		p = append(p, 'a'+byte((seq+uint64(i))%26))
	}
	return p
}

// received checks a decrypted message against what was sent and counts its delivery.
func (b *mlsBench) received(mem *mlsMember, e client.GroupEvent, now int64) {
	head, _, ok := bytes.Cut(e.Plaintext, []byte("|"))
	f := strings.Fields(string(head))
	if !ok || len(f) != 5 || f[0] != "p2mls" || f[1] != b.runID {
		b.foreign.Add(1)
		return
	}
	seq, err1 := strconv.ParseUint(f[2], 10, 64)
	sender, err2 := strconv.Atoi(f[3])
	intended, err3 := strconv.ParseInt(f[4], 10, 64)
	rec := b.msgs.get(seq)
	if err1 != nil || err2 != nil || err3 != nil || rec == nil || sender < 0 || sender >= len(b.senders) {
		b.mismatched.Add(1)
		return
	}
	s := b.senders[sender]
	if rec.intended.Load() != intended || e.Group != s.gid || mem.group != s.mem.group || mem == s.mem ||
		e.SenderFID != s.mem.s.FID.String() || e.SenderSession != s.mem.s.SessionID || !bytes.Equal(e.Plaintext, b.plaintext(seq, sender, intended)) {
		b.mismatched.Add(1)
		return
	}
	rec.delivered.Add(1)
	if b.inWindow(intended) {
		b.decHist.add(time.Duration(now - intended))
	}
}

func (b *mlsBench) recvFail(err error) {
	code := errorCode(err)
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if b.recvErrs[code] == 0 {
		b.recvSample[code] = err.Error()
	}
	b.recvErrs[code]++
}

// errorCode classifies an SDK error: the server's status and code, a transport failure, or the
// MLS layer's sentinel.
func errorCode(err error) string {
	var api *client.Error
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.As(err, &api):
		return strconv.Itoa(api.Status) + " " + api.Code
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) || errors.As(err, &ne):
		return transportKind(err)
	}
	for _, s := range []error{mls.ErrMalformed, mls.ErrSuite, mls.ErrSignature, mls.ErrLifetime, mls.ErrBinding, mls.ErrGroup} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}

// send encrypts and posts message j through the SDK.
func (b *mlsBench) send(ctx context.Context, s *mlsSender, j job) {
	if lag := b.since() - j.intended; lag > int64(lateAfter) {
		b.late.Add(1)
		for {
			m := b.maxLag.Load()
			if lag <= m || b.maxLag.CompareAndSwap(m, lag) {
				break
			}
		}
	}
	inWindow := b.inWindow(j.intended)
	_, err := s.mem.m.Send(ctx, s.gid, b.plaintext(j.seq, s.idx, j.intended))
	if err == nil {
		done := b.since()
		j.rec.state.Store(msgAccepted)
		b.acked.Add(1)
		if inWindow {
			b.winAcked.Add(1)
			b.ackHist.add(time.Duration(done - j.intended))
		}
		return
	}
	j.rec.state.Store(msgFailed)
	code := errorCode(err)
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if b.errs[code] == 0 {
		b.errExample[code] = err.Error()
	}
	b.errs[code]++
	if inWindow {
		b.winErrs++
	}
}

// drive sends the run's messages (sendClock.drive) through the senders.
func (b *mlsBench) drive(ctx context.Context) {
	b.sendClock.drive(ctx, b.cfg.Rate, b.cfg.Inflight, len(b.senders), func(ctx context.Context, i int, j job) { b.send(ctx, b.senders[i], j) })
}

// tally sums the deliveries over every issued message: each accepted one is owed to the
// group's members but its sender (MLS does not let a sender decrypt its own message).
func (b *mlsBench) tally() tally { return tallyOf(&b.msgs, b.inWindow, int64(b.cfg.Members-1)) }

func (r *mlsReport) print(w io.Writer) {
	c := r.cfg
	secs := r.Window.Seconds()
	mode := "as fast as possible (closed loop)"
	if c.Rate > 0 {
		mode = fmt.Sprintf("%g/s on a fixed schedule (open loop)", c.Rate)
	}
	setup := "set up"
	switch {
	case r.StateReused && c.Keystore == "memory":
		setup = "actors read from --state, new groups made"
	case r.StateReused:
		setup = fmt.Sprintf("read from --state (%d messages of earlier runs caught up)", r.CaughtUp)
	}
	keys := c.Keystore
	if c.Keystore == "disk" && c.State == "" {
		keys = "disk (temporary directory)"
	}
	fmt.Fprintf(w, "topology           %d groups x %d members; %d actors, %d gateway connections; %d senders, %d in flight each; %d-byte plaintexts; keystore %s\n",
		c.Groups, c.Members, r.Actors, r.Conns, r.SendersAll, c.Inflight, c.Size, keys)
	fmt.Fprintf(w, "setup              %s in %s; connections READY in %s\n", setup, r.SetupTime.Round(time.Millisecond), r.ConnectTime.Round(time.Millisecond))
	fmt.Fprintf(w, "sending            %s; %s warmup, %s measured\n", mode, c.Warmup, r.Window)
	fmt.Fprintf(w, "messages           %d sent, %d accepted (%.1f/s), %d errors in the measured time\n",
		r.WinSent, r.WinAcked, float64(r.WinAcked)/secs, r.WinErrors)
	fmt.Fprintf(w, "                   %d sent, %d accepted in the whole run; errors: %s\n", r.Sent, r.Acked, codeText(r.Errors, r.ErrExample))
	fmt.Fprintf(w, "deliveries         %d of %d expected decrypted (%.1f/s) in the measured time\n", r.WinDelivered, r.WinExpected, float64(r.WinDelivered)/secs)
	fmt.Fprintf(w, "                   %d of %d expected in the whole run: %d missing, %d duplicate, %d not matching their send; %d of failed sends, %d foreign (drained in %s)\n",
		r.Delivered, r.Expected, r.Missing, r.Duplicates, r.Mismatched, r.UnackedDeliveries, r.Foreign, r.DrainTime.Round(time.Millisecond))
	fmt.Fprintf(w, "member errors      %s; %d other group events, %d resyncs\n", codeText(r.RecvErrors, r.RecvExample), r.OtherEvents, r.Resyncs)
	saved, decSaved := "", ""
	if c.Keystore == "disk" {
		saved, decSaved = " and saving the state", " after saving the state"
	}
	fmt.Fprintf(w, "send->accepted     p50 %s, p99 %s, max %s (from the intended send time; includes encrypting%s)\n", r.AckP50, r.AckP99, r.AckMax, saved)
	fmt.Fprintf(w, "send->decrypted    p50 %s, p99 %s, p99.9 %s, max %s (every member but the sender, when Handle returned%s)\n", r.DecP50, r.DecP99, r.DecP999, r.DecMax, decSaved)
	if c.Rate > 0 {
		behind := "kept up with the schedule"
		if r.Late > 0 {
			behind = fmt.Sprintf("FELL BEHIND: %d sends started more than %s late, worst %s", r.Late, lateAfter, r.MaxLag.Round(time.Microsecond))
		}
		fmt.Fprintf(w, "schedule           %s\n", behind)
	}
	reasons := "none"
	if len(r.CloseReasons) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.CloseReasons)) {
			parts = append(parts, fmt.Sprintf("%dx %s", r.CloseReasons[k], k))
		}
		reasons = strings.Join(parts, "; ")
	}
	fmt.Fprintf(w, "connections        %d dropped (%s)\n", r.Dropped, reasons)
	tool := (r.ToolUser + r.ToolSys).Seconds()
	fmt.Fprintf(w, "CPU (measured)     server %.1f s (%.2f cores), tool %.1f s (%.2f cores: user %.1f s, sys %.1f s)\n",
		r.ServerCPU, r.ServerCPU/secs, tool, tool/secs, r.ToolUser.Seconds(), r.ToolSys.Seconds())
	if r.WinAcked > 0 {
		fmt.Fprintf(w, "CPU per message    server %.0f µs, tool %.0f µs (accepted in the measured time)\n",
			r.ServerCPU/float64(r.WinAcked)*1e6, tool/float64(r.WinAcked)*1e6)
	}
	if r.MachineBusy >= 0 {
		// On a shared machine, what neither the server nor the tool used is other load.
		fmt.Fprintf(w, "machine            %.2f cores busy in the measured time, of which %.2f cores neither the server nor the tool (other processes, kernel threads)\n",
			r.MachineBusy/secs, max(r.MachineBusy-r.ServerCPU-tool, 0)/secs)
	}
	fmt.Fprintf(w, "server RSS         %.1f MiB at the start of the measured time, %.1f MiB at its end\n", r.ServerRSS[0]/(1<<20), r.ServerRSS[1]/(1<<20))
}

// codeText lists error counts by code, most frequent first, each with an example (chat's format).
func codeText(counts map[string]int64, examples map[string]string) string {
	return (&chatReport{Errors: counts, ErrExample: examples}).errorText()
}

// machineBusy is how long all CPUs of the machine have been busy (user, nice, system, irq,
// softirq, steal), from /proc/stat in USER_HZ (100 on Linux); -1 where there is no /proc/stat.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var busy float64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return -1
		}
		busy += v
	}
	return busy / 100
}
