package identity

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// rootValidity is how long LoadOrCreateRoot makes a new root valid (polyproto §6.1.3 suggests rotating
// server certificates every 1-3 years).
const rootValidity = 2 * 365 * 24 * time.Hour

const (
	rootKeyFile  = "root.key"
	rootCertFile = "root.pem"
)

// LoadOrCreateRoot returns the home server root kept in dir: root.key (PKCS#8 PEM, mode 0600) and
// root.pem (the certificate). On the first call it creates dir (0700) and both files, valid 2 years
// from now; later calls load them. It refuses a stored root for another domain, a key that does not
// match the certificate, a certificate that is not a valid self-signed root, one not valid at now
// (wraps ErrExpired: rotating the root is an operator's decision), and a directory holding only one of
// the two files (it never overwrites a key).
func LoadOrCreateRoot(dir, domain string, now time.Time) (*Root, error) {
	if err := ValidateDomain(domain); err != nil {
		return nil, err
	}
	keyPath, certPath := filepath.Join(dir, rootKeyFile), filepath.Join(dir, rootCertFile)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certPEM, certErr := os.ReadFile(certPath)
	switch {
	case keyErr == nil && certErr == nil:
		return loadRoot(keyPEM, certPEM, dir, domain, now)
	case errors.Is(keyErr, fs.ErrNotExist) && errors.Is(certErr, fs.ErrNotExist):
		return createRoot(dir, domain, now)
	case keyErr == nil && errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: %s exists but %s does not; refusing to replace a root key", keyPath, certPath)
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("identity: %s exists but %s does not; the root key is lost", certPath, keyPath)
	case keyErr != nil:
		return nil, fmt.Errorf("identity: reading the root key: %w", keyErr)
	default:
		return nil, fmt.Errorf("identity: reading the root certificate: %w", certErr)
	}
}

func loadRoot(keyPEM, certPEM []byte, dir, domain string, now time.Time) (*Root, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: %s is not a PEM \"PRIVATE KEY\"", filepath.Join(dir, rootKeyFile))
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", filepath.Join(dir, rootKeyFile), err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity: %s holds a %T, not an Ed25519 key", filepath.Join(dir, rootKeyFile), parsed)
	}
	cert, err := ParseIDCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", filepath.Join(dir, rootCertFile), err)
	}
	switch {
	case !cert.IsRoot:
		return nil, fmt.Errorf("identity: %s is not a root certificate", filepath.Join(dir, rootCertFile))
	case cert.Domain != domain:
		return nil, fmt.Errorf("identity: %s holds the root of %q, but this server is %q", dir, cert.Domain, domain)
	case !publicKeyOf(key).Equal(cert.PublicKey):
		return nil, fmt.Errorf("identity: %s does not belong to %s", filepath.Join(dir, rootKeyFile), filepath.Join(dir, rootCertFile))
	}
	if err := cert.VerifyIssuedBy(cert); err != nil {
		return nil, fmt.Errorf("identity: %s: %w", filepath.Join(dir, rootCertFile), err)
	}
	if err := cert.ValidAt(now); err != nil {
		return nil, fmt.Errorf("identity: root certificate in %s: %w", dir, err)
	}
	return &Root{Key: key, Cert: cert}, nil
}

func createRoot(dir, domain string, now time.Time) (*Root, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: creating %s: %w", dir, err)
	}
	root, err := NewRoot(domain, now, rootValidity)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(root.Key)
	if err != nil {
		return nil, fmt.Errorf("identity: encoding the root key: %w", err)
	}
	// The key goes first: a crash between the two writes leaves a key without a certificate, which the
	// next start reports instead of silently minting a second key.
	if err := writeNew(filepath.Join(dir, rootKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(filepath.Join(dir, rootCertFile), []byte(root.Cert.PEM()), 0o644); err != nil {
		return nil, err
	}
	return root, nil
}

// writeNew writes data to a temporary file, syncs it and links it to path, which fails if path exists:
// the file appears whole or not at all, and two servers starting at once cannot overwrite each other.
func writeNew(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("identity: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("identity: writing %s: %w", path, err)
	}
	return nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
