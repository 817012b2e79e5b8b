package history_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/projections"
	"github.com/polyproto-chat/server/projections/history"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// The 1M-message channel is built once per test binary, the first time a benchmark needs it,
// and removed by TestMain: building it takes far longer than measuring it, so neither the
// benchmark framework's calibration runs nor -count may build it again.
var big struct {
	once   sync.Once
	dir    string
	db     *projections.DB
	reader *history.Reader
	ids    []uint64 // the channel's message ids, ascending
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if big.db != nil {
		big.db.Close()
	}
	if big.dir != "" {
		os.RemoveAll(big.dir)
	}
	os.Exit(code)
}

const (
	bigChannel  = 1 << 40
	bigMessages = 1_000_000
)

// bigHistory returns a reader over a read model holding bigMessages messages in bigChannel,
// built by the real runner from an in-memory event store.
func bigHistory(b *testing.B) (*history.Reader, []uint64) {
	if testing.Short() {
		b.Skip("builds a 1,000,000-message read model")
	}
	big.once.Do(func() { big.err = buildBig(b) })
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.reader, big.ids
}

func buildBig(b *testing.B) error {
	start := time.Now()
	store := memory.New(nil)
	defer store.Close()
	ids, err := fillBig(store)
	if err != nil {
		return err
	}
	filled := time.Since(start)

	if big.dir, err = os.MkdirTemp("", "history-bench-"); err != nil {
		return err
	}
	db, err := projections.Open(big.dir, nil)
	if err != nil {
		return err
	}
	big.db = db
	r, err := projections.NewRunner(projections.Config{Events: store, DB: db, Projections: []projections.Projection{history.Projection{}}})
	if err != nil {
		return err
	}
	// Rebuild applies everything from position 0 in this goroutine and returns once caught up.
	if err := r.Rebuild(context.Background(), history.Name); err != nil {
		return err
	}
	if big.reader, err = history.NewReader(db); err != nil {
		return err
	}
	big.ids = ids
	b.Logf("built %d messages: events %v, projection %v", len(ids), filled.Round(time.Millisecond),
		(time.Since(start) - filled).Round(time.Millisecond))
	return nil
}

// fillBig appends bigMessages realistic MessageCreated events (signature, FID, 20-300 bytes of
// content) to one channel, with ids increasing by random steps as snowflakes do.
func fillBig(store *memory.Store) ([]uint64, error) {
	rng := rand.New(rand.NewPCG(1, 1))
	const text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse"
	sig := make([]byte, 64)
	ids := make([]uint64, 0, bigMessages)
	id := uint64(1) << 50
	stream := fmt.Sprintf("channel-%d", uint64(bigChannel))
	batch := make([]events.Event, 0, 1000)
	for i := range bigMessages {
		id += 1 + rng.Uint64N(1<<16)
		ids = append(ids, id)
		for j := range sig {
			sig[j] = byte(rng.Uint32())
		}
		off := rng.IntN(len(text) - 20)
		ev, err := events.NewEvent(&eventsv1.MessageCreated{
			MessageId: id, GuildId: 1 << 39, AuthorFid: fmt.Sprintf("user%d@chat.example.org", rng.IntN(500)),
			Content: text[off : off+20+rng.IntN(len(text)-off-20)], Nonce: fmt.Sprintf("%016x", rng.Uint64()),
			TimestampMs: 1_750_000_000_000 + int64(i), CertSerial: rng.Uint64N(1 << 40), Signature: sig,
			SessionId: "s0123456789abcdef",
		})
		if err != nil {
			return nil, err
		}
		if batch = append(batch, ev); len(batch) == cap(batch) {
			if _, err := store.Append(context.Background(), stream, events.Any{}, batch...); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if _, err := store.Append(context.Background(), stream, events.Any{}, batch...); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// BenchmarkPage1M reads limit-50 pages before random positions of a channel of 1,000,000
// messages and reports the latency percentiles (the target: p99 under 5 ms).
func BenchmarkPage1M(b *testing.B) {
	reader, ids := bigHistory(b)
	rng := rand.New(rand.NewPCG(2, 2))
	lat := make([]time.Duration, 0, b.N)
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		q := history.Query{Before: ids[rng.IntN(len(ids))], Limit: 50}
		t0 := time.Now()
		page, err := reader.Page(bigChannel, q)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		bytes += int64(len(page))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds())/1e3, "max-µs")
	b.ReportMetric(float64(bytes)/float64(b.N), "B/page")
}
