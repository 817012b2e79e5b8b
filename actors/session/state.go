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
//
// Frames are kept as what it takes to encode them (frame), not as their bytes: the payload is
// the one slice every session that got the dispatch shares, so a kept frame costs a fixed 80
// bytes whatever its size, and a re-send is encoded again from the same inputs, byte for byte
// what went out the first time. A heartbeat releases the frames it reports as received (ack).
type window struct {
	size uint64  // how many of the last sequence numbers are remembered
	next uint64  // s of the next frame
	kept []frame // re-sendable frames with s >= low(), oldest first
	// released marks, by s mod size, the frames of the last size that were kept and then released
	// by a heartbeat, to tell them from the frames never kept (ACKs and the like): an except
	// naming one of those re-sends nothing, an except naming a released frame closes with 4007.
	// nil until something is released.
	released []uint64
}

// frame is a server frame as what it takes to encode it: Encoder.Dispatch (a service dispatch)
// or Encoder.Frame of these fields gives the same bytes each time. data is shared, never copied
// or changed: it is the Dispatch's payload, read-only once delivered, or one the session made.
type frame struct {
	data       []byte          // the payload: "d" of a core frame, the inner "d" of a dispatch
	namespace  string          // "n"
	event      string          // dispatches: "t"
	s          uint64          // set by window.push
	cursor     events.Position // dispatches: "c", when withCursor
	op         int32           // core frames: "op" (opcodes are 0-65535, core 3.2); dispatches are op 0
	dispatch   bool            // a service dispatch {"t", "c", "d"} rather than a plain frame
	withCursor bool
}

// plainFrame is {"n": namespace, "op": op, "d": d}.
func plainFrame(namespace string, op int, d []byte) frame {
	return frame{namespace: namespace, op: int32(op), data: d}
}

// dispatchFrame is a service dispatch (op 0) {"t": event, "c": cursor, "d": d}; "c" only with
// withCursor.
func dispatchFrame(namespace, event string, cursor events.Position, withCursor bool, d []byte) frame {
	return frame{namespace: namespace, op: opDispatch, dispatch: true, event: event, cursor: cursor, withCursor: withCursor, data: d}
}

// frameOf is the frame a delivered dispatch makes: a core frame, or a service dispatch whose
// "c" is its cursor (none when 0).
func frameOf(d Dispatch) frame {
	if d.Namespace == nsCore {
		return plainFrame(nsCore, d.Op, d.Data)
	}
	return dispatchFrame(d.Namespace, d.Type, d.Cursor, d.Cursor != 0, d.Data)
}

// encode writes f in the wire format; the same frame always gives the same bytes.
func (f *frame) encode(e Encoder) []byte {
	if f.dispatch {
		return e.Dispatch(f.namespace, f.s, f.event, f.cursor, f.withCursor, f.data)
	}
	return e.Frame(f.namespace, int(f.op), f.s, f.data)
}

// keep says whether f is remembered for sending again.
func (f *frame) keep() bool { return keep(f.namespace, int(f.op)) }

func newWindow(size int) *window { return &window{size: uint64(max(size, 1))} }

// low is the oldest s still remembered.
func (w *window) low() uint64 {
	if w.next < w.size {
		return 0
	}
	return w.next - w.size
}

// push numbers f with s = w.next, records it if it is kept (frame.keep), advances, and returns
// it numbered, for the caller to encode.
func (w *window) push(f frame) frame {
	f.s = w.next
	if f.keep() {
		w.kept = append(w.kept, f)
	}
	w.setReleased(f.s, false) // a new frame in the slot of one size ago
	w.next++
	low := w.low()
	i := 0
	for i < len(w.kept) && w.kept[i].s < low {
		w.kept[i] = frame{} // let the payload go
		i++
	}
	// Reslicing from the front is an amortised queue: append copies only the live part when
	// it runs out of room. A window that empties lets its array go.
	if w.kept = w.kept[i:]; len(w.kept) == 0 {
		w.kept = nil
	}
	return f
}

