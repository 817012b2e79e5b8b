package identity

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"math/big"
	"slices"
	"testing"

	"filippo.io/edwards25519"
)

// smallOrderEncodings are the encodings of the eight points of small order, canonical and not (the list
// libsodium blocks), plus the non-canonical "negative zero" identity.
var smallOrderEncodings = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"0000000000000000000000000000000000000000000000000000000000000080", // order 4
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
	"0100000000000000000000000000000000000000000000000000000000000080", // identity, x sign bit set
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // order 2, sign bit set
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1: identity, non-canonical
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p: order 4, non-canonical
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}

func TestCheckPublicKeyRefusesSmallOrder(t *testing.T) {
	msg := []byte("hello")
	identity, _ := hex.DecodeString(smallOrderEncodings[0])
	// R = identity, S = 0 satisfies [S]B = R + [k]A for the identity key and every message.
	forged := append(slices.Clone(identity), make([]byte, 32)...)
	for _, h := range smallOrderEncodings {
		pub, _ := hex.DecodeString(h)
		if err := CheckPublicKey(pub); !errors.Is(err, ErrWeakKey) {
			t.Errorf("CheckPublicKey(%s) = %v, want ErrWeakKey", h, err)
		}
		if VerifyStrict(pub, msg, forged) {
			t.Errorf("VerifyStrict accepted small-order key %s", h)
		}
	}
	if !ed25519.Verify(identity, msg, forged) {
		t.Fatal("expected crypto/ed25519 to accept the identity key with R=identity, S=0 (the reason for strict checks)")
	}
	if VerifyStrict(identity, msg, forged) {
		t.Error("VerifyStrict accepted R=identity, S=0 under the identity key")
	}
}

func TestCheckPublicKeyShapes(t *testing.T) {
	key := newKey(t)
	if err := CheckPublicKey(key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("good key refused: %v", err)
	}
	for _, pub := range [][]byte{nil, make([]byte, 31), make([]byte, 33)} {
		if err := CheckPublicKey(pub); !errors.Is(err, ErrWeakKey) {
			t.Errorf("CheckPublicKey(%d bytes) = %v", len(pub), err)
		}
	}
	// y = 2 has no x on the curve.
	notOnCurve := make([]byte, 32)
	notOnCurve[0] = 2
	if err := CheckPublicKey(notOnCurve); !errors.Is(err, ErrWeakKey) {
		t.Errorf("point off the curve: %v", err)
	}
}

func TestVerifyStrict(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	msg := []byte("polyproto")
	sig := ed25519.Sign(key, msg)
	if !VerifyStrict(pub, msg, sig) {
		t.Fatal("good signature refused")
	}
	if VerifyStrict(pub, []byte("other"), sig) || VerifyStrict(pub, msg, sig[:63]) || VerifyStrict(pub[:31], msg, sig) {
		t.Error("wrong message or lengths accepted")
	}

	// S + L is the same scalar, not canonical: malleability.
	order, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	s := new(big.Int).SetBytes(reversed(sig[32:]))
	s.Add(s, order)
	malleated := slices.Clone(sig)
	copy(malleated[32:], reversed(s.FillBytes(make([]byte, 32))))
	if VerifyStrict(pub, msg, malleated) || ed25519.Verify(pub, msg, malleated) {
		t.Error("non-canonical S accepted")
	}
}

// TestVerifyStrictRefusesSmallOrderR builds a key with a torsion component (A = aB + T, T of order 8,
// which CheckPublicKey allows because A is not of small order) and a signature with R = identity that
// plain Ed25519 accepts: with k = H(R||A||M) divisible by 8, [k]T vanishes and S = k·a satisfies
// [S]B = R + [k]A. Only the small-order R check refuses it, as ed25519-dalek's verify_strict does.
func TestVerifyStrictRefusesSmallOrderR(t *testing.T) {
	seed := sha512.Sum512([]byte("torsion test key"))
	a, err := edwards25519.NewScalar().SetUniformBytes(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	torsionBytes, _ := hex.DecodeString(smallOrderEncodings[4])
	torsion, err := new(edwards25519.Point).SetBytes(torsionBytes)
	if err != nil {
		t.Fatal(err)
	}
	pubPoint := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), torsion)
	pub := ed25519.PublicKey(pubPoint.Bytes())
	if err := CheckPublicKey(pub); err != nil {
		t.Fatalf("mixed-order key refused by CheckPublicKey: %v", err)
	}
	rBytes := edwards25519.NewIdentityPoint().Bytes()
	for i := 0; i < 1000; i++ {
		msg := []byte{byte(i), byte(i >> 8)}
		h := sha512.New()
		h.Write(rBytes)
		h.Write(pub)
		h.Write(msg)
		k, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		if k.Bytes()[0]&7 != 0 {
			continue
		}
		sig := append(slices.Clone(rBytes), edwards25519.NewScalar().Multiply(k, a).Bytes()...)
		if !ed25519.Verify(pub, msg, sig) {
			t.Fatal("construction broken: crypto/ed25519 refuses the small-order-R signature")
		}
		if VerifyStrict(pub, msg, sig) {
			t.Fatal("VerifyStrict accepted a signature whose R has small order")
		}
		return
	}
	t.Fatal("no message with k divisible by 8 found")
}

func reversed(b []byte) []byte {
	out := slices.Clone(b)
	slices.Reverse(out)
	return out
}
