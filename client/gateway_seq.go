package client

import "fmt"

// seqWindow bounds how far past the oldest missing frame the SDK holds frames for in-order
// delivery. The server keeps the last 1,024 frames it sent (PROTOCOL.md section 4), so a gap
// older than that can never be filled by a heartbeat ACK: the connection is dropped and resumed.
const seqWindow = 1024

// seqTracker is the client half of the guaranteed-delivery mechanism (core 3.2.6) for one
// numbering of server frames: which s were received, which frames wait above a gap, and what the
// next heartbeat reports. It is not safe for concurrent use; Gateway guards it with its mutex,
// because the reader feeds it and the writer asks it for heartbeats.
type seqTracker struct {
	next uint64 // every s below next was received and handed on in order
	top  uint64 // one past the highest s received; next < top means there is a gap at next
	// held are frames received above a gap, delivered once the gap is filled. A nil entry is
	// a frame that counts as received but was already delivered another way (see mark).
	held map[uint64]*frame

	ivMin uint64 // lowest s received since the last heartbeat, when ivAny
	ivAny bool

	// asked holds the except list of each heartbeat sent on this connection and not yet
	// answered, oldest first: the server answers every heartbeat with one op 7, in order.
	asked [][]uint64

	// paused silences heartbeats while a Resume is unanswered: until op 10 says whether the
	// server continues this numbering or starts a fresh one, any range could be wrong (4007).
	paused bool
}

// reset starts a fresh numbering (a new connection that Identifies).
func (t *seqTracker) reset() { *t = seqTracker{} }

// restartAt starts a fresh numbering in which every s up to and including s is settled: the
// server replayed from its log and "continues with a fresh sequence from the Resumed frame".
func (t *seqTracker) restartAt(s uint64) {
	// The same connection goes on: heartbeats sent on it are still to be answered.
	*t = seqTracker{next: s + 1, top: s + 1, ivMin: s, ivAny: true, asked: t.asked}
}

// resumeFrom sets up a numbering whose frames up to s were received by an earlier process.
func (t *seqTracker) resumeFrom(s uint64) { *t = seqTracker{next: s + 1, top: s + 1} }

// last is the s a Resume names: the newest frame below which nothing is missing.
func (t *seqTracker) last() uint64 {
	if t.next == 0 {
		return 0
	}
	return t.next - 1
}

// accept records f (which must carry an s) and returns the frames that can now be delivered, in
// order: f itself when it is the next one, followed by any held frames it unblocks; nothing when
// f is a duplicate or arrived above a gap. A frame too far past the oldest gap is an error.
func (t *seqTracker) accept(f frame) ([]frame, error) {
	return t.take(f.s, &f)
}

// mark records s as received without holding a frame for it: the caller delivered that frame
// already (op 10 replays in a fresh numbering). It returns held frames it unblocks, if any.
func (t *seqTracker) mark(s uint64) ([]frame, error) {
	return t.take(s, nil)
}

func (t *seqTracker) take(s uint64, f *frame) ([]frame, error) {
	if s >= t.next && s-t.next >= seqWindow {
		return nil, fmt.Errorf("frame s=%d is %d or more past the oldest missing frame s=%d", s, seqWindow, t.next)
	}
	if !t.record(s) {
		return nil, nil
	}
	if s != t.next {
		if t.held == nil {
			t.held = make(map[uint64]*frame)
		}
		t.held[s] = f
		return nil, nil
	}
	var out []frame
	if f != nil {
		out = append(out, *f)
	}
	t.next++
	for {
		h, ok := t.held[t.next]
		if !ok {
			return out, nil
		}
		delete(t.held, t.next)
		if h != nil {
			out = append(out, *h)
		}
		t.next++
	}
}

// record notes s as received this interval; false for a duplicate.
func (t *seqTracker) record(s uint64) bool {
	if s < t.next {
		return false
	}
	if _, dup := t.held[s]; dup {
		return false
	}
	if !t.ivAny || s < t.ivMin {
		t.ivMin, t.ivAny = s, true
	}
	if s >= t.top {
		t.top = s + 1
	}
	return true
}

// heartbeat returns the payload of the next op 0 and starts a new interval. The range starts at
// the lowest frame received this interval, or lower when an older gap is still open, because
// a missing frame can only be asked for again inside the range; except lists every frame of the
// range never received. Frames received in an earlier interval may therefore fall inside the
// range again, which only acknowledges them twice.
func (t *seqTracker) heartbeat() heartbeatRange {
	if t.paused {
		t.ask(nil)
		return heartbeatRange{} // keep the interval for the first heartbeat after op 10
	}
	gap := t.next < t.top
	if !t.ivAny && !gap {
		t.ask(nil)
		return heartbeatRange{}
	}
	from := t.next
	if t.ivAny && (!gap || t.ivMin < from) {
		from = t.ivMin
	}
	to := t.top - 1
	var except []uint64
	for s := max(from, t.next); s <= to; s++ {
		if _, ok := t.held[s]; !ok {
			except = append(except, s)
		}
	}
	t.ivAny = false
	t.ask(except)
	return heartbeatRange{From: &from, To: &to, Except: except}
}

// maxAsked bounds the unanswered heartbeats remembered; a server that stops answering is cut
// off by the read deadline long before.
const maxAsked = 64

func (t *seqTracker) ask(except []uint64) {
	if len(t.asked) == maxAsked {
		t.asked = t.asked[1:]
	}
	t.asked = append(t.asked, except)
}

// newConnection forgets the heartbeats of the previous connection: their answers never come.
func (t *seqTracker) newConnection() { t.asked = nil }

// settleAsked is called for each op 7 after its re-sent frames were accepted. Whatever the
// answered heartbeat asked for and the ACK did not bring, the server cannot send again: it keeps
// no ACKs, Resumed frames or Heartbeat Requests. Those count as received, or the frames above
// them would wait for ever. It returns the held frames this unblocks.
func (t *seqTracker) settleAsked() []frame {
	if len(t.asked) == 0 {
		return nil
	}
	except := t.asked[0]
	t.asked = t.asked[1:]
	var out []frame
	for _, s := range except {
		if _, held := t.held[s]; s < t.next || held {
			continue
		}
		more, err := t.mark(s)
		if err != nil {
			continue // cannot happen: s was inside the window when it was asked for
		}
		out = append(out, more...)
	}
	return out
}

// settleUpTo counts every s below s as received: the frames an op 10 in our numbering did not
// re-send are ones the server does not keep (see settleAsked). It returns the held frames this
// unblocks.
func (t *seqTracker) settleUpTo(s uint64) []frame {
	var out []frame
	for t.next < s {
		more, err := t.mark(t.next)
		if err != nil {
			break // cannot happen: next is always inside the window
		}
		out = append(out, more...)
	}
	return out
}
