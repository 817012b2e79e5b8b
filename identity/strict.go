package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"filippo.io/edwards25519"
)

// polyproto §6.2.1/§6.5: "signature verification must always be strict". crypto/ed25519 already
// refuses a non-canonical S, but it accepts small-order public keys and R values, with which one
// signature can verify for many messages (or one message for many keys). polyproto-rs uses
// ed25519-dalek's verify_strict, which refuses those; this file brings us to the same line, and a bit
// past it: we also refuse non-canonical key encodings, so every key has exactly one byte form.

// CheckPublicKey refuses an Ed25519 public key that is not 32 bytes, not a canonical encoding of a curve
// point, or a point of small order. Errors wrap ErrWeakKey.
func CheckPublicKey(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrWeakKey, len(pub), ed25519.PublicKeySize)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return fmt.Errorf("%w: not a point on the curve", ErrWeakKey)
	}
	// SetBytes accepts y >= p and a set sign bit on x = 0; re-encoding exposes both.
	if !bytes.Equal(p.Bytes(), pub) {
		return fmt.Errorf("%w: non-canonical point encoding", ErrWeakKey)
	}
	if isSmallOrder(p) {
		return fmt.Errorf("%w: point of small order", ErrWeakKey)
	}
	return nil
}

// VerifyStrict reports whether sig is a valid Ed25519 signature of msg by pub under strict rules:
// CheckPublicKey, canonical S (checked by crypto/ed25519), and an R that is a canonical encoding of a
// point that is not of small order.
func VerifyStrict(pub ed25519.PublicKey, msg, sig []byte) bool {
	if CheckPublicKey(pub) != nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	r, err := new(edwards25519.Point).SetBytes(sig[:32])
	if err != nil || !bytes.Equal(r.Bytes(), sig[:32]) || isSmallOrder(r) {
		return false
	}
	return ed25519.Verify(pub, msg, sig)
}

// isSmallOrder reports whether [8]P is the identity, i.e. P lies in the torsion subgroup.
func isSmallOrder(p *edwards25519.Point) bool {
	return new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
}

// publicKeyOf returns the public half of key, or nil for a key of the wrong size.
func publicKeyOf(key ed25519.PrivateKey) ed25519.PublicKey {
	if len(key) != ed25519.PrivateKeySize {
		return nil
	}
	pub, _ := key.Public().(ed25519.PublicKey)
	return pub
}
