// Command p2chat-bench is the project's load tool: every performance figure of the gateway is
// measured with it, against a real server started separately (so that the server's memory is
// its own, not the tool's).
//
//	p2chat-bench idle -server http://127.0.0.1:8080 -conns 10000 -hold 1m -tokens /tmp/bench-tokens
//
// opens that many identified gateway connections, keeps them alive with heartbeats for the hold
// time, and reports the server's resident memory per connection (from its /metrics), dropped
// connections and heartbeat round trips.
//
//	p2chat-bench chat -server http://127.0.0.1:8080 -channels 100 -members 20 -rate 1000 -state /tmp/bench-chat.json
//
// drives guild chat: it registers and logs in one actor per member (start the server with
// -auth-rate -1), makes one guild per channel (-channels-per-guild), has the members join and
// connect to the gateway subscribed to chat, then posts signed messages over REST at a fixed
// rate (open loop, latency from each message's intended send time) or as fast as -inflight
// requests per sender allow (rate 0). Each message's nonce carries its sequence number, so every
// MESSAGE_CREATE on every member's connection is matched to its send: the report gives messages
// accepted/s, errors by code, deliveries/s and missing ones, send->ack and send->deliver
// percentiles, and the CPU of the server (from its /metrics) and of the tool itself. -state keeps
// the actors and guilds for later runs, as logging in 2,000 actors takes minutes.
//
//	p2chat-bench mls -server http://127.0.0.1:8080 -groups 100 -members 5 -rate 200 -state /tmp/bench-mls
//
// drives end-to-end encrypted messaging groups through the SDK, as clients use them: one actor
// per member (start the server with -auth-rate -1), each member's session with its own
// client.MLS; members upload a KeyPackage, each group's first member creates the group with the
// others (the SDK claims their KeyPackages and commits them with a Welcome) and they join it.
// Every member holds a gateway connection whose dispatches all go through MLS.Handle. Senders
// (the first -senders members of each group) call MLS.Send at a fixed rate or as fast as
// -inflight sends each allow; the plaintext (-size bytes) names the run, the message and its
// intended send time, so every message each other member decrypts is matched to its send. The
// report gives messages accepted/s, errors by code, deliveries (decryptions) per second and
// missing or mismatched ones, send->accepted and send->decrypted percentiles, and the server's
// CPU and RSS and the tool's CPU. -state is a directory: world.json names the actors and groups,
// and the SDK's keystore under it keeps their sessions and MLS group state, so later runs go on
// in the same groups. With the keystore on disk (the default, as a real client), the SDK saves a
// group's state with an fsync after every message sent or decrypted; -keystore memory measures
// without that (with -state it reuses the actors and makes new groups every run).
//
//	p2chat-bench floor -channels 100 -members 20 -inflight 4
//
// needs no server: in one process it does only what chat cannot avoid (sign, POST, verify, write
// each delivery as a raw WebSocket frame, read it), so its throughput bounds what any server can
// reach on the same cores; docs/PERFORMANCE.md compares the real one against it.
package main
