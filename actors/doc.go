// Package actors is the machinery every actor kind of the server is built on.
//
// A chat message crosses it like this:
//
//	gateway (WebSocket frame) -> actors/session -> actors/channel or actors/group -> events.Store -> projections
//
// The session actor turns a client frame into a command and asks the channel (or group) actor
// that owns the target aggregate. That actor decides the command against its state, appends the
// resulting events to its own stream and answers only once they are durable; projections and the
// gateway's fan-out read the events back from the store.
//
// What this package gives each kind:
//
//   - System: one protoactor ActorSystem with slog wired into it and a Shutdown that drains.
//   - Kind: spawn-or-get by id under a supervising parent, one-for-one restarts (a crashed actor
//     reloads from its stream), passivation of idle actors without ever running two activations
//     of one id at once, and Request/Send that reach the activation for an id.
//   - Journal: the event-sourced core a kind embeds. It loads snapshot + tail at Started, runs the
//     kind's pure Decide against pending state, pipelines appends (commands arriving while an
//     append is in flight go out together in the next one), answers each command when its own
//     events are durable, reloads after any append failure, and writes snapshots now and then.
//
// A concrete kind lives in its own subpackage (actors/channel, actors/group, ...) with
// messages.go, state.go (apply), decide.go (pure) and actor.go (Receive, usually a Journal).
package actors
