package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/polyproto-chat/server/events"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// errSnapshotMismatch: the snapshot does not continue this stream; replay it from the start.
var errSnapshotMismatch = errors.New("snapshot does not match the stream")

// reload replaces the state with what the store holds. It runs at Started, after a failed
// append and when a command finds the state unloaded. Callers ensure nothing is in flight.
func (j *Journal[S]) reload() error {
	ctx, cancel := context.WithTimeout(context.Background(), j.cfg.LoadTimeout)
	defer cancel()
	snap, err := j.latestSnapshot(ctx)
	if err == nil {
		err = j.load(ctx, snap)
		if errors.Is(err, errSnapshotMismatch) {
			j.log.Warn("ignoring snapshot", "revision", snap.GetRevision(), "error", err)
			err = j.load(ctx, nil)
		}
	}
	if err != nil {
		j.loaded = false
		return fmt.Errorf("load %s: %w", j.cfg.Stream, err)
	}
	j.loaded = true
	return nil
}

// load restores the state from snap (if any) and folds in the events after it.
func (j *Journal[S]) load(ctx context.Context, snap *eventsv1.SnapshotTaken) error {
	state := j.cfg.Model.Initial()
	var from uint64
	if snap != nil {
		inner, err := snap.GetState().UnmarshalNew()
		if err == nil {
			state, err = j.cfg.Model.Restore(inner)
		}
		if err != nil {
			return fmt.Errorf("%w: restore: %w", errSnapshotMismatch, err)
		}
		// Start at the snapshot's own event: it checks the snapshot and gives its position.
		from = snap.GetRevision()
	}
	var h head
	n := 0
	for e, err := range events.ReadFrom(ctx, j.cfg.Store, j.cfg.Stream, from) {
		if err != nil {
			return err
		}
		if snap != nil && !h.exists {
			if e.Revision != snap.GetRevision() {
				return fmt.Errorf("%w: revision %d is missing", errSnapshotMismatch, snap.GetRevision())
			}
			if hash := events.HashOf(&e); len(snap.GetHash()) > 0 && !bytes.Equal(hash[:], snap.GetHash()) {
				return fmt.Errorf("%w: hash of revision %d differs", errSnapshotMismatch, e.Revision)
			}
			h = head{exists: true, revision: e.Revision, position: e.Position}
			continue
		}
		msg, err := events.Decode(&e)
		if err != nil {
			return err
		}
		if state, err = j.cfg.Model.Apply(state, msg); err != nil {
			return fmt.Errorf("apply %s@%d (%s): %w", e.Stream, e.Revision, e.Type, err)
		}
		h = head{exists: true, revision: e.Revision, position: e.Position}
		n++
	}
	if snap != nil && !h.exists {
		return fmt.Errorf("%w: stream ends before revision %d", errSnapshotMismatch, snap.GetRevision())
	}
	j.state, j.head, j.sinceSnapshot = state, h, n
	return nil
}
