package identity

import (
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Capabilities are the X.509 capabilities an ID-CSR asks for (polyproto §6.1.1.2): the keyUsage bits
// polyproto cares about and basicConstraints.
type Capabilities struct {
	DigitalSignature, ContentCommitment, KeyCertSign, CA bool
	PathLen                                              int // -1 when absent
}

// keyUsage holds KeyUsage bits, bit i = RFC 5280 KeyUsage bit i.
type keyUsage uint16

const (
	kuDigitalSignature keyUsage = 1 << iota
	kuContentCommitment
	kuKeyEncipherment
	kuDataEncipherment
	kuKeyAgreement
	kuKeyCertSign
	kuCRLSign
	kuEncipherOnly
	kuDecipherOnly
)

// maxPathLen bounds a pathLen constraint; polyproto needs 0, anything near this is nonsense.
const maxPathLen = 255

type basicConstraints struct {
	ca      bool
	pathLen int // -1 when absent
}

// capabilitySet is what a CSR or certificate says, with presence flags, before any policy is applied.
type capabilitySet struct {
	ku           keyUsage
	bc           basicConstraints
	hasKU, hasBC bool
}

func (c capabilitySet) public() Capabilities {
	pathLen := -1
	if c.hasBC {
		pathLen = c.bc.pathLen
	}
	return Capabilities{
		DigitalSignature:  c.ku&kuDigitalSignature != 0,
		ContentCommitment: c.ku&kuContentCommitment != 0,
		KeyCertSign:       c.ku&kuKeyCertSign != 0,
		CA:                c.hasBC && c.bc.ca,
		PathLen:           pathLen,
	}
}

// setKU and setBC record a value; a second, different value for the same capability is refused rather
// than silently merged.
func (c *capabilitySet) setKU(ku keyUsage, where string) error {
	if c.hasKU && c.ku != ku {
		return fmt.Errorf("keyUsage in %s contradicts the keyUsage given elsewhere", where)
	}
	c.ku, c.hasKU = ku, true
	return nil
}

func (c *capabilitySet) setBC(bc basicConstraints, where string) error {
	if c.hasBC && c.bc != bc {
		return fmt.Errorf("basicConstraints in %s contradict the basicConstraints given elsewhere", where)
	}
	c.bc, c.hasBC = bc, true
	return nil
}

// checkActorRequest is the policy for an actor's ID-CSR.
func (c capabilitySet) checkActorRequest() error {
	switch {
	case c.hasBC && c.bc.ca:
		return errors.New("requests CA=true; an actor's ID-Cert cannot be a certificate authority")
	case c.ku&kuKeyCertSign != 0:
		return errors.New("requests keyCertSign; only the home server's root may sign certificates")
	case c.ku&kuCRLSign != 0:
		return errors.New("requests cRLSign; only the home server's root may sign revocations")
	case c.hasBC && c.bc.pathLen >= 0:
		return errors.New("requests a pathLen constraint, which only CA certificates carry")
	case c.ku&(kuDigitalSignature|kuContentCommitment) == 0:
		return errors.New("requests neither digitalSignature nor contentCommitment; an actor's ID-Cert needs one (polyproto §6.1.1.2)")
	}
	return nil
}

// parseKeyUsage reads a KeyUsage BIT STRING (the whole element). Every set bit counts and the
// unused-bits count is not trusted: polyproto-rs computes it from the leading instead of the trailing
// zeros (digitalSignature comes out as 03 02 00 80, keyCertSign as 03 02 05 04, where the one set bit
// sits in the "unused" part). Reading every bit is also the safe side: a bit can only make the policy
// checks refuse more.
func parseKeyUsage(der []byte) (keyUsage, error) {
	s := cryptobyte.String(der)
	var content cryptobyte.String
	if !s.ReadASN1(&content, asn1.BIT_STRING) || !s.Empty() || len(content) == 0 {
		return 0, errors.New("malformed keyUsage BIT STRING")
	}
	unused, data := content[0], content[1:]
	if unused > 7 || len(data) == 0 && unused != 0 {
		return 0, errors.New("malformed keyUsage BIT STRING")
	}
	if len(data) > 2 {
		return 0, errors.New("keyUsage longer than the 9 defined bits")
	}
	var ku keyUsage
	for i := 0; i < len(data)*8; i++ {
		if data[i/8]&(0x80>>(i%8)) == 0 {
			continue
		}
		if i > 8 {
			return 0, fmt.Errorf("keyUsage bit %d is undefined", i)
		}
		ku |= 1 << i
	}
	return ku, nil
}

// addKeyUsage writes a DER KeyUsage BIT STRING: trailing zero bits dropped, unused count exact.
func addKeyUsage(b *cryptobyte.Builder, ku keyUsage) {
	var data [2]byte
	for i := 0; i < 9; i++ {
		if ku&(1<<i) != 0 {
			data[i/8] |= 0x80 >> (i % 8)
		}
	}
	n := 2
	for n > 0 && data[n-1] == 0 {
		n--
	}
	content := []byte{0}
	if n > 0 {
		content[0] = byte(bits.TrailingZeros8(data[n-1]))
		content = append(content, data[:n]...)
	}
	b.AddASN1(asn1.BIT_STRING, func(b *cryptobyte.Builder) { b.AddBytes(content) })
}

// parseBasicConstraints reads a BasicConstraints SEQUENCE (the whole element). Two polyproto-rs habits
// are accepted: an explicit cA FALSE (DER would omit the DEFAULT) and a pathLen written as an 8-byte
// big-endian INTEGER (DER would use the fewest bytes). Neither changes the meaning, and the signature
// covers the bytes as sent.
func parseBasicConstraints(der []byte) (basicConstraints, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !s.Empty() {
		return basicConstraints{}, errors.New("malformed basicConstraints")
	}
	bc := basicConstraints{pathLen: -1}
	if seq.PeekASN1Tag(asn1.BOOLEAN) && !seq.ReadASN1Boolean(&bc.ca) {
		return basicConstraints{}, errors.New("malformed basicConstraints cA flag")
	}
	if seq.PeekASN1Tag(asn1.INTEGER) {
		var n cryptobyte.String
		if !seq.ReadASN1(&n, asn1.INTEGER) || len(n) == 0 || len(n) > 8 || n[0]&0x80 != 0 {
			return basicConstraints{}, errors.New("malformed basicConstraints pathLen")
		}
		var v uint64
		for _, c := range n {
			v = v<<8 | uint64(c)
		}
		if v > maxPathLen {
			return basicConstraints{}, fmt.Errorf("basicConstraints pathLen %d is too large", v)
		}
		bc.pathLen = int(v)
	}
	if !seq.Empty() {
		return basicConstraints{}, errors.New("malformed basicConstraints: unexpected content")
	}
	return bc, nil
}

// addBasicConstraints writes DER: cA omitted when false, pathLen only with cA.
func addBasicConstraints(b *cryptobyte.Builder, bc basicConstraints) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if !bc.ca {
			return
		}
		b.AddASN1Boolean(true)
		if bc.pathLen >= 0 {
			b.AddASN1Uint64(uint64(bc.pathLen))
		}
	})
}

