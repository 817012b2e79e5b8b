// Package account is the actor of one federation ID on this server, over stream actor-<fid>.
//
// For an actor registered here (this is its home server) it holds the registration and password
// hash, every ID-Cert the server issued (kept forever: core 6.1.3), which sessions are live and
// the hash of each session's token, and the actor's discoverable services. For a foreign actor it
// holds only the sessions it started here by signing a challenge (the public key-trial log), and
// when the home server last vouched that their certs are not revoked.
//
// Flow: the REST edge (gateway) does the slow or outward work first (argon2id, signing the cert,
// fetching a foreign home server's answer), then sends a command here; decide checks it against
// the account's state (session ids in use, token lookups, revocations) and the journal appends
// the events. Every authenticated request asks this actor to Authenticate its token, so a
// revocation takes effect at once. Time comes in the commands, so decide stays pure.
package account
