package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"fmt"

	"filippo.io/edwards25519"
)

// Verifier checks many signatures under one public key with the same verdicts as VerifyStrict, but
// decodes and checks the key once, in NewVerifier, instead of on every call. A Verifier is read-only
// after construction and safe for concurrent use.
//
// Verify computes R' = [k](-A) + [S]B, the same cofactorless equation crypto/ed25519 uses, and accepts
// iff R' encodes to exactly the R bytes of the signature. R'.Bytes() is always a canonical encoding of a
// point, so the equality alone refuses an R that does not decode or is not canonical; what is left of
// VerifyStrict's R checks is "not of small order", which Verify does by refusing every byte string
// that decodes to a small-order point (smallOrderR).
type Verifier struct {
	pub  [ed25519.PublicKeySize]byte
	negA edwards25519.Point // -A, A the decoded public key
}

// NewVerifier checks pub with CheckPublicKey (errors wrap ErrWeakKey) and returns a Verifier for it.
func NewVerifier(pub ed25519.PublicKey) (*Verifier, error) {
	if err := CheckPublicKey(pub); err != nil {
		return nil, err
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil { // CheckPublicKey has decoded it already
		return nil, fmt.Errorf("%w: not a point on the curve", ErrWeakKey)
	}
	v := new(Verifier)
	copy(v.pub[:], pub)
	v.negA.Negate(a)
	return v, nil
}

// PublicKey returns a copy of the key v verifies with.
func (v *Verifier) PublicKey() ed25519.PublicKey {
	return ed25519.PublicKey(bytes.Clone(v.pub[:]))
}

// Verify reports whether sig is a valid signature of msg by v's key under strict rules; its verdict is
// VerifyStrict's. A nil Verifier verifies nothing.
func (v *Verifier) Verify(msg, sig []byte) bool {
	if v == nil || len(sig) != ed25519.SignatureSize {
		return false
	}
	var s edwards25519.Scalar
	if _, err := s.SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	if isSmallOrderEncoding(sig[:32]) {
		return false
	}

	h := sha512.New()
	h.Write(sig[:32])
	h.Write(v.pub[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	h.Sum(digest[:0])
	var k edwards25519.Scalar
	if _, err := k.SetUniformBytes(digest[:]); err != nil {
		return false // cannot happen: the digest is 64 bytes
	}

	var r edwards25519.Point
	r.VarTimeDoubleScalarBaseMult(&k, &v.negA, &s)
	return bytes.Equal(r.Bytes(), sig[:32])
}

// VerifyMessageWith is VerifyMessage with a Verifier: it checks sig over the canonical bytes b (nil or
// empty when the message could not be encoded) under strict rules. Errors wrap ErrBadSignature.
func VerifyMessageWith(v *Verifier, b, sig []byte) error {
	switch {
	case len(sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadSignature, len(sig), ed25519.SignatureSize)
	case len(b) == 0:
		return fmt.Errorf("%w: nothing to verify (the message could not be encoded)", ErrBadSignature)
	case v == nil:
		return fmt.Errorf("%w: no key to verify with", ErrBadSignature)
	case !v.Verify(b, sig):
		return fmt.Errorf("%w: does not verify with the ID-Cert's key", ErrBadSignature)
	}
	return nil
}

// torsionGenerator is a point of order 8 (libsodium's blocklist lists it); its multiples are the eight
// points of the torsion subgroup, the points P with [8]P = identity.
const torsionGenerator = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"

// smallOrderR holds every 32-byte string that edwards25519's SetBytes decodes to a point of small
// order: the canonical encodings of the eight torsion points and the non-canonical ones SetBytes also
// accepts (y+p where that is below 2^255, and a set sign bit where x = 0). There are 14.
var smallOrderR = smallOrderEncodingSet()

// isSmallOrderEncoding reports whether enc decodes to a point of small order.
func isSmallOrderEncoding(enc []byte) bool {
	for i := range smallOrderR {
		if bytes.Equal(enc, smallOrderR[i][:]) {
			return true
		}
	}
	return false
}

// smallOrderEncodingSet derives smallOrderR. Any encoding of a point (x, y) has y' ≡ y (mod p) with
// y' < 2^255, so y' is y or y+p, and either sign bit; each candidate is kept if SetBytes accepts it and
// it decodes to a small-order point.
func smallOrderEncodingSet() [][32]byte {
	genBytes, err := hex.DecodeString(torsionGenerator)
	if err != nil {
		panic(err)
	}
	gen, err := new(edwards25519.Point).SetBytes(genBytes)
	if err != nil {
		panic("identity: torsion generator does not decode: " + err.Error())
	}
	if !isSmallOrder(gen) || quadruple(gen).Equal(edwards25519.NewIdentityPoint()) == 1 {
		panic("identity: torsion generator is not of order 8") // [8]G = O but [4]G != O
	}

	var set [][32]byte
	seen := make(map[[32]byte]bool)
	add := func(c [32]byte) {
		if seen[c] {
			return
		}
		p, err := new(edwards25519.Point).SetBytes(c[:])
		if err != nil || !isSmallOrder(p) {
			return
		}
		seen[c] = true
		set = append(set, c)
	}
	t := edwards25519.NewIdentityPoint()
	for range 8 {
		var canon [32]byte
		copy(canon[:], t.Bytes())
		y := canon
		y[31] &^= 0x80
		ys := [][32]byte{y}
		if yp, ok := addP(y); ok {
			ys = append(ys, yp)
		}
		for _, c := range ys {
			add(c)
			c[31] |= 0x80
			add(c)
		}
		t.Add(t, gen)
	}
	return set
}

// quadruple returns [4]p.
func quadruple(p *edwards25519.Point) *edwards25519.Point {
	q := new(edwards25519.Point).Add(p, p)
	return q.Add(q, q)
}

// addP returns y + p (p = 2^255 - 19) as 32 little-endian bytes, and whether the sum is below 2^255,
// i.e. a value field.Element.SetBytes reads back as y. y must be below 2^255.
func addP(y [32]byte) ([32]byte, bool) {
	var p [32]byte
	p[0] = 0xed
	for i := 1; i < 31; i++ {
		p[i] = 0xff
	}
	p[31] = 0x7f
	var sum [32]byte
	carry := 0
	for i := range 32 {
		s := int(y[i]) + int(p[i]) + carry
		sum[i] = byte(s)
		carry = s >> 8
	}
	return sum, carry == 0 && sum[31]&0x80 == 0
}
