package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// maxCertSize bounds what ParseIDCert reads: an ID-Cert is about 500 bytes of DER.
const maxCertSize = 16 << 10

// IDCert is a parsed ID-Cert (polyproto §6.1.1): a home server's self-signed root, or an actor's
// certificate issued by that root.
type IDCert struct {
	Raw       []byte // DER
	Serial    uint64
	FID       FID    // zero for a root
	SessionID string // "" for a root
	Domain    string // the issuer's domain (DC labels joined with '.')
	PublicKey ed25519.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
	IsRoot    bool

	// Set by the parser; VerifyIssuedBy re-parses Raw when they are missing (an IDCert built by hand).
	tbs, signature  []byte
	issuer, subject []byte // DER Names
}

// ParseIDCert parses an ID-Cert, PEM ("CERTIFICATE") or DER, and enforces the polyproto profile:
//   - X.509 v3, Ed25519 key (strictly checked) and Ed25519 signature algorithm without parameters;
//   - serial a positive INTEGER below 2^63 (what we issue; it also fits the uint64 serials of the JSON
//     APIs). Home servers that use up to 20 octets, as RFC 5280 allows, are refused;
//   - no issuerUniqueID/subjectUniqueID: the session ID lives in the uniqueIdentifier attribute;
//   - extensions: keyUsage and basicConstraints only, both critical. A root has cA TRUE, pathLen 0 and
//     keyCertSign; an actor has digitalSignature or contentCommitment, no keyCertSign/cRLSign, and cA
//     FALSE or no basicConstraints at all (the spec allows "omitted");
//   - names: the issuer is a home server pDN (DCs only); a root's subject equals its issuer; an actor's
//     subject has CN == the UID's local part and DCs == the UID's domain == the issuer's DCs, in order;
//     the session ID follows ValidSessionID.
//
// It checks no signature (a root's own included) and no time: use VerifyIssuedBy and ValidAt. The
// 60-day limit on actor certificates is ours when issuing; polyproto only says "should", so foreign
// certificates are not held to it. Errors wrap ErrInvalidCert.
func ParseIDCert(data []byte) (*IDCert, error) {
	if len(data) > maxCertSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidCert, maxCertSize)
	}
	der, err := decodePEMOrDER(data, "CERTIFICATE")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCert, err)
	}
	c, err := parseCertDER(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCert, err)
	}
	return c, nil
}

