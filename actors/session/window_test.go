package session

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/polyproto-chat/server/events"
)

// A step of TestWindowRelease: push more frames, then a heartbeat and what it must do.
type step struct {
	push   int        // frames sent first (core op 3, payload "f<s>")
	acks   int        // then this many frames that are not kept (op 7)
	hb     *Heartbeat // then this heartbeat, if any
	resend []string   // what it re-sends
	err    bool       // it closes with 4007
}

type resumeCheck struct {
	last uint64
	want []string // frames op 10 carries
	ok   bool
}

func beat(from, to uint64, except ...uint64) *Heartbeat {
	return &Heartbeat{From: from, To: to, HasRange: true, Except: except}
}

// TestWindowRelease: given frames sent and heartbeats received, these frames are re-sent, these
// stay kept, and a Resume from these s gets these frames.
func TestWindowRelease(t *testing.T) {
	cases := []struct {
		name    string
		size    int
		steps   []step
		kept    []string // after the steps
		resumes []resumeCheck
	}{
		{
			name:  "a heartbeat releases what it reports",
			size:  16,
			steps: []step{{push: 8, hb: beat(0, 7)}},
			kept:  []string{},
			resumes: []resumeCheck{
				{last: 7, want: []string{}, ok: true},
				{last: 3, want: []string{}, ok: true}, // below what it acknowledged: it has them
				{last: 8, ok: false},                  // never sent
			},
		},
		{
			name:  "frames after to stay",
			size:  16,
			steps: []step{{push: 8, hb: beat(0, 4)}},
			kept:  []string{"f5", "f6", "f7"},
			resumes: []resumeCheck{
				{last: 4, want: []string{"f5", "f6", "f7"}, ok: true},
				{last: 6, want: []string{"f7"}, ok: true},
			},
		},
		{
			name:  "frames below from stay: the heartbeat does not report them",
			size:  16,
			steps: []step{{push: 8, hb: beat(3, 7)}},
			kept:  []string{"f0", "f1", "f2"},
			resumes: []resumeCheck{
				{last: 0, want: []string{"f1", "f2"}, ok: true},
			},
		},
		{
			name:  "except is re-sent and stays until acknowledged",
			size:  16,
			steps: []step{{push: 8, hb: beat(0, 7, 5, 3), resend: []string{"f3", "f5"}}},
			kept:  []string{"f3", "f5"},
			resumes: []resumeCheck{
				{last: 2, want: []string{"f3", "f5"}, ok: true}, // the last s with nothing missing below
				{last: 4, want: []string{"f5"}, ok: true},
			},
		},
		{
			name: "a re-sent frame goes once a range covers it without except",
			size: 16,
			steps: []step{
				{push: 8, hb: beat(0, 7, 3), resend: []string{"f3"}},
				{acks: 1},                  // the ACK that carried f3 again: s 8
				{push: 2, hb: beat(3, 10)}, // the SDK's range starts at the lowest s it got
				{push: 1, hb: beat(11, 11, 11), // an except of a kept frame still works
					resend: []string{"f11"}},
			},
			kept: []string{"f11"},
		},
		{
			name: "a re-sent frame below from stays until it leaves the window",
			size: 16,
			steps: []step{
				{push: 8, hb: beat(0, 7, 3), resend: []string{"f3"}},
				{acks: 1, push: 2, hb: beat(8, 10)},
			},
			kept: []string{"f3"},
		},
		{
			name: "an except naming a released frame closes with 4007",
			size: 16,
			steps: []step{
				{push: 8, hb: beat(0, 7)},
				{hb: beat(0, 7, 4), err: true},
			},
			kept: []string{},
		},
		{
			name: "an except naming an ACK is still not an error after its range was acknowledged",
			size: 16,
			steps: []step{
				{push: 3, acks: 1, hb: beat(0, 3)},
				{hb: beat(0, 3, 3)},
			},
			kept: []string{},
		},
		{
			name: "a failed heartbeat releases nothing",
			size: 16,
			steps: []step{
				{push: 4, hb: beat(0, 3, 9), err: true},
				{hb: beat(0, 4), err: true},
				{hb: beat(0, 3, 0, 9), err: true}, // even when the first except was fine
			},
			kept: []string{"f0", "f1", "f2", "f3"},
		},
		{
			name: "a released slot taken by a new frame is kept again",
			size: 4,
			steps: []step{
				{push: 4, hb: beat(0, 3)},
				{push: 4, hb: beat(4, 7, 4, 7), resend: []string{"f4", "f7"}},
				{hb: beat(0, 7, 5), err: true}, // 5 was released in this round
			},
			kept: []string{"f4", "f7"},
		},
		{
			name: "a frame gone from the window is still 4007",
			size: 4,
			steps: []step{
				{push: 6, hb: beat(0, 5, 1), err: true},
			},
			kept: []string{"f2", "f3", "f4", "f5"},
			resumes: []resumeCheck{
				{last: 0, ok: false},
				{last: 1, want: []string{"f2", "f3", "f4", "f5"}, ok: true},
			},
		},
		{
			name: "resume after a partial release",
			size: 16,
			steps: []step{
				{push: 6, hb: beat(0, 5, 2), resend: []string{"f2"}}, // 2 missing
				{push: 3}, // 6, 7, 8 not yet acknowledged
			},
			kept: []string{"f2", "f6", "f7", "f8"},
			resumes: []resumeCheck{
				{last: 1, want: []string{"f2", "f6", "f7", "f8"}, ok: true},
				{last: 5, want: []string{"f6", "f7", "f8"}, ok: true},
				{last: 8, want: []string{}, ok: true},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWindow(c.size)
			for i, st := range c.steps {
				for range st.push {
					w.push(plainFrame(nsCore, 3, []byte(fmt.Sprintf("f%d", w.next))))
				}
				for range st.acks {
					w.push(plainFrame(nsCore, opHeartbeatACK, []byte(fmt.Sprintf("f%d", w.next))))
				}
				if st.hb == nil {
					continue
				}
				frames, err := w.ack(*st.hb)
				if st.err {
					if !errors.Is(err, errSequence) {
						t.Fatalf("step %d: err = %v, want errSequence", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if diff := cmp.Diff(st.resend, namesOrNil(frames)); diff != "" {
					t.Fatalf("step %d: re-sent (-want +got):\n%s", i, diff)
				}
			}
			if diff := cmp.Diff(c.kept, names(w.kept)); diff != "" {
				t.Fatalf("kept (-want +got):\n%s", diff)
			}
			for _, r := range c.resumes {
				frames, ok := w.after(r.last)
				if ok != r.ok {
					t.Fatalf("resume from %d: ok = %v, want %v", r.last, ok, r.ok)
				}
				if diff := cmp.Diff(r.want, names(frames)); ok && diff != "" {
					t.Fatalf("resume from %d (-want +got):\n%s", r.last, diff)
				}
			}
		})
	}
}

// TestReleaseLetsPayloadsGo: released and aged-out slots hold no payload, and a window whose
// frames were all acknowledged holds no array.
func TestReleaseLetsPayloadsGo(t *testing.T) {
	w := newWindow(8)
	for range 12 {
		w.push(plainFrame(nsCore, 3, []byte("x")))
	}
	if _, err := w.ack(Heartbeat{From: 4, To: 9, HasRange: true, Except: []uint64{6}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range w.kept[len(w.kept):cap(w.kept)] {
		if f.data != nil {
			t.Fatalf("a slot past the kept frames still holds a payload: %+v", f)
		}
	}
	if _, err := w.ack(Heartbeat{From: 6, To: 11, HasRange: true}); err != nil {
		t.Fatal(err)
	}
	if w.kept != nil {
		t.Fatalf("all acknowledged, yet kept %d (cap %d)", len(w.kept), cap(w.kept))
	}
}

// messageCreate is a chat payload of the size the load test saw: its frame is about 470 bytes.
var messageCreate = []byte(`{"id":"7311872365417467905","channel_id":"7311872101255618561","guild_id":"7311872099519176705",` +
	`"author":"member-17@a.test","content":"` + strings.Repeat("lorem ipsum ", 2) + `","attachments":[],` +
	`"timestamp":1764158400123,"cert_serial":"4611686018427387913","session_id":"laptop",` +
	`"signature":"` + strings.Repeat("Q", 86) + `","nonce":"n-7311872365417467905"}`)

// TestReSentFramesAreByteIdentical: what an except or a Resume sends again is exactly what went
// out first, for chat dispatches (with and without "c") and core frames.
func TestReSentFramesAreByteIdentical(t *testing.T) {
	enc := textEncoder{}
	w := newWindow(64)
	var first [][]byte // by s; nil for frames not kept
	send := func(f frame) {
		f = w.push(f)
		b := f.encode(enc)
		if !f.keep() {
			b = nil
		}
		first = append(first, b)
	}
	send(plainFrame(nsCore, opHello, []byte(`{"heartbeat_interval":30000,"heartbeatInterval":"30000"}`)))
	send(plainFrame(nsCore, opHeartbeatACK, []byte(`[]`)))
	send(plainFrame(nsCore, opServiceChannelACK, []byte(`{"action":"subscribe","service":"chat","success":true}`)))
	send(dispatchFrame(nsChat, eventReady, 0, true, []byte(`{"session_id":"laptop","guilds":[]}`)))
	for i := range 5 {
		send(frameOf(Dispatch{Namespace: nsChat, Type: "MESSAGE_CREATE", Cursor: events.Position(100 + i), Data: messageCreate}))
	}
	send(frameOf(Dispatch{Namespace: nsChat, Type: "TYPING_START", Data: []byte(`{"channel_id":"1"}`)})) // no cursor
	send(frameOf(Dispatch{Namespace: nsCore, Op: OpNewSession, Data: []byte(`{"cert":"-----BEGIN CERTIFICATE-----\nMII\n"}`)}))
	send(frameOf(Dispatch{Namespace: nsCore, Op: OpActorCertInvalidation, Data: []byte(`{"idCertPem":"x","invalidatedAt":1}`)}))
	send(dispatchFrame(nsChat, eventResyncRequired, 0, false, []byte(`{"reason":"r"}`)))
	send(plainFrame(nsCore, opHeartbeatRequest, []byte(`{}`)))

	check := func(what string, frames []frame) {
		t.Helper()
		got := 0
		for _, f := range frames {
			b := f.encode(enc)
			if !bytes.Equal(b, first[f.s]) {
				t.Fatalf("%s: frame %d re-sent as\n%s\nfirst sent as\n%s", what, f.s, b, first[f.s])
			}
			got++
		}
		want := 0
		for _, b := range first {
			if b != nil {
				want++
			}
		}
		if got != want {
			t.Fatalf("%s: %d frames re-sent, want every kept one (%d)", what, got, want)
		}
	}
	resumed, ok := w.after(0)
	if !ok {
		t.Fatal("after(0) failed")
	}
	check("resume", append([]frame{w.kept[0]}, resumed...))
	all := make([]uint64, w.next)
	for s := range all {
		all[s] = uint64(s)
	}
	again, err := w.ack(Heartbeat{From: 0, To: w.next - 1, HasRange: true, Except: all})
	if err != nil {
		t.Fatal(err)
	}
	check("except", again)
	// The chat frames say what the client expects.
	if want := `{"n":"chat","op":0,"d":{"t":"MESSAGE_CREATE","c":"100","d":` + string(messageCreate) + `},"s":4}`; string(first[4]) != want {
		t.Fatalf("frame 4:\n%s\nwant\n%s", first[4], want)
	}
	if want := `{"n":"core","op":3,"d":{"cert":"-----BEGIN CERTIFICATE-----\nMII\n"},"s":10}`; string(first[10]) != want {
		t.Fatalf("frame 10:\n%s\nwant\n%s", first[10], want)
	}
}

// Memory of kept frames: 1,024 chat dispatches fanned out to a session, all sharing one payload,
// kept the old way (each encoded frame) and the new one (what it takes to encode it).

const fanOutFrames = 1024

// exactEncoder allocates each frame in one buffer of exactly its length. The gateway's codec
// reserves room for a 20-digit s and cursor, so its buffers are some 40 bytes larger: the
// "before" figure is if anything low.
type exactEncoder struct{ textEncoder }

func (e exactEncoder) Dispatch(n string, s uint64, t string, c events.Position, withC bool, d []byte) []byte {
	b := e.textEncoder.Dispatch(n, s, t, c, withC, d)
	return append(make([]byte, 0, len(b)), b...)
}

// encodedWindow keeps frames as the window did before: s and the encoded bytes.
type encodedWindow struct {
	kept []struct {
		s     uint64
		frame []byte
	}
}

func keepEncoded() any {
	var w encodedWindow
	for s := range uint64(fanOutFrames) {
		f := exactEncoder{}.Dispatch(nsChat, s, "MESSAGE_CREATE", events.Position(1_000_000+s), true, messageCreate)
		w.kept = append(w.kept, struct {
			s     uint64
			frame []byte
		}{s, f})
	}
	return &w
}

func keepFrames(ack bool) func() any {
	return func() any {
		w := newWindow(fanOutFrames)
		for s := range uint64(fanOutFrames) {
			f := w.push(frameOf(Dispatch{Namespace: nsChat, Type: "MESSAGE_CREATE", Cursor: events.Position(1_000_000 + s), Data: messageCreate}))
			_ = f.encode(exactEncoder{}) // sent, then garbage
		}
		if ack {
			if _, err := w.ack(Heartbeat{From: 0, To: fanOutFrames - 1, HasRange: true}); err != nil {
				panic(err)
			}
		}
		return w
	}
}

// heapPerSession is the live heap that build leaves per call, over n calls.
func heapPerSession(n int, build func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	live := make([]any, n)
	for i := range live {
		live[i] = build()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(live)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

func TestKeptFrameMemory(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(frame{}) != 80 {
		t.Errorf("a kept frame is %d bytes, want 80", unsafe.Sizeof(frame{}))
	}
	frameLen := len(exactEncoder{}.Dispatch(nsChat, 1023, "MESSAGE_CREATE", 1_001_023, true, messageCreate))
	before := heapPerSession(64, keepEncoded)
	after := heapPerSession(64, keepFrames(false))
	acked := heapPerSession(64, keepFrames(true))
	t.Logf("%d fan-out frames of %d bytes sharing one %d-byte payload: %.0f bytes per session encoded, %.0f kept as frames, %.0f once acknowledged",
		fanOutFrames, frameLen, len(messageCreate), before, after, acked)
	if after > before/4 {
		t.Errorf("kept frames take %.0f bytes per session, want under a quarter of the %.0f the encoded frames took", after, before)
	}
	if acked > 1024 {
		t.Errorf("a window whose frames were all acknowledged still takes %.0f bytes", acked)
	}
}

// BenchmarkKeptFrames reports the live heap per session (B/session) of 1,024 fan-out frames
// sharing one payload, and the time to send and keep them.
func BenchmarkKeptFrames(b *testing.B) {
	for _, c := range []struct {
		name  string
		build func() any
	}{
		{"encoded", keepEncoded},                  // before: the window kept each frame's bytes
		{"frames", keepFrames(false)},             // now: what it takes to encode each frame
		{"frames_acknowledged", keepFrames(true)}, // now, after a heartbeat reported them all
	} {
		b.Run(c.name, func(b *testing.B) {
			perSession := heapPerSession(16, c.build)
			b.ResetTimer()
			for range b.N {
				runtime.KeepAlive(c.build())
			}
			b.ReportMetric(perSession, "B/session")
		})
	}
}
