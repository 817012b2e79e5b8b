package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type chatConfig struct {
	Server     string
	Channels   int
	Members    int // per channel: each one actor with one gateway connection
	Senders    int // per channel: the first Senders members
	PerGuild   int // channels per guild
	Rate       float64
	Inflight   int // requests in flight per sender at most
	Duration   time.Duration
	Warmup     time.Duration
	Password   string
	State      string
	SetupConc  int
	CPUProfile string // the tool's own CPU profile over the measured time
	ServerPID  int    // if set, the server's write system calls are read from /proc/<pid>/io
}

func runChat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg chatConfig
	fs.StringVar(&cfg.Server, "server", envOr("P2CHAT_SERVER", "http://127.0.0.1:8080"), "server base URL (env P2CHAT_SERVER)")
	fs.IntVar(&cfg.Channels, "channels", 100, "text channels messages are sent to")
	fs.IntVar(&cfg.Members, "members", 20, "members per channel, each an actor with one gateway connection subscribed to chat")
	fs.IntVar(&cfg.Senders, "senders", 1, "senders per channel: its first members")
	fs.IntVar(&cfg.PerGuild, "channels-per-guild", 1, "channels per guild; all members of a guild view all its channels, so actors = channels/this * members")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second over all senders, on a fixed schedule (open loop); 0 = as fast as possible, --inflight per sender (closed loop)")
	fs.IntVar(&cfg.Inflight, "inflight", 4, "requests in flight per sender at most")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured time")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "sending before the measured time, left out of the figures")
	fs.StringVar(&cfg.Password, "password", "bench password 1234", "password of the benchmark actors")
	fs.StringVar(&cfg.State, "state", "", "file of actors and guilds: used if it exists, else written after the setup (registration and login take ~0.3 s of server CPU per actor)")
	fs.IntVar(&cfg.SetupConc, "setup-concurrency", 4, "registrations, logins and guild writes in flight during the setup")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "the server's process id on this machine: reports its write system calls per delivery (from /proc/<pid>/io)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write the tool's own CPU profile over the measured time to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case cfg.Channels < 1 || cfg.Members < 1 || cfg.PerGuild < 1 || cfg.Inflight < 1 || cfg.SetupConc < 1:
		fmt.Fprintln(stderr, "p2chat-bench: --channels, --members, --channels-per-guild, --inflight and --setup-concurrency must be positive")
		return 2
	case cfg.Senders < 1 || cfg.Senders > cfg.Members:
		fmt.Fprintln(stderr, "p2chat-bench: --senders must be 1 to --members")
		return 2
	case cfg.Rate < 0 || cfg.Duration <= 0 || cfg.Warmup < 0:
		fmt.Fprintln(stderr, "p2chat-bench: --rate and --warmup must not be negative, --duration must be positive")
		return 2
	}
	rep, err := chat(ctx, cfg, stderr)
	return finish(rep, err, stdout, stderr)
}

// chatBench is one run of the chat mode. Times are ns since t0.
type chatBench struct {
	cfg   chatConfig
	w     *world
	runID string // prefix of every nonce of this run: "<runID>.<seq>"
	httpc *http.Client

	sendClock
	ackHist, deliverHist  latHist
	acked, winAcked, late atomic.Int64
	maxLag                atomic.Int64
	conns, opened         []*memberConn
	senders               []*sender
	errMu                 sync.Mutex
	errs                  map[string]int64
	errExample            map[string]string
	winErrs               int64
}

type chatReport struct {
	cfg                       chatConfig
	Actors, Guilds, Conns     int
	SendersTotal              int
	StateReused               bool
	SetupTime, ConnectTime    time.Duration
	Window                    time.Duration // measured time
	WinSent, WinAcked         int64
	WinErrors                 int64
	Sent, Acked               int64 // whole run, warmup included
	Errors                    map[string]int64
	ErrExample                map[string]string
	WinDelivered, WinExpected int64
	Delivered, Expected       int64 // whole run: deliveries of acknowledged messages, and members x acknowledged
	Missing, Duplicates       int64
	UnackedDeliveries         int64 // deliveries of messages whose send failed (stored although the answer was an error)
	Foreign                   int64 // MESSAGE_CREATE the tool did not send in this run
	OtherFrames               int64
	DrainTime                 time.Duration
	AckP50, AckP99, AckMax    time.Duration
	DelP50, DelP99, DelP999   time.Duration
	DelMax                    time.Duration
	Late                      int64
	MaxLag                    time.Duration
	Dropped                   int
	CloseCodes                map[string]int
	ServerCPU                 float64 // seconds in the window
	ServerRSS                 [2]float64
	ServerWrites              int64         // write system calls in the window; 0 without --server-pid
	ToolUser, ToolSys         time.Duration // in the window
}

