package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// tbsExtensions walks a certificate's TBS with cryptobyte and returns its extensions as our parser
// reads them.
func tbsExtensions(t *testing.T, rawTBS []byte) []extension {
	t.Helper()
	s := cryptobyte.String(rawTBS)
	var tbs, exts cryptobyte.String
	if !s.ReadASN1(&tbs, asn1.SEQUENCE) {
		t.Fatal("bad TBS")
	}
	for !tbs.Empty() {
		var elem cryptobyte.String
		var tag asn1.Tag
		if !tbs.ReadAnyASN1(&elem, &tag) {
			t.Fatal("bad TBS element")
		}
		if tag == asn1.Tag(3).Constructed().ContextSpecific() && !elem.ReadASN1(&exts, asn1.SEQUENCE) {
			t.Fatal("bad extensions")
		}
	}
	list, err := readExtensions(exts)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestCertProfile(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	key, actor := issueActor(t, root, "flori@polyphony.chat", "client1")

	xroot, err := x509.ParseCertificate(root.Cert.Raw)
	if err != nil {
		t.Fatalf("crypto/x509 cannot parse our root: %v", err)
	}
	xactor, err := x509.ParseCertificate(actor.Raw)
	if err != nil {
		t.Fatalf("crypto/x509 cannot parse our actor certificate: %v", err)
	}
	if err := xactor.CheckSignatureFrom(xroot); err != nil {
		t.Errorf("crypto/x509 CheckSignatureFrom: %v", err)
	}
	if err := xroot.CheckSignatureFrom(xroot); err != nil {
		t.Errorf("crypto/x509 root self-signature: %v", err)
	}

	tests := []struct {
		name           string
		cert           *IDCert
		x              *x509.Certificate
		bc, ku         []byte
		subjectOIDs    []encasn1.ObjectIdentifier
		subjectValues  []string
		wantKeyUsage   x509.KeyUsage
		wantCA         bool
		wantPublicKey  ed25519.PublicKey
		wantFID        FID
		wantSession    string
		wantValidFor   time.Duration
		wantPathLenMax int
	}{
		{
			name: "root", cert: root.Cert, x: xroot,
			bc: []byte{0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00}, ku: []byte{0x03, 0x02, 0x02, 0x04},
			subjectOIDs: []encasn1.ObjectIdentifier{testOIDDC, testOIDDC}, subjectValues: []string{"chat", "polyphony"},
			wantKeyUsage: x509.KeyUsageCertSign, wantCA: true, wantPublicKey: root.Key.Public().(ed25519.PublicKey),
			wantValidFor: 2 * 365 * 24 * time.Hour,
		},
		{
			name: "actor", cert: actor, x: xactor,
			bc: []byte{0x30, 0x00}, ku: []byte{0x03, 0x02, 0x07, 0x80},
			subjectOIDs:   []encasn1.ObjectIdentifier{testOIDSID, testOIDUID, testOIDDC, testOIDDC, testOIDCN},
			subjectValues: []string{"client1", "flori@polyphony.chat", "chat", "polyphony", "flori"},
			wantKeyUsage:  x509.KeyUsageDigitalSignature, wantPublicKey: key.Public().(ed25519.PublicKey),
			wantFID: FID{"flori", "polyphony.chat"}, wantSession: "client1", wantValidFor: 30 * 24 * time.Hour,
			wantPathLenMax: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tt.x
			// crypto/x509's view.
			if len(x.Extensions) != 2 {
				t.Fatalf("crypto/x509 sees %d extensions, want 2: %+v", len(x.Extensions), x.Extensions)
			}
			for i, want := range []struct {
				oid   encasn1.ObjectIdentifier
				value []byte
			}{{testOIDBC, tt.bc}, {testOIDKU, tt.ku}} {
				e := x.Extensions[i]
				if !e.Id.Equal(want.oid) || !e.Critical || !bytes.Equal(e.Value, want.value) {
					t.Errorf("extension %d = %v critical=%v % x; want %v critical % x", i, e.Id, e.Critical, e.Value, want.oid, want.value)
				}
			}
			if x.SubjectKeyId != nil || x.AuthorityKeyId != nil {
				t.Error("key identifiers present")
			}
			if x.Version != 3 || x.PublicKeyAlgorithm != x509.Ed25519 || x.SignatureAlgorithm != x509.PureEd25519 {
				t.Errorf("version %d, key %v, signature %v", x.Version, x.PublicKeyAlgorithm, x.SignatureAlgorithm)
			}
			if x.SerialNumber.Cmp(new(big.Int).SetUint64(tt.cert.Serial)) != 0 || tt.cert.Serial == 0 || tt.cert.Serial >= 1<<63 {
				t.Errorf("serial %v / %d", x.SerialNumber, tt.cert.Serial)
			}
			if x.KeyUsage != tt.wantKeyUsage || x.IsCA != tt.wantCA || !x.BasicConstraintsValid {
				t.Errorf("KeyUsage %b IsCA %v BasicConstraintsValid %v", x.KeyUsage, x.IsCA, x.BasicConstraintsValid)
			}
			if tt.wantCA && (x.MaxPathLen != 0 || !x.MaxPathLenZero) {
				t.Errorf("root MaxPathLen %d zero=%v, want 0", x.MaxPathLen, x.MaxPathLenZero)
			}
			if !tt.wantCA && x.MaxPathLen != tt.wantPathLenMax {
				t.Errorf("actor MaxPathLen %d, want absent", x.MaxPathLen)
			}
			var subject, issuer pkix.RDNSequence
			if _, err := encasn1.Unmarshal(x.RawSubject, &subject); err != nil {
				t.Fatal(err)
			}
			assertRDNs(t, subject, tt.subjectOIDs, tt.subjectValues)
			if _, err := encasn1.Unmarshal(x.RawIssuer, &issuer); err != nil {
				t.Fatal(err)
			}
			assertRDNs(t, issuer, []encasn1.ObjectIdentifier{testOIDDC, testOIDDC}, []string{"chat", "polyphony"})

			// Our parser's view.
			exts := tbsExtensions(t, x.RawTBSCertificate)
			if len(exts) != 2 || exts[0].oid != oidBasicConstraints || exts[1].oid != oidKeyUsage || !exts[0].critical || !exts[1].critical {
				t.Errorf("our parser sees extensions %+v", exts)
			}
			p, err := ParseIDCert(tt.cert.Raw)
			if err != nil {
				t.Fatal(err)
			}
			if p.IsRoot != tt.wantCA || p.FID != tt.wantFID || p.SessionID != tt.wantSession || p.Domain != "polyphony.chat" ||
				!p.PublicKey.Equal(tt.wantPublicKey) || p.Serial != tt.cert.Serial ||
				!p.NotBefore.Equal(t0) || !p.NotAfter.Equal(t0.Add(tt.wantValidFor)) {
				t.Errorf("ParseIDCert = %+v", p)
			}
			fromPEM, err := ParseIDCert([]byte(tt.cert.PEM()))
			if err != nil || !bytes.Equal(fromPEM.Raw, tt.cert.Raw) {
				t.Errorf("PEM round trip: %v", err)
			}
			if !strings.HasPrefix(tt.cert.PEM(), "-----BEGIN CERTIFICATE-----\n") {
				t.Errorf("PEM() = %q", tt.cert.PEM())
			}
			if err := tt.cert.VerifyIssuedBy(root.Cert); err != nil {
				t.Errorf("VerifyIssuedBy(root): %v", err)
			}
		})
	}
}

