// Package gateway is the client edge of the server: the REST routes under /.p2/ (and
// /.well-known/polyproto-core) and the WebSocket gateway (ws*.go, frame*.go), whose connections
// each tell their own session actor (actors/session) what the client sent. Handlers parse
// and bound hostile input, do the slow or outward work (argon2id, signing, fetching a foreign home
// server's answer), then send commands to actors (actors/account, later channel and group
// actors) and write their replies. errors.go is the one table from errors to HTTP status and
// error code.
package gateway
