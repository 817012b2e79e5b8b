package projections

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/embedded"
	"github.com/polyproto-chat/server/events/memory"
)

// BenchmarkRebuild measures a rebuild from position 0: 200,000 events of 100 bytes over 1,000
// streams, applied to a projection counting events per stream, read from the in-memory store
// and from the durable embedded store (the server's default). Reports events/s.
func BenchmarkRebuild(b *testing.B) {
	const streams, perStream = 1000, 200
	const total = streams * perStream
	stores := []struct {
		name string
		open func(b *testing.B) events.Store
	}{
		{"memory", func(*testing.B) events.Store { return memory.New(nil) }},
		{"embedded", func(b *testing.B) events.Store {
			s, err := embedded.Open(b.TempDir(), embedded.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		b.Run("store="+st.name, func(b *testing.B) {
			store := st.open(b)
			defer store.Close()
			fillConcurrently(b, store, streams, perStream)
			db := openDB(b, b.TempDir())
			c := &counter{name: "counter"}
			r := newRunner(b, Config{Events: store, DB: db, Projections: []Projection{c}})
			ctx := context.Background()

			b.ReportAllocs()
			rebuilds := 0
			for b.Loop() {
				if err := r.Rebuild(ctx, "counter"); err != nil {
					b.Fatal(err)
				}
				rebuilds++
			}
			b.ReportMetric(float64(rebuilds*total)/b.Elapsed().Seconds(), "events/s")

			want, _ := storeCounts(b, store, 0)
			equalCounts(b, modelCounts(b, db, "counter"), want)
		})
	}
}

// fillConcurrently writes perStream events to each stream from one writer per 16 streams, so
// that a durable store fills in seconds through its group commit.
func fillConcurrently(b *testing.B, s events.Store, streams, perStream int) {
	b.Helper()
	var wg sync.WaitGroup
	for w := 0; w < streams; w += 16 {
		wg.Go(func() {
			for i := 0; i < perStream; i++ {
				for j := w; j < min(w+16, streams); j++ {
					if _, err := s.Append(context.Background(), fmt.Sprintf("chan-%d", j), events.Any{}, events.Event{Type: "test.Counted", Data: payload}); err != nil {
						b.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