func TestIssueLimits(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	key := newKey(t)
	der, err := NewCSR(key, mustFID(t, "flori@polyphony.chat"), "c1")
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	rootEnd := root.Cert.NotAfter
	tests := []struct {
		name     string
		csr      *CSR
		serial   uint64
		nb, na   time.Time
		wantErr  error
		contains string
	}{
		{name: "60 days", csr: csr, serial: 1, nb: t0, na: t0.Add(60 * day)},
		{name: "largest serial", csr: csr, serial: 1<<63 - 1, nb: t0, na: t0.Add(day)},
		{name: "sub-second times are truncated", csr: csr, serial: 2, nb: t0.Add(300 * time.Millisecond), na: t0.Add(day)},
		{name: "ends with the root", csr: csr, serial: 3, nb: rootEnd.Add(-day), na: rootEnd},
		{name: "61 days", csr: csr, serial: 4, nb: t0, na: t0.Add(61 * day), wantErr: ErrInvalidCert, contains: "exceeds"},
		{name: "60 days and a second", csr: csr, serial: 4, nb: t0, na: t0.Add(60*day + time.Second), wantErr: ErrInvalidCert, contains: "exceeds"},
		{name: "starts before the root", csr: csr, serial: 5, nb: t0.Add(-time.Second), na: t0.Add(day), wantErr: ErrInvalidCert, contains: "outside the root's"},
		{name: "ends after the root", csr: csr, serial: 6, nb: rootEnd.Add(-day), na: rootEnd.Add(time.Second), wantErr: ErrInvalidCert, contains: "outside the root's"},
		{name: "empty validity", csr: csr, serial: 7, nb: t0, na: t0, wantErr: ErrInvalidCert, contains: "not after"},
		{name: "serial 0", csr: csr, serial: 0, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCert, contains: "serial"},
		{name: "serial 2^63", csr: csr, serial: 1 << 63, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCert, contains: "serial"},
		{name: "other domain", csr: &CSR{PublicKey: csr.PublicKey, FID: FID{"flori", "evil.example"}, SessionID: "c", Capabilities: csr.Capabilities}, serial: 8, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCSR, contains: "this home server is \"polyphony.chat\""},
		{name: "CA capability", csr: &CSR{PublicKey: csr.PublicKey, FID: csr.FID, SessionID: "c", Capabilities: Capabilities{DigitalSignature: true, CA: true, PathLen: -1}}, serial: 9, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCSR, contains: "CA=true"},
		{name: "keyCertSign capability", csr: &CSR{PublicKey: csr.PublicKey, FID: csr.FID, SessionID: "c", Capabilities: Capabilities{DigitalSignature: true, KeyCertSign: true, PathLen: -1}}, serial: 9, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCSR, contains: "keyCertSign"},
		{name: "no signing capability", csr: &CSR{PublicKey: csr.PublicKey, FID: csr.FID, SessionID: "c", Capabilities: Capabilities{PathLen: -1}}, serial: 9, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCSR, contains: "neither"},
		{name: "bad session", csr: &CSR{PublicKey: csr.PublicKey, FID: csr.FID, SessionID: "", Capabilities: csr.Capabilities}, serial: 9, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCSR, contains: "session"},
		{name: "weak key", csr: &CSR{PublicKey: make(ed25519.PublicKey, 32), FID: csr.FID, SessionID: "c", Capabilities: csr.Capabilities}, serial: 9, nb: t0, na: t0.Add(day), wantErr: ErrWeakKey},
		{name: "nil request", csr: nil, serial: 9, nb: t0, na: t0.Add(day), wantErr: ErrInvalidCSR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := root.Issue(tt.csr, tt.serial, tt.nb, tt.na)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.contains) {
					t.Fatalf("Issue = %v, want %v containing %q", err, tt.wantErr, tt.contains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cert.Serial != tt.serial || !cert.NotBefore.Equal(tt.nb.Truncate(time.Second)) || cert.VerifyIssuedBy(root.Cert) != nil {
				t.Errorf("issued %+v", cert)
			}
		})
	}

	t.Run("contentCommitment only", func(t *testing.T) {
		cc := *csr
		cc.Capabilities = Capabilities{ContentCommitment: true, PathLen: -1}
		cert, err := root.Issue(&cc, 10, t0, t0.Add(day))
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(cert.Raw)
		if err != nil || x.KeyUsage != x509.KeyUsageContentCommitment {
			t.Errorf("KeyUsage %v, %v", x.KeyUsage, err)
		}
	})
	t.Run("both signing bits give digitalSignature", func(t *testing.T) {
		both := *csr
		both.Capabilities = Capabilities{DigitalSignature: true, ContentCommitment: true, PathLen: -1}
		cert, err := root.Issue(&both, 11, t0, t0.Add(day))
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(cert.Raw)
		if err != nil || x.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Errorf("KeyUsage %v, %v", x.KeyUsage, err)
		}
	})
	t.Run("hand-written Capabilities with zero PathLen", func(t *testing.T) {
		lit := &CSR{PublicKey: csr.PublicKey, FID: csr.FID, SessionID: "c9", Capabilities: Capabilities{DigitalSignature: true}}
		if _, err := root.Issue(lit, 13, t0, t0.Add(day)); err != nil {
			t.Errorf("Issue: %v", err)
		}
	})
	t.Run("key of another root", func(t *testing.T) {
		other := newTestRoot(t, "polyphony.chat")
		mixed := &Root{Key: other.Key, Cert: root.Cert}
		if _, err := mixed.Issue(csr, 12, t0, t0.Add(day)); !errors.Is(err, ErrInvalidCert) {
			t.Errorf("Issue with a foreign key = %v", err)
		}
	})
}

