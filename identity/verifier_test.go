package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"

	"filippo.io/edwards25519"
)

// verifierOrder is l, the order of the prime-order subgroup.
var verifierOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// leInt reads b as a little-endian integer.
func leInt(b []byte) *big.Int {
	r := slices.Clone(b)
	slices.Reverse(r)
	return new(big.Int).SetBytes(r)
}

// leBytes writes x as n little-endian bytes.
func leBytes(x *big.Int, n int) []byte {
	b := x.FillBytes(make([]byte, n))
	slices.Reverse(b)
	return b
}

// withR and withS return a copy of sig with the R or S half replaced.
func withR(sig, r []byte) []byte { s := slices.Clone(sig); copy(s[:32], r); return s }
func withS(sig, s []byte) []byte { c := slices.Clone(sig); copy(c[32:], s); return c }

// torsionPoints returns the eight points of small order, [i]G for G of order 8.
func torsionPoints(t testing.TB) []*edwards25519.Point {
	t.Helper()
	g, err := new(edwards25519.Point).SetBytes(mustHex(t, torsionGenerator))
	if err != nil {
		t.Fatal(err)
	}
	var pts []*edwards25519.Point
	p := edwards25519.NewIdentityPoint()
	for range 8 {
		pts = append(pts, new(edwards25519.Point).Set(p))
		p.Add(p, g)
	}
	return pts
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// equivalence compares Verifier against VerifyStrict (and VerifyMessageWith against VerifyMessage) on
// one input, and counts verdicts so a test can tell it exercised both outcomes.
type equivalence struct {
	t                *testing.T
	checked, accepts int
}

func (e *equivalence) check(what string, pub ed25519.PublicKey, v *Verifier, msg, sig []byte) {
	e.t.Helper()
	e.verdict(what, pub, v, msg, sig)
	errOld, errNew := VerifyMessage(pub, msg, sig), VerifyMessageWith(v, msg, sig)
	if (errOld == nil) != (errNew == nil) {
		e.t.Errorf("%s: VerifyMessageWith = %v, VerifyMessage = %v", what, errNew, errOld)
	}
	if errNew != nil && !errors.Is(errNew, ErrBadSignature) {
		e.t.Errorf("%s: VerifyMessageWith error %v does not wrap ErrBadSignature", what, errNew)
	}
}

// verdict compares Verifier.Verify with VerifyStrict only.
func (e *equivalence) verdict(what string, pub ed25519.PublicKey, v *Verifier, msg, sig []byte) {
	e.t.Helper()
	e.checked++
	want := VerifyStrict(pub, msg, sig)
	if got := v.Verify(msg, sig); got != want {
		e.t.Errorf("%s: Verifier.Verify = %v, VerifyStrict = %v (pub %x, msg %x, sig %x)", what, got, want, pub, msg, sig)
	}
	if want {
		e.accepts++
	}
}

// mutations checks sig and every mutation of it the strict rules care about.
func (e *equivalence) mutations(what string, pub ed25519.PublicKey, v *Verifier, msg, sig []byte) {
	e.t.Helper()
	e.check(what+"/as signed", pub, v, msg, sig)
	e.check(what+"/other message", pub, v, append(slices.Clone(msg), 0), sig)
	for bit := range 512 {
		m := slices.Clone(sig)
		m[bit/8] ^= 1 << (bit % 8)
		e.verdict(fmt.Sprintf("%s/bit %d flipped", what, bit), pub, v, msg, m)
	}
	// S + l and S + 2l (when they fit): the same scalar, non-canonical.
	s := leInt(sig[32:])
	for _, mult := range []int64{1, 2} {
		sl := new(big.Int).Add(s, new(big.Int).Mul(verifierOrder, big.NewInt(mult)))
		if sl.BitLen() <= 256 {
			e.check(fmt.Sprintf("%s/S+%dl", what, mult), pub, v, msg, withS(sig, leBytes(sl, 32)))
		}
	}
	e.check(what+"/S=l", pub, v, msg, withS(sig, leBytes(verifierOrder, 32)))
	e.check(what+"/S=l-1", pub, v, msg, withS(sig, leBytes(new(big.Int).Sub(verifierOrder, big.NewInt(1)), 32)))
	e.check(what+"/S=0", pub, v, msg, withS(sig, make([]byte, 32)))
	// R replaced by every small-order encoding (the derived set and the independent list in strict_test.go).
	for _, r := range smallOrderR {
		e.check(fmt.Sprintf("%s/R=%x", what, r), pub, v, msg, withR(sig, r[:]))
	}
	for _, h := range smallOrderEncodings {
		e.check(what+"/R="+h, pub, v, msg, withR(sig, mustHex(e.t, h)))
	}
	// R replaced by non-canonical encodings: y = p + c (c < 19) with either sign bit, decodable or not;
	// and R's own encoding with the sign bit flipped (a different point, or none).
	for c := range 19 {
		var y [32]byte
		y[0] = byte(c)
		yp, ok := addP(y)
		if !ok {
			e.t.Fatalf("addP(%d) overflowed", c)
		}
		e.check(fmt.Sprintf("%s/R=y+p(%d)", what, c), pub, v, msg, withR(sig, yp[:]))
		yp[31] |= 0x80
		e.check(fmt.Sprintf("%s/R=y+p(%d),sign", what, c), pub, v, msg, withR(sig, yp[:]))
	}
	e.check(what+"/all zero", pub, v, msg, make([]byte, 64))
	e.check(what+"/all ones", pub, v, msg, bytes.Repeat([]byte{0xff}, 64))
	for _, n := range []int{0, 1, 32, 63, 65, 128} {
		long := make([]byte, n)
		copy(long, sig)
		e.check(fmt.Sprintf("%s/%d bytes", what, n), pub, v, msg, long)
	}
	e.check(what+"/nil", pub, v, msg, nil)
}

func TestVerifierMatchesVerifyStrict(t *testing.T) {
	e := &equivalence{t: t}
	rng := mrand.New(mrand.NewChaCha8([32]byte{'v', 'e', 'r', 'i', 'f', 'i', 'e', 'r'}))
	keys, msgs := 6, 2
	if testing.Short() {
		keys = 2
	}
	for ki := range keys {
		key := newKey(t)
		pub := key.Public().(ed25519.PublicKey)
		v, err := NewVerifier(pub)
		if err != nil {
			t.Fatalf("NewVerifier(good key): %v", err)
		}
		if !bytes.Equal(v.PublicKey(), pub) {
			t.Fatal("PublicKey() differs from the key")
		}
		for mi := range msgs {
			msg := make([]byte, rng.IntN(300)+1)
			for i := range msg {
				msg[i] = byte(rng.Uint32())
			}
			what := fmt.Sprintf("key %d msg %d", ki, mi)
			e.mutations(what, pub, v, msg, ed25519.Sign(key, msg))
			// A signature by another key, and random signatures with S reduced (so the equation runs).
			e.check(what+"/other key", pub, v, msg, ed25519.Sign(newKey(t), msg))
			for range 8 {
				sig := make([]byte, 64)
				for i := range sig {
					sig[i] = byte(rng.Uint32())
				}
				e.check(what+"/random", pub, v, msg, sig)
				sig[63] &= 0x0f
				e.check(what+"/random, S < 2^252", pub, v, msg, sig)
			}
		}
	}
	if e.accepts == 0 || e.accepts == e.checked {
		t.Fatalf("%d of %d accepted: not both outcomes exercised", e.accepts, e.checked)
	}
	t.Logf("%d inputs compared, %d accepted by both", e.checked, e.accepts)
}

// TestVerifierMixedOrder uses keys and signatures with torsion components, where cofactorless and
// strict verification part ways with plain Ed25519: A = aB + T (T ≠ O, a key CheckPublicKey allows),
// R = rB + T' with T' chosen so that [S]B - [k]A = R holds cofactorlessly (T' = -[k]T). With r ≠ 0 both
// verifiers must accept (R is of mixed order, not small); with r = 0 (R = T', of small order)
// crypto/ed25519 accepts and both strict verifiers must refuse.
func TestVerifierMixedOrder(t *testing.T) {
	e := &equivalence{t: t}
	torsion := torsionPoints(t)
	var smallOrderRTotal, mixedTotal int
	for ti := 1; ti < 8; ti++ {
		var smallOrderRAccepted, mixedAccepted int
		seed := sha512.Sum512(fmt.Appendf(nil, "mixed-order key %d", ti))
		a, _ := edwards25519.NewScalar().SetUniformBytes(seed[:])
		pubPoint := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), torsion[ti])
		pub := ed25519.PublicKey(pubPoint.Bytes())
		v, err := NewVerifier(pub)
		if err != nil {
			t.Fatalf("NewVerifier(mixed-order key, T index %d): %v", ti, err)
		}
		for trial := 0; trial < 400 && (mixedAccepted < 2 || smallOrderRAccepted < 1); trial++ {
			msg := fmt.Appendf(nil, "mixed %d %d", ti, trial)
			var r *edwards25519.Scalar
			if trial%2 == 0 {
				r = edwards25519.NewScalar() // R = T': small order
			} else {
				rs := sha512.Sum512(msg)
				r, _ = edwards25519.NewScalar().SetUniformBytes(rs[:])
			}
			tp := torsion[(trial/2)%8] // independent of whether r is zero
			rPoint := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(r), tp)
			rBytes := rPoint.Bytes()
			h := sha512.New()
			h.Write(rBytes)
			h.Write(pub)
			h.Write(msg)
			k, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
			s := edwards25519.NewScalar().MultiplyAdd(k, a, r)
			sig := append(slices.Clone(rBytes), s.Bytes()...)
			kT := new(edwards25519.Point).ScalarMult(k, torsion[ti])
			holds := new(edwards25519.Point).Add(kT, tp).Equal(edwards25519.NewIdentityPoint()) == 1
			if holds != ed25519.Verify(pub, msg, sig) {
				t.Fatalf("construction: expected crypto/ed25519 verdict %v", holds)
			}
			strict := VerifyStrict(pub, msg, sig)
			switch {
			case holds && r.Equal(edwards25519.NewScalar()) == 1:
				smallOrderRAccepted++
				if strict {
					t.Fatal("VerifyStrict accepted a small-order R")
				}
			case holds:
				mixedAccepted++
				if !strict {
					t.Fatal("VerifyStrict refused a valid mixed-order R")
				}
			}
			// Full mutations for the first hit of each kind per key; a verdict check for the rest.
			first := (smallOrderRAccepted == 1 && r.Equal(edwards25519.NewScalar()) == 1) ||
				(mixedAccepted == 1 && r.Equal(edwards25519.NewScalar()) == 0)
			if holds && first {
				e.mutations(fmt.Sprintf("T%d trial %d", ti, trial), pub, v, msg, sig)
			} else {
				e.check(fmt.Sprintf("T%d trial %d", ti, trial), pub, v, msg, sig)
			}
		}
		if smallOrderRAccepted == 0 || mixedAccepted < 2 {
			t.Fatalf("T%d: constructions did not hit: %d small-order R, %d mixed-order R", ti, smallOrderRAccepted, mixedAccepted)
		}
		smallOrderRTotal += smallOrderRAccepted
		mixedTotal += mixedAccepted
	}
	t.Logf("%d inputs compared (%d accepted); %d small-order-R forgeries plain Ed25519 accepts, %d valid mixed-order R",
		e.checked, e.accepts, smallOrderRTotal, mixedTotal)
}

