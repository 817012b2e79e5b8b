// Command polyproto-chat is the server: a polyproto home server, chat service provider and
// federation peer in one process. `polyproto-chat` (or `polyproto-chat serve`) starts it on its
// embedded defaults; `polyproto-chat projections rebuild NAME` rebuilds a read model from the log.
//
// This is the only place that reads flags and environment variables; it builds the event store,
// the actor system, the projections and the HTTP edge from them, and tears them down in the
// reverse order on SIGINT/SIGTERM.
package main
