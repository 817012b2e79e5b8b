package mls

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/credentials"
	"github.com/thomas-vilte/mls-go/keypackages"

	"github.com/polyproto-chat/server/identity"
)

// Credential is who a leaf says it is: a polyproto actor's FID and one of its sessions. On the wire
// it is a Basic credential (RFC 9420 section 5.3) whose identity is "<fid>/<session id>"; an FID
// never contains '/', so the first one splits them (a session ID may contain '/').
type Credential struct {
	FID, Session string
}

func (c Credential) String() string { return c.FID + "/" + c.Session }

func parseCredential(cred *credentials.Credential) (Credential, error) {
	if cred == nil || cred.CredentialType != credentials.BasicCredential {
		return Credential{}, fmt.Errorf("%w: credential is not Basic", ErrBinding)
	}
	fid, session, ok := strings.Cut(string(cred.Identity), "/")
	if !ok || session == "" {
		return Credential{}, fmt.Errorf("%w: credential identity %.80q is not <fid>/<session id>", ErrBinding, cred.Identity)
	}
	// Only the canonical spelling: "BOB@a.test" would be bob to a lookup and someone else to
	// every comparison after it.
	if f, err := identity.ParseFID(fid); err != nil || f.String() != fid {
		return Credential{}, fmt.Errorf("%w: credential identity %.80q does not start with a FID in canonical form", ErrBinding, cred.Identity)
	}
	if identity.ValidSessionID(session) != nil {
		return Credential{}, fmt.Errorf("%w: credential identity %.80q names no valid session id", ErrBinding, cred.Identity)
	}
	return Credential{FID: fid, Session: session}, nil
}

// MaxKeyPackageLifetime is the longest not_before..not_after span we accept. The library's own
// default is 1 hour back and 83 days forward; a KeyPackage valid for ever would outlive the ID-Cert
// that binds it.
const MaxKeyPackageLifetime = 100 * 24 * time.Hour

// clockSkew is how far in the future not_before may lie.
const clockSkew = 5 * time.Minute

// KeyPackage is an uploaded KeyPackage, validated, with what the directory keeps about it.
type KeyPackage struct {
	Raw                 []byte // the MLSMessage (wire format mls_key_package) as uploaded, handed out as is
	Ref                 []byte // KeyPackageRef (RFC 9420 section 5.2): how a Welcome and an Add name it
	Suite               Suite
	Credential          Credential
	SignatureKey        ed25519.PublicKey // must be the public key of the session's ID-Cert
	InitKey             []byte            // unique per KeyPackage: what makes it one-time
	NotBefore, NotAfter time.Time
}

// mlsMessageHeader is version mls10 (1) followed by a wire format.
func mlsMessageHeader(wire uint16) []byte { return []byte{0, 1, byte(wire >> 8), byte(wire)} }

const (
	wirePublic     = 1
	wirePrivate    = 2
	wireWelcome    = 3
	wireGroupInfo  = 4
	wireKeyPackage = 5
)

