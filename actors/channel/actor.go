package channel

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
)

// KindName is the actor kind of channels.
const KindName = "channel"

// Config of the channel kind.
type Config struct {
	Store  events.Store
	Logger *slog.Logger
	// SnapshotEvery is the number of events between snapshots; zero: the journal's default,
	// negative: never. A snapshot bounds what an activation reads to the tail after it, which
	// matters here: channels are the long streams.
	SnapshotEvery int
}

// NewProducer makes the channel actor of a channel id (the kind's id, in decimal). Commands
// go to it with Kind.Request(ctx, id, cmd); replies are *actors.Result whose Reply is the
// command's reply.
func NewProducer(cfg Config) actors.Producer {
	return newProducer(cfg, Decide)
}

// newProducer is NewProducer with the decide function as a seam, so tests can read the state
// of a live actor without an exported query command.
func newProducer(cfg Config, decide func(*State, any) ([]proto.Message, any, error)) actors.Producer {
	return func(kindID string) (actor.Actor, error) {
		id, err := parseID(kindID)
		if err != nil {
			return nil, err
		}
		return actors.NewJournal(actors.JournalConfig[*State]{
			Store:  cfg.Store,
			Stream: Stream(id),
			Logger: cfg.Logger,
			Model: actors.Model[*State]{
				Initial:  func() *State { return Initial(id) },
				Decide:   decide,
				Apply:    Apply,
				Snapshot: Snapshot,
				Restore: func(snap proto.Message) (*State, error) {
					s, err := Restore(snap)
					if err != nil {
						return nil, err
					}
					s.ID = id
					return s, nil
				},
				Origin: originOf,
			},
			SnapshotEvery: cfg.SnapshotEvery,
		}), nil
	}
}

// parseID reads a kind id: a channel id in canonical decimal, so that one channel has one
// activation and one stream ("007" is refused rather than aliased to "7").
func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("channel %q: %w: not a decimal id", s, ErrInvalid)
	case id == 0:
		return 0, fmt.Errorf("channel %q: %w: zero id", s, ErrInvalid)
	case strconv.FormatUint(id, 10) != s:
		return 0, fmt.Errorf("channel %q: %w: not in canonical form", s, ErrInvalid)
	}
	return id, nil
}
