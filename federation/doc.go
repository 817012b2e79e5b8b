// Package federation is the server-to-server edge. So far it holds what server B does when an
// actor of home server A logs in here (polyproto core 4.1.1, docs/PROTOCOL.md section 3):
//
//   - Certs.Verify checks an ID-Cert a client presents: strict parse, validity period, issued by
//     the root that A serves at /.p2/core/v1/idcert/server (HomeRoot: a self-issued root for exactly
//     A's domain, cached for its signed cache window, at most MaxCacheTTL), then the cert's status
//     from /.p2/core/v1/idcert/actor/{fid} (ActorCert: cache signature and window checked,
//     invalidatedAt means ErrRevoked). The caller keeps CertStatus.CacheUntil with the session and
//     calls ActorCert again when it has passed. A home server's clock may run up to a minute ahead
//     of ours (window.go); the root's own cache metadata is advisory (roots.go).
//   - Peers maps domains to base URLs for the --peers flag; other domains are https://<domain>.
//
// Every answer of a peer is treated as hostile: bodies are size-limited and decoded strictly,
// each request is bounded by a timeout, redirects may not leave the host, and failures wrap
// ErrPeerUnavailable (502), ErrUntrusted (401) or ErrRevoked together with their cause.
//
// Still to come with the federation issue (../shared/DESIGN.md section 8): one forwarder per peer
// that follows the event log (checkpointed) and delivers group events to participants' servers,
// signed server-to-server requests, and the handlers that accept and deduplicate what peers deliver.
package federation
