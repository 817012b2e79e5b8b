package session

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/polyproto-chat/server/events"
)

// The pure parts of a session: its outbound sequence and the frames it can send again, the
// checks of a heartbeat against them, and its deadlines. The actor (actor.go) feeds them.

// window is a connection's outbound sequence: the next s, and those of the last size frames
// that can be sent again (for a heartbeat's except and for Resume).
//
// Heartbeat ACKs (op 7), Resumed wrappers (op 10) and Heartbeat Requests (op 11) take a sequence
// number but are not kept: an ACK never carries op 7 (core 3.2), the frames inside op 10 are kept
// on their own, and a stale op 11 asks for nothing. Keeping only the rest is what lets an idle
// connection that heartbeats for hours hold a handful of frames instead of 1,024 ACKs.
type window struct {
	size uint64 // how many of the last sequence numbers are remembered
	next uint64 // s of the next frame
	kept []kept // re-sendable frames with s >= low(), oldest first
}

type kept struct {
	s     uint64
	frame []byte
}

func newWindow(size int) *window { return &window{size: uint64(max(size, 1))} }

// low is the oldest s still remembered.
func (w *window) low() uint64 {
	if w.next < w.size {
		return 0
	}
	return w.next - w.size
}

// push records frame as sent with s = w.next (which the caller encoded into it) and advances.
func (w *window) push(frame []byte, keep bool) {
	if keep {
		w.kept = append(w.kept, kept{s: w.next, frame: frame})
	}
	w.next++
	low := w.low()
	i := 0
	for i < len(w.kept) && w.kept[i].s < low {
		w.kept[i].frame = nil
		i++
	}
	// Reslicing from the front is an amortised queue: append copies only the live part when
	// it runs out of room. A window that empties lets its array go.
	if w.kept = w.kept[i:]; len(w.kept) == 0 {
		w.kept = nil
	}
}

// frame is the kept frame with sequence s, if any.
func (w *window) frame(s uint64) ([]byte, bool) {
	i := sort.Search(len(w.kept), func(i int) bool { return w.kept[i].s >= s })
	if i < len(w.kept) && w.kept[i].s == s {
		return w.kept[i].frame, true
	}
	return nil, false
}

// after returns the kept frames with s > last, oldest first. ok is false when the client claims
// a frame that was never sent, or when frames after last are no longer remembered.
func (w *window) after(last uint64) (frames [][]byte, ok bool) {
	if last >= w.next || last+1 < w.low() {
		return nil, false
	}
	i := sort.Search(len(w.kept), func(i int) bool { return w.kept[i].s > last })
	for _, k := range w.kept[i:] {
		frames = append(frames, k.frame)
	}
	return frames, true
}

// errSequence is a heartbeat that names frames the server did not send or no longer has: close
// with 4007.
var errSequence = errors.New("invalid sequence numbers")

// ack checks a heartbeat against what was sent and returns the frames of its except list to send
// again, oldest first, each once.
func (w *window) ack(hb Heartbeat) ([][]byte, error) {
	if !hb.HasRange {
		if len(hb.Except) > 0 {
			return nil, fmt.Errorf("%w: except without from and to", errSequence)
		}
		return nil, nil
	}
	switch {
	case hb.From > hb.To:
		return nil, fmt.Errorf("%w: from %d is after to %d", errSequence, hb.From, hb.To)
	case hb.To >= w.next:
		return nil, fmt.Errorf("%w: to %d, but the last frame sent is %d", errSequence, hb.To, int64(w.next)-1)
	}
	if len(hb.Except) == 0 {
		return nil, nil
	}
	except := slices.Clone(hb.Except)
	slices.Sort(except)
	except = slices.Compact(except)
	var frames [][]byte
	for _, s := range except {
		if s < hb.From || s > hb.To {
			return nil, fmt.Errorf("%w: except %d is outside %d..%d", errSequence, s, hb.From, hb.To)
		}
		if s < w.low() {
			return nil, fmt.Errorf("%w: frame %d is no longer kept (only the last %d are)", errSequence, s, w.size)
		}
		if f, ok := w.frame(s); ok {
			frames = append(frames, f)
		} // else an ACK, Resumed or Heartbeat Request: nothing to send again
	}
	return frames, nil
}

