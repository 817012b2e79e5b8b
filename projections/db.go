package projections

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/polyproto-chat/server/internal/pebblelog"
)

// Errors callers branch on; test with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrClosed             = errors.New("read-model database closed")
	ErrInvalidName        = errors.New("invalid projection name")
	ErrUnknownProjection  = errors.New("unknown projection")
	ErrRunning            = errors.New("projection runner already running")
	errCheckpointEncoding = errors.New("malformed checkpoint")
)

// Key layout of the read-model database. Every projection owns two disjoint places:
//
//	d/<name>/<key>  its read model; <key> is whatever the projection writes through Writer
//	c/<name>        its checkpoint: 0x01 | u64be position | u64be version (see checkpoint)
//
// Names match [a-z][a-z0-9_]*, so neither '/' nor the byte after it ('0') can occur in a name:
// the range [d/<name>/, d/<name>0) holds exactly one projection's rows, however its name relates
// to the others' ("history" and "history2" do not overlap), and a rebuild deletes just that range.
const (
	dataTag       = 'd'
	checkpointTag = 'c'
	maxNameLen    = 64
)

// ValidateName accepts a projection name: 1-64 characters, [a-z][a-z0-9_]*. The name is part of
// the projection's keys, metric labels and the rebuild command, so it must never change.
func ValidateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: %q: length must be 1-%d", ErrInvalidName, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return fmt.Errorf("%w: %q: must match [a-z][a-z0-9_]*", ErrInvalidName, name)
		}
	}
	return nil
}

func dataPrefix(name string) []byte {
	return append([]byte{dataTag, '/'}, name+"/"...)
}

func checkpointKey(name string) []byte {
	return append([]byte{checkpointTag, '/'}, name...)
}

// DB is the read-model database: one Pebble instance in its own directory, separate from the
// event store's, shared by every projection under its own key prefix. It is safe for concurrent
// use. Reads for serving go through Reader; writes only through the Runner.
type DB struct {
	dir string
	log *slog.Logger

	// mu makes Close wait for batches and reads in flight and turns later calls into ErrClosed:
	// Pebble panics when used after Close, and a read model must not take the server down.
	mu     sync.RWMutex
	pdb    *pebble.DB
	closed bool
}

// Open opens (creating it if needed) the read-model database in dir, for example
// <data-dir>/views. A directory that cannot be created or opened, or that another process holds
// open (Pebble locks it), is an error. logger may be nil (discard).
func Open(dir string, logger *slog.Logger) (*DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open read-model database: %w", err)
	}
	return open(dir, vfs.Default, logger)
}

// open lets tests run on an in-memory, crashable file system.
func open(dir string, fs vfs.FS, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "pebble", "dir", dir)
	opts := &pebble.Options{
		FS:                 fs,
		FormatMajorVersion: pebble.FormatNewest,
		// Pebble's default logger writes to stderr and exits the process on Fatalf.
		Logger: pebblelog.Logger{Log: logger},
	}
	opts.EventListener = &pebble.EventListener{
		// A corrupt read model is repaired by deleting the directory and rebuilding from the event
		// store; it is no reason to kill the server, which Pebble's default (Fatalf) would do.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			logger.Error("read-model database corrupt: stop the server, delete the directory and rebuild the projections",
				"path", info.Path, "error", info.Details)
		},
	}
	pdb, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open read-model database %s: %w", dir, err)
	}
	return &DB{dir: dir, log: logger, pdb: pdb}, nil
}

// Close closes the database after the reads and batches in flight. Stop the Runner and close
// every Iterator first. Closing twice is not an error.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	if err := db.pdb.Close(); err != nil {
		return fmt.Errorf("close read-model database %s: %w", db.dir, err)
	}
	return nil
}

// Reader gives read access to one projection's rows, for the code that serves its queries.
func (db *DB) Reader(name string) (*Reader, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return &Reader{db: db, prefix: dataPrefix(name)}, nil
}

// readCheckpoint returns the projection's checkpoint; ok is false if it has none.
func (db *DB) readCheckpoint(name string) (c checkpoint, ok bool, err error) {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return c, false, ErrClosed
	}
	v, closer, err := db.pdb.Get(checkpointKey(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read checkpoint of %s: %w", name, err)
	}
	defer closer.Close()
	c, err = decodeCheckpoint(v)
	if err != nil {
		return c, false, fmt.Errorf("read checkpoint of %s: %w", name, err)
	}
	return c, true, nil
}

// wipe deletes a projection's rows and checkpoint in one batch, so that it starts again from
// position 0. One batch: after a crash either both are gone or neither is.
func (db *DB) wipe(name string) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	b := db.pdb.NewBatch()
	defer b.Close()
	p := dataPrefix(name)
	if err := b.DeleteRange(p, PrefixEnd(p), nil); err != nil {
		return fmt.Errorf("wipe %s: %w", name, err)
	}
	if err := b.Delete(checkpointKey(name), nil); err != nil {
		return fmt.Errorf("wipe %s: %w", name, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("wipe %s: %w", name, err)
	}
	return nil
}

// checkpoint is what a projection has applied: every event up to Position, with the read-model
// schema Version. It is written in the same batch as the rows those events produced.
type checkpoint struct {
	Position uint64
	Version  uint64
}

const checkpointFormat = 1

func (c checkpoint) encode(dst []byte) []byte {
	dst = append(dst, checkpointFormat)
	dst = AppendUint64(dst, c.Position)
	return AppendUint64(dst, c.Version)
}

func decodeCheckpoint(v []byte) (checkpoint, error) {
	if len(v) != 17 || v[0] != checkpointFormat {
		return checkpoint{}, fmt.Errorf("%w: %d bytes, format %d", errCheckpointEncoding, len(v), firstByte(v))
	}
	pos, rest, _ := CutUint64(v[1:])
	ver, _, _ := CutUint64(rest)
	return checkpoint{Position: pos, Version: ver}, nil
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}
