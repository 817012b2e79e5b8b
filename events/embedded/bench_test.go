package embedded_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/embedded"
)

// BenchmarkAppend measures durable appends (each acknowledged after its WAL fsync) of one
// 300-byte event, from 1 and from 64 concurrent writers. Each writer appends round-robin to 16
// streams of its own with the exact expected revision, as actors do. It reports appends/s and
// the latency percentiles an appender sees. Figures go to docs/PERFORMANCE.md.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := embedded.Open(b.TempDir(), embedded.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			payload := []byte(strings.Repeat("p", 300))
			lat := make([][]time.Duration, writers)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				n := b.N / writers
				if w < b.N%writers {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					const streams = 16
					next := make([]uint64, streams)
					lat[w] = make([]time.Duration, 0, n)
					for i := 0; i < n; i++ {
						k := i % streams
						var exp events.ExpectedRevision = events.Exact(next[k] - 1)
						if next[k] == 0 {
							exp = events.NoStream{}
						}
						start := time.Now()
						_, err := s.Append(context.Background(), fmt.Sprintf("bench-w%d.%d", w, k), exp, events.Event{Type: "bench.Event", Data: payload})
						lat[w] = append(lat[w], time.Since(start))
						if err != nil {
							b.Error(err)
							return
						}
						next[k]++
					}
				}()
			}
			wg.Wait()
			elapsed := b.Elapsed()
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(percentile(all, 0.50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(all, 0.99).Microseconds()), "p99-µs")
		})
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
