package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/polyproto-chat/server/events"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(file, "views"), nil); err == nil {
		t.Error("opened a database below a file")
	}
	if _, err := Open(file, nil); err == nil {
		t.Error("opened a database on a file")
	}

	views := filepath.Join(dir, "views")
	db, err := Open(views, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(views, nil); err == nil || !strings.Contains(err.Error(), views) {
		t.Errorf("second open of a held directory: %v", err)
	}
	r, err := db.Reader("counter")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := r.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("get after close: %v", err)
	}
	if _, err := r.NewIter(nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("iterate after close: %v", err)
	}
	if _, err := db.Reader("Not valid"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("reader with a bad name: %v", err)
	}
}

// Pebble's own log lines go to the injected logger, at debug, never to stderr.
func TestPebbleLogsThroughSlog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	db, err := Open(dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(dir, logger); err != nil { // a reopen replays the WAL, which pebble logs
		t.Fatal(err)
	}
	db.Close()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "component=pebble") {
		t.Fatalf("no pebble debug lines in the log:\n%s", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// rows writes fixed rows and, as projection "a", tries to wipe more than its namespace.
type rows struct{ name string }

func (p rows) Name() string          { return p.name }
func (p rows) Filter() events.Filter { return events.Filter{} }
func (p rows) Apply(w *Writer, e events.RecordedEvent) error {
	if e.Position == 2 {
		if p.name != "a" {
			return nil
		}
		// "Everything" is only this projection's rows: a_b's stay.
		if err := w.DeleteRange(nil, nil); err != nil {
			return err
		}
		return w.Set([]byte("z"), []byte(p.name))
	}
	for _, k := range []string{"a", "b", "c", "\xff\xff"} {
		if err := w.Set([]byte(k), []byte(p.name)); err != nil {
			return err
		}
	}
	if err := w.Delete([]byte("b")); err != nil {
		return err
	}
	// Reads inside the batch see its writes.
	if v, err := w.Get([]byte("a")); err != nil || string(v) != p.name {
		return errors.Join(err, errors.New("batch does not see its own write"))
	}
	if _, err := w.Get([]byte("b")); !errors.Is(err, ErrNotFound) {
		return errors.Join(err, errors.New("batch does not see its own delete"))
	}
	it, err := w.NewIter(nil, nil)
	if err != nil {
		return err
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return err
	}
	if n != 3 {
		return fmt.Errorf("batch iterator sees %d rows, want the projection's 3", n)
	}
	return nil
}

func TestProjectionsCannotTouchEachOther(t *testing.T) {
	store := newStore(t)
	fill(t, store, 1, 1)
	db := openDB(t, t.TempDir())
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{rows{"a"}, rows{"a_b"}}})
	stop := start(t, r)
	waitFor(t, "caught up", r.CaughtUp)
	if _, err := store.Append(context.Background(), "chan-0", events.Any{}, events.Event{Type: "x", Data: payload}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second event", func() bool { return statusOf(r, "a").Position == 2 && statusOf(r, "a_b").Position == 2 })
	stop()
	for name, want := range map[string][]string{"a": {"z"}, "a_b": {"\xff\xff", "c", "a"}} {
		rd, _ := db.Reader(name)
		it, err := rd.NewIter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for ok := it.Last(); ok; ok = it.Prev() {
			if v, _ := it.Value(); string(v) != name {
				t.Errorf("%s reads %q written by %q", name, it.Key(), v)
			}
			keys = append(keys, string(it.Key()))
		}
		it.Close()
		if fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Errorf("%s has rows %q, want %q", name, keys, want)
		}
	}
	rd, _ := db.Reader("a_b")
	if _, err := rd.Get([]byte("b")); !errors.Is(err, ErrNotFound) {
		t.Errorf("get of a deleted row: %v", err)
	}
	// Nothing outside the two namespaces but their checkpoints.
	it, _ := db.pdb.NewIter(&pebble.IterOptions{})
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := string(it.Key())
		if !strings.HasPrefix(k, "d/a/") && !strings.HasPrefix(k, "d/a_b/") && k != "c/a" && k != "c/a_b" {
			t.Errorf("stray key %q", k)
		}
	}
}

