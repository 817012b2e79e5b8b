package mls

import "errors"

// Sentinel errors, for callers that map them to protocol error codes. Every error of this package
// wraps one of them.
var (
	// ErrMalformed: the bytes are not a well-formed MLS structure of the expected kind.
	ErrMalformed = errors.New("mls: malformed")
	// ErrSuite: a cipher suite we do not accept.
	ErrSuite = errors.New("mls: unsupported cipher suite")
	// ErrSignature: a signature inside the structure does not verify.
	ErrSignature = errors.New("mls: bad signature")
	// ErrLifetime: a KeyPackage not valid now, or valid for longer than we accept.
	ErrLifetime = errors.New("mls: lifetime")
	// ErrBinding: the leaf is not bound to the polyproto session it claims.
	ErrBinding = errors.New("mls: leaf not bound to the session")
	// ErrGroup: a group operation the state does not allow (wrong epoch, unknown member, not a
	// member any more, or the library refused the message).
	ErrGroup = errors.New("mls: group")
)
