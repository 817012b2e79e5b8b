package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Challenge strings (polyproto §4.1.1, §4.3): 32-256 UTF-8 characters. We issue 64 characters of
// [A-Za-z0-9] with at least one of each class, as the spec recommends for public servers.
const (
	challengeLen       = 64
	minChallengeLen    = 32
	maxChallengeLen    = 256
	maxAnswerSize      = 16 << 10
	challengeAlphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	challengeRejectMax = 256 - 256%len(challengeAlphabet) // bytes at or above this are redrawn, to stay uniform
)

// NewChallenge returns a fresh 64-character challenge string from crypto/rand.
func NewChallenge() string {
	for {
		var buf [challengeLen]byte
		out := make([]byte, 0, challengeLen)
		for len(out) < challengeLen {
			_, _ = rand.Read(buf[:]) // crypto/rand.Read never returns an error (Go 1.24+)
			for _, c := range buf {
				if int(c) < challengeRejectMax && len(out) < challengeLen {
					out = append(out, challengeAlphabet[int(c)%len(challengeAlphabet)])
				}
			}
		}
		s := string(out)
		if strings.ContainsAny(s, challengeAlphabet[:26]) && strings.ContainsAny(s, challengeAlphabet[26:52]) &&
			strings.ContainsAny(s, challengeAlphabet[52:]) {
			return s
		}
	}
}

// ChallengeAnswer is a foreign actor's signed challenge.
type ChallengeAnswer struct {
	Challenge string
	Signature []byte // Ed25519 over the UTF-8 bytes of Challenge, by the ID-Cert's key
	IDCert    []byte // PEM or DER of the actor's ID-Cert
}

// DecodeChallengeAnswer decodes {"challenge": "...", "signature": "<hex>", "idCert": "<PEM>"}.
// It is strict: at most 16 KiB, exactly these three keys (case-sensitive, each once, all strings),
// nothing after the object, a challenge of 32-256 characters, a signature of exactly 64 bytes. The hex
// signature encoding is polyproto-rs's (the spec says nothing). The certificate is not parsed here; the
// caller runs ParseIDCert and Verify. Errors wrap ErrInvalidAnswer.
func DecodeChallengeAnswer(body []byte) (*ChallengeAnswer, error) {
	a, err := decodeChallengeAnswer(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidAnswer, err)
	}
	return a, nil
}

func decodeChallengeAnswer(body []byte) (*ChallengeAnswer, error) {
	if len(body) > maxAnswerSize {
		return nil, fmt.Errorf("body larger than %d bytes", maxAnswerSize)
	}
	fields, err := decodeStringObject(body, "challenge", "signature", "idCert")
	if err != nil {
		return nil, err
	}
	challenge, sigHex, cert := fields["challenge"], fields["signature"], fields["idCert"]
	if n := utf8.RuneCountInString(challenge); n < minChallengeLen || n > maxChallengeLen {
		return nil, fmt.Errorf("challenge has %d characters, want %d-%d", n, minChallengeLen, maxChallengeLen)
	}
	if len(sigHex) != 2*ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d hex digits, want %d", len(sigHex), 2*ed25519.SignatureSize)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return nil, fmt.Errorf("signature is not hex: %v", err)
	}
	if cert == "" {
		return nil, errors.New("idCert is empty")
	}
	return &ChallengeAnswer{Challenge: challenge, Signature: sig, IDCert: []byte(cert)}, nil
}

// Verify checks the answer's signature over the challenge with cert's key, strictly. Which challenge
// was issued, and whether cert is valid, is the caller's business. Errors wrap ErrInvalidAnswer.
func (a *ChallengeAnswer) Verify(cert *IDCert) error {
	if a == nil || cert == nil {
		return fmt.Errorf("%w: missing answer or certificate", ErrInvalidAnswer)
	}
	if !VerifyStrict(cert.PublicKey, []byte(a.Challenge), a.Signature) {
		return fmt.Errorf("%w: signature does not verify with the key of %s (serial %d)", ErrInvalidAnswer, cert.FID, cert.Serial)
	}
	return nil
}

// decodeStringObject reads a JSON object whose keys are exactly want, each once, with string values.
// encoding/json alone would match keys case-insensitively, keep the last of duplicate keys and accept
// null, which is too loose for a signed login message.
func decodeStringObject(body []byte, want ...string) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("body is not a JSON object")
	}
	out := make(map[string]string, len(want))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		key, _ := tok.(string)
		if !slices.Contains(want, key) {
			return nil, fmt.Errorf("unknown field %.40q", key)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("field %q appears twice", key)
		}
		if tok, err = dec.Token(); err != nil {
			return nil, fmt.Errorf("malformed JSON: %v", err)
		}
		value, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("field %q must be a string", key)
		}
		out[key] = value
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("malformed JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	for _, k := range want {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("missing field %q", k)
		}
	}
	return out, nil
}
