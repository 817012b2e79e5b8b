package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/events"
)

// Model is the pure part of an event-sourced kind, over its state S. Decide and Apply must not
// do I/O or keep references to commands; the Journal around them does the rest.
type Model[S any] struct {
	// Initial is the state of a stream with no events.
	Initial func() S
	// Decide runs a command against state: the events to append (none for a query or a no-op),
	// the reply the requester gets once they are durable, or an error answered at once.
	// It must not change state; the Journal applies the events itself.
	Decide func(state S, cmd any) (evs []proto.Message, reply any, err error)
	// Apply folds one event into state and returns the new state (the same pointer is fine).
	// An error while loading means the stream holds something this code cannot read; an error on
	// an event Decide just produced breaks an invariant, and the actor crashes and restarts.
	Apply func(state S, event proto.Message) (S, error)
	// Snapshot and Restore convert state to and from a protobuf message for SnapshotTaken.
	// Either nil: no snapshots are written or read.
	Snapshot func(state S) (proto.Message, error)
	Restore  func(snapshot proto.Message) (S, error)
	// Origin tells who caused a command, copied into the envelope of each of its events.
	// Nil: events carry no actor.
	Origin func(cmd any) Origin
}

// Origin is who caused an event: the envelope fields of events.Event.
type Origin struct {
	ActorFID      string
	SessionID     string
	CorrelationID string
	CausationID   string
	Reason        string // the audit-log reason the actor gave, if any
}

// Result is a Journal's answer to a command whose events are durable.
type Result struct {
	// Reply is what Decide returned for this command.
	Reply any
	// Revision is the stream revision of the command's last event. For a command that wrote
	// nothing, it is the last revision the command's decision saw (meaningless on an empty stream).
	Revision uint64
	// Position is the global position of the append that carried the command: every event of the
	// command is at or before it, so a reader that has reached Position sees them. For a command
	// that wrote nothing it is the position of the last event loaded or appended, 0 if unknown.
	Position events.Position
	// Events is how many events the command appended.
	Events int
}

// Commit describes one successful append, for JournalConfig.Committed.
type Commit struct {
	Stream        string
	FirstRevision uint64
	Result        events.AppendResult
	Events        []proto.Message
}

// JournalConfig configures one Journal (one activation). Zero durations and counts pick the
// documented defaults.
type JournalConfig[S any] struct {
	Store  events.Store
	Stream string // "<category>-<id>"; snapshots go to "snapshot-<Stream>"
	Model  Model[S]
	Logger *slog.Logger // nil: discarded

	AppendTimeout time.Duration // per store append; zero: 5 s
	LoadTimeout   time.Duration // per load (snapshot + tail); zero: 30 s
	SnapshotEvery int           // events between snapshots; zero: 500; negative: never
	MaxBatch      int           // events per append; zero: 256 (a single command's events are never split)

	// Committed, if set, runs in the actor after every successful append, after the commands
	// are answered: the place for fan-out to subscribers.
	Committed func(ctx actor.Context, c Commit)
}

func (c JournalConfig[S]) withDefaults() JournalConfig[S] {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AppendTimeout <= 0 {
		c.AppendTimeout = 5 * time.Second
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = 30 * time.Second
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 500
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	return c
}
