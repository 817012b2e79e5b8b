// Package identity holds polyproto core identity (core §4-6) as pure functions: federation IDs, strict
// Ed25519, ID-CSRs, ID-Certs and the home server root that issues them, cacheable ID-Certs, challenge
// answers for foreign-actor login, session tokens and password hashes. It does no I/O except
// LoadOrCreateRoot, which keeps the root key on disk; no HTTP, no event store.
//
// Where it sits: the account actor issues certificates with Root.Issue and hashes passwords; the REST
// edge parses client input with ParseCSR, DecodeChallengeAnswer and ParseFID and hands out tokens from
// NewToken; federation verifies foreign certificates with ParseIDCert, VerifyIssuedBy and
// CacheableCert.Verify; the Go client SDK builds requests with NewCSR.
//
// Certificates are encoded by hand with cryptobyte rather than crypto/x509, because the polyproto
// profile allows exactly two extensions and x509.CreateCertificate adds key identifiers on its own.
//
// Decisions the spec leaves open, and where they are written down:
//   - DN order and string types: pdn.go (DER order is the reverse of the RFC 4514 string, DCs top-level
//     domain first, as polyproto-rs writes and checks).
//   - Reading polyproto-rs's CSR capabilities and encodings: capabilities.go, csr.go.
//   - Serial range, extension set, unique IDs, foreign-certificate leniency: ParseIDCert.
//   - Key usage granted to actors, validity rules: Root.Issue.
//   - cacheSignature formula, field names, and the window limit that makes it unambiguous: cacheable.go.
//   - Challenge format and JSON strictness: challenge.go. Session ID alphabet: sessionid.go.
//   - FID length limits and case folding: fid.go. argon2id parameters: password.go.
package identity
