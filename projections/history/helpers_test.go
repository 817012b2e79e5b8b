package history_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/projections"
	"github.com/polyproto-chat/server/projections/history"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// env is an event store, a read-model database and a runner applying the history projection
// (or a wrapper of it) from one to the other.
type env struct {
	t      testing.TB
	store  *memory.Store
	db     *projections.DB
	runner *projections.Runner
	reader *history.Reader
	clock  *clock
}

// clock is the store's clock: each event is recorded one second after the previous one, so
// that EditedAt can be checked exactly.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

func (c *clock) Last() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func instantAfter(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

// newEnv starts a runner applying p (nil: history.Projection{}) until the test ends.
func newEnv(t testing.TB, p projections.Projection) *env {
	t.Helper()
	if p == nil {
		p = history.Projection{}
	}
	c := &clock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	store := memory.New(c.Now)
	t.Cleanup(func() { store.Close() })
	db, err := projections.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the runner has stopped (cleanups run last first)
	r, err := projections.NewRunner(projections.Config{
		Events: store, DB: db, Projections: []projections.Projection{p}, After: instantAfter,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	reader, err := history.NewReader(db)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, db: db, runner: r, reader: reader, clock: c}
}

// append writes msgs to channel ch's stream, one event per message, in one append.
func (e *env) append(ch uint64, msgs ...proto.Message) {
	e.t.Helper()
	evs := make([]events.Event, len(msgs))
	for i, m := range msgs {
		ev, err := events.NewEvent(m)
		if err != nil {
			e.t.Fatal(err)
		}
		evs[i] = ev
	}
	if _, err := e.store.Append(context.Background(), "channel-"+strconv.FormatUint(ch, 10), events.Any{}, evs...); err != nil {
		e.t.Fatal(err)
	}
}

// sync waits until the runner has committed everything in the store.
func (e *env) sync() {
	e.t.Helper()
	head, err := e.store.Head(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := e.runner.Status()[0]
		if st.Position >= head {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("runner stuck at position %d of %d: %+v", st.Position, head, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// Event constructors with made-up but well-formed signed fields.

func created(id uint64, author, content string) *eventsv1.MessageCreated {
	return &eventsv1.MessageCreated{
		MessageId: id, GuildId: 7, AuthorFid: author, Content: content,
		Nonce: "n" + strconv.FormatUint(id, 10), TimestampMs: 1_748_779_200_000 + int64(id),
		CertSerial: 42, Signature: []byte{1, 2, 3, byte(id)}, SessionId: "s1",
	}
}

func edited(id uint64, content string) *eventsv1.MessageEdited {
	return &eventsv1.MessageEdited{
		MessageId: id, Content: content, Attachments: []string{"https://files.example/" + content},
		TimestampMs: 1_748_779_300_000, CertSerial: 43, Signature: []byte{9, 9}, SessionId: "s2",
	}
}

func deleted(id uint64) *eventsv1.MessageDeleted { return &eventsv1.MessageDeleted{MessageId: id} }

func bulkDeleted(ids ...uint64) *eventsv1.MessagesBulkDeleted {
	return &eventsv1.MessagesBulkDeleted{MessageIds: ids}
}

func pinned(id uint64) *eventsv1.MessagePinned     { return &eventsv1.MessagePinned{MessageId: id} }
func unpinned(id uint64) *eventsv1.MessageUnpinned { return &eventsv1.MessageUnpinned{MessageId: id} }

func reacted(id uint64, fid, emoji string) *eventsv1.ReactionAdded {
	return &eventsv1.ReactionAdded{MessageId: id, Fid: fid, Emoji: emoji}
}

func unreacted(id uint64, fid, emoji string) *eventsv1.ReactionRemoved {
	return &eventsv1.ReactionRemoved{MessageId: id, Fid: fid, Emoji: emoji}
}

// flaky applies like the history projection, then fails every every-th event it sees the first
// time it sees it: the runner discards the batch, commits the events before the failing one in
// a new batch (applying them a second time) and retries the failing one (a second time too).
type flaky struct {
	history.Projection
	every int
	n     int
	seen  map[events.Position]bool
}

var errInjected = errors.New("injected failure")

func (f *flaky) Apply(w *projections.Writer, e events.RecordedEvent) error {
	if err := f.Projection.Apply(w, e); err != nil {
		return err
	}
	f.n++
	if f.n%f.every == 0 && !f.seen[e.Position] {
		f.seen[e.Position] = true
		return errInjected
	}
	return nil
}