// find is the kept frame with sequence s, if any.
func (w *window) find(s uint64) (frame, bool) {
	i := sort.Search(len(w.kept), func(i int) bool { return w.kept[i].s >= s })
	if i < len(w.kept) && w.kept[i].s == s {
		return w.kept[i], true
	}
	return frame{}, false
}

// after returns the kept frames with s > last, oldest first. ok is false when the client claims
// a frame that was never sent, or when frames after last are no longer remembered.
//
// Frames a heartbeat acknowledged are left out: the client has them. A client resumes from the
// last s below which it misses nothing, and every frame it reported missing (except) is still
// kept, so what it lacks after last is all here.
func (w *window) after(last uint64) (frames []frame, ok bool) {
	if last >= w.next || last+1 < w.low() {
		return nil, false
	}
	i := sort.Search(len(w.kept), func(i int) bool { return w.kept[i].s > last })
	return slices.Clone(w.kept[i:]), true
}

// errSequence is a heartbeat that names frames the server did not send or no longer has: close
// with 4007.
var errSequence = errors.New("invalid sequence numbers")

// ack checks a heartbeat against what was sent and returns the frames of its except list to send
// again, oldest first, each once. The frames it reports as received (from..to but except) are
// released: the client has them, so neither an except nor a Resume needs them again. Frames
// below from stay until they leave the window: the heartbeat does not say the client has them
// (one it asked for before may still be on its way in an ACK). A heartbeat that fails releases
// nothing (4007 is resumable).
func (w *window) ack(hb Heartbeat) ([]frame, error) {
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
	except := hb.Except
	if len(except) > 1 {
		except = slices.Clone(except)
		slices.Sort(except)
		except = slices.Compact(except)
	}
	var frames []frame
	for _, s := range except {
		if s < hb.From || s > hb.To {
			return nil, fmt.Errorf("%w: except %d is outside %d..%d", errSequence, s, hb.From, hb.To)
		}
		if s < w.low() {
			return nil, fmt.Errorf("%w: frame %d is no longer kept (only the last %d are)", errSequence, s, w.size)
		}
		if f, ok := w.find(s); ok {
			frames = append(frames, f)
		} else if w.isReleased(s) {
			return nil, fmt.Errorf("%w: frame %d is no longer kept (an earlier heartbeat acknowledged it)", errSequence, s)
		} // else an ACK, Resumed or Heartbeat Request: nothing to send again
	}
	w.release(hb.From, hb.To, except)
	return frames, nil
}

// release drops the kept frames from..to but those in except (sorted).
func (w *window) release(from, to uint64, except []uint64) {
	lo := sort.Search(len(w.kept), func(i int) bool { return w.kept[i].s >= from })
	hi := lo + sort.Search(len(w.kept)-lo, func(i int) bool { return w.kept[lo+i].s > to })
	if lo == hi {
		return
	}
	j, e := lo, 0
	for i := lo; i < hi; i++ {
		s := w.kept[i].s
		for e < len(except) && except[e] < s {
			e++
		}
		if e < len(except) && except[e] == s {
			w.kept[j] = w.kept[i] // asked for again: still missing
			j++
			continue
		}
		w.setReleased(s, true)
	}
	n := copy(w.kept[j:], w.kept[hi:])
	clear(w.kept[j+n:]) // let the payloads go
	w.kept = w.kept[:j+n]
	// Most of a busy window goes at each heartbeat: a mostly empty array is let go too.
	switch {
	case len(w.kept) == 0:
		w.kept = nil
	case len(w.kept) <= cap(w.kept)/4:
		w.kept = slices.Clone(w.kept)
	}
}

func (w *window) setReleased(s uint64, on bool) {
	if w.released == nil {
		if !on {
			return
		}
		w.released = make([]uint64, (w.size+63)/64)
	}
	i := s % w.size
	if on {
		w.released[i/64] |= 1 << (i % 64)
	} else {
		w.released[i/64] &^= 1 << (i % 64)
	}
}

// isReleased: frame s, within the window, was kept and a heartbeat released it.
func (w *window) isReleased(s uint64) bool {
	i := s % w.size
	return w.released != nil && w.released[i/64]&(1<<(i%64)) != 0
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
