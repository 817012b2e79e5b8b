package events_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/polyproto-chat/server/events"
)

func TestValidateStream(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"channel-42", true},
		{"actor-alice@example.com", true},
		{"snapshot-channel-42", true},
		{"key_packages-x", true},
		{"a1-x", true},
		{"ab-", false},
		{"-ab", false},
		{"ab", false},
		{"nodash", false},
		{"$all", false},
		{"$ce-channel", false},
		{"Channel-1", false},
		{"1channel-1", false},
		{"chan nel-1", false},
		{"channel-a b", false},
		{"channel-a/b", false},
		{"channel-\x7f", false},
		{"channel-" + strings.Repeat("x", 248), true},
		{"channel-" + strings.Repeat("x", 249), false},
	} {
		err := events.ValidateStream(c.name)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, events.ErrInvalidStream)) {
			t.Errorf("ValidateStream(%q) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestExpectedRevision(t *testing.T) {
	for _, c := range []struct {
		exp    events.ExpectedRevision
		last   uint64
		exists bool
		ok     bool
	}{
		{events.Any{}, 0, false, true},
		{events.Any{}, 9, true, true},
		{events.NoStream{}, 0, false, true},
		{events.NoStream{}, 0, true, false},
		{events.Exact(0), 0, true, true},
		{events.Exact(0), 0, false, false},
		{events.Exact(3), 4, true, false},
	} {
		if got := c.exp.Check(c.last, c.exists); got != c.ok {
			t.Errorf("%s.Check(%d, exists=%v) = %v", c.exp, c.last, c.exists, got)
		}
	}
}

func TestFilter(t *testing.T) {
	streams := events.Filter{StreamPrefixes: []string{"channel-", "group-7"}}
	types := events.Filter{EventTypes: []string{"a.B"}}
	for _, c := range []struct {
		f            events.Filter
		stream, typ  string
		match        bool
		filterString string
	}{
		{events.Filter{}, "x-1", "a.B", true, "zero"},
		{streams, "channel-1", "x", true, "prefix"},
		{streams, "group-70", "x", true, "prefix"},
		{streams, "group-8", "x", false, "prefix"},
		{streams, "snapshot-channel-1", "x", false, "prefix"},
		{types, "x-1", "a.B", true, "type"},
		{types, "x-1", "a.Bc", false, "type (exact)"},
	} {
		if got := c.f.Match(c.stream, c.typ); got != c.match {
			t.Errorf("%s filter: Match(%q, %q) = %v", c.filterString, c.stream, c.typ, got)
		}
	}
	if err := (events.Filter{StreamPrefixes: []string{"a"}, EventTypes: []string{"b"}}).Validate(); !errors.Is(err, events.ErrInvalidFilter) {
		t.Errorf("both fields: %v", err)
	}
}

func TestNewEventAndDecode(t *testing.T) {
	e, err := events.NewEvent(wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != "google.protobuf.StringValue" {
		t.Fatalf("type %q, want the full protobuf name", e.Type)
	}
	rec := events.RecordedEvent{Stream: "x-1", Type: e.Type, Data: e.Data}
	m, err := events.Decode(&rec)
	if err != nil || !proto.Equal(m, wrapperspb.String("hello")) {
		t.Fatalf("decode: %v %v", m, err)
	}
	rec.Type = "no.such.Type"
	if _, err := events.Decode(&rec); err == nil {
		t.Fatal("unknown type decoded")
	}
}

// TestChain checks the hash chain over events sealed by hand, and that each kind of tampering
// is reported at the right revision.
func TestChain(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var recs []events.RecordedEvent
	var prev events.Hash
	for i := range 4 {
		e := events.Event{Type: "t.E", Data: []byte{byte(i)}}
		rec, err := events.Seal("s-1", uint64(i), prev, now, &e)
		if err != nil {
			t.Fatal(err)
		}
		prev = events.HashOf(&rec)
		recs = append(recs, rec)
	}
	verify := func(rs []events.RecordedEvent) (uint64, error) {
		var c events.Chain
		for _, r := range rs {
			if _, err := c.Next(&r); err != nil {
				return r.Revision, err
			}
		}
		return 0, nil
	}
	if _, err := verify(recs); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	clone := func() []events.RecordedEvent {
		out := make([]events.RecordedEvent, len(recs))
		for i, r := range recs {
			r.Data, r.Metadata = bytes.Clone(r.Data), bytes.Clone(r.Metadata)
			out[i] = r
		}
		return out
	}
	for _, c := range []struct {
		name   string
		tamper func([]events.RecordedEvent) []events.RecordedEvent
		at     uint64
	}{
		{"payload edited", func(r []events.RecordedEvent) []events.RecordedEvent { r[1].Data = []byte("x"); return r }, 2},
		{"type edited", func(r []events.RecordedEvent) []events.RecordedEvent { r[0].Type = "t.F"; return r }, 1},
		{"event removed", func(r []events.RecordedEvent) []events.RecordedEvent { return append(r[:1], r[2:]...) }, 2},
		{"events swapped", func(r []events.RecordedEvent) []events.RecordedEvent { r[1], r[2] = r[2], r[1]; return r }, 2},
		{"metadata garbled", func(r []events.RecordedEvent) []events.RecordedEvent { r[3].Metadata = []byte{0xff}; return r }, 3},
	} {
		at, err := verify(c.tamper(clone()))
		var ce *events.ChainError
		if !errors.As(err, &ce) || at != c.at {
			t.Errorf("%s: err %v at revision %d, want a ChainError at %d", c.name, err, at, c.at)
		}
	}
	// Resuming after a known event verifies only the tail.
	c := events.ChainFrom(events.HashOf(&recs[1]), 1)
	for _, r := range recs[2:] {
		if _, err := c.Next(&r); err != nil {
			t.Fatalf("resumed chain: %v", err)
		}
	}
}
