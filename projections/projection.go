package projections

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/polyproto-chat/server/events"
)

// Projection turns events into a read model. Implementations live in subpackages
// (projections/history, ...) and are registered with a Runner.
type Projection interface {
	// Name identifies the projection in keys, checkpoints, metrics and the rebuild command.
	// It must match [a-z][a-z0-9_]* and never change: a new name is a new, empty read model.
	Name() string

	// Filter selects the events Apply sees. A narrow filter makes catch-up and rebuild cheaper.
	Filter() events.Filter

	// Apply adds e's changes to the read model through w, in global order. Everything written
	// through w is committed together with the checkpoint of its batch, or not at all. An error
	// discards e's changes; the runner retries e after a backoff, for ever: an event that can
	// never be applied is a bug to fix (then redeploy), not something to skip.
	//
	// Apply may see an event again after its batch was discarded, so it must have no effect
	// outside w, and it must read only through w (it runs while the runner holds the database).
	Apply(w *Writer, e events.RecordedEvent) error
}

// Versioned is implemented by a projection whose read-model layout can change. When the
// version stored with its checkpoint differs from Version, the runner wipes the read model and
// rebuilds it from position 0 before serving it again. Projections without it have version 0.
type Versioned interface {
	Version() uint64
}

func versionOf(p Projection) uint64 {
	if v, ok := p.(Versioned); ok {
		return v.Version()
	}
	return 0
}

// Reader reads one projection's rows. Keys are the projection's own, without its prefix.
// A Reader from DB.Reader reads committed data and is safe for concurrent use; the Reader inside
// a Writer also sees the batch being written and belongs to the runner's goroutine.
type Reader struct {
	db     *DB
	prefix []byte
	batch  *pebble.Batch // nil: read the committed database
	buf    []byte        // key scratch, only with a batch (single goroutine)
}

func (r *Reader) key(k []byte) []byte {
	if r.batch == nil {
		return append(append(make([]byte, 0, len(r.prefix)+len(k)), r.prefix...), k...)
	}
	r.buf = append(append(r.buf[:0], r.prefix...), k...)
	return r.buf
}

func (r *Reader) source() pebble.Reader {
	if r.batch != nil {
		return r.batch
	}
	return r.db.pdb
}

// Get returns a copy of the value stored under key, or an error matching ErrNotFound.
func (r *Reader) Get(key []byte) ([]byte, error) {
	return r.AppendValue(nil, key)
}

// AppendValue appends the value stored under key to dst, which lets a hot path reuse a buffer.
// It returns an error matching ErrNotFound if there is none.
func (r *Reader) AppendValue(dst, key []byte) ([]byte, error) {
	if r.batch == nil {
		// The runner holds the lock for a batch's whole life; only standalone readers take it here.
		r.db.mu.RLock()
		defer r.db.mu.RUnlock()
		if r.db.closed {
			return dst, ErrClosed
		}
	}
	v, closer, err := r.source().Get(r.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, ErrNotFound // unwrapped: a miss is common and must not allocate
	}
	if err != nil {
		return dst, fmt.Errorf("read %q: %w", string(key), err) // string(): keep key off the heap
	}
	dst = append(dst, v...)
	return dst, closer.Close()
}

// NewIter returns an iterator over the projection's keys in [lower, upper); nil bounds mean the
// first and the end of the projection's keys. An iterator reads a consistent snapshot taken
// when it was created. Close it, and before DB.Close.
func (r *Reader) NewIter(lower, upper []byte) (*Iterator, error) {
	lo := append(append([]byte(nil), r.prefix...), lower...)
	hi := PrefixEnd(r.prefix)
	if upper != nil {
		hi = append(append([]byte(nil), r.prefix...), upper...)
	}
	if r.batch == nil {
		r.db.mu.RLock()
		defer r.db.mu.RUnlock()
		if r.db.closed {
			return nil, ErrClosed
		}
	}
	it, err := r.source().NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("iterate: %w", err)
	}
	return &Iterator{it: it, prefix: r.prefix}, nil
}

// Iterator walks a projection's rows in key order, forwards or backwards (for paging "older
// than"). Keys and values are only valid until the next move.
type Iterator struct {
	it     *pebble.Iterator
	prefix []byte
	buf    []byte
}

func (i *Iterator) seekKey(k []byte) []byte {
	i.buf = append(append(i.buf[:0], i.prefix...), k...)
	return i.buf
}

func (i *Iterator) First() bool            { return i.it.First() }
func (i *Iterator) Last() bool             { return i.it.Last() }
func (i *Iterator) Next() bool             { return i.it.Next() }
func (i *Iterator) Prev() bool             { return i.it.Prev() }
func (i *Iterator) Valid() bool            { return i.it.Valid() }
func (i *Iterator) SeekGE(key []byte) bool { return i.it.SeekGE(i.seekKey(key)) }
func (i *Iterator) SeekLT(key []byte) bool { return i.it.SeekLT(i.seekKey(key)) }

// Key is the current row's key without the projection's prefix, nil if the iterator is not valid.
func (i *Iterator) Key() []byte {
	if !i.it.Valid() {
		return nil
	}
	return i.it.Key()[len(i.prefix):]
}

// Value is the current row's value.
func (i *Iterator) Value() ([]byte, error) { return i.it.ValueAndErr() }

// Error is the error that stopped the iteration, if any.
func (i *Iterator) Error() error { return i.it.Error() }

// Close releases the iterator.
func (i *Iterator) Close() error { return i.it.Close() }

// Writer is what Apply writes through: one Pebble batch, confined to the projection's keys. Its
// Reader sees the committed read model with the batch's own writes on top, so Apply can read,
// modify and write within a batch. Close iterators from it before Apply returns. A Writer is
// only valid during the Apply call it was passed to.
type Writer struct {
	Reader
	buf2 []byte // second scratch, for range ends
}

// Set stores value under key. Both are copied.
func (w *Writer) Set(key, value []byte) error {
	if err := w.batch.Set(w.key(key), value, nil); err != nil {
		return fmt.Errorf("set %q: %w", string(key), err)
	}
	return nil
}

// Delete removes key.
func (w *Writer) Delete(key []byte) error {
	if err := w.batch.Delete(w.key(key), nil); err != nil {
		return fmt.Errorf("delete %q: %w", string(key), err)
	}
	return nil
}

// DeleteRange removes the keys in [start, end); a nil end means the end of the projection's keys.
func (w *Writer) DeleteRange(start, end []byte) error {
	var hi []byte
	if end == nil {
		hi = PrefixEnd(w.prefix)
	} else {
		w.buf2 = append(append(w.buf2[:0], w.prefix...), end...)
		hi = w.buf2
	}
	if err := w.batch.DeleteRange(w.key(start), hi, nil); err != nil {
		return fmt.Errorf("delete range [%q, %q): %w", string(start), string(end), err)
	}
	return nil
}
