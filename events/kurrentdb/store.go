package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/polyproto-chat/server/events"
)

const (
	// anyAttempts bounds how often an Append with events.Any{} re-reads the head and tries
	// again after another writer (another process) moved the stream under it; between attempts it
	// waits a random time below anyBackoff << attempt (at most anyMaxBackoff), so that a process
	// whose writers keep the stream busy lets the other one in.
	anyAttempts   = 16
	anyBackoff    = time.Millisecond
	anyMaxBackoff = 64 * time.Millisecond
	// headCacheSize bounds the stream -> (last revision, hash) cache.
	headCacheSize = 16384
	// stripes serialize appends to the same stream inside this process (see Store.lock).
	stripes = 256
	// probeStream is read once by Open to find out whether the server answers at all.
	probeStream = "kurrentdb_adapter-probe"
)

// schemes are the connection-string schemes Open accepts. The client parses all of them itself.
var schemes = map[string]bool{
	"kurrentdb": true, "kurrentdb+discover": true,
	"kurrent": true, "kurrent+discover": true,
	"esdb": true, "esdb+discover": true,
}

// Store is the events.Store on a KurrentDB (or EventStoreDB 20.10+) server or cluster.
type Store struct {
	cfg    kurrentdb.Configuration // parsed once; every client gets its own copy
	logger *slog.Logger
	now    func() time.Time

	mu     sync.RWMutex
	client *kurrentdb.Client
	closed bool

	locks [stripes]chan struct{}

	headsMu sync.Mutex
	heads   map[string]head
}

var _ events.Store = (*Store)(nil)

// head is what Append needs to know about a stream to chain the next event.
type head struct {
	rev  uint64
	hash events.Hash
}

// Open connects to the server named by connString, for example
// "kurrentdb://admin:changeit@127.0.0.1:2113?tls=false" or
// "esdb+discover://node1:2113,node2:2113,node3:2113". It reads one stream to check that the server
// answers, so a wrong address fails here and not at the first append. logger may be nil.
func Open(ctx context.Context, connString string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	scheme, _, _ := strings.Cut(connString, "://")
	if !schemes[strings.ToLower(scheme)] {
		return nil, fmt.Errorf("kurrentdb: connection string scheme %q: want kurrentdb, kurrentdb+discover, kurrent, kurrent+discover, esdb or esdb+discover", scheme)
	}
	cfg, err := kurrentdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: parse connection string: %w", err)
	}
	cfg.Logger = clientLogger(logger)
	s := &Store{cfg: *cfg, logger: logger, now: time.Now, heads: make(map[string]head)}
	for i := range s.locks {
		s.locks[i] = make(chan struct{}, 1)
	}
	if s.client, err = s.newClient(); err != nil {
		return nil, err
	}
	if _, _, err := s.readHead(ctx, probeStream); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("kurrentdb: open %s: %w", redact(connString), err)
	}
	return s, nil
}

func (s *Store) newClient() (*kurrentdb.Client, error) {
	cfg := s.cfg
	c, err := kurrentdb.NewClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: new client: %w", err)
	}
	return c, nil
}

// redact drops the password from a connection string for error messages.
func redact(connString string) string {
	// url.Parse refuses the gossip-seed form "esdb://a:2113,b:2113"; the client parses that itself.
	if u, err := url.Parse(connString); err == nil {
		return u.Redacted()
	}
	if scheme, rest, ok := strings.Cut(connString, "://"); ok {
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return scheme + "://xxxxx@" + rest[at+1:]
		}
	}
	return connString
}

// clientLogger hands the client's log lines to slog. The client logs every failed call and every
// ended subscription at "error" level although it returns the same failure to us, and we return it
// to our caller; so its errors become warnings here and its (chatty) info lines debug.
func clientLogger(l *slog.Logger) kurrentdb.LoggingFunc {
	return func(level kurrentdb.LogLevel, format string, args ...any) {
		lvl := slog.LevelDebug
		switch level {
		case kurrentdb.LogWarn, kurrentdb.LogError:
			lvl = slog.LevelWarn
		}
		l.Log(context.Background(), lvl, fmt.Sprintf(format, args...), "component", "kurrentdb-client")
	}
}

// Close closes the client. Calls in flight fail (an append either reached the server whole or not
// at all: KurrentDB commits an append atomically); later calls return events.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.client.Close()
}

