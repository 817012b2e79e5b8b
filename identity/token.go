package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// NewToken returns a session token (256 random bits, base64url without padding: 43 characters) and the
// SHA-256 hash under which it is stored. The token itself is shown to the client once and never stored
// (polyproto §4.1.1: "hash and store token"); a plain hash suffices because the token has full entropy.
func NewToken() (token string, hash [32]byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of the token's text, for looking up a presented bearer token. Any
// string hashes; a malformed token simply matches nothing.
func HashToken(token string) [32]byte {
	return sha256.Sum256([]byte(token))
}
