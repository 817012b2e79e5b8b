package account

import (
	"errors"
	"time"
)

// Errors a caller branches on (the gateway maps them to HTTP statuses).
var (
	ErrAlreadyRegistered = errors.New("federation ID already registered")
	ErrNotRegistered     = errors.New("no such actor")
	ErrSessionInUse      = errors.New("session id in use by a valid ID-Cert")
	ErrUnauthorized      = errors.New("session token unknown, revoked or expired")
	ErrNoSuchSession     = errors.New("no such session")
	ErrServiceExists     = errors.New("service provider already registered")
	ErrNoSuchService     = errors.New("no such service provider")
	ErrInvalid           = errors.New("invalid command")
)

// Commands. Each carries At, the time the gateway received the request, so decide is pure.

// Register creates a local actor. PasswordHash is an argon2id PHC string computed by the caller.
type Register struct {
	FID          string
	PasswordHash string
	At           time.Time
}

// PasswordHash asks for the stored hash, to check a password outside the actor (argon2id is slow).
// Reply: string.
type PasswordHash struct{}

// IssueCert records an ID-Cert the home server signed for a new session of a local actor.
type IssueCert struct {
	Cert      CertData
	TokenHash [32]byte
	At        time.Time
}

// StartForeignSession records a foreign actor's login by signed challenge.
type StartForeignSession struct {
	Cert             CertData
	TokenHash        [32]byte
	Challenge        string
	Signature        []byte
	StatusValidUntil time.Time
	At               time.Time
}

// CertData is what the account keeps of an ID-Cert.
type CertData struct {
	Serial    uint64
	SessionID string
	DER       []byte
	NotBefore time.Time
	NotAfter  time.Time
}

// Authenticate resolves a token hash to the live session it belongs to. Reply: Principal.
type Authenticate struct {
	TokenHash [32]byte
	At        time.Time
}

// Principal is who a valid token speaks for.
type Principal struct {
	FID       string
	SessionID string
	Serial    uint64
	NotAfter  time.Time
	// Foreign sessions only: the home server's last "not revoked" answer is trusted until then;
	// after it the caller must ask again (RefreshForeignStatus or RevokeSession).
	Foreign          bool
	StatusValidUntil time.Time
}

// RefreshForeignStatus records a fresh "not revoked" answer for a foreign session's cert.
type RefreshForeignStatus struct {
	Serial     uint64
	ValidUntil time.Time
	At         time.Time
}

// RevokeSession ends the live session with this session id (or serial, if SessionID is empty).
type RevokeSession struct {
	SessionID string
	Serial    uint64
	Reason    string // see SessionRevoked.reason
	At        time.Time
}

// ListSessions: the live sessions. Reply: []Session.
type ListSessions struct{ At time.Time }

// Certs: the certs this server holds for the actor, optionally of one session and/or valid at
// a time. Reply: []Cert (copies).
type Certs struct {
	SessionID string
	ValidAt   *time.Time
}

// CertBySerial: the DER of the cert with this serial that a session here used (issued here,
// or presented by a foreign actor), for checking the signatures of that session's messages.
// Reply: []byte, or ErrNoSuchSession.
type CertBySerial struct{ Serial uint64 }

// Services commands (core section 9).
type AddService struct {
	Service, URL string
	Primary      bool
}
type RemoveService struct{ Service, URL string }
type SetPrimaryService struct{ Service, URL string }

// ListServices: reply []Service, or ErrNotRegistered.
type ListServices struct{}

// KeyTrials: the completed challenges of this actor here. Reply: []Trial.
type KeyTrials struct{}

// Replies.

// Session is a live session as listed to its actor.
type Session struct {
	SessionID string
	Serial    uint64
	NotBefore time.Time
	NotAfter  time.Time
	Foreign   bool
}

// RemovedService is the reply of RemoveService: the provider that became primary, if any.
type RemovedService struct {
	Service    string
	NewPrimary string
}