func (s *Store) current() (*kurrentdb.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, events.ErrClosed
	}
	return s.client, nil
}

// call runs f with the current client. The client closes itself for good when one round of node
// discovery fails (impl.go connectionStateMachine calls closeWith), so a short outage would leave
// a long-running process without a store; when f fails because the client is closed and we did
// not close it, call replaces the client and runs f once more. Every f is safe to repeat: reads
// trivially, appends because they resend the same events (same ids) with the same exact expected
// revision, which the server treats as idempotent.
func (s *Store) call(f func(*kurrentdb.Client) error) error {
	c, err := s.current()
	if err != nil {
		return err
	}
	err = f(c)
	if !isCode(err, kurrentdb.ErrorCodeConnectionClosed) {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return events.ErrClosed
	}
	if s.client == c {
		fresh, nerr := s.newClient()
		if nerr != nil {
			s.mu.Unlock()
			return errors.Join(err, nerr)
		}
		s.client = fresh
		_ = c.Close()
		s.logger.Warn("kurrentdb client closed itself; replaced it")
	}
	c = s.client
	s.mu.Unlock()
	return f(c)
}

func isCode(err error, code kurrentdb.ErrorCode) bool {
	var kerr *kurrentdb.Error
	return errors.As(err, &kerr) && kerr.Code() == code
}

// fail turns an error of the client into ours: events.ErrClosed after Close, the context's error
// when the caller gave up, otherwise err wrapped with what we were doing.
func (s *Store) fail(ctx context.Context, err error, format string, args ...any) error {
	if errors.Is(err, events.ErrClosed) || s.isClosed() {
		return fmt.Errorf("kurrentdb: "+format+": %w", append(args, events.ErrClosed)...)
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("kurrentdb: "+format+": %w", append(args, cerr)...)
	}
	return fmt.Errorf("kurrentdb: "+format+": %w", append(args, err)...)
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// lock serializes appends to one stream inside this process, so that writers sharing a Store never
// conflict with each other (an Any append would otherwise retry against its own neighbours, and
// the head cache would race). Writers in other processes are caught by the server's check.
func (s *Store) lock(ctx context.Context, stream string) (unlock func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(stream))
	l := s.locks[h.Sum32()%stripes]
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Store) cachedHead(stream string) (head, bool) {
	s.headsMu.Lock()
	defer s.headsMu.Unlock()
	h, ok := s.heads[stream]
	return h, ok
}

func (s *Store) remember(stream string, h head) {
	s.headsMu.Lock()
	defer s.headsMu.Unlock()
	if old, ok := s.heads[stream]; ok && old.rev >= h.rev {
		return
	}
	if len(s.heads) >= headCacheSize {
		for k := range s.heads { // evict one arbitrary entry; a miss costs one read
			delete(s.heads, k)
			break
		}
	}
	s.heads[stream] = h
}

func (s *Store) forget(stream string) {
	s.headsMu.Lock()
	defer s.headsMu.Unlock()
	delete(s.heads, stream)
}

// readHead reads the last event of stream and returns its revision and hash; exists is false for a
// stream without events.
func (s *Store) readHead(ctx context.Context, stream string) (h head, exists bool, err error) {
	evs, err := s.read(ctx, stream, kurrentdb.Backwards, kurrentdb.End{}, 1)
	if errors.Is(err, events.ErrStreamNotFound) {
		return head{}, false, nil
	}
	if err != nil {
		return head{}, false, err
	}
	if len(evs) == 0 {
		return head{}, false, nil
	}
	h = head{rev: evs[0].Revision, hash: events.HashOf(&evs[0])}
	s.remember(stream, h)
	return h, true, nil
}

