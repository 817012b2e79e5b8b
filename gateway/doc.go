// Package gateway is the client edge of the server: the WebSocket gateway
// (GET /.p2/core/v1/gateway, polyproto core section 3.2) and the REST routes under /.p2/, turning
// client frames and requests into commands for session, channel and group actors and fanning
// their events back out. Nothing is here yet: it arrives with the gateway issue (#4); until then
// the server serves only its operational endpoints (see cmd/polyproto-chat).
package gateway
