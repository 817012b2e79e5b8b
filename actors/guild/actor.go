package guild

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/events"
)

// KindName is the actor kind of guilds.
const KindName = "guild"

// Config of the guild kind.
type Config struct {
	Store  events.Store
	Logger *slog.Logger
}

// NewProducer makes the actor of one guild; the kind's id is the guild id in decimal. Commands
// go to it with Kind.Request(ctx, id, cmd); replies are *actors.Result whose Reply is the
// command's reply.
func NewProducer(cfg Config) actors.Producer {
	return func(key string) (actor.Actor, error) {
		id, err := parseID(key)
		if err != nil {
			return nil, err
		}
		return actors.NewJournal(actors.JournalConfig[*Guild]{
			Store:  cfg.Store,
			Stream: Stream(id),
			Logger: cfg.Logger,
			Model: actors.Model[*Guild]{
				Initial: func() *Guild { return Initial(id) },
				Decide:  Decide,
				Apply:   Apply,
				Origin:  originOf,
			},
			// A guild stream holds membership, roles, channels and invites, not messages (those
			// are in the channel streams): modest even for a big guild, so it loads whole.
			SnapshotEvery: -1,
		}), nil
	}
}

// parseID reads a kind id. Only the canonical spelling is accepted: "7" and "007" would be two
// activations of one stream, racing each other's appends.
func parseID(key string) (uint64, error) {
	id, err := strconv.ParseUint(key, 10, 64)
	if err != nil || id == 0 || strconv.FormatUint(id, 10) != key {
		return 0, fmt.Errorf("guild %.40q: the id must be a non-zero decimal snowflake", key)
	}
	return id, nil
}
