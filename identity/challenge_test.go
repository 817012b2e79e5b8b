package identity

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestNewChallenge(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		c := NewChallenge()
		if len(c) != 64 || strings.Trim(c, challengeAlphabet) != "" {
			t.Fatalf("challenge %q is not 64 characters of [A-Za-z0-9]", c)
		}
		if !strings.ContainsAny(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !strings.ContainsAny(c, "abcdefghijklmnopqrstuvwxyz") || !strings.ContainsAny(c, "0123456789") {
			t.Fatalf("challenge %q lacks a character class", c)
		}
		if seen[c] {
			t.Fatalf("challenge %q repeated", c)
		}
		seen[c] = true
	}
}

func answerBody(t *testing.T, fields map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChallengeAnswerRoundTrip(t *testing.T) {
	root := newTestRoot(t, "polyphony.chat")
	key, cert := issueActor(t, root, "flori@polyphony.chat", "c")
	challenge := NewChallenge()
	body := answerBody(t, map[string]any{
		"challenge": challenge,
		"signature": hex.EncodeToString(ed25519.Sign(key, []byte(challenge))),
		"idCert":    cert.PEM(),
	})
	a, err := DecodeChallengeAnswer(body)
	if err != nil {
		t.Fatal(err)
	}
	if a.Challenge != challenge || len(a.Signature) != 64 || string(a.IDCert) != cert.PEM() {
		t.Fatalf("decoded %+v", a)
	}
	parsed, err := ParseIDCert(a.IDCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(parsed); err != nil {
		t.Errorf("Verify: %v", err)
	}
	a.Challenge = NewChallenge()
	if err := a.Verify(parsed); !errors.Is(err, ErrInvalidAnswer) {
		t.Errorf("answer to another challenge verified: %v", err)
	}
	_, otherCert := issueActor(t, root, "flori@polyphony.chat", "d")
	a.Challenge = challenge
	if err := a.Verify(otherCert); !errors.Is(err, ErrInvalidAnswer) {
		t.Errorf("answer verified with another session's key: %v", err)
	}
}

func TestDecodeChallengeAnswerStrict(t *testing.T) {
	sig := strings.Repeat("ab", 64)
	ch := strings.Repeat("x", 64)
	cert := "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
	valid := func(mod func(m map[string]any)) []byte {
		m := map[string]any{"challenge": ch, "signature": sig, "idCert": cert}
		if mod != nil {
			mod(m)
		}
		return answerBody(t, m)
	}
	tests := []struct {
		name    string
		body    []byte
		wantErr string // "" accepted
	}{
		{name: "valid", body: valid(nil)},
		{name: "upper-case hex", body: valid(func(m map[string]any) { m["signature"] = strings.ToUpper(sig) })},
		{name: "32 characters", body: valid(func(m map[string]any) { m["challenge"] = strings.Repeat("x", 32) })},
		{name: "256 characters", body: valid(func(m map[string]any) { m["challenge"] = strings.Repeat("x", 256) })},
		{name: "32 multi-byte characters", body: valid(func(m map[string]any) { m["challenge"] = strings.Repeat("ü", 32) })},
		{name: "white space around", body: append(append([]byte(" \n"), valid(nil)...), '\n')},

		{name: "31 characters", body: valid(func(m map[string]any) { m["challenge"] = strings.Repeat("x", 31) }), wantErr: "31 characters"},
		{name: "257 characters", body: valid(func(m map[string]any) { m["challenge"] = strings.Repeat("x", 257) }), wantErr: "257 characters"},
		{name: "unknown field", body: valid(func(m map[string]any) { m["fid"] = "a@b" }), wantErr: "unknown field"},
		{name: "field in other case", body: []byte(`{"Challenge":"` + ch + `","signature":"` + sig + `","idCert":"x"}`), wantErr: "unknown field"},
		{name: "duplicate field", body: []byte(`{"challenge":"` + ch + `","challenge":"` + ch + `","signature":"` + sig + `","idCert":"x"}`), wantErr: "appears twice"},
		{name: "missing field", body: []byte(`{"challenge":"` + ch + `","signature":"` + sig + `"}`), wantErr: "missing field \"idCert\""},
		{name: "null value", body: valid(func(m map[string]any) { m["idCert"] = nil }), wantErr: "must be a string"},
		{name: "number value", body: valid(func(m map[string]any) { m["challenge"] = 5 }), wantErr: "must be a string"},
		{name: "object value", body: valid(func(m map[string]any) { m["signature"] = map[string]any{} }), wantErr: "must be a string"},
		{name: "bad hex", body: valid(func(m map[string]any) { m["signature"] = "zz" + sig[2:] }), wantErr: "not hex"},
		{name: "63-byte signature", body: valid(func(m map[string]any) { m["signature"] = sig[:126] }), wantErr: "126 hex digits"},
		{name: "65-byte signature", body: valid(func(m map[string]any) { m["signature"] = sig + "ab" }), wantErr: "130 hex digits"},
		{name: "empty certificate", body: valid(func(m map[string]any) { m["idCert"] = "" }), wantErr: "idCert is empty"},
		{name: "trailing data", body: append(valid(nil), []byte(`{}`)...), wantErr: "after the JSON object"},
		{name: "array", body: []byte(`[]`), wantErr: "not a JSON object"},
		{name: "empty", body: nil, wantErr: "not a JSON object"},
		{name: "truncated", body: valid(nil)[:50], wantErr: "malformed"},
		{name: "too large", body: valid(func(m map[string]any) { m["idCert"] = strings.Repeat("A", 16<<10) }), wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeChallengeAnswer(tt.body)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeChallengeAnswer: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidAnswer) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DecodeChallengeAnswer = %v, want ErrInvalidAnswer containing %q", err, tt.wantErr)
			}
		})
	}
}
