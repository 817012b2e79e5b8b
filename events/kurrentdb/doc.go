// Package kurrentdb is the events.Store for clusters: KurrentDB (formerly EventStoreDB, 20.10 and
// later) through its gRPC Streams API, using github.com/kurrent-io/KurrentDB-Client-Go. It is the
// store behind `--store kurrentdb://...` (also kurrentdb+discover://, kurrent://, kurrent+discover://,
// esdb://, esdb+discover://); events/embedded is the single-machine default and events/memory the
// reference. Actors append to it, projections and federation read it through SubscribeAll.
//
// # Mapping
//
// A stream is a KurrentDB stream of the same name. An event is stored with the Event's id (a new
// UUID when zero), its type as the event type, its data as binary data (application/octet-stream)
// and the envelope built by events.Seal as the event's custom metadata. RecordedEvent.Metadata is
// those bytes as read back, so events.HashOf gives the same hash on every store.
//
// # Hash chain
//
// Seal needs the hash of the stream's last event. The store keeps a bounded cache
// stream -> (last revision, hash), filled by its own appends and reads; on a miss it reads the
// stream backwards by one event and hashes it. Appends to one stream are serialized inside the
// process (a striped lock), and every append is sent with the exact expected state of the head it
// chained to (that revision, or "no stream"), so the server refuses it if another process moved the
// stream in between; the cache entry is then dropped. What the caller asked for maps like this:
//
//   - Exact(n): the head must be n. A cached head that is not n is re-read before the append is
//     refused with *events.WrongRevisionError, without writing.
//   - NoStream{}: nothing to chain to (zero prev hash); sent as "no stream".
//   - Any{}: the current head is used as if the caller had said Exact(head); on a conflict the head
//     is re-read and the append retried, at most 16 times, after a short random wait.
//
// A refused append returns *events.WrongRevisionError with the revision the server reports (the
// client keeps it only in the error text, which we parse; if that fails we read the head).
//
// # Positions
//
// KurrentDB orders $all by a pair (commit position, prepare position) of byte offsets in its log.
// events.Position is the commit position, and SubscribeAll(from) resumes with
// Position{Commit: from, Prepare: from}. Why: every append made over gRPC is an implicit transaction
// whose events are "self-committed", and the server reports such an event at
// (its log offset, its log offset) (ResolvedEvent.CalculatePosition in the server), so the commit
// position alone is unique per event, increases with $all order, and the pair can be rebuilt from
// it; the append result's commit position is that of the batch's last event (the chaser
// acknowledges an implicit transaction at its last record). Positions have gaps (they are
// offsets). The server treats a subscription's start position as exclusive, as events.Store wants.
// Limit: events written by legacy TCP clients in explicit transactions share one commit position
// with a smaller prepare position; such events are delivered, but resuming from the position of
// one of them would skip the rest of its transaction. This store never writes them. A stream read
// of such an event has no commit position; it gets Position 0.
//
// # Subscriptions
//
// SubscribeAll is a catch-up subscription to $all with a server-side filter: stream prefixes become
// a stream-name prefix filter, event types an event-type regex ^(?:t1|t2)$ with each name quoted,
// and no filter the client's exclude-system-events filter (types starting with '$'). Events of
// streams whose name starts with '$' are never delivered, whatever the filter. What the client has
// already buffered is handed over in one batch (at most 512 events).
//
// The CaughtUp batch: before subscribing, the store reads the position of the last record in $all
// (any stream), the head. It sends the CaughtUp batch once, at the first of: the server's CaughtUp
// message, an event or a checkpoint at or after the head, or right away when nothing was stored
// after from. So a server that never sends CaughtUp (EventStoreDB before 23.10) still gets it, from
// a checkpoint or the first event at or after the head. If a server sent neither CaughtUp nor
// checkpoints and the last record of $all does not match the filter, the CaughtUp batch would wait
// for the next matching event. A server sends CaughtUp again after it fell behind and caught up
// once more; only the first one makes a CaughtUp batch.
//
// # Checkpoints
//
// Every subscription is filtered on the server (see above), and filtered subscriptions get
// checkpoints: the server says how far in $all it has looked, matching or not. We ask for one every
// 4096 records looked at (max search window 32, checkpoint interval multiplier 128; the client's
// default multiplier of 1 would mean one every 32). The server sends one after each catch-up read
// that completes the interval, one when catch-up reaches its end, and live one at every 4096th
// record. Batch.Checkpoint maps them like this:
//
//   - An event batch: the position of its last event (or the checkpoint so far, if later).
//   - A server checkpoint (c, p) that moves it on: a batch without events, Checkpoint c; or c-1
//     when p < c, because (c, p) is then before the event at (c, c) in the server's order (the
//     server sends (c, 0) at the start of a catch-up read, where it has in fact looked at the
//     record at c; we do not rely on that and resume one event early at worst).
//   - The CaughtUp batch: the larger of the checkpoint so far and the head's commit position. That
//     is safe, as we read the server's source: the head was read from the server's index before
//     subscribing (reads of $all stop at the last indexed record); a subscription the server
//     starts later reads up to its own last indexed position, which is at or after the head,
//     before it says CaughtUp; and CaughtUp, an event or a checkpoint at or after the head all come
//     after the server has handed over everything at or before the head in $all order. Without
//     this, the CaughtUp checkpoint would stop at the server's last checkpoint, which lags the
//     head by up to one catch-up read (32 records), or at the last delivered event for a server
//     that sends no checkpoints.
//   - A CaughtUp message's own position, if it has one, counts as a checkpoint.
//
// Events of '$' streams we drop count as passed over; a batch of only those is not sent, the
// next batch carries the move. Checkpoints are commit positions, so the limit on explicit
// transactions (see Positions) applies to them as well.
//
// A subscription the server drops returns a wrapped error (there is no automatic resubscribe: the
// caller owns its checkpoint and subscribes again from it). Reading $all needs a user allowed to
// read it (by default: admins).
//
// # Client caveats
//
//   - The client calls log.Fatalf when a read event lacks the "created" system metadata
//     (protobuf_utils.go, createdFromProto); real servers always set it.
//   - ReadStream.Recv panics on any response other than an event or stream-not-found
//     (reads.go); the store recovers that panic into an error.
//   - After one failed round of node discovery the client closes itself for good; the store then
//     replaces it and repeats the call once (every call is safe to repeat, see Store.call).
//
// # Server settings
//
// KurrentDB's MaxAppendSize (default 1 MiB for all events of one append) is below
// events.MaxDataSize plus the envelope; set it to 4 MiB or more (at most 16 MiB) so that every
// event the other stores accept is accepted here too.
package kurrentdb
