package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/polyproto-chat/server/events"
)

// TestAuditVerify: a stream written by the server verifies; after one stored payload is edited
// behind the store's back, `audit verify` names the first event whose chain no longer holds.
func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	s, stop := start(t, dir)
	for i := range 4 {
		if _, err := s.store.Append(context.Background(), "channel-1", events.Any{}, events.Event{Type: "test.E", Data: []byte{'a' + byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	stop()

	audit := func(streams ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"audit", "verify", "-data-dir", dir}, streams...), &out, &errb, noEnv)
		return code, out.String() + errb.String()
	}
	if code, out := audit("channel-1"); code != 0 || !strings.Contains(out, "ok channel-1: 4 events") {
		t.Fatalf("intact stream: exit %d\n%s", code, out)
	}
	if code, out := audit("channel-1", "channel-404"); code != 1 || !strings.Contains(out, "MISSING channel-404") {
		t.Fatalf("missing stream: exit %d\n%s", code, out)
	}

	// Edit the payload of the second event (global position 2) in place: its last byte is data.
	db, err := pebble.Open(filepath.Join(dir, "events"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte{'g', 0, 0, 0, 0, 0, 0, 0, 2}
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	edited := append([]byte(nil), v...)
	closer.Close()
	edited[len(edited)-1] = 'X'
	if err := db.Set(key, edited, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	db.Close()

	code, out := audit("channel-1")
	if code != 1 || !strings.Contains(out, "BROKEN channel-1") || !strings.Contains(out, "revision 2") {
		t.Fatalf("tampered stream: exit %d\n%s", code, out)
	}
	if code, out := audit(); code != 2 {
		t.Fatalf("no stream named: exit %d\n%s", code, out)
	}
}
