package main

import (
	"bufio"
	"context"
	"fmt"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// latHist is a log-linear latency histogram of microseconds, safe for concurrent use: 64
// sub-buckets per power of two, so a quantile is off by at most 1/64 (1.6 %). One is shared by
// all recorders; on two cores an atomic add per sample costs less than per-connection copies.
type latHist struct {
	counts [64 << histSubBits]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const histSubBits = 6

func histBucket(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return (shift+1)<<histSubBits + int(v>>shift) - 1<<histSubBits
}

// histUpper is the largest value of bucket i.
func histUpper(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	mant := uint64(i&(1<<histSubBits-1) + 1<<histSubBits)
	return (mant+1)<<shift - 1
}

// add records a latency; negative ones (clock steps) count as 0.
func (h *latHist) add(d time.Duration) {
	us := max(int64(d/time.Microsecond), 0)
	h.counts[histBucket(uint64(us))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile is the upper bound of the bucket holding the q-th sample (0 < q <= 1), never above
// the largest sample; 0 without samples.
func (h *latHist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histUpper(i), uint64(h.max.Load()))) * time.Microsecond
		}
	}
	return h.maxDur()
}

func (h *latHist) maxDur() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Message states in the timeline.
const (
	msgPending int32 = iota
	msgAccepted
	msgFailed
)

// msgRec is what the tool knows of one message: when it was meant to be sent (ns since the
// start of sending), its answer, and how many member connections have received it.
type msgRec struct {
	intended  atomic.Int64
	state     atomic.Int32
	delivered atomic.Int32
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 14 // 64 M messages
)

// timeline maps a message's sequence number (embedded in its nonce) to its msgRec. Chunks are
// made on demand and never move, so senders and the connections' readers use it without locks.
type timeline struct {
	next   atomic.Uint64
	chunks [maxChunks]atomic.Pointer[[chunkSize]msgRec]
}

// issue allocates the next sequence number with its intended send time.
func (t *timeline) issue(intended int64) (uint64, *msgRec) {
	seq := t.next.Add(1) - 1
	r := t.at(seq, true)
	if r == nil {
		panic("p2chat-bench: more than 64 M messages in one run")
	}
	r.intended.Store(intended)
	return seq, r
}

// get is the record of seq, nil if seq was never issued.
func (t *timeline) get(seq uint64) *msgRec {
	if seq >= t.next.Load() {
		return nil
	}
	return t.at(seq, false)
}

func (t *timeline) at(seq uint64, create bool) *msgRec {
	ci := seq >> chunkBits
	if ci >= maxChunks {
		return nil
	}
	c := t.chunks[ci].Load()
	if c == nil {
		if !create {
			return nil
		}
		t.chunks[ci].CompareAndSwap(nil, new([chunkSize]msgRec))
		c = t.chunks[ci].Load()
	}
	return &c[seq&(chunkSize-1)]
}

// issued is how many sequence numbers were handed out.
func (t *timeline) issued() uint64 { return t.next.Load() }

// serverMetrics reads the named samples (unlabelled) from the server's /metrics.
func serverMetrics(ctx context.Context, server string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("server metrics: %s", resp.Status)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("server metrics: %s: %w", name, err)
		}
		out[name] = f
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("server metrics: %w", err)
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("server metrics: no %s", n)
		}
	}
	return out, nil
}

// processCPU is the CPU time this process has used so far: user and system.
func processCPU() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// tallyOf sums the deliveries over every message msgs issued, each accepted one owed to owed
// readers; inWindow tells whether an intended send time is in the measured window.
func tallyOf(msgs *timeline, inWindow func(int64) bool, owed int64) tally {
	var t tally
	for seq := range msgs.issued() {
		r := msgs.get(seq)
		d := int64(r.delivered.Load())
		win := inWindow(r.intended.Load())
		if win {
			t.winSent++
		}
		if r.state.Load() != msgAccepted {
			t.unacked += d
			continue
		}
		t.delivered += d
		t.expected += owed
		t.missing += max(owed-d, 0)
		t.duplicates += max(d-owed, 0)
		if win {
			t.winDelivered += d
			t.winExpected += owed
		}
	}
	return t
}

// sendClock is what the chat and mls modes share about time: the tool's start, when sending
// started, the measured window and every message issued. Times are ns since t0.
type sendClock struct {
	t0             time.Time
	sendStart      int64
	winFrom, winTo atomic.Int64 // set once sending starts; read by the receivers
	msgs           timeline
}

func (c *sendClock) since() int64 { return int64(time.Since(c.t0)) }

func (c *sendClock) inWindow(intended int64) bool {
	return intended >= c.winFrom.Load() && intended < c.winTo.Load()
}

// drive sends until the end of the window: on the schedule of rate (open loop), or as fast as
// inflight sends per sender allow (closed loop, rate 0). It returns when every send has its
// answer. In open loop message i is due at sendStart + i/rate from sender i mod senders; a send
// whose workers are all busy waits in its sender's queue, keeps its intended time (no
// coordinated omission) and is counted late by send.
func (c *sendClock) drive(ctx context.Context, rate float64, inflight, senders int, send func(ctx context.Context, sender int, j job)) {
	var wg sync.WaitGroup
	end := c.winTo.Load()
	if rate <= 0 {
		for s := range senders {
			for range inflight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ctx.Err() == nil {
						now := c.since()
						if now >= end {
							return
						}
						seq, rec := c.msgs.issue(now)
						send(ctx, s, job{seq: seq, rec: rec, intended: now})
					}
				}()
			}
		}
		wg.Wait()
		return
	}
	queues := make([]chan job, senders)
	for s := range queues {
		queues[s] = make(chan job, 4096)
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range queues[s] {
					send(ctx, s, j)
				}
			}()
		}
	}
	interval := float64(time.Second) / rate
	for i := uint64(0); ctx.Err() == nil; i++ {
		intended := c.sendStart + int64(float64(i)*interval)
		if intended >= end {
			break
		}
		if wait := intended - c.since(); wait > 0 {
			select {
			case <-time.After(time.Duration(wait)):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		seq, rec := c.msgs.issue(intended)
		select {
		case queues[i%uint64(senders)] <- job{seq: seq, rec: rec, intended: intended}:
		case <-ctx.Done():
			rec.state.Store(msgFailed)
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
}

// drain waits for the deliveries of every accepted message while they keep coming (stopping 5 s
// after the last progress), and says how long it waited.
func drain(ctx context.Context, tallyNow func() tally) time.Duration {
	start := time.Now()
	var lastDelivered int64
	lastProgress := time.Now()
	for {
		t := tallyNow()
		if t.missing == 0 || time.Since(lastProgress) > 5*time.Second || ctx.Err() != nil {
			return time.Since(start)
		}
		if t.delivered != lastDelivered {
			lastDelivered, lastProgress = t.delivered, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}
