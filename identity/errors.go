package identity

import "errors"

// Sentinel errors. Every error about a caller's or peer's input wraps one of them, so callers (the REST
// edge, federation, the account actor) can map a failure to a status code with errors.Is and still show
// the wrapped reason to a human. Errors about our own stored state (a malformed password hash, an
// unreadable root key file) wrap none.
var (
	// ErrInvalidFID: a federation ID or domain does not match the polyproto FID rules.
	ErrInvalidFID = errors.New("identity: invalid federation ID")
	// ErrInvalidCSR: an ID-CSR is malformed, badly signed or asks for something an actor may not have.
	ErrInvalidCSR = errors.New("identity: invalid ID-CSR")
	// ErrInvalidCert: an ID-Cert (or a cacheable ID-Cert) breaks the polyproto profile or does not verify.
	ErrInvalidCert = errors.New("identity: invalid ID-Cert")
	// ErrExpired: a certificate is used outside its NotBefore..NotAfter window.
	ErrExpired = errors.New("identity: certificate not valid at this time")
	// ErrCacheExpired: a cacheable ID-Cert is used outside cacheNotValidBefore..cacheNotValidAfter.
	ErrCacheExpired = errors.New("identity: cached ID-Cert outside its cache window")
	// ErrWeakKey: an Ed25519 public key that strict verification refuses (bad length, non-canonical,
	// small order). It is wrapped together with ErrInvalidCSR or ErrInvalidCert when found in one.
	ErrWeakKey = errors.New("identity: weak or malformed Ed25519 public key")
	// ErrInvalidAnswer: a challenge answer body is malformed or does not verify.
	ErrInvalidAnswer = errors.New("identity: invalid challenge answer")
	// ErrWeakPassword: a password outside 8-256 bytes of UTF-8.
	ErrWeakPassword = errors.New("identity: password must be 8-256 bytes of UTF-8")
)
