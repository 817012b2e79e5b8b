// Package session is the per-connection state machine of the WebSocket gateway: one actor per
// connection, spawned by the Registry when the gateway accepts it.
//
// Flow: the gateway's reader goroutine decodes each client frame and tells the session
// (Identify, Resume, Heartbeat, ServiceChannel, ...); the session decides, numbers every frame
// the connection sends (s), keeps the last 1,024 of them for a heartbeat's except list and for
// Resume (as what it takes to encode them again, until a heartbeat reports them received), and
// hands them to the connection's Outbox, whose writer goroutine puts them on the wire. Fan-out sources (account events now, channel and group actors later) reach an actor's
// sessions through the Registry (Deliver, DeliverExcept, Close).
//
// Unlike the other actor packages this one is not event-sourced: a session lives as long as its
// connection, plus a resume window after the connection drops. What it must survive a restart
// of the process with lives in the event log, reached through the Replayer on Resume.
//
// The logic that is logic (sequence bookkeeping, heartbeat range and except checks, deadlines)
// is pure, in state.go; actor.go wires it to messages, timers and the Outbox.
package session
