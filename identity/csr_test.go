package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// goCSR makes a request with crypto/x509, the way a Go or OpenSSL client without polyproto knowledge
// would: pDN through ExtraNames (DER order), capabilities in an extensionRequest.
func goCSR(t testing.TB, signer crypto.Signer, local string, dcs []string, sid string, exts []pkix.Extension) []byte {
	t.Helper()
	names := []pkix.AttributeTypeAndValue{
		{Type: testOIDSID, Value: sid},
		{Type: testOIDUID, Value: local + "@" + strings.Join(dcs, ".")},
	}
	for i := len(dcs) - 1; i >= 0; i-- {
		names = append(names, pkix.AttributeTypeAndValue{Type: testOIDDC, Value: dcs[i]})
	}
	names = append(names, pkix.AttributeTypeAndValue{Type: testOIDCN, Value: local})
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{ExtraNames: names},
		ExtraExtensions: exts,
	}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func kuExtension(t testing.TB, bits byte, length int) pkix.Extension {
	t.Helper()
	v, err := encasn1.Marshal(encasn1.BitString{Bytes: []byte{bits}, BitLength: length})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: testOIDKU, Critical: true, Value: v}
}

func TestParseCSR(t *testing.T) {
	key := newKey(t)
	fid := mustFID(t, "flori@polyphony.chat")
	dcs := []string{"polyphony", "chat"}
	subject := rsActorName(t, "flori", dcs, "flori@polyphony.chat", "client1")
	rsDS := attribute(testOIDKU, bitString(0, 0x80))       // polyproto-rs: digitalSignature with 0 unused bits
	rsCC := attribute(testOIDKU, bitString(1, 0x40))       // polyproto-rs: contentCommitment
	rsCertSign := attribute(testOIDKU, bitString(5, 0x04)) // polyproto-rs: keyCertSign, bit inside "unused"
	rsActorBC := attribute(testOIDBC, rsBasicConstraints(false, nil))
	rsHomeBC := attribute(testOIDBC, rsBasicConstraints(true, u64(1)))
	derKU := func(unused, bits byte) func(*cryptobyte.Builder) {
		return ext(testOIDKU, true, bitString(unused, bits))
	}

	ours, err := NewCSR(key, fid, "client1")
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	identityKey := make([]byte, 32)
	identityKey[0] = 1
	multiValued := build(t, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			rdn(testOIDSID, asn1.UTF8String, "client1")(b)
			rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat")(b)
			rdn(testOIDDC, asn1.IA5String, "chat")(b)
			b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) { // DC=polyphony+CN=flori in one RDN
				for _, atv := range [][2]any{{testOIDDC, "polyphony"}, {testOIDCN, "flori"}} {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						addTestOID(b, atv[0].(encasn1.ObjectIdentifier))
						b.AddASN1(asn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(atv[1].(string))) })
					})
				}
			})
		})
	})
	sidLong := strings.Repeat("s", 33)

	okDS := Capabilities{DigitalSignature: true, PathLen: -1}
	tests := []struct {
		name     string
		der      []byte
		wantErr  string
		wantCaps Capabilities
		wantSID  string
	}{
		{name: "NewCSR DER", der: ours, wantCaps: okDS},
		{name: "NewCSR PEM", der: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: ours}), wantCaps: okDS},
		{name: "NewCSR PEM, old block type", der: pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: ours}), wantCaps: okDS},
		{name: "crypto/x509 with extensionRequest", der: goCSR(t, key, "flori", dcs, "client1", []pkix.Extension{kuExtension(t, 0x80, 1)}), wantCaps: okDS},
		{name: "polyproto-rs raw attributes", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS, rsActorBC}}.der(t), wantCaps: okDS},
		{name: "polyproto-rs contentCommitment", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsCC, rsActorBC}}.der(t), wantCaps: Capabilities{ContentCommitment: true, PathLen: -1}},
		{name: "unknown attribute ignored", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS, attribute(testOIDUnknownA, rawTLV([]byte{0x0c, 0x01, 'x'}))}}.der(t), wantCaps: okDS},
		{name: "extra DN attribute ignored", der: csrSpec{key: key, subject: name(t, rdn(testOIDOrgUnit, asn1.UTF8String, "ops"), rdn(testOIDSID, asn1.IA5String, "s"), rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDCN, asn1.PrintableString, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantCaps: okDS, wantSID: "s"},

		{name: "polyproto-rs home server request", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsCertSign, rsHomeBC}}.der(t), wantErr: "CA=true"},
		{name: "keyCertSign in extensionRequest", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){extensionRequest(derKU(0, 0x84))}}.der(t), wantErr: "keyCertSign"},
		{name: "pathLen without CA", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS, attribute(testOIDBC, rsBasicConstraints(false, u64(0)))}}.der(t), wantErr: "pathLen"},
		{name: "no capabilities", der: csrSpec{key: key, subject: subject}.der(t), wantErr: "neither digitalSignature nor contentCommitment"},
		{name: "extensionRequest with SAN", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){extensionRequest(derKU(7, 0x80), ext(testOIDSANs, false, rawTLV([]byte{0x30, 0})))}}.der(t), wantErr: "2.5.29.17 is not allowed"},
		{name: "contradicting keyUsage", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS, extensionRequest(derKU(6, 0x40))}}.der(t), wantErr: "contradicts"},
		{name: "duplicate attribute", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS, rsDS}}.der(t), wantErr: "appears twice"},
		{name: "ECDSA key", der: goCSR(t, ecKey, "flori", dcs, "client1", nil), wantErr: "(ECDSA); only Ed25519"},
		{name: "RSA key", der: goCSR(t, rsaKey, "flori", dcs, "client1", nil), wantErr: "(RSA); only Ed25519"},
		{name: "bad self-signature", der: csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS}, badSig: true}.der(t), wantErr: "self-signature does not verify"},
		{name: "small-order key", der: csrSpec{key: key, pub: identityKey, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "small order"},
		{name: "CN differs from local part", der: csrSpec{key: key, subject: rsActorName(t, "bob", dcs, "flori@polyphony.chat", "c"), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "CN \"bob\" differs"},
		{name: "UID domain differs from DCs", der: csrSpec{key: key, subject: rsActorName(t, "flori", dcs, "flori@polyphony.org", "c"), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "differs from the DCs"},
		{name: "UID subdomain", der: csrSpec{key: key, subject: rsActorName(t, "flori", dcs, "flori@x.polyphony.chat", "c"), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "differs from the DCs"},
		{name: "DCs in reading order", der: csrSpec{key: key, subject: name(t, rdn(testOIDSID, asn1.IA5String, "c"), rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDCN, asn1.UTF8String, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "top-level domain first"},
		{name: "missing session ID", der: csrSpec{key: key, subject: name(t, rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDCN, asn1.UTF8String, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "no uniqueIdentifier"},
		{name: "missing UID", der: csrSpec{key: key, subject: name(t, rdn(testOIDSID, asn1.IA5String, "c"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDCN, asn1.UTF8String, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "no UID"},
		{name: "missing DC", der: csrSpec{key: key, subject: name(t, rdn(testOIDSID, asn1.IA5String, "c"), rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat"), rdn(testOIDCN, asn1.UTF8String, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "no DC"},
		{name: "two CNs", der: csrSpec{key: key, subject: name(t, rdn(testOIDSID, asn1.IA5String, "c"), rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDCN, asn1.UTF8String, "flori"), rdn(testOIDCN, asn1.UTF8String, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "more than one 2.5.4.3 (CN)"},
		{name: "multi-valued RDN", der: csrSpec{key: key, subject: multiValued, attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "multi-valued"},
		{name: "session ID too long", der: csrSpec{key: key, subject: rsActorName(t, "flori", dcs, "flori@polyphony.chat", sidLong), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "longer than 32"},
		{name: "session ID with space", der: csrSpec{key: key, subject: rsActorName(t, "flori", dcs, "flori@polyphony.chat", "my phone"), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "printable ASCII"},
		{name: "upper-case UID", der: csrSpec{key: key, subject: rsActorName(t, "flori", dcs, "Flori@polyphony.chat", "c"), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "local part contains 'F'"},
		{name: "DC with a dot", der: csrSpec{key: key, subject: rsActorName(t, "flori", []string{"polyphony.chat"}, "flori@polyphony.chat", "c"), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "domain label contains"},
		{name: "DN value of wrong type", der: csrSpec{key: key, subject: name(t, rdn(testOIDSID, asn1.OCTET_STRING, "c"), rdn(testOIDUID, asn1.UTF8String, "flori@polyphony.chat"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDCN, asn1.UTF8String, "flori")), attrs: []func(*cryptobyte.Builder){rsDS}}.der(t), wantErr: "must be a UTF8String"},

		{name: "empty", der: nil, wantErr: "not a DER-encoded PKCS#10"},
		{name: "garbage", der: []byte("hello"), wantErr: "not a DER-encoded PKCS#10"},
		{name: "truncated DER", der: ours[:len(ours)-5], wantErr: "not a DER-encoded PKCS#10"},
		{name: "trailing byte", der: append(bytes.Clone(ours), 0), wantErr: "not a DER-encoded PKCS#10"},
		{name: "PEM of a certificate", der: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ours}), wantErr: "PEM block type"},
		{name: "PEM with trailing data", der: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: ours}), "junk"...), wantErr: "after the PEM block"},
		{name: "PEM with bad base64", der: []byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n"), wantErr: "malformed PEM"},
		{name: "too large", der: append(bytes.Repeat([]byte(" "), 9000), ours...), wantErr: "larger than 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := ParseCSR(tt.der)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidCSR) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCSR = %v, want ErrInvalidCSR containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCSR: %v", err)
			}
			wantSID := tt.wantSID
			if wantSID == "" {
				wantSID = "client1"
			}
			if csr.FID != fid || csr.SessionID != wantSID || csr.Capabilities != tt.wantCaps {
				t.Errorf("got FID %v, session %q, caps %+v; want %v, %q, %+v", csr.FID, csr.SessionID, csr.Capabilities, fid, wantSID, tt.wantCaps)
			}
			if !csr.PublicKey.Equal(key.Public()) || len(csr.Raw) == 0 || csr.Raw[0] != 0x30 {
				t.Error("wrong public key or raw bytes")
			}
		})
	}
	t.Run("weak key wraps ErrWeakKey", func(t *testing.T) {
		_, err := ParseCSR(csrSpec{key: key, pub: identityKey, subject: subject, attrs: []func(*cryptobyte.Builder){rsDS}}.der(t))
		if !errors.Is(err, ErrWeakKey) || !errors.Is(err, ErrInvalidCSR) {
			t.Errorf("err = %v, want ErrInvalidCSR and ErrWeakKey", err)
		}
	})
}

// TestParseCSRHomeServerCapabilities checks that polyproto-rs's home server request, with its 8-byte
// pathLen, explicit cA and odd keyUsage encoding, is read correctly before the actor policy refuses it.
func TestParseCSRHomeServerCapabilities(t *testing.T) {
	key := newKey(t)
	der := csrSpec{key: key, subject: rsActorName(t, "flori", []string{"polyphony", "chat"}, "flori@polyphony.chat", "c"), attrs: []func(*cryptobyte.Builder){
		attribute(testOIDKU, bitString(5, 0x04)),
		attribute(testOIDBC, rsBasicConstraints(true, u64(1))),
	}}.der(t)
	csr, caps, err := parseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	want := Capabilities{KeyCertSign: true, CA: true, PathLen: 1}
	if csr.Capabilities != want {
		t.Errorf("capabilities %+v, want %+v", csr.Capabilities, want)
	}
	if err := caps.checkActorRequest(); err == nil {
		t.Error("actor policy accepted a CA request")
	}
}

// TestNewCSRReadableByCryptoX509 checks the request as another implementation sees it.
func TestNewCSRReadableByCryptoX509(t *testing.T) {
	key := newKey(t)
	der, err := NewCSR(key, mustFID(t, "flori@polyphony.chat"), "client1")
	if err != nil {
		t.Fatal(err)
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Errorf("crypto/x509 CheckSignature: %v", err)
	}
	if len(req.Extensions) != 1 || !req.Extensions[0].Id.Equal(testOIDKU) || !req.Extensions[0].Critical ||
		!bytes.Equal(req.Extensions[0].Value, []byte{0x03, 0x02, 0x07, 0x80}) {
		t.Errorf("extensionRequest = %+v, want one critical keyUsage digitalSignature", req.Extensions)
	}
	var rdns pkix.RDNSequence
	if _, err := encasn1.Unmarshal(req.RawSubject, &rdns); err != nil {
		t.Fatal(err)
	}
	assertRDNs(t, rdns, []encasn1.ObjectIdentifier{testOIDSID, testOIDUID, testOIDDC, testOIDDC, testOIDCN},
		[]string{"client1", "flori@polyphony.chat", "chat", "polyphony", "flori"})

	// The plain keyUsage attribute polyproto-rs reads is there too.
	var info struct {
		Raw        encasn1.RawContent
		Version    int
		Subject    encasn1.RawValue
		PublicKey  encasn1.RawValue
		Attributes []struct {
			Type   encasn1.ObjectIdentifier
			Values []encasn1.RawValue `asn1:"set"`
		} `asn1:"tag:0"`
	}
	if _, err := encasn1.Unmarshal(req.RawTBSCertificateRequest, &info); err != nil {
		t.Fatal(err)
	}
	var sawKU bool
	for _, a := range info.Attributes {
		if a.Type.Equal(testOIDKU) && len(a.Values) == 1 && bytes.Equal(a.Values[0].FullBytes, []byte{0x03, 0x02, 0x07, 0x80}) {
			sawKU = true
		}
	}
	if !sawKU {
		t.Error("no plain keyUsage attribute with digitalSignature")
	}
}

func TestNewCSRRefusesBadInput(t *testing.T) {
	key := newKey(t)
	fid := mustFID(t, "flori@polyphony.chat")
	cases := map[string]func() ([]byte, error){
		"short key":         func() ([]byte, error) { return NewCSR(key[:10], fid, "s") },
		"upper-case FID":    func() ([]byte, error) { return NewCSR(key, FID{"Flori", "polyphony.chat"}, "s") },
		"zero FID":          func() ([]byte, error) { return NewCSR(key, FID{}, "s") },
		"empty session":     func() ([]byte, error) { return NewCSR(key, fid, "") },
		"long session":      func() ([]byte, error) { return NewCSR(key, fid, strings.Repeat("x", 33)) },
		"session with tab":  func() ([]byte, error) { return NewCSR(key, fid, "a\tb") },
		"domain with upper": func() ([]byte, error) { return NewCSR(key, FID{"a", "B.c"}, "s") },
	}
	for name, f := range cases {
		if _, err := f(); !errors.Is(err, ErrInvalidCSR) {
			t.Errorf("%s: err = %v, want ErrInvalidCSR", name, err)
		}
	}
	if _, err := NewCSR(ed25519.PrivateKey(nil), fid, "s"); err == nil {
		t.Error("nil key accepted")
	}
}

func assertRDNs(t *testing.T, rdns pkix.RDNSequence, oids []encasn1.ObjectIdentifier, values []string) {
	t.Helper()
	if len(rdns) != len(oids) {
		t.Fatalf("%d RDNs, want %d: %v", len(rdns), len(oids), rdns)
	}
	for i, r := range rdns {
		if len(r) != 1 || !r[0].Type.Equal(oids[i]) || r[0].Value != values[i] {
			t.Errorf("RDN %d = %v, want %v=%q", i, r, oids[i], values[i])
		}
	}
}
