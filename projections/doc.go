// Package projections builds read models from the event log and keeps them up to date.
//
// Where it sits: an actor appends events to the event store (events); the Runner follows the
// store with events.Store.SubscribeAll and hands each event to every Projection that wants it
// (projections/history for message history, membership, ...); a projection writes its read model
// into the read-model database (DB); REST handlers and the gateway read it through a Reader.
//
//	actors -> events.Store -> Runner -> Projection.Apply -> DB (<data-dir>/views) -> Reader -> REST / gateway
//
// The DB is a Pebble database of its own, separate from the event store's: read models are
// derived data, and keeping them apart lets one be dropped without touching the log.
//
// Checkpoint rule: each projection's checkpoint (the global position up to which it has applied or
// skipped every event: the store reports progress past filtered-out events too)
// is written in the same Pebble batch as the rows those events produced. After a crash the two
// agree, so the projection resumes from its checkpoint with nothing applied twice and nothing
// missed, although SubscribeAll delivers at least once (events at or below the checkpoint are
// dropped). The batches are not fsynced: a crash may lose the last few, rows and checkpoint
// together, and they are simply applied again.
//
// Failures (a store error, an event a projection cannot apply) are retried for ever with capped,
// jittered exponential backoff, logged, counted and shown in Status. An event is never skipped:
// a poison event stalls its projection, visibly, until the projection is fixed.
//
// Rebuild: any projection can be dropped and applied again from position 0, by
// `polyproto-chat projections rebuild NAME` (Runner.Rebuild) or automatically when a Versioned
// projection's version changes. A projection is only ever written by the one goroutine that holds
// it, so a rebuild never interleaves with the running projection.
package projections
