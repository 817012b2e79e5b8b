package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	encasn1 "encoding/asn1"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// t0 is the fixed "now" of these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// OIDs written out independently of the package's constants, so the tests cross-check them.
var (
	testOIDCN       = encasn1.ObjectIdentifier{2, 5, 4, 3}
	testOIDDC       = encasn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	testOIDUID      = encasn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	testOIDSID      = encasn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 44}
	testOIDKU       = encasn1.ObjectIdentifier{2, 5, 29, 15}
	testOIDBC       = encasn1.ObjectIdentifier{2, 5, 29, 19}
	testOIDSKI      = encasn1.ObjectIdentifier{2, 5, 29, 14}
	testOIDExtReq   = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	testOIDEd25519  = encasn1.ObjectIdentifier{1, 3, 101, 112}
	testOIDSANs     = encasn1.ObjectIdentifier{2, 5, 29, 17}
	testOIDOrgUnit  = encasn1.ObjectIdentifier{2, 5, 4, 11}
	testOIDUnknownA = encasn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7} // challengePassword
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func mustFID(t testing.TB, s string) FID {
	t.Helper()
	f, err := ParseFID(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newTestRoot(t testing.TB, domain string) *Root {
	t.Helper()
	r, err := NewRoot(domain, t0, 2*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// issueActor makes a key, a CSR with NewCSR and a 30-day certificate from root.
func issueActor(t testing.TB, root *Root, fid, session string) (ed25519.PrivateKey, *IDCert) {
	t.Helper()
	key := newKey(t)
	der, err := NewCSR(key, mustFID(t, fid), session)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := root.Issue(csr, NewSerial(), t0, t0.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

// build runs a cryptobyte builder and fails the test on error.
func build(t testing.TB, f cryptobyte.BuilderContinuation) []byte {
	t.Helper()
	var b cryptobyte.Builder
	f(&b)
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func addTestOID(b *cryptobyte.Builder, oid encasn1.ObjectIdentifier) { b.AddASN1ObjectIdentifier(oid) }

// rdn encodes one single-valued RDN.
func rdn(oid encasn1.ObjectIdentifier, tag asn1.Tag, value string) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addTestOID(b, oid)
				b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(value)) })
			})
		})
	}
}

// name encodes a Name from RDNs in the given (DER) order.
func name(t testing.TB, rdns ...func(*cryptobyte.Builder)) []byte {
	t.Helper()
	return build(t, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, r := range rdns {
				r(b)
			}
		})
	})
}

// rsActorName is the subject polyproto-rs builds from
// "CN=<cn>,DC=<dcs[0]>,...,UID=<uid>,uniqueIdentifier=<sid>": reversed, DC as IA5String, the rest UTF8String.
func rsActorName(t testing.TB, cn string, dcs []string, uid, sid string) []byte {
	t.Helper()
	rdns := []func(*cryptobyte.Builder){rdn(testOIDSID, asn1.UTF8String, sid), rdn(testOIDUID, asn1.UTF8String, uid)}
	for i := len(dcs) - 1; i >= 0; i-- {
		rdns = append(rdns, rdn(testOIDDC, asn1.IA5String, dcs[i]))
	}
	rdns = append(rdns, rdn(testOIDCN, asn1.UTF8String, cn))
	return name(t, rdns...)
}

func rsHomeServerName(t testing.TB, dcs ...string) []byte {
	t.Helper()
	var rdns []func(*cryptobyte.Builder)
	for i := len(dcs) - 1; i >= 0; i-- {
		rdns = append(rdns, rdn(testOIDDC, asn1.IA5String, dcs[i]))
	}
	return name(t, rdns...)
}

// bitString encodes a BIT STRING with an explicit unused-bits count, right or wrong.
func bitString(unused byte, data ...byte) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.BIT_STRING, func(b *cryptobyte.Builder) {
			b.AddUint8(unused)
			b.AddBytes(data)
		})
	}
}