// PEM returns the certificate as a PEM "CERTIFICATE" block.
func (c *IDCert) PEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// ValidAt reports whether t lies within NotBefore..NotAfter (both inclusive); errors wrap ErrExpired.
func (c *IDCert) ValidAt(t time.Time) error {
	switch {
	case t.Before(c.NotBefore):
		return fmt.Errorf("%w: serial %d is valid from %s, now is %s", ErrExpired, c.Serial, c.NotBefore.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	case t.After(c.NotAfter):
		return fmt.Errorf("%w: serial %d expired at %s, now is %s", ErrExpired, c.Serial, c.NotAfter.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifyIssuedBy checks that root issued c: root is a root certificate, c's issuer DN is byte for byte
// root's subject DN, c's signature verifies strictly with root's key, and c's validity lies within
// root's (polyproto §6.1.1). root.VerifyIssuedBy(root) checks a root's self-signature. It does not
// check the time; use ValidAt. Errors wrap ErrInvalidCert.
func (c *IDCert) VerifyIssuedBy(root *IDCert) error {
	if root == nil {
		return fmt.Errorf("%w: no root certificate to verify against", ErrInvalidCert)
	}
	cc, err := c.parsed()
	if err != nil {
		return err
	}
	rr, err := root.parsed()
	if err != nil {
		return err
	}
	switch {
	case !rr.IsRoot:
		return fmt.Errorf("%w: issuer certificate (serial %d) is not a root certificate", ErrInvalidCert, rr.Serial)
	case !bytes.Equal(cc.issuer, rr.subject):
		return fmt.Errorf("%w: issued by %q, not by the root of %q", ErrInvalidCert, cc.Domain, rr.Domain)
	case !VerifyStrict(rr.PublicKey, cc.tbs, cc.signature):
		return fmt.Errorf("%w: signature of serial %d does not verify with the key of the root of %q", ErrInvalidCert, cc.Serial, rr.Domain)
	case cc.NotBefore.Before(rr.NotBefore) || cc.NotAfter.After(rr.NotAfter):
		return fmt.Errorf("%w: validity %s..%s lies outside the root's %s..%s", ErrInvalidCert,
			cc.NotBefore.Format(time.RFC3339), cc.NotAfter.Format(time.RFC3339),
			rr.NotBefore.Format(time.RFC3339), rr.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// parsed returns c when the parser made it (its fields then describe Raw), or a parse of c.Raw for an
// IDCert built by hand, so that verification always works on what was signed.
func (c *IDCert) parsed() (*IDCert, error) {
	if c.tbs != nil {
		return c, nil
	}
	p, err := parseCertDER(c.Raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCert, err)
	}
	return p, nil
}

func parseCertDER(der []byte) (*IDCert, error) {
	input := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !input.ReadASN1(&cert, asn1.SEQUENCE) || !input.Empty() || !cert.ReadASN1Element(&tbs, asn1.SEQUENCE) {
		return nil, errors.New("not a DER-encoded X.509 certificate")
	}
	if err := readSignatureAlgorithm(&cert); err != nil {
		return nil, err
	}
	sig, err := readSignature(&cert)
	if err != nil {
		return nil, err
	}
	if !cert.Empty() {
		return nil, errors.New("unexpected data after the signature")
	}
	c := &IDCert{Raw: bytes.Clone(der), tbs: bytes.Clone(tbs), signature: sig}
	if err := c.parseTBS(tbs); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *IDCert) parseTBS(raw cryptobyte.String) error {
	var tbs, version cryptobyte.String
	var hasVersion bool
	var v int64
	if !raw.ReadASN1(&tbs, asn1.SEQUENCE) ||
		!tbs.ReadOptionalASN1(&version, &hasVersion, asn1.Tag(0).Constructed().ContextSpecific()) {
		return errors.New("malformed tbsCertificate")
	}
	if !hasVersion || !version.ReadASN1Integer(&v) || !version.Empty() || v != 2 {
		return errors.New("not an X.509 v3 certificate")
	}
	if !tbs.ReadASN1Integer(&c.Serial) || c.Serial == 0 || c.Serial >= 1<<63 {
		return errors.New("serial number must be a positive DER INTEGER below 2^63")
	}
	if err := readSignatureAlgorithm(&tbs); err != nil {
		return err
	}
	issuer, err := readName(&tbs)
	if err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	if err := c.readValidity(&tbs); err != nil {
		return err
	}
	subject, err := readName(&tbs)
	if err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	if c.PublicKey, err = readEd25519SPKI(&tbs); err != nil {
		return err
	}
	caps, err := readCertExtensions(&tbs)
	if err != nil {
		return err
	}
	if err := CheckPublicKey(c.PublicKey); err != nil {
		return err
	}
	c.issuer, c.subject = issuer.raw, subject.raw
	if c.Domain, err = issuer.homeServer(); err != nil {
		return fmt.Errorf("issuer: %w", err)
	}
	c.IsRoot = caps.hasBC && caps.bc.ca
	if c.IsRoot {
		return c.checkRoot(caps, subject)
	}
	return c.checkActor(caps, subject)
}

func (c *IDCert) readValidity(tbs *cryptobyte.String) error {
	var validity cryptobyte.String
	if !tbs.ReadASN1(&validity, asn1.SEQUENCE) {
		return errors.New("malformed validity")
	}
	var err error
	if c.NotBefore, err = readTime(&validity); err != nil {
		return fmt.Errorf("notBefore: %w", err)
	}
	if c.NotAfter, err = readTime(&validity); err != nil {
		return fmt.Errorf("notAfter: %w", err)
	}
	if !validity.Empty() {
		return errors.New("malformed validity")
	}
	if c.NotAfter.Before(c.NotBefore) {
		return errors.New("notAfter is before notBefore")
	}
	return nil
}

// readCertExtensions reads what follows the subjectPublicKeyInfo: no unique IDs, then the extensions.
func readCertExtensions(tbs *cryptobyte.String) (capabilitySet, error) {
	for _, tag := range []asn1.Tag{1, 2} {
		if tbs.PeekASN1Tag(tag.ContextSpecific()) || tbs.PeekASN1Tag(tag.ContextSpecific().Constructed()) {
			return capabilitySet{}, errors.New("issuerUniqueID/subjectUniqueID are not used; the session ID belongs in the uniqueIdentifier attribute")
		}
	}
	var outer, exts cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&outer, &present, asn1.Tag(3).Constructed().ContextSpecific()) || !tbs.Empty() {
		return capabilitySet{}, errors.New("malformed tbsCertificate after the public key")
	}
	if !present {
		return capabilitySet{}, errors.New("no extensions; an ID-Cert needs keyUsage (and basicConstraints for a root)")
	}
	if !outer.ReadASN1(&exts, asn1.SEQUENCE) || !outer.Empty() {
		return capabilitySet{}, errors.New("malformed extensions")
	}
	list, err := readExtensions(exts)
	if err != nil {
		return capabilitySet{}, err
	}
	return capabilitiesFromExtensions(list, true, "the certificate")
}

func (c *IDCert) checkRoot(caps capabilitySet, subject *pdn) error {
	switch {
	case caps.bc.pathLen < 0:
		return errors.New("root certificate has no pathLen; polyproto requires pathLen 0")
	case caps.bc.pathLen != 0:
		return fmt.Errorf("root certificate has pathLen %d; polyproto requires 0 (polyproto-rs defaults to 1)", caps.bc.pathLen)
	case !caps.hasKU || caps.ku&kuKeyCertSign == 0:
		return errors.New("root certificate lacks the keyCertSign key usage")
	case !bytes.Equal(c.subject, c.issuer):
		return errors.New("root certificate's subject differs from its issuer")
	}
	_, err := subject.homeServer()
	return err
}

func (c *IDCert) checkActor(caps capabilitySet, subject *pdn) error {
	switch {
	case !caps.hasKU:
		return errors.New("actor certificate has no keyUsage")
	case caps.ku&(kuKeyCertSign|kuCRLSign) != 0:
		return errors.New("actor certificate has keyCertSign or cRLSign")
	case caps.ku&(kuDigitalSignature|kuContentCommitment) == 0:
		return errors.New("actor certificate has neither digitalSignature nor contentCommitment")
	case caps.hasBC && caps.bc.pathLen >= 0:
		return errors.New("actor certificate has a pathLen constraint")
	}
	var err error
	if c.FID, c.SessionID, err = subject.actor(); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	if subject.domain() != c.Domain {
		return fmt.Errorf("subject DCs %q differ from the issuer's %q", subject.domain(), c.Domain)
	}
	return nil
}
