package identity

import (
	"bytes"
	"crypto/ed25519"
	encasn1 "encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers as the content octets of their DER encoding. Strings, not asn1.ObjectIdentifier
// values, so that they are constants and compare with ==.
const (
	oidEd25519          = "\x2b\x65\x70"                             // 1.3.101.112
	oidCommonName       = "\x55\x04\x03"                             // 2.5.4.3
	oidDomainComponent  = "\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19" // 0.9.2342.19200300.100.1.25
	oidUID              = "\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01" // 0.9.2342.19200300.100.1.1
	oidUniqueIdentifier = "\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x2c" // 0.9.2342.19200300.100.1.44
	oidKeyUsage         = "\x55\x1d\x0f"                             // 2.5.29.15
	oidBasicConstraints = "\x55\x1d\x13"                             // 2.5.29.19
	oidExtensionRequest = "\x2a\x86\x48\x86\xf7\x0d\x01\x09\x0e"     // 1.2.840.113549.1.9.14
	oidRSA              = "\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"     // 1.2.840.113549.1.1.1
	oidECPublicKey      = "\x2a\x86\x48\xce\x3d\x02\x01"             // 1.2.840.10045.2.1
	oidEd448            = "\x2b\x65\x71"                             // 1.3.101.113
	ed25519AlgID        = "\x30\x05\x06\x03" + oidEd25519            // AlgorithmIdentifier, no parameters (RFC 8410)
)

// describeOID names an OID for error messages: dotted form plus a name where we know one.
func describeOID(content []byte) string {
	dotted := dottedOID(content)
	names := map[string]string{
		oidEd25519: "Ed25519", oidEd448: "Ed448", oidRSA: "RSA", oidECPublicKey: "ECDSA",
		oidCommonName: "CN", oidDomainComponent: "DC", oidUID: "UID", oidUniqueIdentifier: "uniqueIdentifier",
		oidKeyUsage: "keyUsage", oidBasicConstraints: "basicConstraints", oidExtensionRequest: "extensionRequest",
	}
	if name, ok := names[string(content)]; ok {
		return dotted + " (" + name + ")"
	}
	return dotted
}

func dottedOID(content []byte) string {
	var b cryptobyte.Builder
	b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(content) })
	der, err := b.Bytes()
	if err != nil {
		return fmt.Sprintf("%x", content)
	}
	s := cryptobyte.String(der)
	var oid encasn1.ObjectIdentifier
	if !s.ReadASN1ObjectIdentifier(&oid) {
		return fmt.Sprintf("%x", content)
	}
	return oid.String()
}

func addOID(b *cryptobyte.Builder, oid string) {
	b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes([]byte(oid)) })
}

func addSPKI(b *cryptobyte.Builder, pub ed25519.PublicKey) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes([]byte(ed25519AlgID))
		b.AddASN1BitString(pub)
	})
}

// readEd25519SPKI reads a SubjectPublicKeyInfo and insists on an Ed25519 key. The algorithm is checked
// before anything else so that an RSA or ECDSA request gets an error that says so.
func readEd25519SPKI(s *cryptobyte.String) (ed25519.PublicKey, error) {
	var spki, alg, oid cryptobyte.String
	if !s.ReadASN1(&spki, asn1.SEQUENCE) || !spki.ReadASN1(&alg, asn1.SEQUENCE) || !alg.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	if string(oid) != oidEd25519 {
		return nil, fmt.Errorf("public key algorithm is %s; only Ed25519 (1.3.101.112) keys are accepted", describeOID(oid))
	}
	if !alg.Empty() {
		return nil, errors.New("the Ed25519 key algorithm identifier must not have parameters (RFC 8410)")
	}
	var key []byte
	if !spki.ReadASN1BitStringAsBytes(&key) || !spki.Empty() {
		return nil, errors.New("malformed subjectPublicKeyInfo")
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 public key is %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(bytes.Clone(key)), nil
}

// readSignatureAlgorithm insists on exactly the Ed25519 AlgorithmIdentifier, without parameters.
func readSignatureAlgorithm(s *cryptobyte.String) error {
	var alg cryptobyte.String
	if !s.ReadASN1Element(&alg, asn1.SEQUENCE) {
		return errors.New("malformed signature algorithm")
	}
	if string(alg) == ed25519AlgID {
		return nil
	}
	var body, oid cryptobyte.String
	if alg.ReadASN1(&body, asn1.SEQUENCE) && body.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) && string(oid) != oidEd25519 {
		return fmt.Errorf("signature algorithm is %s; only Ed25519 signatures are accepted", describeOID(oid))
	}
	return errors.New("the Ed25519 signature algorithm identifier must not have parameters (RFC 8410)")
}