func TestIteratorSeekAndBounds(t *testing.T) {
	store := newStore(t)
	fill(t, store, 5, 3)
	db := openDB(t, t.TempDir())
	r := newRunner(t, Config{Events: store, DB: db, Projections: []Projection{&counter{name: "counter"}}})
	stop := start(t, r)
	waitFor(t, "caught up", r.CaughtUp)
	stop()
	rd, _ := db.Reader("counter")
	lo, hi := AppendString(nil, "chan-1"), AppendString(nil, "chan-3")
	it, err := rd.NewIter(lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		s, _, _ := CutString(it.Key())
		got = append(got, s)
	}
	if strings.Join(got, ",") != "chan-1,chan-2" {
		t.Fatalf("[chan-1, chan-3) gave %v", got)
	}
	if !it.SeekLT(AppendString(nil, "chan-2")) {
		t.Fatal("SeekLT found nothing")
	}
	if s, _, _ := CutString(it.Key()); s != "chan-1" {
		t.Fatalf("SeekLT(chan-2) at %s", s)
	}
	if !it.SeekGE(AppendString(nil, "chan-15")) || !it.Valid() {
		t.Fatal("SeekGE found nothing")
	}
	if s, _, _ := CutString(it.Key()); s != "chan-2" {
		t.Fatalf("SeekGE(chan-15) at %s", s)
	}
	if it.Error() != nil {
		t.Fatal(it.Error())
	}
}

func TestKeys(t *testing.T) {
	ordered := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x01", "a", "a\x00", "a\x00b", "ab", "b", "\xff"}
	var prev []byte
	for i, s := range ordered {
		k := AppendUint64(AppendString(nil, s), uint64(i))
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			t.Errorf("%q does not sort after %q", s, ordered[i-1])
		}
		prev = k
		got, rest, err := CutString(k)
		if err != nil || got != s {
			t.Fatalf("CutString(%q) = %q, %v", k, got, err)
		}
		n, rest, err := CutUint64(rest)
		if err != nil || n != uint64(i) || len(rest) != 0 {
			t.Fatalf("CutUint64: %d %q %v", n, rest, err)
		}
	}
	for _, bad := range []string{"abc", "a\x00", "a\x00\x02", "a\x00\xff"} {
		if _, _, err := CutString([]byte(bad)); !errors.Is(err, ErrBadKey) {
			t.Errorf("CutString(%q): %v", bad, err)
		}
	}
	if _, _, err := CutUint64([]byte{1, 2}); !errors.Is(err, ErrBadKey) {
		t.Errorf("CutUint64 of 2 bytes: %v", err)
	}
	for in, want := range map[string]string{"ab": "ac", "a\xff": "b", "\xff\xff": "", "": ""} {
		if got := string(PrefixEnd([]byte(in))); got != want {
			t.Errorf("PrefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzKeyOrder(f *testing.F) {
	f.Add("a", "ab", uint64(1), uint64(2))
	f.Add("a\x00", "a", uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, a, b string, x, y uint64) {
		ka := AppendUint64(AppendString(nil, a), x)
		kb := AppendUint64(AppendString(nil, b), y)
		want := strings.Compare(a, b)
		if want == 0 {
			want = map[bool]int{true: -1, false: 1}[x < y]
			if x == y {
				want = 0
			}
		}
		if got := bytes.Compare(ka, kb); got != want {
			t.Fatalf("(%q,%d) vs (%q,%d): keys compare %d, parts %d", a, x, b, y, got, want)
		}
		s, rest, err := CutString(ka)
		if err != nil || s != a {
			t.Fatalf("CutString: %q %v", s, err)
		}
		if n, _, err := CutUint64(rest); err != nil || n != x {
			t.Fatalf("CutUint64: %d %v", n, err)
		}
	})
}
