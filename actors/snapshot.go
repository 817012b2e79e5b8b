package actors

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/polyproto-chat/server/events"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

func (j *Journal[S]) snapshotDue(n int) bool {
	return j.cfg.SnapshotEvery > 0 && j.cfg.Model.Snapshot != nil && j.cfg.Model.Restore != nil &&
		j.sinceSnapshot+n >= j.cfg.SnapshotEvery && !j.snapshotting.Load()
}

// writeSnapshot appends a SnapshotTaken in the background. A snapshot is a cache: a failure is
// logged and the next one is tried SnapshotEvery events later.
func (j *Journal[S]) writeSnapshot(revision uint64, state *anypb.Any) {
	j.snapshotting.Store(true)
	go func() {
		defer j.snapshotting.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), j.cfg.AppendTimeout)
		defer cancel()
		if err := j.appendSnapshot(ctx, revision, state); err != nil {
			j.log.Warn("snapshot failed", "revision", revision, "error", err)
			return
		}
		j.log.Debug("snapshot written", "revision", revision)
	}()
}

func (j *Journal[S]) appendSnapshot(ctx context.Context, revision uint64, state *anypb.Any) error {
	// The hash of the event at revision ties the snapshot to this stream's chain; load checks it.
	recs, err := j.cfg.Store.ReadStream(ctx, j.cfg.Stream, events.Forwards, revision, 1)
	if err != nil {
		return fmt.Errorf("read %s@%d: %w", j.cfg.Stream, revision, err)
	}
	if len(recs) != 1 || recs[0].Revision != revision {
		return fmt.Errorf("read %s@%d: event missing", j.cfg.Stream, revision)
	}
	h := events.HashOf(&recs[0])
	ev, err := events.NewEvent(&eventsv1.SnapshotTaken{Revision: revision, Hash: h[:], State: state})
	if err != nil {
		return err
	}
	_, err = j.cfg.Store.Append(ctx, j.snapStream, events.Any{}, ev)
	return err
}

// latestSnapshot reads the last SnapshotTaken of the stream; nil if there is none or it is
// unreadable (it is only a cache).
func (j *Journal[S]) latestSnapshot(ctx context.Context) (*eventsv1.SnapshotTaken, error) {
	if j.cfg.Model.Restore == nil {
		return nil, nil
	}
	recs, err := j.cfg.Store.ReadStream(ctx, j.snapStream, events.Backwards, events.End, 1)
	if errors.Is(err, events.ErrStreamNotFound) || (err == nil && len(recs) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", j.snapStream, err)
	}
	msg, err := events.Decode(&recs[0])
	if err != nil {
		j.log.Warn("ignoring unreadable snapshot", "error", err)
		return nil, nil
	}
	snap, ok := msg.(*eventsv1.SnapshotTaken)
	if !ok {
		j.log.Warn("ignoring snapshot stream event", "type", recs[0].Type)
		return nil, nil
	}
	return snap, nil
}