func TestNewVerifierRefusesWhatCheckPublicKeyRefuses(t *testing.T) {
	var refused [][]byte
	for _, h := range smallOrderEncodings {
		refused = append(refused, mustHex(t, h))
	}
	for _, r := range smallOrderR {
		refused = append(refused, slices.Clone(r[:]))
	}
	refused = append(refused, nil, make([]byte, 31), make([]byte, 33), make([]byte, 64))
	// Non-canonical encodings y+p of points that are not of small order, and off-curve values.
	for c := range 19 {
		var y [32]byte
		y[0] = byte(c)
		yp, _ := addP(y)
		refused = append(refused, slices.Clone(yp[:]))
		yp[31] |= 0x80
		refused = append(refused, slices.Clone(yp[:]))
	}
	notOnCurve := make([]byte, 32)
	notOnCurve[0] = 2
	refused = append(refused, notOnCurve)
	for _, pub := range refused {
		if CheckPublicKey(pub) == nil {
			t.Errorf("test input %x is accepted by CheckPublicKey", pub)
		}
		v, err := NewVerifier(pub)
		if v != nil || !errors.Is(err, ErrWeakKey) {
			t.Errorf("NewVerifier(%x) = %v, %v; want nil, ErrWeakKey", pub, v, err)
		}
	}
	// Random 32-byte strings: same verdict as CheckPublicKey, and the same key bytes when accepted.
	rng := mrand.New(mrand.NewChaCha8([32]byte{'k', 'e', 'y', 's'}))
	for range 2000 {
		pub := make([]byte, 32)
		for i := range pub {
			pub[i] = byte(rng.Uint32())
		}
		want := CheckPublicKey(pub)
		v, err := NewVerifier(pub)
		if (want == nil) != (err == nil) || (err != nil && !errors.Is(err, ErrWeakKey)) || (err == nil) != (v != nil) {
			t.Fatalf("NewVerifier(%x) = %v, %v; CheckPublicKey = %v", pub, v, err, want)
		}
		if v != nil && !bytes.Equal(v.PublicKey(), pub) {
			t.Fatalf("PublicKey() = %x, want %x", v.PublicKey(), pub)
		}
	}
}