// readSignature reads the outer BIT STRING holding an Ed25519 signature.
func readSignature(s *cryptobyte.String) ([]byte, error) {
	var sig []byte
	if !s.ReadASN1BitStringAsBytes(&sig) {
		return nil, errors.New("malformed signature")
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	return bytes.Clone(sig), nil
}

// addTime writes UTCTime for 1950-2049 and GeneralizedTime otherwise, as RFC 5280 §4.1.2.5 demands.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if y := t.Year(); y >= 1950 && y < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

// readTime accepts only the RFC 5280 forms UTCTime YYMMDDHHMMSSZ and GeneralizedTime YYYYMMDDHHMMSSZ:
// no fractions, no offsets, no minute precision (cryptobyte's readers let some of these through).
// GeneralizedTime is accepted for any year, not only from 2050 on: being lenient there costs nothing.
func readTime(s *cryptobyte.String) (time.Time, error) {
	var content cryptobyte.String
	var tag asn1.Tag
	if !s.ReadAnyASN1(&content, &tag) {
		return time.Time{}, errors.New("malformed time")
	}
	var year int
	var rest []byte
	switch {
	case tag == asn1.UTCTime && len(content) == 13:
		yy, ok := digits(content[:2])
		if !ok {
			return time.Time{}, fmt.Errorf("malformed UTCTime %q", []byte(content))
		}
		year = 1900 + yy
		if yy < 50 {
			year = 2000 + yy
		}
		rest = content[2:]
	case tag == asn1.GeneralizedTime && len(content) == 15:
		yyyy, ok := digits(content[:4])
		if !ok {
			return time.Time{}, fmt.Errorf("malformed GeneralizedTime %q", []byte(content))
		}
		year = yyyy
		rest = content[4:]
	default:
		return time.Time{}, fmt.Errorf("time must be UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ, got tag %d with %d bytes", tag, len(content))
	}
	var f [5]int
	for i := range f {
		v, ok := digits(rest[2*i : 2*i+2])
		if !ok {
			return time.Time{}, fmt.Errorf("malformed time %q", []byte(content))
		}
		f[i] = v
	}
	if rest[10] != 'Z' {
		return time.Time{}, fmt.Errorf("time %q is not in UTC ('Z')", []byte(content))
	}
	t := time.Date(year, time.Month(f[0]), f[1], f[2], f[3], f[4], 0, time.UTC)
	// time.Date normalises out-of-range fields (month 13, second 60); a changed field means a bad time.
	if t.Year() != year || int(t.Month()) != f[0] || t.Day() != f[1] || t.Hour() != f[2] || t.Minute() != f[3] || t.Second() != f[4] {
		return time.Time{}, fmt.Errorf("time %q is out of range", []byte(content))
	}
	return t, nil
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// decodePEMOrDER returns the DER inside a single PEM block of one of the given types, or data itself when
// it does not look like PEM. Text around the block other than white space is refused: a PEM bundle with
// a second certificate or a preamble is not what any caller of this package sends.
func decodePEMOrDER(data []byte, types ...string) ([]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return data, nil
	}
	block, rest := pem.Decode(trimmed)
	if block == nil {
		return nil, errors.New("malformed PEM")
	}
	if !slices.Contains(types, block.Type) {
		return nil, fmt.Errorf("PEM block type is %q, want %q", block.Type, types[0])
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("PEM headers are not allowed")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the PEM block")
	}
	return block.Bytes, nil
}

// sortedSet returns DER elements in the order DER requires inside a SET OF (ascending octets, X.690
// §11.6), so that our encodings are canonical and a re-encoding by another library keeps the signature.
func sortedSet(elems ...[]byte) [][]byte {
	out := slices.Clone(elems)
	slices.SortFunc(out, bytes.Compare)
	return out
}
