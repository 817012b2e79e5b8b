package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
)

const goldenToken = "YWxpY2VAYS50ZXN0.q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80"

// goldenClient is what each client frame in testdata/frames tells the session.
var goldenClient = map[string]any{
	"c2s-op00-heartbeat.json":                   session.Heartbeat{From: 3, To: 7, HasRange: true, Except: []uint64{5}},
	"c2s-op00-heartbeat-empty.json":             session.Heartbeat{},
	"c2s-op00-heartbeat-polyproto-rs.json":      session.Heartbeat{From: 3, To: 7, HasRange: true, Except: []uint64{5}},
	"c2s-op02-identify.json":                    session.Identify{Token: goldenToken},
	"c2s-op02-identify-no-namespace.json":       session.Identify{Token: goldenToken},
	"c2s-op02-identify-polyproto-rs.json":       session.Identify{Token: goldenToken},
	"c2s-op05-resume.json":                      session.Resume{Token: goldenToken, S: 12, HasS: true, Cursor: 42, HasCursor: true},
	"c2s-op05-resume-polyproto-rs.json":         session.Resume{Token: goldenToken, S: 12, HasS: true},
	"c2s-op08-service-channel.json":             session.ServiceChannel{Action: "subscribe", Service: "chat"},
	"c2s-op08-service-channel-unsubscribe.json": session.ServiceChannel{Action: "unsubscribe", Service: "chat"},
}