func TestSmallOrderEncodingSet(t *testing.T) {
	// 8 canonical encodings, plus 6 non-canonical ones: identity (y = 1) with the sign bit, y = p+1 with
	// either sign bit; the order-2 point (y = -1) with the sign bit; the order-4 points (y = 0) as y = p
	// with either sign bit. No other torsion point has y < 19, so no other y+p fits below 2^255.
	if len(smallOrderR) != 14 {
		t.Fatalf("%d small-order encodings, want 14", len(smallOrderR))
	}
	identity := edwards25519.NewIdentityPoint()
	canonical := 0
	seen := map[[32]byte]bool{}
	for _, enc := range smallOrderR {
		if seen[enc] {
			t.Errorf("duplicate %x", enc)
		}
		seen[enc] = true
		p, err := new(edwards25519.Point).SetBytes(enc[:])
		if err != nil {
			t.Errorf("%x does not decode: %v", enc, err)
			continue
		}
		if new(edwards25519.Point).MultByCofactor(p).Equal(identity) != 1 {
			t.Errorf("%x: [8]P is not the identity", enc)
		}
		// [8]P = O computed independently by three doublings.
		q := new(edwards25519.Point).Add(p, p)
		q.Add(q, q)
		q.Add(q, q)
		if q.Equal(identity) != 1 {
			t.Errorf("%x: doubling three times does not give the identity", enc)
		}
		if bytes.Equal(p.Bytes(), enc[:]) {
			canonical++
		}
		if !isSmallOrderEncoding(enc[:]) {
			t.Errorf("isSmallOrderEncoding(%x) = false", enc)
		}
	}
	if canonical != 8 {
		t.Errorf("%d canonical encodings, want 8", canonical)
	}
	// The derived set is exactly the independently written list in strict_test.go.
	listed := map[[32]byte]bool{}
	for _, h := range smallOrderEncodings {
		listed[[32]byte(mustHex(t, h))] = true
	}
	for enc := range seen {
		if !listed[enc] {
			t.Errorf("%x derived but not in smallOrderEncodings", enc)
		}
	}
	for enc := range listed {
		if !seen[enc] {
			t.Errorf("%x in smallOrderEncodings but not derived", enc)
		}
	}
	// Every torsion point has all its SetBytes-accepted encodings in the set: brute force over the
	// candidates y, y+p and both sign bits for each torsion point.
	for _, tp := range torsionPoints(t) {
		y := [32]byte(tp.Bytes())
		y[31] &^= 0x80
		cands := [][32]byte{y}
		if yp, ok := addP(y); ok {
			cands = append(cands, yp)
		}
		for _, c := range cands {
			for _, sign := range []byte{0, 0x80} {
				c[31] = c[31]&0x7f | sign
				p, err := new(edwards25519.Point).SetBytes(c[:])
				if err == nil && isSmallOrder(p) != seen[c] {
					t.Errorf("%x: small order %v, in set %v", c, isSmallOrder(p), seen[c])
				}
			}
		}
	}
	// Not in the set: a valid R, the base point, nothing of the wrong length.
	if isSmallOrderEncoding(edwards25519.NewGeneratorPoint().Bytes()) || isSmallOrderEncoding(nil) ||
		isSmallOrderEncoding(smallOrderR[0][:31]) {
		t.Error("isSmallOrderEncoding accepted a non-member")
	}
}

