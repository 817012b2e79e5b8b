package session

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sent builds a window of size whose frames 0..n-1 went out; frames with s in skip were not kept
// (ACKs). Frame s has the payload "f<s>".
func sent(size, n int, skip ...uint64) *window {
	w := newWindow(size)
	for s := uint64(0); s < uint64(n); s++ {
		op := 3
		if contains(skip, s) {
			op = opHeartbeatACK
		}
		w.push(plainFrame(nsCore, op, []byte(fmt.Sprintf("f%d", s))))
	}
	return w
}

func contains(xs []uint64, x uint64) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// names are the payloads of frames, checked against their s.
func names(frames []frame) []string {
	out := []string{}
	for _, f := range frames {
		name := string(f.data)
		if want := fmt.Sprintf("f%d", f.s); name != want {
			name += " (s=" + fmt.Sprint(f.s) + ")"
		}
		out = append(out, name)
	}
	return out
}

func TestWindowKeepsTheLastFrames(t *testing.T) {
	w := sent(4, 10, 7)
	if w.next != 10 || w.low() != 6 {
		t.Fatalf("next %d low %d, want 10 and 6", w.next, w.low())
	}
	if diff := cmp.Diff([]string{"f6", "f8", "f9"}, names(w.kept)); diff != "" {
		t.Fatalf("kept (-want +got):\n%s", diff)
	}
	if _, ok := w.find(5); ok {
		t.Fatal("frame 5 is older than the window")
	}
	if f, ok := w.find(8); !ok || string(f.data) != "f8" || f.s != 8 {
		t.Fatalf("frame 8: %+v %v", f, ok)
	}
	if len(sent(4, 0).kept) != 0 || sent(1024, 3).low() != 0 {
		t.Fatal("a young window starts at 0")
	}
}

