package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/polyproto-chat/server/actors/session"
)

// TestReSentFramesAreByteIdentical: sessions keep what it takes to encode a frame, not its bytes,
// and encode it again to re-send it. What an except (op 7) and a Resume in the same process
// (op 10) carry must be, byte for byte, what went out first: chat dispatches with and without a
// cursor, READY and core frames. Frames a heartbeat acknowledged are then released: an except
// naming one closes with 4007.
func TestReSentFramesAreByteIdentical(t *testing.T) {
	g := newGatewayServer(t, quick, nil)
	token := g.login(t, "alice@a.test", "laptop")
	reg := g.ws.Sessions()
	c := g.dial(t)
	c.identify(token) // Hello 0, ACK 1
	c.subscribe("chat")
	first := map[uint64][]byte{}
	keep := func(w wire) { first[w.S] = bytes.Clone(w.raw) }
	keep(c.expect("chat", 0)) // READY 3
	reg.Deliver("alice@a.test", chatEvent(43))
	keep(c.expect("chat", 0)) // 4
	reg.Deliver("alice@a.test", session.Dispatch{Namespace: "core", Op: session.OpNewSession, Data: json.RawMessage(`{"cert":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}`)})
	keep(c.expect("core", 3)) // 5
	reg.Deliver("alice@a.test", session.Dispatch{Namespace: "chat", Type: "TYPING_START", Data: json.RawMessage(`{"channel_id":"1","fid":"bob@a.test"}`)})
	keep(c.expect("chat", 0)) // 6: no cursor
	if len(first) != 4 || first[3] == nil || first[6] == nil {
		t.Fatalf("frames not numbered 3-6: %v", first)
	}
	same := func(what string, got []wire, want ...uint64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s carried %d frames, want %v", what, len(got), want)
		}
		for i, w := range got {
			if w.S != want[i] || !bytes.Equal(w.raw, first[want[i]]) {
				t.Fatalf("%s: frame %d is\n%s\nfirst sent as\n%s", what, want[i], w.raw, first[want[i]])
			}
		}
	}

	c.send(`{"n":"core","op":0,"d":{"from":0,"to":6,"except":[6,3,5,4]}}`)
	same("op 7", c.expect("core", 7).frames(t), 3, 4, 5, 6) // ACK 7
	// Acknowledges the ACK only; 3-6 were asked for, not acknowledged, so they stay.
	c.send(`{"n":"core","op":0,"d":{"from":7,"to":7}}`)
	c.expect("core", 7) // 8
	_ = c.ws.NetConn().Close()

	c2 := g.dial(t)
	resume(c2, token, 2, "43")
	w := c2.expect("core", 10)
	if w.S != 9 {
		t.Fatalf("Resumed s=%d, want 9", w.S)
	}
	same("op 10", w.frames(t), 3, 4, 5, 6)
	// A heartbeat that reports 3-9 received releases them; asking for one of them again is
	// asking for a frame the server no longer has.
	c2.send(`{"n":"core","op":0,"d":{"from":3,"to":9}}`)
	if ack := c2.expect("core", 7); string(ack.D) != "[]" {
		t.Fatalf("ACK %s", ack.raw)
	}
	c2.send(`{"n":"core","op":0,"d":{"from":3,"to":10,"except":[4]}}`)
	c2.closed(4007)
}
