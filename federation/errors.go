package federation

import "errors"

// Errors callers branch on (errors.Is); every returned error wraps one of them together with the
// underlying cause and names the peer and what was wrong with its answer.
var (
	// ErrPeerUnavailable: the home server could not be reached in time, or answered with a
	// non-success status, an oversize body or JSON that does not decode. It says nothing about
	// the cert, so the caller should answer 502 and let the client retry.
	ErrPeerUnavailable = errors.New("peer unavailable")
	// ErrRevoked: the home server marked the cert invalidated (invalidatedAt is set).
	ErrRevoked = errors.New("cert revoked")
	// ErrUntrusted: the cert or the home server's answer fails a check: profile, chain, domain,
	// signature, cache signature, cache window or validity period. The caller answers 401.
	ErrUntrusted = errors.New("cert untrusted")
)
