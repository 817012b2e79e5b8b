package groups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/projections"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Name of the projection.
const Name = "groups"

// streamPrefix is actors/group.StreamPrefix, repeated so that a read model does not depend on the
// actor package.
const streamPrefix = "group-"

// Key layout, relative to the projection's prefix:
//
//	a <fid> 0x00 <group u64be>  the group's kind: fid is named in the group or holds a device in it
//	k <group u64be>             the group's kind
//	n <group u64be> <fid>       how many devices fid holds in the group (u32be)
//
// An actor's groups are one contiguous range of a-keys; 0x00 cannot occur in a FID.
const layoutVersion = 1

// Projection maintains the groups of every actor.
type Projection struct{}

var (
	_ projections.Projection = Projection{}
	_ projections.Versioned  = Projection{}
)

func (Projection) Name() string    { return Name }
func (Projection) Version() uint64 { return layoutVersion }

func (Projection) Filter() events.Filter {
	return events.Filter{StreamPrefixes: []string{streamPrefix}}
}

func actorKey(fid string, group uint64) []byte {
	k := append([]byte{'a'}, fid...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, group)
}

func kindKey(group uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'k'}, group) }

func devicesKey(group uint64, fid string) []byte {
	return append(binary.BigEndian.AppendUint64([]byte{'n'}, group), fid...)
}

// Apply folds one group event into the read model.
func (Projection) Apply(w *projections.Writer, rec events.RecordedEvent) error {
	id, err := parseStream(rec.Stream)
	if err != nil {
		return err
	}
	msg, err := events.Decode(&rec)
	if err != nil {
		return err
	}
	switch e := msg.(type) {
	case *eventsv1.GroupCreated:
		kind := []byte(e.GetKind())
		if err := w.Set(kindKey(id), kind); err != nil {
			return err
		}
		for _, fid := range e.GetActors() {
			if err := w.Set(actorKey(fid, id), kind); err != nil {
				return err
			}
		}
		return addDevices(w, id, e.GetOwnerFid(), 1)
	case *eventsv1.GroupCommitted:
		kind, err := w.Get(kindKey(id))
		if err != nil {
			return fmt.Errorf("groups: commit of group %d before its creation: %w", id, err)
		}
		for _, l := range e.GetRemoved() {
			if err := addDevices(w, id, l.GetFid(), -1); err != nil {
				return err
			}
			n, err := devices(w, id, l.GetFid())
			if err != nil {
				return err
			}
			// A DM keeps its two actors whatever happens to their devices.
			if n == 0 && string(kind) != "dm" {
				if err := w.Delete(actorKey(l.GetFid(), id)); err != nil {
					return err
				}
			}
		}
		for _, l := range e.GetAdded() {
			if err := addDevices(w, id, l.GetFid(), 1); err != nil {
				return err
			}
			if err := w.Set(actorKey(l.GetFid(), id), kind); err != nil {
				return err
			}
		}
	}
	return nil
}

func devices(w *projections.Writer, id uint64, fid string) (int64, error) {
	v, err := w.Get(devicesKey(id, fid))
	if errors.Is(err, projections.ErrNotFound) {
		return 0, nil
	}
	if err != nil || len(v) != 4 {
		return 0, fmt.Errorf("groups: devices of %s in group %d: %v", fid, id, err)
	}
	return int64(binary.BigEndian.Uint32(v)), nil
}

func addDevices(w *projections.Writer, id uint64, fid string, delta int64) error {
	n, err := devices(w, id, fid)
	if err != nil {
		return err
	}
	n = max(n+delta, 0)
	if n == 0 {
		return w.Delete(devicesKey(id, fid))
	}
	return w.Set(devicesKey(id, fid), binary.BigEndian.AppendUint32(nil, uint32(n)))
}

func parseStream(stream string) (uint64, error) {
	rest, ok := strings.CutPrefix(stream, streamPrefix)
	var id uint64
	if ok {
		_, err := fmt.Sscan(rest, &id)
		ok = err == nil && id != 0
	}
	if !ok {
		return 0, fmt.Errorf("groups: stream %q is not a group stream", stream)
	}
	return id, nil
}

// Group is one entry of an actor's list.
type Group struct {
	ID   uint64
	Kind string
}

// Reader answers from the read model.
type Reader struct{ r *projections.Reader }

// NewReader returns a reader of db's groups read model.
func NewReader(db *projections.DB) (*Reader, error) {
	r, err := db.Reader(Name)
	if err != nil {
		return nil, fmt.Errorf("groups reader: %w", err)
	}
	return &Reader{r: r}, nil
}

// Of lists the groups fid is named in or holds a device in, oldest first (ids are snowflakes).
func (r *Reader) Of(fid string) ([]Group, error) {
	lo := append(append([]byte{'a'}, fid...), 0)
	hi := append(append([]byte{'a'}, fid...), 1)
	it, err := r.r.NewIter(lo, hi)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := []Group{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.Value()
		if err != nil {
			return nil, err
		}
		out = append(out, Group{ID: binary.BigEndian.Uint64(k[len(k)-8:]), Kind: string(v)})
	}
	return out, it.Error()
}
