package identity

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// maxCSRSize bounds what ParseCSR reads: an ID-CSR is about 400 bytes of DER.
const maxCSRSize = 8 << 10

// CSR is a parsed, verified actor ID-CSR (polyproto §6.1): the self-signature is valid under strict
// Ed25519 rules, the subject is a consistent actor pDN, and the requested capabilities are ones an actor
// may have.
type CSR struct {
	PublicKey    ed25519.PublicKey
	FID          FID
	SessionID    string
	Capabilities Capabilities
	Raw          []byte // DER
}

// ParseCSR parses an actor's ID-CSR, PEM ("CERTIFICATE REQUEST") or DER. Errors wrap ErrInvalidCSR (and
// ErrWeakKey for a refused key) and say what is wrong.
//
// Requested capabilities are read from a PKCS#9 extensionRequest attribute (what Go, OpenSSL and our
// NewCSR write) and from plain PKCS#10 attributes of type keyUsage (2.5.29.15) and basicConstraints
// (2.5.29.19) (what polyproto-rs writes, see capabilities.go for its encoding quirks). When both are
// present they must agree. Other attributes are ignored, as polyproto-rs does.
func ParseCSR(data []byte) (*CSR, error) {
	csr, caps, err := parseCSR(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	if err := caps.checkActorRequest(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCSR, err)
	}
	return csr, nil
}

// parseCSR does everything but the actor capability policy, so tests can look at what a home-server
// style request asked for.
func parseCSR(data []byte) (*CSR, capabilitySet, error) {
	var none capabilitySet
	if len(data) > maxCSRSize {
		return nil, none, fmt.Errorf("larger than %d bytes", maxCSRSize)
	}
	der, err := decodePEMOrDER(data, "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
	if err != nil {
		return nil, none, err
	}
	input := cryptobyte.String(der)
	var req, infoRaw cryptobyte.String
	if !input.ReadASN1(&req, asn1.SEQUENCE) || !input.Empty() || !req.ReadASN1Element(&infoRaw, asn1.SEQUENCE) {
		return nil, none, errors.New("not a DER-encoded PKCS#10 certification request")
	}
	outer := infoRaw
	var info, attrs cryptobyte.String
	var version int64
	var hasAttrs bool
	if !outer.ReadASN1(&info, asn1.SEQUENCE) || !info.ReadASN1Integer(&version) {
		return nil, none, errors.New("malformed certificationRequestInfo")
	}
	if version != 0 {
		return nil, none, fmt.Errorf("PKCS#10 version %d, want 0 (v1)", version)
	}
	subject, err := readName(&info)
	if err != nil {
		return nil, none, fmt.Errorf("subject: %w", err)
	}
	pub, err := readEd25519SPKI(&info)
	if err != nil {
		return nil, none, err
	}
	if !info.ReadOptionalASN1(&attrs, &hasAttrs, asn1.Tag(0).Constructed().ContextSpecific()) || !info.Empty() {
		return nil, none, errors.New("malformed attributes")
	}
	if err := readSignatureAlgorithm(&req); err != nil {
		return nil, none, err
	}
	sig, err := readSignature(&req)
	if err != nil {
		return nil, none, err
	}
	if !req.Empty() {
		return nil, none, errors.New("unexpected data after the signature")
	}
	if err := CheckPublicKey(pub); err != nil {
		return nil, none, err
	}
	fid, sessionID, err := subject.actor()
	if err != nil {
		return nil, none, fmt.Errorf("subject: %w", err)
	}
	caps, err := readCSRAttributes(attrs)
	if err != nil {
		return nil, none, err
	}
	// Verified last: parsing has no side effects, and this order lets fuzzing reach the parsers above.
	if !VerifyStrict(pub, infoRaw, sig) {
		return nil, none, errors.New("self-signature does not verify with the request's public key")
	}
	return &CSR{
		PublicKey:    pub,
		FID:          fid,
		SessionID:    sessionID,
		Capabilities: caps.public(),
		Raw:          bytes.Clone(der),
	}, caps, nil
}

func readCSRAttributes(attrs cryptobyte.String) (capabilitySet, error) {
	var caps capabilitySet
	seen := map[string]bool{}
	for !attrs.Empty() {
		var attr, oid, values cryptobyte.String
		if !attrs.ReadASN1(&attr, asn1.SEQUENCE) || !attr.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) ||
			!attr.ReadASN1(&values, asn1.SET) || !attr.Empty() {
			return capabilitySet{}, errors.New("malformed attribute")
		}
		if seen[string(oid)] {
			return capabilitySet{}, fmt.Errorf("attribute %s appears twice", describeOID(oid))
		}
		seen[string(oid)] = true
		if err := readCSRAttribute(&caps, string(oid), values); err != nil {
			return capabilitySet{}, err
		}
	}
	return caps, nil
}

