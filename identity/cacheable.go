package identity

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// maxCacheWindow is the longest cache window Verify accepts. polyproto recommends 1-12 hours. The
// limit is what makes the signature unambiguous: the signed string has no separators, so
// serial 7, window 1736606402..1736613602 signs "717366064021736613602", which also reads as the window
// 1..7366064021736613602 (forever) with the same signature. Every such re-split of ten-digit timestamps
// yields a window of decades or an empty one, so refusing long windows refuses all of them.
// polyproto-rs has no such limit.
const maxCacheWindow = 30 * 24 * 60 * 60

// CacheableCert is an actor ID-Cert with the home server's signed cache metadata (polyproto §6.4.1;
// JSON as the OpenAPI CacheableIDCert). Timestamps are UNIX seconds.
//
// cacheSignature is Ed25519 by the home server's root key over the UTF-8 bytes of
// decimal(serial) || decimal(cacheNotValidBefore) || decimal(cacheNotValidAfter) || decimal(invalidatedAt)
// (the last part empty when absent), hex-encoded: what polyproto-rs computes. The spec's formula starts
// with "cacheSignature", a typo for the serial; its prose names the fields cacheValidNotBefore/After and
// types them as strings, while the OpenAPI and polyproto-rs use cacheNotValidBefore/After as numbers.
// The OpenAPI's 32-character limit on cacheSignature cannot hold an Ed25519 signature (128 hex digits)
// and is ignored.
type CacheableCert struct {
	IDCertPEM           string `json:"idCertPem"`
	InvalidatedAt       *int64 `json:"invalidatedAt,omitempty"`
	CacheNotValidBefore int64  `json:"cacheNotValidBefore"`
	CacheNotValidAfter  int64  `json:"cacheNotValidAfter"`
	CacheSignature      string `json:"cacheSignature"`
}

// SignCacheable wraps cert with cache metadata signed by root. invalidatedAt is nil for a certificate
// that was not revoked early. Windows longer than 30 days are signed but never verify (see
// maxCacheWindow). With a nil root or cert it returns the zero CacheableCert, which never
// verifies.
func SignCacheable(root *Root, cert *IDCert, invalidatedAt *time.Time, notBefore, notAfter time.Time) CacheableCert {
	if root == nil || cert == nil || len(root.Key) != ed25519.PrivateKeySize {
		return CacheableCert{}
	}
	c := CacheableCert{
		IDCertPEM:           cert.PEM(),
		CacheNotValidBefore: notBefore.Unix(),
		CacheNotValidAfter:  notAfter.Unix(),
	}
	if invalidatedAt != nil {
		at := invalidatedAt.Unix()
		c.InvalidatedAt = &at
	}
	msg := cacheSigningString(cert.Serial, c.CacheNotValidBefore, c.CacheNotValidAfter, c.InvalidatedAt)
	c.CacheSignature = hex.EncodeToString(ed25519.Sign(root.Key, []byte(msg)))
	return c
}

// Verify checks c against the issuing home server's root certificate: the cacheSignature (strictly),
// the ID-Cert's profile, that root issued it, and that now lies within the cache window (ErrCacheExpired
// otherwise). It returns the certificate. InvalidatedAt is data for the caller to judge (a message sent
// before the invalidation may still be valid), so Verify does not look at it beyond the signature.
// Other errors wrap ErrInvalidCert.
func (c *CacheableCert) Verify(root *IDCert, now time.Time) (*IDCert, error) {
	if c == nil || root == nil {
		return nil, fmt.Errorf("%w: missing cacheable certificate or root", ErrInvalidCert)
	}
	switch {
	case c.CacheNotValidBefore < 0 || c.CacheNotValidAfter < c.CacheNotValidBefore:
		return nil, fmt.Errorf("%w: cache window %d..%d is malformed", ErrInvalidCert, c.CacheNotValidBefore, c.CacheNotValidAfter)
	case c.CacheNotValidAfter-c.CacheNotValidBefore > maxCacheWindow:
		return nil, fmt.Errorf("%w: cache window %d..%d is longer than %d seconds", ErrInvalidCert, c.CacheNotValidBefore, c.CacheNotValidAfter, maxCacheWindow)
	case c.InvalidatedAt != nil && *c.InvalidatedAt < 0:
		return nil, fmt.Errorf("%w: invalidatedAt %d is negative", ErrInvalidCert, *c.InvalidatedAt)
	case len(c.CacheSignature) != 2*ed25519.SignatureSize:
		return nil, fmt.Errorf("%w: cacheSignature is %d hex digits, want %d", ErrInvalidCert, len(c.CacheSignature), 2*ed25519.SignatureSize)
	}
	sig, err := hex.DecodeString(c.CacheSignature)
	if err != nil {
		return nil, fmt.Errorf("%w: cacheSignature is not hex: %v", ErrInvalidCert, err)
	}
	cert, err := ParseIDCert([]byte(c.IDCertPEM))
	if err != nil {
		return nil, err
	}
	if cert.IsRoot {
		return nil, fmt.Errorf("%w: a home server's root certificate carries no cache metadata (polyproto §6.4.1)", ErrInvalidCert)
	}
	rootCert, err := root.parsed()
	if err != nil {
		return nil, err
	}
	msg := cacheSigningString(cert.Serial, c.CacheNotValidBefore, c.CacheNotValidAfter, c.InvalidatedAt)
	if !VerifyStrict(rootCert.PublicKey, []byte(msg), sig) {
		return nil, fmt.Errorf("%w: cacheSignature does not verify with the key of the root of %q", ErrInvalidCert, rootCert.Domain)
	}
	if err := cert.VerifyIssuedBy(rootCert); err != nil {
		return nil, err
	}
	if t := now.Unix(); t < c.CacheNotValidBefore || t > c.CacheNotValidAfter {
		return nil, fmt.Errorf("%w: window %d..%d, now %d", ErrCacheExpired, c.CacheNotValidBefore, c.CacheNotValidAfter, t)
	}
	return cert, nil
}

// cacheSigningString is the signed message of a cacheSignature: concatenation without separators, as
// the spec and polyproto-rs do it (see maxCacheWindow for why that needs a limit on the window).
func cacheSigningString(serial uint64, notBefore, notAfter int64, invalidatedAt *int64) string {
	s := strconv.FormatUint(serial, 10) + strconv.FormatInt(notBefore, 10) + strconv.FormatInt(notAfter, 10)
	if invalidatedAt != nil {
		s += strconv.FormatInt(*invalidatedAt, 10)
	}
	return s
}