func (r *chatReport) clean() bool {
	return r.Sent > 0 && r.Acked == r.Sent && len(r.Errors) == 0 && r.Missing == 0 && r.Duplicates == 0 && r.Dropped == 0
}

// chat sets up (or reuses) the actors and guilds, connects every member, sends for warmup +
// duration, waits for the deliveries and measures.
func chat(ctx context.Context, cfg chatConfig, log io.Writer) (*chatReport, error) {
	cfg.Server = strings.TrimRight(cfg.Server, "/")
	rep := &chatReport{cfg: cfg}
	wsURL, err := gatewayURL(cfg.Server)
	if err != nil {
		return nil, err
	}
	senders := cfg.Channels * cfg.Senders
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        senders*cfg.Inflight + 64,
		MaxIdleConnsPerHost: senders*cfg.Inflight + 64,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}

	setupStart := time.Now()
	w, reused, err := prepare(ctx, cfg, hc, log)
	if err != nil {
		return nil, err
	}
	rep.SetupTime, rep.StateReused = time.Since(setupStart), reused
	rep.Actors, rep.Guilds, rep.SendersTotal = len(w.Actors), len(w.Guilds), senders

	b := &chatBench{cfg: cfg, w: w, runID: strings.ToLower(rand.Text()[:8]), httpc: hc, sendClock: sendClock{t0: time.Now()},
		errs: map[string]int64{}, errExample: map[string]string{}}
	for g := range w.Guilds {
		from, to := w.members(g)
		for a := from; a < to; a++ {
			b.conns = append(b.conns, &memberConn{b: b, actor: a, guild: w.Guilds[g].ID, token: w.Actors[a].Token})
		}
	}
	for c := range cfg.Channels {
		g, id := w.channelAt(c)
		from, _ := w.members(g)
		for k := range cfg.Senders {
			b.senders = append(b.senders, newSender(b, from+k, id))
		}
	}
	rep.Conns = len(b.conns)

	connCtx, stopConns := context.WithCancel(context.Background())
	defer stopConns()
	closeConns := func() {
		stopConns()
		for _, m := range b.opened {
			m.wait()
		}
	}
	connStart := time.Now()
	if err := b.connectAll(ctx, connCtx, wsURL, log); err != nil {
		closeConns()
		return nil, err
	}
	rep.ConnectTime = time.Since(connStart)
	fmt.Fprintf(log, "%d gateway connections identified, subscribed to chat and READY in %s\n", len(b.conns), rep.ConnectTime.Round(time.Millisecond))

	// The window's clock: sending starts now, the figures cover [warmup, warmup+duration).
	b.sendStart = b.since()
	b.winFrom.Store(b.sendStart + int64(cfg.Warmup))
	b.winTo.Store(b.sendStart + int64(cfg.Warmup+cfg.Duration))
	mode := "as fast as possible"
	if cfg.Rate > 0 {
		mode = fmt.Sprintf("at %g messages/s", cfg.Rate)
	}
	fmt.Fprintf(log, "sending %s from %d senders for %s warmup + %s (run %s)\n", mode, senders, cfg.Warmup, cfg.Duration, b.runID)

	// Readings at the edges of the window, taken while sending goes on.
	type reading struct {
		m         map[string]float64
		user, sys time.Duration
		writes    int64 // the server's write system calls so far (--server-pid)
		err       error
	}
	var readings [2]reading
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		var prof *os.File
		defer func() { // the run ended early
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
			if cfg.CPUProfile != "" {
				if i == 0 {
					prof, r.err = startProfile(cfg.CPUProfile)
				} else {
					pprof.StopCPUProfile()
					r.err, prof = prof.Close(), nil
				}
				if r.err != nil {
					return
				}
			}
			r.user, r.sys = processCPU()
			if cfg.ServerPID != 0 {
				if r.writes, r.err = writeSyscalls(cfg.ServerPID); r.err != nil {
					return
				}
			}
			r.m, r.err = serverMetrics(ctx, cfg.Server, "process_cpu_seconds_total", "process_resident_memory_bytes")
			if r.err != nil {
				return
			}
		}
	}()
	b.drive(ctx)
	rwg.Wait()
	fmt.Fprintf(log, "sending over: %d messages acknowledged; waiting for the deliveries\n", b.acked.Load())

	// Wait for the deliveries of every acknowledged message, while they keep coming.
	rep.DrainTime = drain(ctx, b.tally)
	closeConns()

	for _, r := range readings {
		if r.err != nil {
			return nil, r.err
		}
	}
	t := b.tally()
	rep.Window = cfg.Duration
	rep.WinSent, rep.WinAcked, rep.WinErrors = t.winSent, b.winAcked.Load(), b.winErrs
	rep.Sent, rep.Acked = int64(b.msgs.issued()), b.acked.Load()
	rep.Errors, rep.ErrExample = b.errs, b.errExample
	rep.WinDelivered, rep.WinExpected = t.winDelivered, t.winExpected
	rep.Delivered, rep.Expected, rep.Missing, rep.Duplicates, rep.UnackedDeliveries = t.delivered, t.expected, t.missing, t.duplicates, t.unacked
	rep.AckP50, rep.AckP99, rep.AckMax = b.ackHist.quantile(0.5), b.ackHist.quantile(0.99), b.ackHist.maxDur()
	rep.DelP50, rep.DelP99, rep.DelP999, rep.DelMax = b.deliverHist.quantile(0.5), b.deliverHist.quantile(0.99), b.deliverHist.quantile(0.999), b.deliverHist.maxDur()
	rep.Late, rep.MaxLag = b.late.Load(), time.Duration(b.maxLag.Load())
	rep.CloseCodes = map[string]int{}
	for _, m := range b.conns {
		rep.Foreign += m.foreign
		rep.OtherFrames += m.other
		if m.dropped {
			rep.Dropped++
			k := fmt.Sprintf("%d %s", m.closeCode, m.closeText)
			if m.closeCode == 0 {
				k = "no close frame: " + m.closeText
			}
			rep.CloseCodes[k]++
		}
	}
	rep.Dropped += len(b.conns) - len(b.opened)
	rep.ServerCPU = readings[1].m["process_cpu_seconds_total"] - readings[0].m["process_cpu_seconds_total"]
	rep.ServerRSS = [2]float64{readings[0].m["process_resident_memory_bytes"], readings[1].m["process_resident_memory_bytes"]}
	rep.ToolUser, rep.ToolSys = readings[1].user-readings[0].user, readings[1].sys-readings[0].sys
	if cfg.ServerPID != 0 {
		rep.ServerWrites = readings[1].writes - readings[0].writes
	}
	return rep, nil
}

