package group

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
)

// KindName is the actor kind of messaging groups.
const KindName = "group"

// Config of the group kind.
type Config struct {
	Store  events.Store
	Logger *slog.Logger
	// SnapshotEvery: events between snapshots; zero: the journal's default, negative: never.
	// Groups are long streams of messages, like channels.
	SnapshotEvery int
}

// NewProducer makes the actor of a group id (the kind's id, in decimal). Commands go to it with
// Kind.Request(ctx, id, cmd); replies are *actors.Result whose Reply is the command's reply.
func NewProducer(cfg Config) actors.Producer {
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
				Decide:   Decide,
				Apply:    Apply,
				Snapshot: Snapshot,
				Restore: func(m proto.Message) (*State, error) {
					s, err := Restore(m)
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

func originOf(cmd any) actors.Origin {
	var b By
	switch c := cmd.(type) {
	case Create:
		b = c.By
	case Commit:
		b = c.By
	case Send:
		b = c.By
	case RequestJoin:
		b = c.By
	}
	return actors.Origin{ActorFID: b.FID, SessionID: b.Session}
}