func TestNewRoot(t *testing.T) {
	if _, err := NewRoot("Polyphony.chat", t0, time.Hour); !errors.Is(err, ErrInvalidFID) {
		t.Errorf("upper-case domain: %v", err)
	}
	if _, err := NewRoot("polyphony.chat", t0, 0); !errors.Is(err, ErrInvalidCert) {
		t.Errorf("zero validity: %v", err)
	}
	// Past 2049 the validity switches to GeneralizedTime (RFC 5280 §4.1.2.5).
	late := time.Date(2049, 6, 1, 0, 0, 0, 0, time.UTC)
	r, err := NewRoot("localhost", late, 2*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	x, err := x509.ParseCertificate(r.Cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if !x.NotAfter.Equal(r.Cert.NotAfter) || r.Cert.NotAfter.Year() != 2051 || !bytes.Contains(r.Cert.Raw, []byte("20510601000000Z")) {
		t.Errorf("NotAfter %v / %v", x.NotAfter, r.Cert.NotAfter)
	}
	if r.Cert.Domain != "localhost" || r.Cert.VerifyIssuedBy(r.Cert) != nil {
		t.Errorf("single-label root: %+v", r.Cert)
	}
}

func TestVerifyIssuedBy(t *testing.T) {
	rootA := newTestRoot(t, "polyphony.chat")
	rootB := newTestRoot(t, "polyphony.chat")
	rootC := newTestRoot(t, "example.com")
	_, actor := issueActor(t, rootA, "flori@polyphony.chat", "client1")

	if err := actor.VerifyIssuedBy(rootA.Cert); err != nil {
		t.Fatalf("genuine: %v", err)
	}
	if err := rootA.Cert.VerifyIssuedBy(rootA.Cert); err != nil {
		t.Errorf("root self-signature: %v", err)
	}
	if err := rootA.Cert.VerifyIssuedBy(rootB.Cert); err == nil {
		t.Error("root A verified as issued by root B")
	}
	cases := map[string]struct {
		cert, root *IDCert
		contains   string
	}{
		"same domain, other key": {actor, rootB.Cert, "does not verify"},
		"other domain":           {actor, rootC.Cert, "not by the root of \"example.com\""},
		"actor as issuer":        {actor, actor, "not a root"},
		"no root":                {actor, nil, "no root"},
	}
	for name, c := range cases {
		if err := c.cert.VerifyIssuedBy(c.root); !errors.Is(err, ErrInvalidCert) || !strings.Contains(err.Error(), c.contains) {
			t.Errorf("%s: %v, want ErrInvalidCert containing %q", name, err, c.contains)
		}
	}

	t.Run("tampered", func(t *testing.T) {
		badSig := bytes.Clone(actor.Raw)
		badSig[len(badSig)-1] ^= 1
		i := bytes.Index(actor.Raw, []byte("client1"))
		badTBS := bytes.Clone(actor.Raw)
		badTBS[i+6] = '2'
		for name, raw := range map[string][]byte{"signature": badSig, "session ID": badTBS} {
			c, err := ParseIDCert(raw)
			if err != nil {
				t.Fatalf("%s: tampered certificate no longer parses, test is wrong: %v", name, err)
			}
			if err := c.VerifyIssuedBy(rootA.Cert); !errors.Is(err, ErrInvalidCert) {
				t.Errorf("%s: tampered certificate verified: %v", name, err)
			}
		}
	})

	t.Run("validity outside the root", func(t *testing.T) {
		raw := certSpec{
			serial: 9, issuer: rsHomeServerName(t, "polyphony", "chat"),
			subject:   rsActorName(t, "flori", []string{"polyphony", "chat"}, "flori@polyphony.chat", "c"),
			notBefore: t0.Add(-time.Hour), notAfter: t0.Add(time.Hour), pub: actor.PublicKey,
			exts: []func(*cryptobyte.Builder){ext(testOIDBC, true, rawTLV([]byte{0x30, 0})), ext(testOIDKU, true, bitString(7, 0x80))},
		}.sign(t, rootA.Key)
		c, err := ParseIDCert(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.VerifyIssuedBy(rootA.Cert); !errors.Is(err, ErrInvalidCert) || !strings.Contains(err.Error(), "outside the root's") {
			t.Errorf("VerifyIssuedBy = %v", err)
		}
	})

	t.Run("hand-built IDCert is re-parsed", func(t *testing.T) {
		c := &IDCert{Raw: actor.Raw, Serial: 1, IsRoot: true}
		if err := c.VerifyIssuedBy(&IDCert{Raw: rootA.Cert.Raw}); err != nil {
			t.Errorf("VerifyIssuedBy on a literal: %v", err)
		}
		if err := (&IDCert{Raw: []byte("junk")}).VerifyIssuedBy(rootA.Cert); !errors.Is(err, ErrInvalidCert) {
			t.Errorf("junk Raw: %v", err)
		}
	})
}

func TestValidAt(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	_, actor := issueActor(t, root, "flori@polyphony.chat", "c")
	for _, at := range []time.Time{actor.NotBefore, actor.NotAfter, t0.Add(time.Hour)} {
		if err := actor.ValidAt(at); err != nil {
			t.Errorf("ValidAt(%v) = %v", at, err)
		}
	}
	for _, at := range []time.Time{actor.NotBefore.Add(-time.Second), actor.NotAfter.Add(time.Second)} {
		if err := actor.ValidAt(at); !errors.Is(err, ErrExpired) {
			t.Errorf("ValidAt(%v) = %v, want ErrExpired", at, err)
		}
	}
}

// TestParseIDCertProfile feeds hand-built certificates, including polyproto-rs encodings, to the parser.
func TestParseIDCertProfile(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	actorKey := newKey(t)
	actorPub := actorKey.Public().(ed25519.PublicKey)
	issuer := rsHomeServerName(t, "polyphony", "chat")
	subject := rsActorName(t, "flori", []string{"polyphony", "chat"}, "flori@polyphony.chat", "client1")
	derBC := ext(testOIDBC, true, rawTLV([]byte{0x30, 0}))
	derDS := ext(testOIDKU, true, bitString(7, 0x80))
	rootKU := ext(testOIDKU, true, bitString(2, 0x04))
	rootBC := func(pathLen uint64) func(*cryptobyte.Builder) {
		return ext(testOIDBC, true, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Boolean(true); b.AddASN1Uint64(pathLen) })
		})
	}
	actorSpec := func(mod func(*certSpec)) []byte {
		s := certSpec{serial: 42, issuer: issuer, subject: subject, notBefore: t0, notAfter: t0.Add(time.Hour), pub: actorPub,
			exts: []func(*cryptobyte.Builder){derBC, derDS}}
		if mod != nil {
			mod(&s)
		}
		return s.sign(t, root.Key)
	}
	rootKey := newKey(t)
	rootSpec := func(mod func(*certSpec)) []byte {
		s := certSpec{serial: 7, issuer: issuer, subject: issuer, notBefore: t0, notAfter: t0.Add(time.Hour),
			pub: rootKey.Public().(ed25519.PublicKey), exts: []func(*cryptobyte.Builder){rootBC(0), rootKU}}
		if mod != nil {
			mod(&s)
		}
		return s.sign(t, rootKey)
	}
	exts := func(e ...func(*cryptobyte.Builder)) func(*certSpec) {
		return func(s *certSpec) { s.exts = e }
	}
	utc := func(nb, na string) func(*certSpec) {
		return func(s *certSpec) {
			s.validity = func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.UTCTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(nb)) })
					b.AddASN1(asn1.UTCTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(na)) })
				})
			}
		}
	}

	goRoot := func() []byte {
		names := []pkix.AttributeTypeAndValue{{Type: testOIDDC, Value: "chat"}, {Type: testOIDDC, Value: "polyphony"}}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{ExtraNames: names}, NotBefore: t0, NotAfter: t0.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}()
	ecRoot := func() []byte {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(5), Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: testOIDDC, Value: "chat"}}},
			NotBefore: t0, NotAfter: t0.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ec.Public(), ec)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}()

	tests := []struct {
		name    string
		der     []byte
		wantErr string // "" accepted
		x509OK  bool   // crypto/x509 parses it too (checked for accepted ones)
	}{
		{name: "DER actor", der: actorSpec(nil), x509OK: true},
		{name: "polyproto-rs actor: explicit cA FALSE, keyUsage with 0 unused bits", der: actorSpec(exts(
			ext(testOIDBC, true, rsBasicConstraints(false, nil)), ext(testOIDKU, true, bitString(0, 0x80)))), x509OK: true},
		{name: "actor without basicConstraints", der: actorSpec(exts(derDS)), x509OK: true},
		{name: "actor with contentCommitment", der: actorSpec(exts(derBC, ext(testOIDKU, true, bitString(6, 0x40)))), x509OK: true},
		{name: "DER root", der: rootSpec(nil), x509OK: true},
		{name: "polyproto-rs root with pathLen 0 as 8 bytes", der: rootSpec(exts(
			ext(testOIDBC, true, rsBasicConstraints(true, u64(0))), ext(testOIDKU, true, bitString(5, 0x04))))},

		{name: "polyproto-rs default root, pathLen 1", der: rootSpec(exts(ext(testOIDBC, true, rsBasicConstraints(true, u64(1))), rootKU)), wantErr: "pathLen 1; polyproto requires 0"},
		{name: "root without pathLen", der: rootSpec(exts(ext(testOIDBC, true, rsBasicConstraints(true, nil)), rootKU)), wantErr: "no pathLen"},
		{name: "root without keyCertSign", der: rootSpec(exts(rootBC(0), derDS)), wantErr: "keyCertSign"},
		{name: "root without keyUsage", der: rootSpec(exts(rootBC(0))), wantErr: "keyCertSign"},
		{name: "root with CN", der: rootSpec(func(s *certSpec) {
			s.subject = name(t, rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"), rdn(testOIDCN, asn1.UTF8String, "root"))
			s.issuer = s.subject
		}), wantErr: "must not have CN"},
		{name: "root subject differs from issuer", der: rootSpec(func(s *certSpec) { s.subject = rsHomeServerName(t, "other", "chat") }), wantErr: "subject differs from its issuer"},
		{name: "crypto/x509 root with key identifiers", der: goRoot, wantErr: "2.5.29.14 is not allowed"},
		{name: "ECDSA root", der: ecRoot, wantErr: "only Ed25519"},

		{name: "no extensions", der: actorSpec(func(s *certSpec) { s.noExtensions = true }), wantErr: "no extensions"},
		{name: "non-critical keyUsage", der: actorSpec(exts(derBC, ext(testOIDKU, false, bitString(7, 0x80)))), wantErr: "must be critical"},
		{name: "non-critical basicConstraints", der: actorSpec(exts(ext(testOIDBC, false, rawTLV([]byte{0x30, 0})), derDS)), wantErr: "must be critical"},
		{name: "subject key identifier", der: actorSpec(exts(derBC, derDS, ext(testOIDSKI, false, rawTLV([]byte{0x04, 0x01, 0x01})))), wantErr: "2.5.29.14 is not allowed"},
		{name: "duplicate keyUsage", der: actorSpec(exts(derDS, derDS)), wantErr: "appears twice"},
		{name: "actor with keyCertSign", der: actorSpec(exts(derBC, ext(testOIDKU, true, bitString(2, 0x84)))), wantErr: "keyCertSign"},
		{name: "actor without keyUsage", der: actorSpec(exts(derBC)), wantErr: "no keyUsage"},
		{name: "actor with only keyAgreement", der: actorSpec(exts(derBC, ext(testOIDKU, true, bitString(3, 0x08)))), wantErr: "neither digitalSignature"},
		{name: "actor with pathLen", der: actorSpec(exts(ext(testOIDBC, true, rsBasicConstraints(false, u64(0))), derDS)), wantErr: "pathLen"},
		{name: "keyUsage bit 9", der: actorSpec(exts(derBC, ext(testOIDKU, true, bitString(6, 0x80, 0x40)))), wantErr: "undefined"},
		{name: "CN differs from UID", der: actorSpec(func(s *certSpec) {
			s.subject = rsActorName(t, "eve", []string{"polyphony", "chat"}, "flori@polyphony.chat", "c")
		}), wantErr: "CN \"eve\" differs"},
		{name: "subject domain differs from issuer", der: actorSpec(func(s *certSpec) {
			s.subject = rsActorName(t, "flori", []string{"polyphony", "org"}, "flori@polyphony.org", "c")
		}), wantErr: "differ from the issuer's"},
		{name: "issuer with UID", der: actorSpec(func(s *certSpec) {
			s.issuer = name(t, rdn(testOIDUID, asn1.UTF8String, "a@chat"), rdn(testOIDDC, asn1.IA5String, "chat"), rdn(testOIDDC, asn1.IA5String, "polyphony"))
		}), wantErr: "issuer: a home server name must not have"},
		{name: "session ID too long", der: actorSpec(func(s *certSpec) {
			s.subject = rsActorName(t, "flori", []string{"polyphony", "chat"}, "flori@polyphony.chat", strings.Repeat("x", 33))
		}), wantErr: "longer than 32"},
		{name: "serial 0", der: actorSpec(func(s *certSpec) { s.serial = 0 }), wantErr: "serial number"},
		{name: "serial 2^63", der: actorSpec(func(s *certSpec) { s.serial = 1 << 63 }), wantErr: "serial number"},
		{name: "subjectUniqueID", der: actorSpec(func(s *certSpec) {
			s.extra = func(b *cryptobyte.Builder) {
				b.AddASN1(asn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte{0, 'c'}) })
			}
		}), wantErr: "uniqueIdentifier attribute"},
		{name: "notAfter before notBefore", der: actorSpec(func(s *certSpec) { s.notAfter = t0.Add(-time.Hour) }), wantErr: "notAfter is before notBefore"},
		{name: "UTCTime without seconds", der: actorSpec(utc("2603011200Z", "260302120000Z")), wantErr: "notBefore"},
		{name: "UTCTime with offset", der: actorSpec(utc("260301120000+0100", "260302120000Z")), wantErr: "notBefore"},
		{name: "UTCTime 31 June", der: actorSpec(utc("260301120000Z", "260631120000Z")), wantErr: "out of range"},
		{name: "weak key", der: actorSpec(func(s *certSpec) { s.pub = make([]byte, 32) }), wantErr: "small order"},
		{name: "garbage", der: []byte{0x30, 0x03, 0x02, 0x01, 0x00}, wantErr: "not a DER-encoded X.509"},
		{name: "too large", der: bytes.Repeat([]byte{' '}, maxCertSize+1), wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseIDCert(tt.der)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidCert) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseIDCert = %v, want ErrInvalidCert containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseIDCert: %v", err)
			}
			if _, xerr := x509.ParseCertificate(tt.der); (xerr == nil) != tt.x509OK {
				t.Errorf("crypto/x509 parse error %v, expected ok=%v", xerr, tt.x509OK)
			}
			if !c.IsRoot {
				if err := c.VerifyIssuedBy(root.Cert); err != nil {
					t.Errorf("VerifyIssuedBy: %v", err)
				}
			} else if err := c.VerifyIssuedBy(c); err != nil {
				t.Errorf("self-signature: %v", err)
			}
		})
	}
}