func goldenFiles(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "frames", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden frames: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// TestGoldenFrames: every frame of the contract decodes; what the server writes re-encodes to
// the very same bytes; what clients write (numbers or polyproto-rs's strings) becomes the
// session message it stands for.
func TestGoldenFrames(t *testing.T) {
	ops := map[int]bool{}
	for name, raw := range goldenFiles(t) {
		t.Run(name, func(t *testing.T) {
			f, err := DecodeFrame(raw)
			if err != nil {
				t.Fatal(err)
			}
			ops[f.Op] = true
			if n := strings.SplitN(name, "-", 3)[1]; n == "chat" && f.N != "chat" || n != "chat" && f.N != "core" {
				t.Fatalf("namespace %q", f.N)
			}
			if strings.HasPrefix(name, "c2s-") {
				want, ok := goldenClient[name]
				if !ok {
					t.Fatal("no expected message for this client frame")
				}
				got, err := ClientMessage(f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("message (-want +got):\n%s", diff)
				}
				// What the server would write for it decodes back to the same frame.
				again, err := DecodeFrame(EncodeFrame(f.N, f.Op, f.S, f.D))
				if err != nil || again.N != f.N || again.Op != f.Op || !bytes.Equal(again.D, f.D) {
					t.Fatalf("round trip: %+v, %v", again, err)
				}
				return
			}
			checkServerFrame(t, f, bytes.TrimSpace(raw))
		})
	}
	for op := 0; op <= 11; op++ {
		if !ops[op] {
			t.Errorf("no golden frame for opcode %d", op)
		}
	}
}

// checkServerFrame re-encodes a server frame (and the frames an ACK or Resumed carries) with
// the encoder the server uses for it.
func checkServerFrame(t *testing.T, f Frame, want []byte) {
	t.Helper()
	if !f.HasS {
		t.Fatalf("a server frame without s")
	}
	var got []byte
	if f.N == "chat" {
		var d struct {
			T string          `json:"t"`
			C *string         `json:"c"`
			D json.RawMessage `json:"d"`
		}
		if err := json.Unmarshal(f.D, &d); err != nil {
			t.Fatal(err)
		}
		var c uint64
		if d.C != nil {
			c, _ = strconv.ParseUint(*d.C, 10, 64)
		}
		got = EncodeDispatch(f.N, f.S, d.T, events.Position(c), d.C != nil, d.D)
	} else {
		got = EncodeFrame(f.N, f.Op, f.S, f.D)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("re-encoded\n%s\nwant\n%s", got, want)
	}
	if f.N == "core" && (f.Op == 7 || f.Op == 10) {
		var inner []json.RawMessage
		if err := json.Unmarshal(f.D, &inner); err != nil {
			t.Fatalf("op %d carries %s, not an array: %v", f.Op, f.D, err)
		}
		for _, raw := range inner {
			in, err := DecodeFrame(raw)
			if err != nil {
				t.Fatal(err)
			}
			checkServerFrame(t, in, raw)
		}
	}
}

func TestDecodeFrameRefuses(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for name, in := range map[string]string{
		"empty":               ``,
		"not an object":       `[1]`,
		"no op":               `{"n":"core","d":{}}`,
		"op not a number":     `{"op":"two"}`,
		"op signed":           `{"op":-1}`,
		"op fraction":         `{"op":2.0}`,
		"op exponent":         `{"op":2e0}`,
		"op too big":          `{"op":65536}`,
		"op null":             `{"op":null}`,
		"op empty string":     `{"op":""}`,
		"op padded string":    `{"op":" 2"}`,
		"s too big":           `{"op":0,"s":18446744073709551616}`,
		"s negative":          `{"op":0,"s":"-1"}`,
		"n not a string":      `{"op":0,"n":5}`,
		"n too short":         `{"op":0,"n":"x"}`,
		"n upper case":        `{"op":0,"n":"Core"}`,
		"malformed":           `{"op":2,"d":{"token":}`,
		"unterminated":        `{"op":2,"d":"abc`,
		"bad escape":          `{"op":2,"d":"\x"}`,
		"control character":   "{\"op\":2,\"d\":\"a\x01\"}",
		"trailing data":       `{"op":2} x`,
		"two objects":         `{"op":2}{"op":2}`,
		"trailing comma":      `{"op":2,}`,
		"leading zero":        `{"op":2,"d":01}`,
		"bad literal":         `{"op":2,"d":tru}`,
		"nested too deeply":   `{"op":2,"d":` + deep + `}`,
		"missing colon":       `{"op" 2}`,
		"bare word":           `{op:2}`,
		"single quotes":       `{'op':2}`,
		"bad unicode escape":  `{"op":2,"d":"\u12"}`,
		"number without int":  `{"op":2,"d":-}`,
		"number without frac": `{"op":2,"d":1.}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeFrame([]byte(in)); !errors.Is(err, ErrInvalidFrame) {
				t.Fatalf("err = %v, want ErrInvalidFrame", err)
			}
		})
	}
}

func TestDecodeFrameAccepts(t *testing.T) {
	for in, want := range map[string]Frame{
		`{"op":2}`:                        {N: "core", Op: 2},
		`{"n":null,"op":"65535"}`:         {N: "core", Op: 65535},
		`{"\u006e":"chat","\u006fp":0}`:   {N: "chat", Op: 0},
		`{"n":"mls_v1","op":3,"s":"007"}`: {N: "mls_v1", Op: 3, S: 7, HasS: true},
		` {"op":1,"op":2} `:               {N: "core", Op: 2}, // the last member wins, as in encoding/json
		`{"x":{"y":[1,-2.5e+3,true,false,null,"\ud83d\ude00"]},"op":0,"d":null}`: {N: "core", Op: 0, D: json.RawMessage(`null`)},
	} {
		got, err := DecodeFrame([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", in, diff)
		}
	}
}

func TestClientPayloadsRefused(t *testing.T) {
	for name, in := range map[string]string{
		"heartbeat with from only":  `{"op":0,"d":{"from":1}}`,
		"heartbeat with bad number": `{"op":0,"d":{"from":"x","to":2}}`,
		"heartbeat not an object":   `{"op":0,"d":[1]}`,
		"except not numbers":        `{"op":0,"d":{"from":1,"to":2,"except":[true]}}`,
		"identify without payload":  `{"op":2}`,
		"identify token number":     `{"op":2,"d":{"token":5}}`,
		"resume bad s":              `{"op":5,"d":{"s":-1,"token":"t"}}`,
		"resume bad cursor":         `{"op":5,"d":{"s":1,"token":"t","cursor":"abc"}}`,
		"service bad action":        `{"op":8,"d":{"action":"join","service":"chat"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			f, err := DecodeFrame([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ClientMessage(f); !errors.Is(err, ErrInvalidFrame) {
				t.Fatalf("err = %v, want ErrInvalidFrame", err)
			}
		})
	}
	f, _ := DecodeFrame([]byte(`{"op":5,"d":{"s":3,"token":"t","cursor":""}}`))
	if m, err := ClientMessage(f); err != nil || m != (session.Resume{Token: "t", S: 3, HasS: true}) {
		t.Fatalf("an empty cursor is no cursor: %+v %v", m, err)
	}
	f, _ = DecodeFrame([]byte(`{"n":"chat","op":"4"}`))
	if m, err := ClientMessage(f); err != nil || m != (session.Unknown{Namespace: "chat", Op: 4}) {
		t.Fatalf("a service frame: %+v %v", m, err)
	}
}

// FuzzDecodeFrame: no input panics; what decodes is valid JSON, and re-encodes to a frame that
// decodes to the same envelope.
func FuzzDecodeFrame(f *testing.F) {
	for _, raw := range goldenFiles(f) {
		f.Add(raw)
	}
	for _, s := range []string{`{"op":0,"d":{"from":"1","to":"0","except":["1","1"]}}`, `{"op":5,"d":{"cursor":null}}`,
		`{"op":2,"d":{"token":"\u0000"}}`, `{"n":"a-b","op":7,"d":[[[]]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fr, err := DecodeFrame(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidFrame) {
				t.Fatalf("error %v does not match ErrInvalidFrame", err)
			}
			return
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if _, err := ClientMessage(fr); err != nil && !errors.Is(err, ErrInvalidFrame) {
			t.Fatalf("payload error %v does not match ErrInvalidFrame", err)
		}
		again, err := DecodeFrame(EncodeFrame(fr.N, fr.Op, fr.S, fr.D))
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if again.N != fr.N || again.Op != fr.Op || again.S != fr.S || len(fr.D) > 0 && !bytes.Equal(again.D, fr.D) {
			t.Fatalf("round trip changed %+v into %+v", fr, again)
		}
	})
}

func BenchmarkFrameEncode(b *testing.B) {
	d := []byte(`{"id":"1234567890","channel_id":"42","author":"alice@a.test","content":"hello there, how are you?"}`)
	b.Run("core", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = EncodeFrame("core", 3, uint64(i), d)
		}
	})
	b.Run("chat-dispatch", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = EncodeDispatch("chat", uint64(i), "MESSAGE_CREATE", events.Position(1_000_000+i), true, d)
		}
	})
}

func BenchmarkFrameDecode(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"heartbeat", `{"n":"core","op":0,"d":{"from":120,"to":131,"except":[125]}}`},
		{"heartbeat-polyproto-rs", `{"n":"core","op":"0","d":{"from":"120","to":"131","except":["125"]},"s":"0"}`},
		{"chat-dispatch", `{"n":"chat","op":0,"d":{"t":"MESSAGE_CREATE","c":"1000042","d":{"id":"1","content":"hello there"}},"s":77}`},
	} {
		in := []byte(c.in)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := DecodeFrame(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The whole inbound path of a heartbeat: envelope and payload.
	in := []byte(`{"n":"core","op":0,"d":{"from":120,"to":131,"except":[125]}}`)
	b.Run("heartbeat+payload", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, _ := DecodeFrame(in)
			if _, err := ClientMessage(f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
