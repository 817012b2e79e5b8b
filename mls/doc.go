// Package mls is the one place that speaks MLS (RFC 9420): every other package sees MLS messages as
// bytes plus the few facts this package reads out of them. It wraps github.com/thomas-vilte/mls-go
// (pinned at v1.6.0, see docs/PROTOCOL.md section 7 and ../shared/research/mls.md), so that the
// library can be replaced behind it.
//
// Two sides use it:
//   - The server, as authentication and delivery service: ParseKeyPackage validates an uploaded
//     KeyPackage and its binding to the uploading session; ParseMessage reads what the delivery
//     service routes on (group, epoch, content type, the sender's leaf, a commit's adds and removes)
//     without any group secret.
//   - The client SDK, as a member: Group creates, joins, commits, encrypts and decrypts, signing with
//     the session's own ID-Cert key, and its state survives restarts as bytes.
//
// Never call the library's SelfUpdate: it commits an Update proposal from the committer, which RFC
// 9420 section 12.2 forbids and other implementations reject. A key update here is an empty commit.
package mls