func TestReadTime(t *testing.T) {
	tests := []struct {
		tag     asn1.Tag
		content string
		want    time.Time
	}{
		{asn1.UTCTime, "491231235959Z", time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)},
		{asn1.UTCTime, "500101000000Z", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)},
		{asn1.GeneralizedTime, "20500101000000Z", time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)},
		{asn1.GeneralizedTime, "20240229120000Z", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
		{asn1.UTCTime, "2506011200Z", time.Time{}},
		{asn1.UTCTime, "250601120000+0100", time.Time{}},
		{asn1.UTCTime, "250601120060Z", time.Time{}},
		{asn1.UTCTime, "25060112000aZ", time.Time{}},
		{asn1.UTCTime, "250601120000z", time.Time{}},
		{asn1.GeneralizedTime, "20230229120000Z", time.Time{}},
		{asn1.GeneralizedTime, "20500101000000.5Z", time.Time{}},
		{asn1.OCTET_STRING, "250601120000Z", time.Time{}},
	}
	for _, tt := range tests {
		der := build(t, func(b *cryptobyte.Builder) {
			b.AddASN1(tt.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(tt.content)) })
		})
		s := cryptobyte.String(der)
		got, err := readTime(&s)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("readTime(%q) = %v, want error", tt.content, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("readTime(%q) = %v, %v; want %v", tt.content, got, err, tt.want)
		}
	}
}

func TestOIDConstants(t *testing.T) {
	for _, c := range []struct {
		got  string
		want encasn1.ObjectIdentifier
	}{
		{oidEd25519, testOIDEd25519}, {oidCommonName, testOIDCN}, {oidDomainComponent, testOIDDC},
		{oidUID, testOIDUID}, {oidUniqueIdentifier, testOIDSID}, {oidKeyUsage, testOIDKU},
		{oidBasicConstraints, testOIDBC}, {oidExtensionRequest, testOIDExtReq},
	} {
		der, err := encasn1.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if string(der[2:]) != c.got {
			t.Errorf("OID %v: constant % x, want % x", c.want, c.got, der[2:])
		}
	}
}
