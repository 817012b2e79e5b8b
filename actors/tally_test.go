package actors

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// tally is the test aggregate: a running total with an optional limit, and notes. Its events
// are well-known protobuf types, so no test-only .proto is needed:
// Int64Value = "n was added", StringValue = "a note was taken".
type tally struct {
	total int64
	notes int64
	last  string
}

// Commands.
type (
	add struct {
		n   int64
		fid string
	}
	note struct{ text string }
	get  struct{}
	boom struct{} // Decide panics: the supervision case
)

var (
	errNotPositive = errors.New("n must be positive")
	errOverLimit   = errors.New("over the limit")
	errEmptyNote   = errors.New("empty note")
)

// tallyModel builds the model; limit 0 means none. decided, if not nil, receives every command
// before it is decided, so tests can tell when a command has reached the actor.
func tallyModel(limit int64, decided chan<- any) Model[*tally] {
	return Model[*tally]{
		Initial: func() *tally { return &tally{} },
		Decide: func(s *tally, cmd any) ([]proto.Message, any, error) {
			select { // never blocks: a test that does not watch must not stall the actor
			case decided <- cmd:
			default:
			}
			return decideTally(s, cmd, limit)
		},
		Apply:    applyTally,
		Snapshot: snapshotTally,
		Restore:  restoreTally,
		Origin: func(cmd any) Origin {
			if a, ok := cmd.(add); ok {
				return Origin{ActorFID: a.fid, CorrelationID: "corr-" + a.fid}
			}
			return Origin{}
		},
	}
}

func decideTally(s *tally, cmd any, limit int64) ([]proto.Message, any, error) {
	switch c := cmd.(type) {
	case add:
		switch {
		case c.n <= 0:
			return nil, nil, errNotPositive
		case limit > 0 && s.total+c.n > limit:
			return nil, nil, fmt.Errorf("add %d to %d: %w", c.n, s.total, errOverLimit)
		}
		return []proto.Message{wrapperspb.Int64(c.n)}, s.total + c.n, nil
	case note:
		if c.text == "" {
			return nil, nil, errEmptyNote
		}
		return []proto.Message{wrapperspb.String(c.text)}, nil, nil
	case get:
		return nil, s.total, nil
	case boom:
		panic("boom")
	}
	return nil, nil, fmt.Errorf("unknown command %T", cmd)
}

func applyTally(s *tally, ev proto.Message) (*tally, error) {
	switch e := ev.(type) {
	case *wrapperspb.Int64Value:
		s.total += e.GetValue()
	case *wrapperspb.StringValue:
		s.notes++
		s.last = e.GetValue()
	default:
		return s, fmt.Errorf("unknown event %T", ev)
	}
	return s, nil
}

func snapshotTally(s *tally) (proto.Message, error) {
	return structpb.NewStruct(map[string]any{"total": s.total, "notes": s.notes, "last": s.last})
}

func restoreTally(m proto.Message) (*tally, error) {
	st, ok := m.(*structpb.Struct)
	if !ok {
		return nil, fmt.Errorf("snapshot is %T", m)
	}
	f := st.GetFields()
	return &tally{
		total: int64(f["total"].GetNumberValue()),
		notes: int64(f["notes"].GetNumberValue()),
		last:  f["last"].GetStringValue(),
	}, nil
}

func TestTallyDecideApply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int64
		given   []proto.Message
		when    any
		then    []proto.Message
		reply   any
		wantErr error
	}{
		{name: "add to empty", when: add{n: 3}, then: []proto.Message{wrapperspb.Int64(3)}, reply: int64(3)},
		{name: "add to total", given: []proto.Message{wrapperspb.Int64(2), wrapperspb.Int64(5)}, when: add{n: 1},
			then: []proto.Message{wrapperspb.Int64(1)}, reply: int64(8)},
		{name: "zero refused", when: add{n: 0}, wantErr: errNotPositive},
		{name: "limit reached", limit: 10, given: []proto.Message{wrapperspb.Int64(8)}, when: add{n: 3}, wantErr: errOverLimit},
		{name: "limit met exactly", limit: 10, given: []proto.Message{wrapperspb.Int64(8)}, when: add{n: 2},
			then: []proto.Message{wrapperspb.Int64(2)}, reply: int64(10)},
		{name: "note", when: note{text: "hi"}, then: []proto.Message{wrapperspb.String("hi")}},
		{name: "empty note refused", when: note{}, wantErr: errEmptyNote},
		{name: "get writes nothing", given: []proto.Message{wrapperspb.Int64(4), wrapperspb.String("x")}, when: get{}, reply: int64(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &tally{}
			for _, e := range tc.given {
				var err error
				if s, err = applyTally(s, e); err != nil {
					t.Fatalf("given: %v", err)
				}
			}
			before := *s
			evs, rep, err := decideTally(s, tc.when, tc.limit)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if *s != before {
				t.Fatalf("decide changed the state: %+v -> %+v", before, *s)
			}
			if diff := diffEvents(tc.then, evs); diff != "" {
				t.Errorf("events: %s", diff)
			}
			if rep != tc.reply {
				t.Errorf("reply = %v, want %v", rep, tc.reply)
			}
		})
	}
}

func TestTallySnapshotRoundTrip(t *testing.T) {
	in := &tally{total: 42, notes: 2, last: "b"}
	m, err := snapshotTally(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := restoreTally(m)
	if err != nil {
		t.Fatal(err)
	}
	if *out != *in {
		t.Fatalf("round trip: %+v, want %+v", *out, *in)
	}
}

// diffEvents compares event lists with protocmp; empty means equal.
func diffEvents(want, got []proto.Message) string {
	return cmp.Diff(want, got, protocmp.Transform())
}
