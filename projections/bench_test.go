package projections

import (
	"context"
	"testing"

	"github.com/polyproto-chat/server/events/memory"
)

// BenchmarkRebuild measures a rebuild from position 0 of a per-stream counter over 200k events
// with 100-byte payloads in events/memory (filled before the timer starts): the cost of the
// runner and the read-model database, not of a store's disk.
func BenchmarkRebuild(b *testing.B) {
	const streams, perStream = 1000, 200
	const total = streams * perStream
	store := memory.New(nil)
	defer store.Close()
	fill(b, store, streams, perStream)
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
}