func readCSRAttribute(caps *capabilitySet, oid string, values cryptobyte.String) error {
	var value cryptobyte.String
	switch oid {
	case oidExtensionRequest:
		if !values.ReadASN1(&value, asn1.SEQUENCE) || !values.Empty() {
			return errors.New("extensionRequest must hold exactly one list of extensions")
		}
		exts, err := readExtensions(value)
		if err != nil {
			return fmt.Errorf("extensionRequest: %w", err)
		}
		requested, err := capabilitiesFromExtensions(exts, false, "extensionRequest")
		if err != nil {
			return fmt.Errorf("extensionRequest: %w", err)
		}
		if requested.hasKU {
			if err := caps.setKU(requested.ku, "extensionRequest"); err != nil {
				return err
			}
		}
		if requested.hasBC {
			return caps.setBC(requested.bc, "extensionRequest")
		}
	case oidKeyUsage:
		if !values.ReadASN1Element(&value, asn1.BIT_STRING) || !values.Empty() {
			return errors.New("keyUsage attribute must hold exactly one BIT STRING")
		}
		ku, err := parseKeyUsage(value)
		if err != nil {
			return fmt.Errorf("keyUsage attribute: %w", err)
		}
		return caps.setKU(ku, "the keyUsage attribute")
	case oidBasicConstraints:
		if !values.ReadASN1Element(&value, asn1.SEQUENCE) || !values.Empty() {
			return errors.New("basicConstraints attribute must hold exactly one SEQUENCE")
		}
		bc, err := parseBasicConstraints(value)
		if err != nil {
			return fmt.Errorf("basicConstraints attribute: %w", err)
		}
		return caps.setBC(bc, "the basicConstraints attribute")
	}
	return nil
}

// NewCSR builds an actor's ID-CSR in DER, signed with key. It requests digitalSignature twice: in a
// PKCS#9 extensionRequest (read by Go, OpenSSL and us) and as a plain keyUsage attribute (the only
// place polyproto-rs looks). Errors wrap ErrInvalidCSR.
func NewCSR(key ed25519.PrivateKey, fid FID, sessionID string) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrInvalidCSR, len(key), ed25519.PrivateKeySize)
	}
	pub := publicKeyOf(key)
	if err := CheckPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	if _, err := parseFID(fid.String()); err != nil {
		return nil, fmt.Errorf("%w: federation ID %.80q: %v", ErrInvalidCSR, fid.String(), err)
	}
	if err := ValidSessionID(sessionID); err != nil {
		return nil, err
	}
	name, err := actorName(fid, sessionID)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the subject: %v", ErrInvalidCSR, err)
	}
	attrs, err := csrAttributes(kuDigitalSignature)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the attributes: %v", ErrInvalidCSR, err)
	}
	var ib cryptobyte.Builder
	ib.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(name)
		addSPKI(b, pub)
		b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
	})
	info, err := ib.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the request: %v", ErrInvalidCSR, err)
	}
	var rb cryptobyte.Builder
	rb.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(info)
		b.AddBytes([]byte(ed25519AlgID))
		b.AddASN1BitString(ed25519.Sign(key, info))
	})
	der, err := rb.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the request: %v", ErrInvalidCSR, err)
	}
	return der, nil
}

// csrAttributes encodes the extensionRequest and the plain keyUsage attribute, in DER SET OF order.
func csrAttributes(ku keyUsage) ([][]byte, error) {
	var er, ka cryptobyte.Builder
	er.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addOID(b, oidExtensionRequest)
		b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidKeyUsage, func(b *cryptobyte.Builder) { addKeyUsage(b, ku) })
			})
		})
	})
	ka.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addOID(b, oidKeyUsage)
		b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) { addKeyUsage(b, ku) })
	})
	extReq, err := er.Bytes()
	if err != nil {
		return nil, err
	}
	kuAttr, err := ka.Bytes()
	if err != nil {
		return nil, err
	}
	return sortedSet(extReq, kuAttr), nil
}