func startProfile(path string) (*os.File, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type tally struct {
	winSent, winDelivered, winExpected                int64
	delivered, expected, missing, duplicates, unacked int64
}

// tally sums the deliveries over every issued message.
func (b *chatBench) tally() tally { return tallyOf(&b.msgs, b.inWindow, int64(b.cfg.Members)) }

func (r *chatReport) print(w io.Writer) {
	c := r.cfg
	secs := r.Window.Seconds()
	mode := "as fast as possible (closed loop)"
	if c.Rate > 0 {
		mode = fmt.Sprintf("%g/s on a fixed schedule (open loop)", c.Rate)
	}
	setup := "set up"
	if r.StateReused {
		setup = "read from --state"
	}
	fmt.Fprintf(w, "topology           %d channels x %d members (%d per guild, %d guilds); %d actors, %d gateway connections; %d senders, %d in flight each\n",
		c.Channels, c.Members, c.PerGuild, r.Guilds, r.Actors, r.Conns, r.SendersTotal, c.Inflight)
	fmt.Fprintf(w, "setup              %s in %s; connections READY in %s\n", setup, r.SetupTime.Round(time.Millisecond), r.ConnectTime.Round(time.Millisecond))
	fmt.Fprintf(w, "sending            %s; %s warmup, %s measured\n", mode, c.Warmup, r.Window)
	fmt.Fprintf(w, "messages           %d sent, %d acknowledged (%.1f/s accepted), %d errors in the measured time\n",
		r.WinSent, r.WinAcked, float64(r.WinAcked)/secs, r.WinErrors)
	fmt.Fprintf(w, "                   %d sent, %d acknowledged in the whole run; errors: %s\n", r.Sent, r.Acked, r.errorText())
	fmt.Fprintf(w, "deliveries         %d of %d expected (%.1f/s) in the measured time\n", r.WinDelivered, r.WinExpected, float64(r.WinDelivered)/secs)
	fmt.Fprintf(w, "                   %d of %d expected in the whole run: %d missing, %d duplicate; %d of failed sends, %d foreign (drained in %s)\n",
		r.Delivered, r.Expected, r.Missing, r.Duplicates, r.UnackedDeliveries, r.Foreign, r.DrainTime.Round(time.Millisecond))
	fmt.Fprintf(w, "send->ack          p50 %s, p99 %s, max %s (from the intended send time)\n", r.AckP50, r.AckP99, r.AckMax)
	fmt.Fprintf(w, "send->deliver      p50 %s, p99 %s, p99.9 %s, max %s (every delivery to every member)\n", r.DelP50, r.DelP99, r.DelP999, r.DelMax)
	if c.Rate > 0 {
		behind := "kept up with the schedule"
		if r.Late > 0 {
			behind = fmt.Sprintf("FELL BEHIND: %d sends started more than %s late, worst %s", r.Late, lateAfter, r.MaxLag.Round(time.Microsecond))
		}
		fmt.Fprintf(w, "schedule           %s\n", behind)
	}
	codes := "none"
	if len(r.CloseCodes) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.CloseCodes)) {
			parts = append(parts, fmt.Sprintf("%dx %s", r.CloseCodes[k], k))
		}
		codes = strings.Join(parts, "; ")
	}
	fmt.Fprintf(w, "connections        %d dropped (%s); %d other frames\n", r.Dropped, codes, r.OtherFrames)
	tool := (r.ToolUser + r.ToolSys).Seconds()
	fmt.Fprintf(w, "CPU (measured)     server %.1f s (%.2f cores), tool %.1f s (%.2f cores: user %.1f s, sys %.1f s)\n",
		r.ServerCPU, r.ServerCPU/secs, tool, tool/secs, r.ToolUser.Seconds(), r.ToolSys.Seconds())
	fmt.Fprintf(w, "server RSS         %.1f MiB at the start of the measured time, %.1f MiB at its end\n", r.ServerRSS[0]/(1<<20), r.ServerRSS[1]/(1<<20))
	if r.ServerWrites > 0 && r.WinDelivered > 0 {
		// HTTP answers and the store's WAL writes count too, so this bounds the WebSocket share.
		fmt.Fprintf(w, "server writes      %d write system calls in the measured time, %.2f per delivery\n", r.ServerWrites, float64(r.ServerWrites)/float64(r.WinDelivered))
	}
}

// writeSyscalls reads how many write system calls process pid has made (syscw in /proc/<pid>/io).
func writeSyscalls(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("--server-pid: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("--server-pid: no syscw in /proc/%d/io", pid)
}

func (r *chatReport) errorText() string {
	if len(r.Errors) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return r.Errors[keys[i]] > r.Errors[keys[j]] })
	var parts []string
	for _, k := range keys {
		ex := r.ErrExample[k]
		if len(ex) > 120 {
			ex = ex[:120] + "..."
		}
		parts = append(parts, fmt.Sprintf("%dx %s (%s)", r.Errors[k], k, ex))
	}
	return strings.Join(parts, "; ")
}
