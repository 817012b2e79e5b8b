package client

import (
	"fmt"
	"testing"
)

// seqStep is one thing that happens to a tracker: a frame arrives (accept), a heartbeat goes out
// (beat), or an op 7 answers the oldest unanswered heartbeat (ack).
type seqStep struct {
	accept  uint64
	beat    bool
	ack     bool
	want    string // accept/ack: the s delivered, "12" style; beat: the heartbeat, as fmtRange
	wantErr bool
}

func acc(s uint64, want string) seqStep { return seqStep{accept: s, want: want} }
func beat(want string) seqStep          { return seqStep{beat: true, want: want} }
func ack(want string) seqStep           { return seqStep{ack: true, want: want} }

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name  string
		steps []seqStep
	}{
		{name: "in order", steps: []seqStep{
			acc(0, "0"), acc(1, "1"), acc(2, "2"), beat("0-2"), beat("none"), acc(3, "3"), beat("3-3"),
		}},
		{name: "duplicates are dropped and not reported", steps: []seqStep{
			acc(0, "0"), acc(1, "1"), beat("0-1"), acc(1, ""), acc(0, ""), beat("none"),
		}},
		{name: "a gap holds what follows until it is filled", steps: []seqStep{
			acc(0, "0"), acc(2, ""), acc(3, ""), beat("0-3 except [1]"), acc(2, ""), acc(1, "123"), beat("1-3"),
		}},
		{name: "an open gap keeps the range reaching back", steps: []seqStep{
			acc(0, "0"), acc(2, ""), beat("0-2 except [1]"), acc(4, ""), beat("1-4 except [1 3]"),
			acc(3, ""), beat("1-4 except [1]"), acc(1, "1234"), beat("1-4"),
		}},
		{name: "nothing received but a gap still open", steps: []seqStep{
			acc(0, "0"), acc(2, ""), beat("0-2 except [1]"), beat("1-2 except [1]"),
		}},
		{name: "what the ACK did not re-send is settled", steps: []seqStep{
			acc(0, "0"), acc(2, ""), acc(4, ""), beat("0-4 except [1 3]"), acc(3, ""), ack("234"), beat("1-4"),
		}},
		{name: "ACKs pair with heartbeats in order", steps: []seqStep{
			acc(0, "0"), acc(2, ""), beat("0-2 except [1]"), beat("1-2 except [1]"),
			ack("2"), ack(""), beat("1-2"),
		}},
		{name: "an ACK with nothing asked settles nothing", steps: []seqStep{
			acc(0, "0"), beat("0-0"), acc(2, ""), ack(""), beat("1-2 except [1]"),
		}},
		{name: "the window of held frames counts from the oldest gap", steps: []seqStep{
			acc(0, "0"), acc(seqWindow, ""), accErr(seqWindow + 1), acc(1, "1"), acc(seqWindow+1, ""),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr seqTracker
			for i, st := range tt.steps {
				var got string
				var err error
				switch {
				case st.beat:
					hb := tr.heartbeat()
					got = fmtHeartbeat(hb)
				case st.ack:
					got = delivered(tr.settleAsked())
				default:
					var out []frame
					out, err = tr.accept(frame{s: st.accept, hasS: true})
					got = delivered(out)
				}
				if (err != nil) != st.wantErr {
					t.Fatalf("step %d: err %v, want error %v", i, err, st.wantErr)
				}
				if got != st.want {
					t.Fatalf("step %d: got %q, want %q", i, got, st.want)
				}
			}
		})
	}
}

// accErr is acc for a frame the tracker must refuse.
func accErr(s uint64) seqStep { return seqStep{accept: s, wantErr: true} }

func TestSeqTrackerResume(t *testing.T) {
	var tr seqTracker
	tr.resumeFrom(41)
	if tr.last() != 41 {
		t.Fatalf("last() = %d after resumeFrom(41)", tr.last())
	}
	tr.paused = true
	if got := fmtHeartbeat(tr.heartbeat()); got != "none" {
		t.Fatalf("heartbeat while paused: %s", got)
	}
	tr.paused = false
	// A continuation: op 10 (s 45) re-sends 42 and 44; 43 was an ACK the server does not keep.
	for _, s := range []uint64{42, 44} {
		if _, err := tr.accept(frame{s: s, hasS: true}); err != nil {
			t.Fatal(err)
		}
	}
	if got := delivered(tr.settleUpTo(45)); got != "44" {
		t.Fatalf("settleUpTo(45) delivered %q, want 44", got)
	}
	if out, _ := tr.accept(frame{s: 45, hasS: true}); delivered(out) != "45" {
		t.Fatalf("op 10 itself: %q", delivered(out))
	}
	if got := fmtHeartbeat(tr.heartbeat()); got != "42-45" {
		t.Fatalf("heartbeat after resume: %s", got)
	}

	// A fresh numbering from the Resumed frame at 3: below is settled.
	tr.restartAt(3)
	if out, _ := tr.accept(frame{s: 2, hasS: true}); len(out) != 0 {
		t.Fatal("s 2 delivered after restartAt(3)")
	}
	if out, _ := tr.accept(frame{s: 4, hasS: true}); delivered(out) != "4" {
		t.Fatalf("s 4 after restartAt(3): %q", delivered(out))
	}
	if got := fmtHeartbeat(tr.heartbeat()); got != "3-4" {
		t.Fatalf("heartbeat after restartAt: %s", got)
	}
}

func fmtHeartbeat(hb heartbeatRange) string {
	var from, to *flexUint
	if hb.From != nil {
		f := flexUint(*hb.From)
		from = &f
	}
	if hb.To != nil {
		v := flexUint(*hb.To)
		to = &v
	}
	except := make([]flexUint, len(hb.Except))
	for i, e := range hb.Except {
		except[i] = flexUint(e)
	}
	return fmtRange(from, to, except)
}

func delivered(fs []frame) string {
	s := ""
	for _, f := range fs {
		s += fmt.Sprint(f.s)
	}
	return s
}