type extension struct {
	oid      string
	critical bool
	value    []byte // content of extnValue
}

// readExtensions reads the content of a SEQUENCE OF Extension. A repeated extension is refused
// (RFC 5280 §4.2).
func readExtensions(s cryptobyte.String) ([]extension, error) {
	var exts []extension
	for !s.Empty() {
		var raw, oid cryptobyte.String
		var e extension
		if !s.ReadASN1(&raw, asn1.SEQUENCE) || !raw.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
			return nil, errors.New("malformed extension")
		}
		if raw.PeekASN1Tag(asn1.BOOLEAN) && !raw.ReadASN1Boolean(&e.critical) {
			return nil, errors.New("malformed extension criticality")
		}
		if !raw.ReadASN1Bytes(&e.value, asn1.OCTET_STRING) || !raw.Empty() {
			return nil, errors.New("malformed extension value")
		}
		e.oid = string(oid)
		for _, prev := range exts {
			if prev.oid == e.oid {
				return nil, fmt.Errorf("extension %s appears twice", describeOID(oid))
			}
		}
		exts = append(exts, e)
	}
	return exts, nil
}

// capabilitiesFromExtensions reads keyUsage and basicConstraints from extensions. Anything else is
// refused: ID-Certs carry exactly these two (polyproto-rs refuses others too), and a CSR asking for
// more asks for something we will not issue. Certificates must mark both critical (polyproto §6.1.1.2);
// a CSR only requests, and we issue them critical either way.
func capabilitiesFromExtensions(exts []extension, requireCritical bool, where string) (capabilitySet, error) {
	var c capabilitySet
	for _, e := range exts {
		if e.oid != oidKeyUsage && e.oid != oidBasicConstraints {
			return capabilitySet{}, fmt.Errorf("extension %s is not allowed; ID-Certs carry only basicConstraints and keyUsage", describeOID([]byte(e.oid)))
		}
		if requireCritical && !e.critical {
			return capabilitySet{}, fmt.Errorf("extension %s must be critical", describeOID([]byte(e.oid)))
		}
		if e.oid == oidKeyUsage {
			ku, err := parseKeyUsage(e.value)
			if err != nil {
				return capabilitySet{}, err
			}
			if err := c.setKU(ku, where); err != nil {
				return capabilitySet{}, err
			}
			continue
		}
		bc, err := parseBasicConstraints(e.value)
		if err != nil {
			return capabilitySet{}, err
		}
		if err := c.setBC(bc, where); err != nil {
			return capabilitySet{}, err
		}
	}
	return c, nil
}

// addExtension writes one critical Extension whose value value writes.
func addExtension(b *cryptobyte.Builder, oid string, value cryptobyte.BuilderContinuation) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addOID(b, oid)
		b.AddASN1Boolean(true)
		b.AddASN1(asn1.OCTET_STRING, value)
	})
}