// TestWindowAfter is the same-process Resume: the frames after the client's last s.
func TestWindowAfter(t *testing.T) {
	cases := []struct {
		name   string
		w      *window
		last   uint64
		want   []string
		wantOK bool
	}{
		{"nothing missed", sent(8, 5), 4, []string{}, true},
		{"two missed", sent(8, 5), 2, []string{"f3", "f4"}, true},
		{"acks are not re-sent", sent(8, 5, 3), 2, []string{"f4"}, true},
		{"all of a full window", sent(4, 10), 5, []string{"f6", "f7", "f8", "f9"}, true},
		{"frames gone", sent(4, 10), 4, nil, false},
		{"a frame never sent", sent(8, 5), 5, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frames, ok := c.w.after(c.last)
			if ok != c.wantOK {
				t.Fatalf("ok = %v, want %v", ok, c.wantOK)
			}
			if ok {
				if diff := cmp.Diff(c.want, names(frames)); diff != "" {
					t.Fatalf("frames (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestHeartbeatAck: given what was sent, when a heartbeat arrives, then these frames are sent
// again (or the connection closes with 4007).
func TestHeartbeatAck(t *testing.T) {
	cases := []struct {
		name    string
		w       *window
		hb      Heartbeat
		want    []string
		wantErr bool
	}{
		{"empty heartbeat", sent(8, 5), Heartbeat{}, nil, false},
		{"range without except", sent(8, 5), Heartbeat{From: 0, To: 4, HasRange: true}, nil, false},
		{"one frame", sent(8, 5), Heartbeat{From: 0, To: 0, HasRange: true}, nil, false},
		{"except re-sent oldest first, once", sent(8, 5), Heartbeat{From: 1, To: 4, HasRange: true, Except: []uint64{4, 2, 4}}, []string{"f2", "f4"}, false},
		{"except of an ack re-sends nothing", sent(8, 5, 3), Heartbeat{From: 1, To: 4, HasRange: true, Except: []uint64{3}}, nil, false},
		{"range may start before the window", sent(4, 10), Heartbeat{From: 0, To: 9, HasRange: true, Except: []uint64{8}}, []string{"f8"}, false},
		{"except without range", sent(8, 5), Heartbeat{Except: []uint64{1}}, nil, true},
		{"from after to", sent(8, 5), Heartbeat{From: 3, To: 2, HasRange: true}, nil, true},
		{"to never sent", sent(8, 5), Heartbeat{From: 0, To: 5, HasRange: true}, nil, true},
		{"except outside the range", sent(8, 5), Heartbeat{From: 2, To: 4, HasRange: true, Except: []uint64{1}}, nil, true},
		{"except no longer kept", sent(4, 10), Heartbeat{From: 0, To: 9, HasRange: true, Except: []uint64{5}}, nil, true},
		{"huge numbers", sent(8, 5), Heartbeat{From: 1 << 63, To: 1<<64 - 1, HasRange: true}, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frames, err := c.w.ack(c.hb)
			if c.wantErr {
				if !errors.Is(err, errSequence) {
					t.Fatalf("err = %v, want errSequence", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, namesOrNil(frames)); diff != "" {
				t.Fatalf("re-sent (-want +got):\n%s", diff)
			}
		})
	}
}

func namesOrNil(frames []frame) []string {
	if len(frames) == 0 {
		return nil
	}
	return names(frames)
}

func TestKeep(t *testing.T) {
	for _, c := range []struct {
		ns   string
		op   int
		want bool
	}{
		{"core", opHello, true}, {"core", 3, true}, {"core", 4, true}, {"core", opServiceChannelACK, true},
		{"core", opHeartbeatACK, false}, {"core", opResumed, false}, {"core", opHeartbeatRequest, false},
		{"chat", 0, true},
	} {
		if got := keep(c.ns, c.op); got != c.want {
			t.Errorf("keep(%s, %d) = %v", c.ns, c.op, got)
		}
	}
}

// TestClockDue: the deadlines of a session with a 10 s heartbeat interval.
func TestClockDue(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := time.Second
	base := clock{interval: 10 * s, resumeWindow: time.Minute}
	with := func(f func(*clock)) clock { c := base; f(&c); return c }
	waiting := with(func(c *clock) { c.identifyBy = t0.Add(10 * s) })
	live := with(func(c *clock) { c.identified, c.lastBeat = true, t0 })
	requested := with(func(c *clock) { c.identified, c.lastBeat, c.requested = true, t0, true })
	detached := with(func(c *clock) { c.identified, c.lastBeat, c.detachedAt = true, t0, t0 })
	ending := with(func(c *clock) { c.identified, c.lastBeat, c.certEnd = true, t0, t0.Add(12*s) })
	foreign := with(func(c *clock) {
		c.identified, c.lastBeat, c.certEnd, c.recheckAt = true, t0, t0.Add(time.Hour), t0.Add(3*s)
	})
	cases := []struct {
		name     string
		c        clock
		at       time.Duration
		want     due
		wantNext time.Duration // from t0; -1: none
	}{
		{"before identify", waiting, 5 * s, dueNothing, 10 * s},
		{"identify too late", waiting, 10 * s, dueIdentify, -1},
		{"heartbeat in time", live, 14 * s, dueNothing, 15 * s},
		{"1.5 intervals: request", live, 15 * s, dueRequest, 20 * s},
		{"requested: wait for 2 intervals", requested, 16 * s, dueNothing, 20 * s},
		{"2 intervals: time out", requested, 20 * s, dueHeartbeat, -1},
		{"2 intervals without a request still times out", live, 25 * s, dueHeartbeat, -1},
		{"detached: heartbeats do not count", detached, 30 * s, dueNothing, time.Minute},
		{"resume window over", detached, time.Minute, dueResumeExpired, -1},
		{"the cert ends before the next heartbeat deadline", ending, 5 * s, dueNothing, 12 * s},
		{"the cert ended", ending, 12 * s, dueCertExpired, -1},
		{"a foreign status to check first", foreign, 2 * s, dueNothing, 3 * s},
		{"a foreign status to check", foreign, 3 * s, dueRecheck, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next := c.c.due(t0.Add(c.at))
			if got != c.want {
				t.Fatalf("due = %d, want %d", got, c.want)
			}
			want := time.Time{}
			if c.wantNext >= 0 {
				want = t0.Add(c.wantNext)
			}
			if !next.Equal(want) {
				t.Fatalf("next = %s, want %s", next, want)
			}
		})
	}
}

func TestFresh(t *testing.T) {
	for _, c := range []struct {
		d    Dispatch
		last mark
		want bool
	}{
		{Dispatch{Namespace: "chat", Cursor: 5}, mark{4, 0}, true},
		{Dispatch{Namespace: "chat", Cursor: 5}, mark{5, 0}, false},
		{Dispatch{Namespace: "chat", Cursor: 3}, mark{5, 0}, false},
		{Dispatch{Namespace: "chat", Cursor: 5, Part: 1}, mark{5, 0}, true},  // the event's second dispatch
		{Dispatch{Namespace: "chat", Cursor: 5, Part: 1}, mark{5, 1}, false}, // seen
		{Dispatch{Namespace: "chat", Cursor: 5, Part: 3}, mark{5, wholeEvent}, false},
		{Dispatch{Namespace: "chat", Cursor: 6}, mark{5, wholeEvent}, true},
		{Dispatch{Namespace: "chat"}, mark{5, 0}, true},
		{Dispatch{Namespace: "core", Op: 3}, mark{5, 0}, true},
	} {
		if got := fresh(c.d, c.last); got != c.want {
			t.Errorf("fresh(%+v, %+v) = %v", c.d, c.last, got)
		}
	}
}
