// Package events is the durable log every actor writes to and every read model is built from.
//
// A chat message enters it when an actor (actors/channel, actors/group, ...) appends the events its
// decide function produced to the actor's own stream with the revision it expects; it leaves it through
// SubscribeAll, which feeds projections (message history), gateway fan-out on resume, and federation.
//
// Store is implemented by events/embedded (Pebble, the default), events/memory (tests, demos) and
// events/kurrentdb (KurrentDB/EventStoreDB for clusters). All of them pass events/storetest.
//
// Every stored event carries an envelope (eventsv1.Metadata) whose prev_hash links it to the
// previous event of its stream, so a stream's history cannot be edited unnoticed (see Hash).
package events
