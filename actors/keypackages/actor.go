package keypackages

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
)

// KindName is the actor kind of KeyPackage directories.
const KindName = "keypackages"

// Config of the kind.
type Config struct {
	Store  events.Store
	Logger *slog.Logger
}

// NewProducer makes the directory actor of a FID (the kind's id). Commands go to it with
// Kind.Request(ctx, fid, cmd); replies are *actors.Result whose Reply is the command's reply.
func NewProducer(cfg Config) actors.Producer {
	return func(fid string) (actor.Actor, error) {
		stream := Stream(fid)
		if err := events.ValidateStream(stream); err != nil {
			return nil, fmt.Errorf("keypackages %q: %w", fid, err)
		}
		return actors.NewJournal(actors.JournalConfig[*State]{
			Store:  cfg.Store,
			Stream: stream,
			Logger: cfg.Logger,
			Model: actors.Model[*State]{
				Initial:  func() *State { return Initial(fid) },
				Decide:   Decide,
				Apply:    Apply,
				Snapshot: Snapshot,
				Restore: func(m proto.Message) (*State, error) {
					s, err := Restore(m)
					if err != nil {
						return nil, err
					}
					s.FID = fid
					return s, nil
				},
				Origin: func(cmd any) actors.Origin { return origin(fid, cmd) },
			},
			// The state is small, but the stream grows by an event per claim: a snapshot every
			// 500 events (the journal's default) bounds what an activation reads.
			SnapshotEvery: 0,
		}), nil
	}
}

func origin(fid string, cmd any) actors.Origin {
	switch c := cmd.(type) {
	case Upload:
		return actors.Origin{ActorFID: fid, SessionID: c.Session}
	case Claim:
		return actors.Origin{ActorFID: c.By}
	}
	return actors.Origin{ActorFID: fid}
}
