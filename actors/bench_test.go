package actors

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/embedded"
	"github.com/polyproto-chat/server/events/memory"
)

// benchStores are the stores the benchmarks run over; add a factory to measure another one.
var benchStores = []struct {
	name string
	open func(b *testing.B) events.Store
}{
	{"memory", func(*testing.B) events.Store { return memory.New(nil) }},
	{"embedded", func(b *testing.B) events.Store {
		s, err := embedded.Open(b.TempDir(), embedded.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}},
}

// BenchmarkManyActors: 1,000 tallies, each command to the next id round-robin.
func BenchmarkManyActors(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) { benchCommands(b, st.open(b), 1000) })
	}
}

// BenchmarkHotActor: every command to one tally, so throughput rests on pipelining.
func BenchmarkHotActor(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) { benchCommands(b, st.open(b), 1) })
	}
}

// benchCommands sends b.N add commands with Kind.Request from 64 goroutines per GOMAXPROCS,
// and reports commands/s and the events per append the journals achieved.
func benchCommands(b *testing.B, store events.Store, n int) {
	counted := &countingStore{Store: store}
	sys := NewSystem(Config{})
	kind, err := sys.Kind("tally", func(id string) (actor.Actor, error) {
		return NewJournal(JournalConfig[*tally]{Store: counted, Stream: "tally-" + id, Model: tallyModel(0, nil)}), nil
	}, KindOptions{IdleTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	ctx := context.Background()
	for i := range ids {
		ids[i] = strconv.Itoa(i)
		if _, err := kind.Request(ctx, ids[i], get{}); err != nil { // activate outside the timing
			b.Fatal(err)
		}
	}
	counted.reset()

	var next atomic.Uint64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%uint64(n)]
			if _, err := kind.Request(ctx, id, add{n: 1}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()

	appends, evs := counted.appends.Load(), counted.events.Load()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cmds/s")
	if appends > 0 {
		b.ReportMetric(float64(evs)/float64(appends), "events/append")
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sys.Shutdown(sctx); err != nil {
		b.Fatal(err)
	}
}

// countingStore counts the appends to aggregate streams (not snapshots) and their events.
type countingStore struct {
	events.Store
	appends, events atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, stream string, exp events.ExpectedRevision, evs ...events.Event) (events.AppendResult, error) {
	if !strings.HasPrefix(stream, "snapshot-") {
		s.appends.Add(1)
		s.events.Add(int64(len(evs)))
	}
	return s.Store.Append(ctx, stream, exp, evs...)
}

func (s *countingStore) reset() {
	s.appends.Store(0)
	s.events.Store(0)
}

// BenchmarkHotActorBlocking is the baseline the journal exists to beat: the same hot actor, but
// awaiting the store inside Receive, one append per command, as a naive event-sourced actor does.
// Compare its cmds/s with BenchmarkHotActor/embedded.
func BenchmarkHotActorBlocking(b *testing.B) {
	store := benchStores[1].open(b)
	sys := NewSystem(Config{})
	kind, err := sys.Kind("blocking", func(id string) (actor.Actor, error) {
		return &blockingTally{store: store, stream: "blocking-" + id}, nil
	}, KindOptions{IdleTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := kind.Request(ctx, "hot", add{n: 1}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
	b.StopTimer()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = sys.Shutdown(sctx)
}

type blockingTally struct {
	store  events.Store
	stream string
	next   uint64
}

func (t *blockingTally) Receive(c actor.Context) {
	if _, ok := c.Message().(add); !ok {
		return
	}
	var exp events.ExpectedRevision = events.Exact(t.next - 1)
	if t.next == 0 {
		exp = events.NoStream{}
	}
	_, err := t.store.Append(context.Background(), t.stream, exp, events.Event{Type: "google.protobuf.Int64Value", Data: []byte{8, 1}})
	if err == nil {
		t.next++
	}
	c.Respond(err)
}