func TestVerifyMessageWith(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	v, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	m := MessageSig{ChannelID: 7, AuthorFID: "alice@example.com", CertSerial: 3, TimestampMS: 1, Nonce: "n", Content: "hi"}
	b := m.Bytes()
	sig := SignMessage(key, b)
	if err := VerifyMessageWith(v, b, sig); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	other, _ := NewVerifier(newKey(t).Public().(ed25519.PublicKey))
	for name, c := range map[string]struct {
		v      *Verifier
		b, sig []byte
	}{
		"nil bytes":     {v, nil, sig},
		"empty bytes":   {v, []byte{}, sig},
		"short sig":     {v, b, sig[:63]},
		"nil sig":       {v, b, nil},
		"other key":     {other, b, sig},
		"other message": {v, append(slices.Clone(b), 0), sig},
		"nil verifier":  {nil, b, sig},
		"flipped":       {v, b, withS(sig, append([]byte{sig[32] ^ 1}, sig[33:]...))},
	} {
		if err := VerifyMessageWith(c.v, c.b, c.sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	var nilV *Verifier
	if nilV.Verify(b, sig) {
		t.Error("nil Verifier verified")
	}
}

// TestVerifierConcurrent shares one Verifier between goroutines (run with -race).
func TestVerifierConcurrent(t *testing.T) {
	key := newKey(t)
	v, err := NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				msg := fmt.Appendf(nil, "goroutine %d message %d", g, i)
				sig := ed25519.Sign(key, msg)
				if !v.Verify(msg, sig) {
					t.Errorf("good signature refused: %s", msg)
				}
				sig[5] ^= 0x10
				if v.Verify(msg, sig) {
					t.Errorf("bad signature accepted: %s", msg)
				}
			}
		}()
	}
	wg.Wait()
}

