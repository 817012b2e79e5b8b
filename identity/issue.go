package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// MaxActorCertValidity is the longest validity Issue grants (polyproto §6.1.3: actor certificates
// "should" live at most 60 days).
const MaxActorCertValidity = 60 * 24 * time.Hour

// Root is a home server's identity: its private key and its self-signed root ID-Cert.
type Root struct {
	Key  ed25519.PrivateKey
	Cert *IDCert
}

// NewRoot creates a key and a self-signed root ID-Cert for domain, valid from now (to the second) for
// validity. The certificate has exactly two extensions, critical basicConstraints (cA TRUE, pathLen 0)
// and critical keyUsage (keyCertSign), and no key identifiers: crypto/x509.CreateCertificate would add
// SubjectKeyIdentifier, which polyproto-rs refuses, so we encode the certificate ourselves.
func NewRoot(domain string, now time.Time, validity time.Duration) (*Root, error) {
	if err := ValidateDomain(domain); err != nil {
		return nil, err
	}
	if validity < time.Second {
		return nil, fmt.Errorf("%w: root validity %s is too short", ErrInvalidCert, validity)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generating the root key: %w", err)
	}
	if err := CheckPublicKey(pub); err != nil {
		return nil, err // cannot happen with a random key; checked so that it never goes unnoticed
	}
	name, err := homeServerName(domain)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the root name: %v", ErrInvalidCert, err)
	}
	notBefore := now.UTC().Truncate(time.Second)
	cert, err := signCert(key, certTemplate{
		serial:    NewSerial(),
		issuer:    name,
		subject:   name,
		notBefore: notBefore,
		notAfter:  notBefore.Add(validity),
		publicKey: pub,
		ku:        kuKeyCertSign,
		bc:        basicConstraints{ca: true, pathLen: 0},
	})
	if err != nil {
		return nil, err
	}
	return &Root{Key: key, Cert: cert}, nil
}

// Issue signs an actor ID-Cert for csr. The subject is rebuilt from the CSR's FID and session ID (so
// unknown attributes in the request are dropped), the key usage is digitalSignature, or
// contentCommitment when the request asked only for that, and basicConstraints carries cA FALSE by
// omitting it. Times are truncated to the second.
//
// It refuses (ErrInvalidCSR) a request for another domain or with capabilities an actor may not have,
// and (ErrInvalidCert) a serial outside 1..2^63-1, notAfter not after notBefore, a validity longer than
// MaxActorCertValidity, or one outside the root's. Keeping serials unique is the caller's job.
func (r *Root) Issue(csr *CSR, serial uint64, notBefore, notAfter time.Time) (*IDCert, error) {
	if r == nil || r.Cert == nil || len(r.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: incomplete root", ErrInvalidCert)
	}
	if csr == nil {
		return nil, fmt.Errorf("%w: no request", ErrInvalidCSR)
	}
	root, err := r.Cert.parsed()
	if err != nil {
		return nil, err
	}
	if !root.IsRoot || !publicKeyOf(r.Key).Equal(root.PublicKey) {
		return nil, fmt.Errorf("%w: the root's key does not belong to its root certificate", ErrInvalidCert)
	}
	ku, err := checkRequest(root, csr)
	if err != nil {
		return nil, err
	}
	notBefore, notAfter = notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
	switch {
	case serial == 0 || serial >= 1<<63:
		return nil, fmt.Errorf("%w: serial %d outside 1..2^63-1", ErrInvalidCert, serial)
	case !notAfter.After(notBefore):
		return nil, fmt.Errorf("%w: notAfter %s is not after notBefore %s", ErrInvalidCert, notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	case notAfter.Sub(notBefore) > MaxActorCertValidity:
		return nil, fmt.Errorf("%w: validity %s exceeds %s", ErrInvalidCert, notAfter.Sub(notBefore), MaxActorCertValidity)
	case notBefore.Before(root.NotBefore) || notAfter.After(root.NotAfter):
		return nil, fmt.Errorf("%w: validity %s..%s lies outside the root's %s..%s", ErrInvalidCert,
			notBefore.Format(time.RFC3339), notAfter.Format(time.RFC3339),
			root.NotBefore.Format(time.RFC3339), root.NotAfter.Format(time.RFC3339))
	}
	subject, err := actorName(csr.FID, csr.SessionID)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the subject: %v", ErrInvalidCSR, err)
	}
	return signCert(r.Key, certTemplate{
		serial:    serial,
		issuer:    root.subject,
		subject:   subject,
		notBefore: notBefore,
		notAfter:  notAfter,
		publicKey: csr.PublicKey,
		ku:        ku,
		bc:        basicConstraints{pathLen: -1},
	})
}