// rawTLV adds pre-encoded bytes.
func rawTLV(der []byte) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) { b.AddBytes(der) }
}

// rsBasicConstraints encodes BasicConstraints the polyproto-rs way: explicit cA, pathLen as 8 bytes.
func rsBasicConstraints(ca bool, pathLen *uint64) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.BOOLEAN, func(b *cryptobyte.Builder) {
				if ca {
					b.AddUint8(0xff)
				} else {
					b.AddUint8(0)
				}
			})
			if pathLen != nil {
				b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) { b.AddUint64(*pathLen) })
			}
		})
	}
}

// attribute encodes a PKCS#10 Attribute with one value.
func attribute(oid encasn1.ObjectIdentifier, value func(*cryptobyte.Builder)) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTestOID(b, oid)
			b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) { value(b) })
		})
	}
}

// ext encodes an Extension; critical false omits the field.
func ext(oid encasn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTestOID(b, oid)
			if critical {
				b.AddASN1Boolean(true)
			}
			b.AddASN1(asn1.OCTET_STRING, func(b *cryptobyte.Builder) { value(b) })
		})
	}
}

// extensionRequest wraps extensions into a PKCS#9 extensionRequest attribute.
func extensionRequest(exts ...func(*cryptobyte.Builder)) func(*cryptobyte.Builder) {
	return attribute(testOIDExtReq, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, e := range exts {
				e(b)
			}
		})
	})
}

func spki(pub []byte) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addTestOID(b, testOIDEd25519) })
			b.AddASN1BitString(pub)
		})
	}
}

func ed25519Alg(b *cryptobyte.Builder) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addTestOID(b, testOIDEd25519) })
}

// csrSpec describes a PKCS#10 request built by hand, the way polyproto-rs or a broken client would.
type csrSpec struct {
	key     ed25519.PrivateKey
	pub     []byte // SPKI key; the key's own when nil
	subject []byte
	attrs   []func(*cryptobyte.Builder)
	badSig  bool
}

func (s csrSpec) der(t testing.TB) []byte {
	t.Helper()
	pub := s.pub
	if pub == nil {
		pub = s.key.Public().(ed25519.PublicKey)
	}
	info := build(t, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(0)
			b.AddBytes(s.subject)
			spki(pub)(b)
			b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				for _, a := range s.attrs {
					a(b)
				}
			})
		})
	})
	sig := ed25519.Sign(s.key, info)
	if s.badSig {
		sig[10] ^= 1
	}
	return build(t, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(info)
			ed25519Alg(b)
			b.AddASN1BitString(sig)
		})
	})
}

// certSpec describes an X.509 certificate built by hand, for profile violations and polyproto-rs
// encodings that our issuer never produces.
type certSpec struct {
	serial              uint64
	issuer, subject     []byte
	notBefore, notAfter time.Time
	pub                 []byte
	exts                []func(*cryptobyte.Builder)
	noExtensions        bool
	validity            func(*cryptobyte.Builder) // replaces the Validity built from notBefore/notAfter
	extra               func(*cryptobyte.Builder) // written between the SPKI and the extensions
}

func (s certSpec) sign(t testing.TB, key ed25519.PrivateKey) []byte {
	t.Helper()
	tbs := build(t, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
			b.AddASN1Uint64(s.serial)
			ed25519Alg(b)
			b.AddBytes(s.issuer)
			if s.validity != nil {
				s.validity(b)
			} else {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1UTCTime(s.notBefore)
					b.AddASN1UTCTime(s.notAfter)
				})
			}
			b.AddBytes(s.subject)
			spki(s.pub)(b)
			if s.extra != nil {
				s.extra(b)
			}
			if s.noExtensions {
				return
			}
			b.AddASN1(asn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, e := range s.exts {
						e(b)
					}
				})
			})
		})
	})
	return build(t, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(tbs)
			ed25519Alg(b)
			b.AddASN1BitString(ed25519.Sign(key, tbs))
		})
	})
}

func u64(v uint64) *uint64 { return &v }
