// Package client is the Go SDK of polyproto-chat: what the CLI (cmd/p2chat) and the end-to-end
// tests use to talk to a home server and, as a foreign actor, to other servers.
//
// This part speaks the polyproto core identity routes of docs/PROTOCOL.md section 3: register,
// password login with an ID-CSR, further sessions, session listing and revocation, foreign login
// with a signed challenge, and service discovery. Every session has its own Ed25519 key and ID-Cert;
// the SDK makes the key, builds the CSR, and checks the ID-Cert the server returns before trusting
// it (right key, FID and session id, issued by the home server's root).
//
// Files: client.go holds the HTTP plumbing and the Error type every failed request returns,
// identity.go the flows, wire.go the lenient decoding of numbers and timestamps, keystore.go the
// optional on-disk store of session keys, certs and tokens (Options.Dir). The gateway client is in
// gateway*.go, guild chat (docs/PROTOCOL.md section 6: signed messages, their verification, typed
// dispatches) in chat*.go.
//
// The SDK never retries on its own: each method is one request or one short fixed sequence of
// requests, bounded by the caller's context, and its error says which step failed. The one
// exception is Chat.Send, which resends a message once after a lost answer: its nonce makes the
// server answer the stored message instead of storing it twice.
package client