// checkRequest re-checks a CSR (it may have been built by hand rather than by ParseCSR) and returns
// the key usage to grant.
func checkRequest(root *IDCert, csr *CSR) (keyUsage, error) {
	if _, err := parseFID(csr.FID.String()); err != nil {
		return 0, fmt.Errorf("%w: federation ID %.80q: %v", ErrInvalidCSR, csr.FID.String(), err)
	}
	if csr.FID.Domain != root.Domain {
		return 0, fmt.Errorf("%w: request for %q, but this home server is %q", ErrInvalidCSR, csr.FID.String(), root.Domain)
	}
	if err := ValidSessionID(csr.SessionID); err != nil {
		return 0, err
	}
	if err := CheckPublicKey(csr.PublicKey); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	caps := csr.Capabilities
	var requested capabilitySet
	requested.hasKU = true
	if caps.DigitalSignature {
		requested.ku |= kuDigitalSignature
	}
	if caps.ContentCommitment {
		requested.ku |= kuContentCommitment
	}
	if caps.KeyCertSign {
		requested.ku |= kuKeyCertSign
	}
	// PathLen only means something with CA (which is refused anyway); ignoring it otherwise keeps a
	// hand-written Capabilities literal, whose PathLen is 0 rather than -1, usable.
	if caps.CA {
		requested.bc, requested.hasBC = basicConstraints{ca: true, pathLen: caps.PathLen}, true
	}
	if err := requested.checkActorRequest(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	// polyproto-rs refuses a certificate with both bits, so one is granted: digitalSignature if asked.
	if caps.DigitalSignature {
		return kuDigitalSignature, nil
	}
	return kuContentCommitment, nil
}

// NewSerial returns a random serial number in 1..2^63-1.
func NewSerial() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+); it aborts the process instead
		if s := binary.BigEndian.Uint64(b[:]) &^ (1 << 63); s != 0 {
			return s
		}
	}
}

type certTemplate struct {
	serial              uint64
	issuer, subject     []byte // DER Names
	notBefore, notAfter time.Time
	publicKey           ed25519.PublicKey
	ku                  keyUsage
	bc                  basicConstraints
}

// signCert encodes the TBSCertificate, signs it and returns the parsed result, so that every
// certificate we hand out has passed our own profile check.
//
// Interop note: the extensions are plain DER (actor basicConstraints 30 00, keyUsage 03 02 07 80).
// polyproto-rs checks a certificate's signature over its own re-encoding of the TBS, rebuilt from the
// parsed capabilities (certs/idcert.rs full_verify_actor, idcerttbs.rs), and it re-encodes them as
// 30 03 01 01 00 and 03 02 00 80, so its checked parsers (IdCert::from_pem/from_der) refuse our
// certificates although the unchecked ones read them. For actor certificates polyproto-rs's bytes would
// also parse in crypto/x509 and here; for a root no encoding satisfies both (its 8-byte pathLen and
// keyCertSign bit inside the "unused" bits are refused by crypto/x509).
func signCert(key ed25519.PrivateKey, t certTemplate) (*IDCert, error) {
	var tb cryptobyte.Builder
	tb.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1Uint64(t.serial)
		b.AddBytes([]byte(ed25519AlgID))
		b.AddBytes(t.issuer)
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, t.notBefore)
			addTime(b, t.notAfter)
		})
		b.AddBytes(t.subject)
		addSPKI(b, t.publicKey)
		b.AddASN1(asn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidBasicConstraints, func(b *cryptobyte.Builder) { addBasicConstraints(b, t.bc) })
				addExtension(b, oidKeyUsage, func(b *cryptobyte.Builder) { addKeyUsage(b, t.ku) })
			})
		})
	})
	tbs, err := tb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the certificate: %v", ErrInvalidCert, err)
	}
	var cb cryptobyte.Builder
	cb.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes([]byte(ed25519AlgID))
		b.AddASN1BitString(ed25519.Sign(key, tbs))
	})
	der, err := cb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the certificate: %v", ErrInvalidCert, err)
	}
	cert, err := parseCertDER(der)
	if err != nil {
		return nil, fmt.Errorf("%w: freshly issued certificate fails the profile: %w", ErrInvalidCert, err)
	}
	return cert, nil
}
