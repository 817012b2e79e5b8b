package channel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// peek is a test-only query: the actor answers with a copy of its pending state.
type peek struct{}

func peekDecide(s *State, cmd any) ([]proto.Message, any, error) {
	if _, ok := cmd.(peek); ok {
		return nil, cloneState(s), nil
	}
	return Decide(s, cmd)
}

// countingStore counts the events read from each stream.
type countingStore struct {
	events.Store
	mu   sync.Mutex
	read map[string]int
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, limit int) ([]events.RecordedEvent, error) {
	recs, err := s.Store.ReadStream(ctx, stream, dir, from, limit)
	s.mu.Lock()
	s.read[stream] += len(recs)
	s.mu.Unlock()
	return recs, err
}

func (s *countingStore) reads(stream string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read[stream]
}

type channelEnv struct {
	sys  *actors.System
	kind *actors.Kind
}

func startChannels(t *testing.T, store events.Store, snapshotEvery int) *channelEnv {
	t.Helper()
	sys := actors.NewSystem(actors.Config{})
	kind, err := sys.Kind(KindName, newProducer(Config{Store: store, SnapshotEvery: snapshotEvery}, peekDecide), actors.KindOptions{IdleTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	env := &channelEnv{sys: sys, kind: kind}
	t.Cleanup(env.stop)
	return env
}

func (e *channelEnv) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.sys.Shutdown(ctx) // a second call is a no-op
}

func (e *channelEnv) request(id string, cmd any) (*actors.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.kind.Request(ctx, id, cmd)
	if err != nil {
		return nil, err
	}
	r, ok := res.(*actors.Result)
	if !ok {
		return nil, fmt.Errorf("reply is %T, want *actors.Result", res)
	}
	return r, nil
}

func (e *channelEnv) send(t *testing.T, id string, cmd Send) Sent {
	t.Helper()
	r, err := e.request(id, cmd)
	if err != nil {
		t.Fatal(err)
	}
	sent, ok := r.Reply.(Sent)
	if !ok {
		t.Fatalf("reply is %T, want Sent", r.Reply)
	}
	return sent
}

func (e *channelEnv) state(t *testing.T, id string) *State {
	t.Helper()
	r, err := e.request(id, peek{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Reply.(*State)
}

// TestActorSurvivesRestart: 1000 messages from concurrent senders get distinct increasing ids;
// after a restart over the same store (snapshot plus tail, not the whole stream) the count,
// the last id and the nonce window are back, so retries still answer the stored messages.
func TestActorSurvivesRestart(t *testing.T) {
	const (
		n       = 1000
		senders = 8
		id      = "7"
	)
	store := &countingStore{Store: memory.New(nil), read: map[string]int{}}
	env := startChannels(t, store, 128)

	ids := make([]uint64, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range senders {
		wg.Go(func() {
			for i := w; i < n; i += senders {
				// Proposed ids arrive out of order across senders; the actor keeps them increasing.
				cmd := Send{By: By{FID: alice, SessionID: "s", At: time.Now(), Perms: member}, GuildID: guildID,
					ProposedID: uint64(1_000_000 + i), Nonce: fmt.Sprint("n", i),
					Signed: Signed{Content: fmt.Sprint("message ", i), TimestampMS: time.Now().UnixMilli(), CertSerial: 1, Signature: sig64}}
				r, err := env.request(id, cmd)
				if err != nil {
					errs <- err
					return
				}
				sent := r.Reply.(Sent)
				if sent.Duplicate {
					errs <- fmt.Errorf("message %d answered as a duplicate", i)
				}
				ids[i] = sent.MessageID
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sorted := slices.Sorted(slices.Values(ids))
	if len(slices.Compact(slices.Clone(sorted))) != n {
		t.Fatal("two messages got the same id")
	}
	last := sorted[n-1]
	checkStreamOrder(t, store, id)

	// Snapshots are written in the background after an append; wait for one to cover most of
	// the stream so the restart below has a tail to replay on top of it.
	waitSnapshot(t, store, Stream(7), n-256)
	env.stop()

	before := store.reads(Stream(7))
	env = startChannels(t, store, 128)
	s := env.state(t, id)
	if got := store.reads(Stream(7)) - before; got >= n/2 {
		t.Errorf("restart read %d events of the channel stream; the snapshot should leave only a tail", got)
	}
	if s.ID != 7 || s.Count != n || s.LastID != last || len(s.recent.entries) != n {
		t.Fatalf("after restart: id %d, count %d, last %d, %d nonces; want 7, %d, %d, %d", s.ID, s.Count, s.LastID, len(s.recent.entries), n, last, n)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		retry := Send{By: By{FID: alice, SessionID: "s", At: time.Now(), Perms: member}, GuildID: guildID, ProposedID: 1, Nonce: fmt.Sprint("n", i),
			Signed: Signed{Content: "retry", TimestampMS: time.Now().UnixMilli(), CertSerial: 1, Signature: sig64}}
		if got := env.send(t, id, retry); got != (Sent{MessageID: ids[i], Duplicate: true}) {
			t.Fatalf("retry of message %d: %+v, want its id %d as a duplicate", i, got, ids[i])
		}
	}
	fresh := Send{By: By{FID: alice, SessionID: "s", At: time.Now(), Perms: member}, GuildID: guildID, ProposedID: 1, Nonce: "fresh",
		Signed: Signed{Content: "after", TimestampMS: time.Now().UnixMilli(), CertSerial: 1, Signature: sig64}}
	if got := env.send(t, id, fresh); got != (Sent{MessageID: last + 1}) {
		t.Fatalf("new message after restart: %+v, want id %d", got, last+1)
	}
}

// checkStreamOrder: ids increase along the stream, which is what the read model relies on.
func checkStreamOrder(t *testing.T, store events.Store, id string) {
	t.Helper()
	var prev uint64
	for e, err := range events.ReadFrom(context.Background(), store, "channel-"+id, 0) {
		if err != nil {
			t.Fatal(err)
		}
		msg, err := events.Decode(&e)
		if err != nil {
			t.Fatal(err)
		}
		mc := msg.(*eventsv1.MessageCreated)
		if mc.GetMessageId() <= prev {
			t.Fatalf("revision %d: id %d after %d", e.Revision, mc.GetMessageId(), prev)
		}
		prev = mc.GetMessageId()
	}
}

// waitSnapshot waits until the latest snapshot of stream covers at least revision atLeast.
func waitSnapshot(t *testing.T, store events.Store, stream string, atLeast uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := store.ReadStream(context.Background(), "snapshot-"+stream, events.Backwards, events.End, 1)
		if err == nil && len(recs) == 1 {
			msg, err := events.Decode(&recs[0])
			if err != nil {
				t.Fatal(err)
			}
			if snap := msg.(*eventsv1.SnapshotTaken); snap.GetRevision() >= atLeast {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot of %s at or after revision %d (last error %v)", stream, atLeast, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestActorRefusesBadIDs: a kind id that is not a canonical non-zero decimal spawns nothing.
func TestActorRefusesBadIDs(t *testing.T) {
	env := startChannels(t, memory.New(nil), 0)
	for _, id := range []string{"", "0", "abc", "-1", "007", "+7", "18446744073709551616", " 7"} {
		if _, err := env.request(id, Pin{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("id %q: err = %v, want ErrInvalid", id, err)
		}
	}
	// A good id spawns the actor, which decides: without VIEW_CHANNEL the channel is invisible.
	if _, err := env.request("7", Pin{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("id 7: err = %v, want the actor's ErrNotFound", err)
	}
}

// TestActorRecordsOrigin: events carry who sent them, in which session and why.
func TestActorRecordsOrigin(t *testing.T) {
	store := memory.New(nil)
	env := startChannels(t, store, 0)
	cmd := send(alice, "n1", 42, signed("hi"))
	cmd.At, cmd.TimestampMS, cmd.Reason = time.Now(), time.Now().UnixMilli(), "because"
	env.send(t, "9", cmd)
	recs, err := store.ReadStream(context.Background(), Stream(9), events.Forwards, 0, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d events, %v", len(recs), err)
	}
	meta, err := recs[0].Meta()
	if err != nil {
		t.Fatal(err)
	}
	if meta.GetActorFid() != alice || meta.GetSessionId() != "sess-a" || meta.GetReason() != "because" {
		t.Fatalf("envelope: %v", meta)
	}
}
