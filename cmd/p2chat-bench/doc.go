// Command p2chat-bench is the project's load tool: every performance figure of the gateway is
// measured with it, against a real server started separately (so that the server's memory is
// its own, not the tool's).
//
//	p2chat-bench idle -server http://127.0.0.1:8080 -conns 10000 -hold 1m -tokens /tmp/bench-tokens
//
// opens that many identified gateway connections, keeps them alive with heartbeats for the hold
// time, and reports the server's resident memory per connection (from its /metrics), dropped
// connections and heartbeat round trips. The guild-chat issue adds a message-driving mode.
package main
