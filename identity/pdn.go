package identity

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// polyproto distinguished names (pDN, core §6.1.1.1).
//
// Order: a DN written "CN=flori,DC=polyphony,DC=chat,UID=flori@polyphony.chat,uniqueIdentifier=client1"
// (RFC 4514 string form, how the spec and polyproto-rs write it) is encoded in DER in the reverse order:
// uniqueIdentifier, UID, DC=chat, DC=polyphony, CN. That is what polyproto-rs produces
// (x509-cert's RdnSequence::from_str reverses) and what it checks (constraints/name.rs reverses the DCs
// before comparing them with the UID's domain), and it is the X.509 convention (most significant RDN
// first). So in DER the DCs run from the top-level domain down; we refuse the other order.
//
// String types: DC is IA5String (RFC 4519), uniqueIdentifier IA5String (polyproto §6.1.1.3 calls the
// session ID an IA5String), CN and UID UTF8String (RFC 5280's DirectoryString choice; polyproto-rs writes
// UTF8String for all but DC). When reading we accept UTF8String, PrintableString and IA5String for all
// four, since the content is ASCII anyway and polyproto-rs only looks at the content.
//
// Other attributes are allowed by the spec ("can have other attributes") and by polyproto-rs; we accept
// and ignore them when reading and never write any.

// pdn is a parsed distinguished name.
type pdn struct {
	raw                   []byte   // the whole Name, as received
	dcs                   []string // DC values in DER order (top-level domain first)
	cn, uid, sid          string
	hasCN, hasUID, hasSID bool
}

// domain joins the DCs in reading order.
func (n *pdn) domain() string {
	labels := slices.Clone(n.dcs)
	slices.Reverse(labels)
	return strings.Join(labels, ".")
}

func readName(s *cryptobyte.String) (*pdn, error) {
	var raw, rdns cryptobyte.String
	if !s.ReadASN1Element(&raw, asn1.SEQUENCE) {
		return nil, errors.New("malformed distinguished name")
	}
	n := &pdn{raw: bytes.Clone(raw)}
	if outer := raw; !outer.ReadASN1(&rdns, asn1.SEQUENCE) {
		return nil, errors.New("malformed distinguished name")
	}
	for !rdns.Empty() {
		var set, atv, oid, value cryptobyte.String
		var tag asn1.Tag
		if !rdns.ReadASN1(&set, asn1.SET) || !set.ReadASN1(&atv, asn1.SEQUENCE) ||
			!atv.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) || !atv.ReadAnyASN1(&value, &tag) || !atv.Empty() {
			return nil, errors.New("malformed distinguished name attribute")
		}
		if !set.Empty() {
			return nil, errors.New("multi-valued RDNs are not allowed in a pDN")
		}
		if err := n.add(string(oid), tag, string(value)); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (n *pdn) add(oid string, tag asn1.Tag, value string) error {
	known := oid == oidCommonName || oid == oidDomainComponent || oid == oidUID || oid == oidUniqueIdentifier
	if !known {
		return nil
	}
	if tag != asn1.UTF8String && tag != asn1.PrintableString && tag != asn1.IA5String {
		return fmt.Errorf("%s must be a UTF8String, PrintableString or IA5String, got tag %d", describeOID([]byte(oid)), tag)
	}
	once := func(has *bool, dst *string) error {
		if *has {
			return fmt.Errorf("more than one %s attribute", describeOID([]byte(oid)))
		}
		*has, *dst = true, value
		return nil
	}
	switch oid {
	case oidCommonName:
		return once(&n.hasCN, &n.cn)
	case oidUID:
		return once(&n.hasUID, &n.uid)
	case oidUniqueIdentifier:
		return once(&n.hasSID, &n.sid)
	default:
		if err := checkLabel(value); err != nil {
			return fmt.Errorf("DC %.80q: %v", value, err)
		}
		n.dcs = append(n.dcs, value)
		return nil
	}
}

// actor checks an actor pDN: exactly one CN, UID and uniqueIdentifier, CN equal to the UID's local part,
// the DCs equal to the UID's domain labels in X.509 order.
func (n *pdn) actor() (FID, string, error) {
	switch {
	case !n.hasCN:
		return FID{}, "", errors.New("subject has no CN (the actor's local name)")
	case !n.hasUID:
		return FID{}, "", errors.New("subject has no UID (the actor's federation ID)")
	case !n.hasSID:
		return FID{}, "", errors.New("subject has no uniqueIdentifier (the session ID)")
	case len(n.dcs) == 0:
		return FID{}, "", errors.New("subject has no DC (domain component)")
	}
	fid, err := parseFID(n.uid)
	if err != nil {
		return FID{}, "", fmt.Errorf("UID %.80q: %v", n.uid, err)
	}
	if n.cn != fid.Local {
		return FID{}, "", fmt.Errorf("CN %.80q differs from the local part of UID %.80q", n.cn, n.uid)
	}
	if err := n.matchDomain(fid.Domain); err != nil {
		return FID{}, "", fmt.Errorf("UID %.80q: %v", n.uid, err)
	}
	if err := checkSessionID(n.sid); err != nil {
		return FID{}, "", fmt.Errorf("uniqueIdentifier %.80q: %v", n.sid, err)
	}
	return fid, n.sid, nil
}

// homeServer checks a home server pDN: DCs only among the pDN attributes (the spec forbids CN,
// polyproto-rs also UID and uniqueIdentifier). It returns the domain.
func (n *pdn) homeServer() (string, error) {
	if n.hasCN || n.hasUID || n.hasSID {
		return "", errors.New("a home server name must not have CN, UID or uniqueIdentifier")
	}
	if len(n.dcs) == 0 {
		return "", errors.New("home server name has no DC (domain component)")
	}
	domain := n.domain()
	if err := checkDomain(domain); err != nil {
		return "", err
	}
	return domain, nil
}

// matchDomain compares the DCs with a domain, naming the wrong order explicitly because that is the
// mistake a hand-built name is most likely to make.
func (n *pdn) matchDomain(domain string) error {
	if n.domain() == domain {
		return nil
	}
	if strings.Join(n.dcs, ".") == domain {
		return fmt.Errorf("DCs are in reading order; DER must list them top-level domain first (DC=%s first)", n.dcs[len(n.dcs)-1])
	}
	return fmt.Errorf("domain %q differs from the DCs %q", domain, n.domain())
}

// actorName encodes the pDN of an actor, in the DER order described at the top of this file.
func actorName(fid FID, sessionID string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addRDN(b, oidUniqueIdentifier, asn1.IA5String, sessionID)
		addRDN(b, oidUID, asn1.UTF8String, fid.String())
		addDCs(b, fid.Domain)
		addRDN(b, oidCommonName, asn1.UTF8String, fid.Local)
	})
	return b.Bytes()
}

// homeServerName encodes the pDN of a home server: its DCs only.
func homeServerName(domain string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { addDCs(b, domain) })
	return b.Bytes()
}

func addDCs(b *cryptobyte.Builder, domain string) {
	labels := strings.Split(domain, ".")
	for i := len(labels) - 1; i >= 0; i-- {
		addRDN(b, oidDomainComponent, asn1.IA5String, labels[i])
	}
}

func addRDN(b *cryptobyte.Builder, oid string, tag asn1.Tag, value string) {
	b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addOID(b, oid)
			b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(value)) })
		})
	})
}