// Append writes evs to stream if it is at the expected revision. See the package documentation
// for how the hash chain and events.Any{} are handled.
func (s *Store) Append(ctx context.Context, stream string, expected events.ExpectedRevision, evs ...events.Event) (events.AppendResult, error) {
	if err := events.ValidateAppend(stream, evs); err != nil {
		return events.AppendResult{}, err
	}
	if expected == nil {
		return events.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: nil expected revision", stream)
	}
	if err := ctx.Err(); err != nil {
		return events.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
	}
	if _, err := s.current(); err != nil {
		return events.AppendResult{}, err
	}
	unlock, err := s.lock(ctx, stream)
	if err != nil {
		return events.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
	}
	defer unlock()

	_, isAny := expected.(events.Any)
	for attempt := 1; ; attempt++ {
		h, exists, err := s.headFor(ctx, stream, expected)
		if err != nil {
			return events.AppendResult{}, err
		}
		if !expected.Check(h.rev, exists) {
			return events.AppendResult{}, &events.WrongRevisionError{Stream: stream, Expected: expected, Actual: h.rev, Exists: exists}
		}
		res, err := s.appendAt(ctx, stream, h, exists, evs)
		var wrong *events.WrongRevisionError
		if errors.As(err, &wrong) {
			wrong.Expected = expected
			if isAny && attempt < anyAttempts {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return events.AppendResult{}, fmt.Errorf("kurrentdb: append to %s: %w", stream, err)
				}
				continue
			}
			if isAny {
				return events.AppendResult{}, fmt.Errorf("kurrentdb: append to %s at any revision: other writers moved the stream %d times in a row: %w", stream, attempt, wrong)
			}
		}
		return res, err
	}
}

func backoff(attempt int) time.Duration {
	limit := min(anyBackoff<<min(attempt, 16), anyMaxBackoff)
	return rand.N(limit)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// headFor returns the stream's head for an append with this expectation: the cached one if it
// satisfies the expectation, otherwise (or on a miss) the one read from the server. A stale cache
// entry can only be behind the server (streams only grow), so a cached head that fails the check
// is re-read before the append is refused.
func (s *Store) headFor(ctx context.Context, stream string, expected events.ExpectedRevision) (head, bool, error) {
	if h, ok := s.cachedHead(stream); ok && expected.Check(h.rev, true) {
		return h, true, nil
	}
	if _, ok := expected.(events.NoStream); ok {
		if _, cached := s.cachedHead(stream); !cached {
			return head{}, false, nil // nothing to chain to; the server checks that the stream is new
		}
	}
	h, exists, err := s.readHead(ctx, stream)
	if err != nil {
		return head{}, false, s.fail(ctx, err, "append to %s: read head", stream)
	}
	return h, exists, nil
}

// appendAt seals evs after h and appends them with h as the exact expected state.
func (s *Store) appendAt(ctx context.Context, stream string, h head, exists bool, evs []events.Event) (events.AppendResult, error) {
	next, prev := uint64(0), events.Hash{}
	state := kurrentdb.StreamState(kurrentdb.NoStream{})
	if exists {
		next, prev = h.rev+1, h.hash
		state = kurrentdb.Revision(h.rev)
	}
	now := s.now()
	data := make([]kurrentdb.EventData, len(evs))
	var last events.RecordedEvent
	for i := range evs {
		ev := evs[i]
		if ev.ID == uuid.Nil {
			ev.ID = uuid.New()
		}
		rec, err := events.Seal(stream, next+uint64(i), prev, now, &ev)
		if err != nil {
			return events.AppendResult{}, err
		}
		prev, last = events.HashOf(&rec), rec
		data[i] = kurrentdb.EventData{
			EventID:     ev.ID,
			EventType:   ev.Type,
			ContentType: kurrentdb.ContentTypeBinary,
			Data:        rec.Data,
			Metadata:    rec.Metadata,
		}
	}

	var res *kurrentdb.WriteResult
	err := s.call(func(c *kurrentdb.Client) error {
		var err error
		res, err = c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: state}, data...)
		return err
	})
	if isCode(err, kurrentdb.ErrorCodeWrongExpectedVersion) {
		s.forget(stream)
		return events.AppendResult{}, s.wrongRevision(ctx, stream, err)
	}
	if err != nil {
		s.forget(stream) // the append may or may not have happened
		return events.AppendResult{}, s.fail(ctx, err, "append to %s", stream)
	}
	if res.NextExpectedVersion != last.Revision {
		// Not a fresh write of our batch (e.g. the server answered an idempotent repeat of an
		// earlier batch with the same event ids); our hash of it may not be the stored one.
		s.forget(stream)
		s.logger.Warn("kurrentdb append: server revision differs from ours", "stream", stream, "revision", last.Revision, "server_revision", res.NextExpectedVersion)
	} else {
		s.remember(stream, head{rev: last.Revision, hash: prev})
	}
	pos := events.Position(res.CommitPosition)
	if pos == 0 {
		// The server sent no position (AppendResp no_position): read the event back.
		evs, err := s.read(ctx, stream, kurrentdb.Backwards, kurrentdb.Revision(res.NextExpectedVersion), 1)
		if err == nil && len(evs) == 1 {
			pos = evs[0].Position
		}
	}
	return events.AppendResult{Revision: res.NextExpectedVersion, Position: pos}, nil
}

