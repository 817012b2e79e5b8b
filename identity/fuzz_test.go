package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// The fuzz targets are seeded with real inputs: requests from NewCSR, crypto/x509 and polyproto-rs
// encodings, our certificates, the shared FID cases and a genuine challenge answer. Beyond "never
// panic" they check that whatever parses is self-consistent.

func FuzzParseCSR(f *testing.F) {
	key := newKey(f)
	ours, err := NewCSR(key, mustFID(f, "flori@polyphony.chat"), "client1")
	if err != nil {
		f.Fatal(err)
	}
	subject := rsActorName(f, "flori", []string{"polyphony", "chat"}, "flori@polyphony.chat", "client1")
	f.Add(ours)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: ours}))
	f.Add(csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){
		attribute(testOIDKU, bitString(0, 0x80)), attribute(testOIDBC, rsBasicConstraints(false, nil))}}.der(f))
	f.Add(csrSpec{key: key, subject: subject, attrs: []func(*cryptobyte.Builder){
		attribute(testOIDKU, bitString(5, 0x04)), attribute(testOIDBC, rsBasicConstraints(true, u64(1)))}}.der(f))
	f.Add(goCSR(f, key, "flori", []string{"polyphony", "chat"}, "client1", nil))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			return
		}
		if CheckPublicKey(csr.PublicKey) != nil || ValidSessionID(csr.SessionID) != nil {
			t.Fatalf("accepted CSR with bad key or session: %+v", csr)
		}
		if fid, err := ParseFID(csr.FID.String()); err != nil || fid != csr.FID {
			t.Fatalf("accepted CSR with bad FID %v: %v", csr.FID, err)
		}
		c := csr.Capabilities
		if c.CA || c.KeyCertSign || c.PathLen != -1 || !(c.DigitalSignature || c.ContentCommitment) {
			t.Fatalf("accepted CSR with actor-forbidden capabilities %+v", c)
		}
		again, err := ParseCSR(csr.Raw)
		if err != nil || again.FID != csr.FID || again.SessionID != csr.SessionID || !again.PublicKey.Equal(csr.PublicKey) {
			t.Fatalf("Raw does not re-parse to the same CSR: %v", err)
		}
	})
}

func FuzzParseFID(f *testing.F) {
	c := loadFederationIDCases(f)
	for _, s := range append(c.Valid, c.Invalid...) {
		f.Add(s)
	}
	f.Add("Flori@Polyphony.CHAT")
	f.Add("a@b..c")
	f.Fuzz(func(t *testing.T, s string) {
		fid, err := ParseFID(s)
		if err != nil {
			return
		}
		if len(fid.String()) > maxFIDLen || fid.String() != lowerASCII(s) {
			t.Fatalf("ParseFID(%q) = %q", s, fid)
		}
		again, err := ParseFID(fid.String())
		if err != nil || again != fid {
			t.Fatalf("ParseFID(%q) does not round-trip: %v", fid, err)
		}
		if ValidateDomain(fid.Domain) != nil {
			t.Fatalf("domain %q of an accepted FID fails ValidateDomain", fid.Domain)
		}
	})
}

func FuzzDecodeChallengeAnswer(f *testing.F) {
	root := newTestRoot(f, "polyphony.chat")
	key, cert := issueActor(f, root, "flori@polyphony.chat", "c")
	challenge := NewChallenge()
	body, err := json.Marshal(map[string]string{
		"challenge": challenge,
		"signature": hex.EncodeToString(ed25519.Sign(key, []byte(challenge))),
		"idCert":    cert.PEM(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte(`{"challenge":"` + challenge + `","signature":"00","idCert":"x","x":1}`))
	f.Add([]byte(`{"challenge":null}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeChallengeAnswer(data)
		if err != nil {
			return
		}
		if len(a.Signature) != ed25519.SignatureSize || len(a.IDCert) == 0 || len(a.Challenge) < minChallengeLen {
			t.Fatalf("accepted answer %+v", a)
		}
		_ = a.Verify(cert) // must not panic on any signature
	})
}

func FuzzParseIDCert(f *testing.F) {
	root := newTestRoot(f, "polyphony.chat")
	_, actor := issueActor(f, root, "flori@polyphony.chat", "client1")
	f.Add(root.Cert.Raw)
	f.Add(actor.Raw)
	f.Add([]byte(actor.PEM()))
	f.Add(certSpec{
		serial: 3, issuer: rsHomeServerName(f, "polyphony", "chat"),
		subject:   rsActorName(f, "flori", []string{"polyphony", "chat"}, "flori@polyphony.chat", "c"),
		notBefore: t0, notAfter: t0.Add(time.Hour), pub: actor.PublicKey,
		exts: []func(*cryptobyte.Builder){ext(testOIDBC, true, rsBasicConstraints(false, nil)), ext(testOIDKU, true, bitString(0, 0x80))},
	}.sign(f, root.Key))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseIDCert(data)
		if err != nil {
			return
		}
		if CheckPublicKey(c.PublicKey) != nil || c.Serial == 0 || c.Serial >= 1<<63 || c.NotAfter.Before(c.NotBefore) {
			t.Fatalf("accepted certificate %+v", c)
		}
		if c.IsRoot != (c.FID == FID{}) || c.IsRoot != (c.SessionID == "") {
			t.Fatalf("root/actor fields inconsistent: %+v", c)
		}
		if !c.IsRoot && c.FID.Domain != c.Domain {
			t.Fatalf("actor %v under domain %q", c.FID, c.Domain)
		}
		again, err := ParseIDCert(c.Raw)
		if err != nil || !bytes.Equal(again.Raw, c.Raw) || again.Serial != c.Serial || again.FID != c.FID {
			t.Fatalf("Raw does not re-parse to the same certificate: %v", err)
		}
		_ = c.VerifyIssuedBy(root.Cert) // must not panic
		_ = c.VerifyIssuedBy(c)
	})
}
