package account

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
)

// KindName is the actor kind of accounts.
const KindName = "account"

// Config of the account kind.
type Config struct {
	Store  events.Store
	Logger *slog.Logger
	// Committed, if set, runs in the account actor after each durable append, with the events
	// appended: the place for fan-out to the actor's gateway sessions (New Session, certificate
	// invalidation). It must not block.
	Committed func(fid string, evs []proto.Message)
}

// Producer makes the account actor of a FID (the kind's id). Commands go to it with
// Kind.Request(ctx, fid, cmd); replies are *actors.Result whose Reply is the command's reply.
func Producer(store events.Store, log *slog.Logger) actors.Producer {
	return NewProducer(Config{Store: store, Logger: log})
}

// NewProducer is Producer with the whole Config.
func NewProducer(cfg Config) actors.Producer {
	return func(fid string) (actor.Actor, error) {
		stream := Stream(fid)
		if err := events.ValidateStream(stream); err != nil {
			return nil, fmt.Errorf("account %q: %w", fid, err)
		}
		jc := actors.JournalConfig[*State]{
			Store:  cfg.Store,
			Stream: stream,
			Logger: cfg.Logger,
			Model: actors.Model[*State]{
				Initial: func() *State { return Initial(fid) },
				Decide:  Decide,
				Apply:   Apply,
				Origin:  func(any) actors.Origin { return actors.Origin{ActorFID: fid} },
			},
			SnapshotEvery: -1, // accounts are short streams; a login is one event
		}
		if cfg.Committed != nil {
			jc.Committed = func(_ actor.Context, c actors.Commit) { cfg.Committed(fid, c.Events) }
		}
		return actors.NewJournal(jc), nil
	}
}
