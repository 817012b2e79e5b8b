// Package proto holds the protobuf schemas of everything the server stores or sends, and the
// Go code generated from them (committed; `make proto` regenerates it).
//
// proto/polyproto/chat/events/v1 (Go package eventsv1) is the stored-event schema: the envelope
// every event carries and the events themselves. Stored events are immutable, so those
// schemas may only grow: events.lock.binpb records them as last accepted, and
// TestEventSchemasCompatible fails on any change that would misread an event already stored.
package proto
