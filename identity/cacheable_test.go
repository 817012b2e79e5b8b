package identity

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCacheSigningStringGolden(t *testing.T) {
	inv := int64(1736610000)
	tests := []struct {
		serial uint64
		nb, na int64
		inv    *int64
		want   string
	}{
		{1234, 1736606402, 1736613602, nil, "123417366064021736613602"},
		{1234, 1736606402, 1736613602, &inv, "1234173660640217366136021736610000"},
		{9223372036854775807, 0, 1, nil, "922337203685477580701"},
	}
	for _, tt := range tests {
		if got := cacheSigningString(tt.serial, tt.nb, tt.na, tt.inv); got != tt.want {
			t.Errorf("cacheSigningString(%d, %d, %d, %v) = %q, want %q", tt.serial, tt.nb, tt.na, tt.inv, got, tt.want)
		}
	}
}

func TestCacheableRoundTrip(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	_, actor := issueActor(t, root, "flori@polyphony.chat", "c")
	nb, na := t0, t0.Add(12*time.Hour)
	c := SignCacheable(root, actor, nil, nb, na)

	// The signature is over exactly the documented string, hex-encoded.
	sig, err := hex.DecodeString(c.CacheSignature)
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.FormatUint(actor.Serial, 10) + strconv.FormatInt(nb.Unix(), 10) + strconv.FormatInt(na.Unix(), 10)
	if !ed25519.Verify(root.Key.Public().(ed25519.PublicKey), []byte(want), sig) {
		t.Errorf("cacheSignature is not over %q", want)
	}
	if c.CacheSignature != strings.ToLower(c.CacheSignature) || len(c.CacheSignature) != 128 {
		t.Errorf("cacheSignature %q is not 128 lower-case hex digits", c.CacheSignature)
	}

	got, err := c.Verify(root.Cert, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != actor.Serial || got.FID != actor.FID {
		t.Errorf("Verify returned %+v", got)
	}

	// JSON as the OpenAPI CacheableIDCert.
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"idCertPem", "cacheNotValidBefore", "cacheNotValidAfter", "cacheSignature"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, data)
		}
	}
	if _, ok := fields["invalidatedAt"]; ok || len(fields) != 4 {
		t.Errorf("JSON has extra fields: %s", data)
	}
	var back CacheableCert
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := back.Verify(root.Cert, t0); err != nil {
		t.Errorf("after JSON round trip: %v", err)
	}

	invAt := t0.Add(30 * time.Minute)
	revoked := SignCacheable(root, actor, &invAt, nb, na)
	if revoked.InvalidatedAt == nil || *revoked.InvalidatedAt != invAt.Unix() {
		t.Fatalf("InvalidatedAt = %v", revoked.InvalidatedAt)
	}
	if _, err := revoked.Verify(root.Cert, t0.Add(time.Hour)); err != nil {
		t.Errorf("revoked certificate's metadata should verify (judging it is the caller's job): %v", err)
	}
}