// wrongRevision builds the WrongRevisionError of a refused append. The server sends the stream's
// actual revision, but the client only keeps it inside the message text (client.go, AppendToStream:
// "wrong expected version: expecting '%s' but got '%s'"); we take it from there and read the head
// when the text is not in that form.
func (s *Store) wrongRevision(ctx context.Context, stream string, err error) error {
	werr := &events.WrongRevisionError{Stream: stream}
	var kerr *kurrentdb.Error
	if errors.As(err, &kerr) && kerr.Err() != nil {
		msg := kerr.Err().Error()
		const marker = "but got '"
		if i := strings.LastIndex(msg, marker); i >= 0 {
			got, _, ok := strings.Cut(msg[i+len(marker):], "'")
			if ok && got == "no_stream" {
				return werr
			}
			if n, perr := strconv.ParseUint(got, 10, 64); ok && perr == nil {
				werr.Actual, werr.Exists = n, true
				return werr
			}
		}
	}
	h, exists, rerr := s.readHead(ctx, stream)
	if rerr != nil {
		return errors.Join(werr, s.fail(ctx, rerr, "append to %s: read actual revision", stream))
	}
	werr.Actual, werr.Exists = h.rev, exists
	return werr
}

// ReadStream reads up to limit events of stream from revision from in direction dir.
func (s *Store) ReadStream(ctx context.Context, stream string, dir events.Direction, from uint64, limit int) ([]events.RecordedEvent, error) {
	if err := events.ValidateRead(stream, limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kurrentdb: read %s: %w", stream, err)
	}
	kdir := kurrentdb.Forwards
	var start kurrentdb.StreamPosition = kurrentdb.Revision(from)
	if dir == events.Backwards {
		kdir = kurrentdb.Backwards
		if from == events.End {
			start = kurrentdb.End{}
		}
	}
	evs, err := s.read(ctx, stream, kdir, start, uint64(limit))
	if err != nil {
		return nil, err
	}
	if evs == nil {
		evs = []events.RecordedEvent{}
	}
	return evs, nil
}

// read is ReadStream without argument checks; a missing stream is events.ErrStreamNotFound.
func (s *Store) read(ctx context.Context, stream string, dir kurrentdb.Direction, from kurrentdb.StreamPosition, count uint64) ([]events.RecordedEvent, error) {
	var out []events.RecordedEvent
	err := s.call(func(c *kurrentdb.Client) error {
		out = out[:0]
		rs, err := c.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{Direction: dir, From: from}, count)
		if err != nil {
			return err
		}
		defer rs.Close()
		for {
			ev, err := recvRead(rs)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if ev.Event == nil {
				continue
			}
			out = append(out, recorded(ev.Event))
		}
	})
	switch {
	case err == nil:
		return out, nil
	case isCode(err, kurrentdb.ErrorCodeResourceNotFound):
		return nil, fmt.Errorf("kurrentdb: read %s: %w", stream, events.ErrStreamNotFound)
	case isCode(err, kurrentdb.ErrorCodeStreamDeleted):
		return nil, fmt.Errorf("kurrentdb: read %s: deleted: %w", stream, events.ErrStreamNotFound)
	}
	return nil, s.fail(ctx, err, "read %s", stream)
}

// recvRead is rs.Recv without its panic: the client panics on any read response other than an
// event or stream-not-found (reads.go, ReadStream.Recv, "unreachable code").
func recvRead(rs *kurrentdb.ReadStream) (ev *kurrentdb.ResolvedEvent, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("unexpected read response from server (client panicked: %v)", r)
		}
	}()
	return rs.Recv()
}

// recorded converts a KurrentDB event. A stream read of an event written in an explicit (legacy
// TCP) transaction carries no commit position (all ones); it gets Position 0.
func recorded(e *kurrentdb.RecordedEvent) events.RecordedEvent {
	pos := events.Position(e.Position.Commit)
	if e.Position.Commit == math.MaxUint64 {
		pos = 0
	}
	return events.RecordedEvent{
		Stream:   e.StreamID,
		Revision: e.EventNumber,
		Position: pos,
		Type:     e.EventType,
		Data:     e.Data,
		Metadata: e.UserMetadata,
	}
}