// keep says whether frames of this core opcode are remembered for sending again (see window).
func keep(namespace string, op int) bool {
	return namespace != nsCore || op != opHeartbeatACK && op != opResumed && op != opHeartbeatRequest
}

// clock holds a session's deadlines. Times come from outside, so due is pure.
type clock struct {
	interval     time.Duration // heartbeat interval
	resumeWindow time.Duration // how long a dropped session waits for Resume

	identifyBy time.Time // before Identify: when it is too late
	identified bool
	lastBeat   time.Time // identified: the last heartbeat (or the Identify)
	requested  bool      // a Heartbeat Request went out since lastBeat
	detachedAt time.Time // non-zero while the connection is gone and the session waits for Resume
	certEnd    time.Time // the ID-Cert's notAfter: the token dies with it
	recheckAt  time.Time // foreign sessions: when the home server's "not revoked" must be asked again
}

// due is what a session must do at now, and when to look again (zero: never).
type due int

const (
	dueNothing       due = iota
	dueIdentify          // no Identify or Resume in time: close 4003
	dueRequest           // no heartbeat for 1.5 intervals: send op 11
	dueHeartbeat         // no heartbeat for 2 intervals: close 4009
	dueResumeExpired     // detached for the whole resume window: stop
	dueCertExpired       // the session's ID-Cert ended: close 4004
	dueRecheck           // check the token again (a foreign cert's status)
)

func (c *clock) due(now time.Time) (due, time.Time) {
	switch {
	case !c.detachedAt.IsZero():
		end := c.detachedAt.Add(c.resumeWindow)
		if !now.Before(end) {
			return dueResumeExpired, time.Time{}
		}
		return dueNothing, end
	case !c.identified:
		if !now.Before(c.identifyBy) {
			return dueIdentify, time.Time{}
		}
		return dueNothing, c.identifyBy
	case !c.certEnd.IsZero() && !now.Before(c.certEnd):
		return dueCertExpired, time.Time{}
	case !c.recheckAt.IsZero() && !now.Before(c.recheckAt):
		return dueRecheck, time.Time{}
	}
	request, timeout := c.lastBeat.Add(c.interval*3/2), c.lastBeat.Add(2*c.interval)
	act, next := dueNothing, request
	switch {
	case !now.Before(timeout):
		return dueHeartbeat, time.Time{}
	case !c.requested && !now.Before(request):
		act, next = dueRequest, timeout
	case c.requested:
		next = timeout
	}
	return act, earliest(next, c.certEnd, c.recheckAt)
}

// earliest is the earliest of the non-zero times.
func earliest(t time.Time, more ...time.Time) time.Time {
	for _, m := range more {
		if !m.IsZero() && (t.IsZero() || m.Before(t)) {
			t = m
		}
	}
	return t
}

// serviceBit is the subscription bit of a service channel, 0 for services this server does
// not offer.
func serviceBit(service string) uint32 {
	if service == nsChat {
		return 1
	}
	return 0
}

// mark is how far a session's chat dispatches have gone: a position, and which of the
// dispatches of the event there (Dispatch.Part).
type mark struct {
	pos  events.Position
	part int
}

// wholeEvent as a part means every dispatch of the event at pos (READY and Resume are exact at
// event boundaries).
const wholeEvent = math.MaxInt

func markOf(d Dispatch) mark { return mark{pos: d.Cursor, part: d.Part} }

func (m mark) after(o mark) bool { return m.pos > o.pos || m.pos == o.pos && m.part > o.part }

func (m mark) max(o mark) mark {
	if o.after(m) {
		return o
	}
	return m
}

// fresh reports whether a dispatch is new to a session that has already seen everything up to
// last. Fan-out is at least once and overlaps READY and Resume, so a chat dispatch at or before
// what the client already has is dropped; frames without a cursor always pass.
func fresh(d Dispatch, last mark) bool {
	return d.Namespace != nsChat || d.Cursor == 0 || markOf(d).after(last)
}
