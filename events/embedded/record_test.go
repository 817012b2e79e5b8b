package embedded

import (
	"bytes"
	"testing"

	"github.com/polyproto-chat/server/events"
)

func TestRecordRoundTrip(t *testing.T) {
	in := events.RecordedEvent{Stream: "channel-1", Revision: 300, Type: "a.B", Metadata: []byte{1, 2}, Data: []byte("payload")}
	out, err := decodeRecord(7, encodeRecord(&in))
	if err != nil {
		t.Fatal(err)
	}
	if out.Stream != in.Stream || out.Revision != in.Revision || out.Type != in.Type || out.Position != 7 ||
		!bytes.Equal(out.Metadata, in.Metadata) || !bytes.Equal(out.Data, in.Data) {
		t.Fatalf("got %+v", out)
	}
}

// FuzzDecodeRecord: a damaged record on disk must give an error, never a panic or a slice
// beyond its input.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&events.RecordedEvent{Stream: "channel-1", Revision: 3, Type: "a.B", Metadata: []byte{1}, Data: []byte("x")}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeRecord(1, b)
		if err != nil {
			return
		}
		if len(e.Stream)+len(e.Type)+len(e.Metadata)+len(e.Data) > len(b) {
			t.Fatalf("decoded more bytes than given")
		}
		again, err := decodeRecord(1, encodeRecord(&e))
		if err != nil || again.Stream != e.Stream || again.Type != e.Type || !bytes.Equal(again.Data, e.Data) {
			t.Fatalf("re-encoding a decoded record changed it: %v", err)
		}
	})
}