// ParseKeyPackage validates an MLSMessage holding a KeyPackage, as the authentication service must
// before storing or handing it out (RFC 9420 sections 10.1 and 7.3): canonical encoding with nothing
// after it, protocol version, an accepted suite listed in the leaf's capabilities, leaf_node_source
// key_package, init_key different from encryption_key, a Basic credential naming a polyproto
// session, an Ed25519 signature key, both the leaf's and the KeyPackage's signatures, and a
// lifetime that covers now and is no longer than MaxKeyPackageLifetime. Binding the leaf to the
// uploading session (its key equals the session's ID-Cert key) is the caller's check, since only it
// knows the session.
func ParseKeyPackage(msg []byte, now time.Time) (_ *KeyPackage, err error) {
	defer recovered(&err)
	if !bytes.HasPrefix(msg, mlsMessageHeader(wireKeyPackage)) {
		return nil, fmt.Errorf("%w: not an MLSMessage of wire format mls_key_package (want a leading 0001 0005)", ErrMalformed)
	}
	body := msg[4:]
	kp, err := unmarshalKeyPackage(body)
	if err != nil {
		return nil, err
	}
	suite := Suite(kp.CipherSuite)
	if err := suite.Check(); err != nil {
		return nil, err
	}
	if kp.ProtocolVersion != keypackages.MLS10 {
		return nil, fmt.Errorf("%w: protocol version %d", ErrMalformed, kp.ProtocolVersion)
	}
	if err := kp.Validate(); err != nil { // version, source, init != encryption, suite in capabilities, extensions declared
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	ln := kp.LeafNode
	if len(ln.SignatureKeyBytes) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: signature key of %d bytes, want an Ed25519 key", ErrMalformed, len(ln.SignatureKeyBytes))
	}
	cred, err := parseCredential(ln.Credential)
	if err != nil {
		return nil, err
	}
	if err := verifyLeafSignature(ln, suite); err != nil {
		return nil, err
	}
	if err := kp.Verify(suite.lib()); err != nil {
		return nil, fmt.Errorf("%w: KeyPackage: %v", ErrSignature, err)
	}
	if ln.Lifetime == nil {
		return nil, fmt.Errorf("%w: no lifetime", ErrLifetime)
	}
	nb, na := ln.Lifetime.NotBefore, ln.Lifetime.NotAfter
	switch {
	case na <= nb:
		return nil, fmt.Errorf("%w: not_after %d is not after not_before %d", ErrLifetime, na, nb)
	case na-nb > uint64(MaxKeyPackageLifetime/time.Second):
		return nil, fmt.Errorf("%w: valid for %s, more than the %s we accept", ErrLifetime, time.Duration(na-nb)*time.Second, MaxKeyPackageLifetime)
	case int64(nb) > now.Add(clockSkew).Unix() || int64(na) <= now.Unix() || int64(na) < 0:
		return nil, fmt.Errorf("%w: not valid now (not_before %d, not_after %d)", ErrLifetime, nb, na)
	}
	return &KeyPackage{
		Raw:          append([]byte(nil), msg...),
		Ref:          ciphersuite.MakeKeyPackageRef(body, suite.lib().HashFunction()).AsSlice(),
		Suite:        suite,
		Credential:   cred,
		SignatureKey: ed25519.PublicKey(bytes.Clone(ln.SignatureKeyBytes)),
		InitKey:      bytes.Clone(kp.InitKey),
		NotBefore:    time.Unix(int64(nb), 0).UTC(),
		NotAfter:     time.Unix(int64(na), 0).UTC(),
	}, nil
}

// unmarshalKeyPackage parses a bare KeyPackage strictly: the library's parser tolerates trailing
// bytes and skips malformed extensions, so the result must encode back to exactly the input.
func unmarshalKeyPackage(body []byte) (*keypackages.KeyPackage, error) {
	kp, err := keypackages.UnmarshalKeyPackage(body)
	if err != nil {
		return nil, fmt.Errorf("%w: KeyPackage: %v", ErrMalformed, err)
	}
	// The library decodes a credential of an unknown type as nil without an error, and its
	// encoder then dereferences it: check before re-encoding.
	if kp.LeafNode == nil || kp.LeafNode.Credential == nil || kp.LeafNode.Capabilities == nil || !bytes.Equal(kp.Marshal(), body) {
		return nil, fmt.Errorf("%w: KeyPackage is not canonically encoded or has trailing bytes", ErrMalformed)
	}
	return kp, nil
}

// verifyLeafSignature checks the LeafNode's own signature. For a leaf of source key_package the
// LeafNodeTBS is the leaf's encoding without its trailing signature<V> (RFC 9420 section 7.2: no
// group context for this source).
func verifyLeafSignature(ln *keypackages.LeafNode, s Suite) error {
	enc := ln.Marshal()
	tail := len(varint(uint32(len(ln.Signature)))) + len(ln.Signature)
	if len(enc) < tail || !bytes.Equal(enc[len(enc)-len(ln.Signature):], ln.Signature) {
		return fmt.Errorf("%w: leaf node encoding", ErrMalformed)
	}
	pk := ciphersuite.NewMLSSignaturePublicKey(ln.SignatureKeyBytes, s.lib().SignatureScheme())
	if err := ciphersuite.VerifyWithLabel(pk, "LeafNodeTBS", enc[:len(enc)-tail], ciphersuite.NewSignature(ln.Signature)); err != nil {
		return fmt.Errorf("%w: leaf node: %v", ErrSignature, err)
	}
	return nil
}

// varint is RFC 9420 section 2.1.2's variable-length integer.
func varint(n uint32) []byte {
	switch {
	case n < 1<<6:
		return []byte{byte(n)}
	case n < 1<<14:
		return binary.BigEndian.AppendUint16(nil, uint16(n)|0x4000)
	default:
		return binary.BigEndian.AppendUint32(nil, n|0x80000000)
	}
}