// benchInput is a key and a signed chat-message-sized input.
func benchInput(b *testing.B) (ed25519.PublicKey, []byte, []byte) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	m := MessageSig{ChannelID: 42, AuthorFID: "alice@example.com", CertSerial: 9, TimestampMS: 1_770_000_000_000,
		Nonce: "0123456789abcdef", Content: string(bytes.Repeat([]byte("hello polyproto "), 16))}
	msg := m.Bytes()
	return key.Public().(ed25519.PublicKey), msg, SignMessage(key, msg)
}

func BenchmarkVerifyStrict(b *testing.B) {
	pub, msg, sig := benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyStrict(pub, msg, sig) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkVerifier(b *testing.B) {
	pub, msg, sig := benchInput(b)
	v, err := NewVerifier(pub)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !v.Verify(msg, sig) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkVerifyPlainEd25519 is crypto/ed25519.Verify alone, the floor the other two are measured
// against.
func BenchmarkVerifyPlainEd25519(b *testing.B) {
	pub, msg, sig := benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkNewVerifier is the one-off cost per key.
func BenchmarkNewVerifier(b *testing.B) {
	pub, _, _ := benchInput(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewVerifier(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerifierMatchesVerifyStrict compares verdicts on arbitrary keys, messages and signatures; the
// seeds are a valid signature, a mixed-order key and small-order values. When pub is refused,
// NewVerifier must refuse it too.
func FuzzVerifierMatchesVerifyStrict(f *testing.F) {
	seed := sha512.Sum512([]byte("fuzz key"))
	key := ed25519.NewKeyFromSeed(seed[:32])
	pub := key.Public().(ed25519.PublicKey)
	msg := []byte("fuzz message")
	sig := ed25519.Sign(key, msg)
	f.Add([]byte(pub), msg, sig)
	f.Add([]byte(pub), msg, withR(sig, smallOrderR[0][:]))
	f.Add([]byte(pub), msg, withS(sig, leBytes(verifierOrder, 32)))
	for _, enc := range smallOrderR {
		f.Add(slices.Clone(enc[:]), msg, append(slices.Clone(enc[:]), make([]byte, 32)...))
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		v, err := NewVerifier(pub)
		if (err == nil) != (CheckPublicKey(pub) == nil) {
			t.Fatalf("NewVerifier(%x) error %v disagrees with CheckPublicKey", pub, err)
		}
		if err != nil {
			if VerifyStrict(pub, msg, sig) {
				t.Fatalf("VerifyStrict accepted refused key %x", pub)
			}
			return
		}
		if got, want := v.Verify(msg, sig), VerifyStrict(pub, msg, sig); got != want {
			t.Fatalf("Verify = %v, VerifyStrict = %v (pub %x, msg %x, sig %x)", got, want, pub, msg, sig)
		}
	})
}
