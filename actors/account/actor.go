package account

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
)

// KindName is the actor kind of accounts.
const KindName = "account"

// Producer makes the account actor of a FID (the kind's id). Commands go to it with
// Kind.Request(ctx, fid, cmd); replies are *actors.Result whose Reply is the command's reply.
func Producer(store events.Store, log *slog.Logger) actors.Producer {
	return func(fid string) (actor.Actor, error) {
		stream := Stream(fid)
		if err := events.ValidateStream(stream); err != nil {
			return nil, fmt.Errorf("account %q: %w", fid, err)
		}
		return actors.NewJournal(actors.JournalConfig[*State]{
			Store:  store,
			Stream: stream,
			Logger: log,
			Model: actors.Model[*State]{
				Initial: func() *State { return Initial(fid) },
				Decide:  Decide,
				Apply:   Apply,
				Origin:  func(any) actors.Origin { return actors.Origin{ActorFID: fid} },
			},
			SnapshotEvery: -1, // accounts are short streams; a login is one event
		}), nil
	}
}