func TestCacheableTampering(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	_, actor := issueActor(t, root, "flori@polyphony.chat", "c")
	_, other := issueActor(t, root, "flori@polyphony.chat", "c") // same subject, other serial
	nb, na := t0, t0.Add(12*time.Hour)
	good := SignCacheable(root, actor, nil, nb, na)
	invAt := t0.Add(time.Minute)
	revoked := SignCacheable(root, actor, &invAt, nb, na)
	now := t0.Add(time.Hour)

	tests := map[string]struct {
		mod     func(c *CacheableCert)
		root    *IDCert
		wantErr error
	}{
		"serial (other certificate)": {mod: func(c *CacheableCert) { c.IDCertPEM = other.PEM() }},
		"window start":               {mod: func(c *CacheableCert) { c.CacheNotValidBefore-- }},
		"window end":                 {mod: func(c *CacheableCert) { c.CacheNotValidAfter++ }},
		"invalidatedAt added":        {mod: func(c *CacheableCert) { at := now.Unix(); c.InvalidatedAt = &at }},
		"invalidatedAt removed":      {mod: func(c *CacheableCert) { *c = revoked; c.InvalidatedAt = nil }},
		"invalidatedAt changed":      {mod: func(c *CacheableCert) { *c = revoked; at := *c.InvalidatedAt + 1; c.InvalidatedAt = &at }},
		"signature digit":            {mod: func(c *CacheableCert) { c.CacheSignature = flipHexDigit(c.CacheSignature) }},
		"signature not hex":          {mod: func(c *CacheableCert) { c.CacheSignature = "zz" + c.CacheSignature[2:] }},
		"signature short":            {mod: func(c *CacheableCert) { c.CacheSignature = c.CacheSignature[:126] }},
		"certificate garbage":        {mod: func(c *CacheableCert) { c.IDCertPEM = "junk" }},
		"root certificate":           {mod: func(c *CacheableCert) { *c = SignCacheable(root, root.Cert, nil, nb, na) }},
		"negative window":            {mod: func(c *CacheableCert) { c.CacheNotValidBefore = -1 }},
		"window end before start":    {mod: func(c *CacheableCert) { c.CacheNotValidAfter = c.CacheNotValidBefore - 1 }},
		"other root":                 {root: newTestRoot(t, "polyphony.chat").Cert},
		"expired window":             {mod: func(c *CacheableCert) { *c = SignCacheable(root, actor, nil, t0.Add(-2*time.Hour), t0) }, wantErr: ErrCacheExpired},
		"window not yet open":        {mod: func(c *CacheableCert) { *c = SignCacheable(root, actor, nil, now.Add(time.Second), now.Add(time.Hour)) }, wantErr: ErrCacheExpired},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := good
			if tt.mod != nil {
				tt.mod(&c)
			}
			r := root.Cert
			if tt.root != nil {
				r = tt.root
			}
			want := tt.wantErr
			if want == nil {
				want = ErrInvalidCert
			}
			if _, err := c.Verify(r, now); !errors.Is(err, want) {
				t.Errorf("Verify = %v, want %v", err, want)
			}
		})
	}
	if _, err := good.Verify(root.Cert, now); err != nil {
		t.Fatalf("untouched copy no longer verifies: %v", err)
	}
	var nilCert *CacheableCert
	if _, err := nilCert.Verify(root.Cert, now); !errors.Is(err, ErrInvalidCert) {
		t.Errorf("nil: %v", err)
	}
	if z := SignCacheable(nil, actor, nil, nb, na); z != (CacheableCert{}) {
		t.Errorf("SignCacheable(nil root) = %+v", z)
	}
}

// TestCacheableResplit shows why Verify limits the window: the signed string has no separators, so the
// same signature also covers a re-split of the digits into a window that never closes.
func TestCacheableResplit(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	_, actor := issueActor(t, root, "flori@polyphony.chat", "c")
	nb, na := t0.Add(-time.Hour), t0.Add(11*time.Hour)
	c := SignCacheable(root, actor, nil, nb, na)

	digits := strconv.FormatInt(c.CacheNotValidBefore, 10) + strconv.FormatInt(c.CacheNotValidAfter, 10)
	forgedAfter, err := strconv.ParseInt(digits[1:], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	forged := c
	forged.CacheNotValidBefore, _ = strconv.ParseInt(digits[:1], 10, 64)
	forged.CacheNotValidAfter = forgedAfter
	msg := cacheSigningString(actor.Serial, forged.CacheNotValidBefore, forged.CacheNotValidAfter, nil)
	sig, _ := hex.DecodeString(c.CacheSignature)
	if !ed25519.Verify(root.Key.Public().(ed25519.PublicKey), []byte(msg), sig) {
		t.Fatal("re-split should carry the same signature; the test premise is wrong")
	}
	if _, err := forged.Verify(root.Cert, t0.Add(100*365*24*time.Hour)); !errors.Is(err, ErrInvalidCert) {
		t.Errorf("re-split window %d..%d accepted: %v", forged.CacheNotValidBefore, forged.CacheNotValidAfter, err)
	}
}

// flipHexDigit changes the first hex digit to another one.
func flipHexDigit(s string) string {
	d := "1"
	if s[0] == '1' {
		d = "2"
	}
	return d + s[1:]
}
