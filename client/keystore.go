package client

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/polyproto-chat/server/identity"
)

// The keystore keeps each session on disk so that a restarted client (the CLI, a bot) can go on
// with it instead of logging in again, which would mint a new key and ID-Cert every time:
//
//	<Dir>/<fid>/<server host>/<session id>/key.pem   PKCS#8 private key, 0600
//	                                       cert.pem  the session's ID-Cert, 0644
//	                                       token     the bearer token, 0600
//	                                       server    the server's base URL, 0644
//
// Directories are 0700. A foreign login stores the same key and cert again under the foreign
// server's host, so every directory is self-contained. The server file keeps the scheme and any
// path prefix, which the host alone does not say.
const (
	keyFile    = "key.pem"
	certFile   = "cert.pem"
	tokenFile  = "token"
	serverFile = "server"
)

type keystore struct{ dir string }

// sessionDir is the directory of one session; every component is checked so that no server
// answer or caller input can point outside Dir.
func (k *keystore) sessionDir(fid identity.FID, server, sessionID string) (string, error) {
	host, err := serverHost(server)
	if err != nil {
		return "", err
	}
	parts := []string{fid.String(), host, sessionID}
	for _, p := range parts {
		if err := pathComponent(p); err != nil {
			return "", fmt.Errorf("keystore: %w", err)
		}
	}
	return filepath.Join(k.dir, parts[0], parts[1], parts[2]), nil
}

// serverHost takes a base URL or a bare host[:port].
func serverHost(server string) (string, error) {
	if !strings.Contains(server, "://") {
		return server, nil
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("keystore: server %q: %w", server, err)
	}
	return u.Host, nil
}

func pathComponent(p string) error {
	if p == "" || p == "." || p == ".." || len(p) > 255 || strings.ContainsAny(p, "/\\\x00") {
		return fmt.Errorf("%q cannot name a keystore directory", p)
	}
	return nil
}

func (k *keystore) save(s *Session) error {
	if s.Cert == nil {
		return errors.New("keystore: session has no ID-Cert")
	}
	dir, err := k.sessionDir(s.FID, s.Server, s.SessionID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(s.Key)
	if err != nil {
		return fmt.Errorf("keystore: encode key: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600},
		{certFile, []byte(s.Cert.PEM()), 0o644},
		{serverFile, []byte(s.Server + "\n"), 0o644},
		// Last: a directory with a token is complete.
		{tokenFile, []byte(s.Token + "\n"), 0o600},
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
	}
	return nil
}

// writeFileAtomic replaces path with data, so that a crash leaves the old file or the new one,
// never half a key. The temporary file is created 0600, so a key is never readable by others.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (k *keystore) remove(fid identity.FID, server, sessionID string) error {
	dir, err := k.sessionDir(fid, server, sessionID)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// load reads one session and checks that its files belong together: the cert must certify the
// key, for that FID and session id. It does not check expiry or revocation; a stale session is
// still useful to revoke, and the server is the judge of the rest.
func (k *keystore) load(fid identity.FID, server, sessionID string) (*Session, error) {
	dir, err := k.sessionDir(fid, server, sessionID)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
		return b, nil
	}
	keyPEM, err := read(keyFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", filepath.Join(dir, keyFile), err)
	}
	certPEM, err := read(certFile)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertPEM(string(certPEM))
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", filepath.Join(dir, certFile), err)
	}
	if err := checkCertFor(cert, key, fid, sessionID); err != nil {
		return nil, fmt.Errorf("keystore: %s: certificate %w", filepath.Join(dir, certFile), err)
	}
	token, err := read(tokenFile)
	if err != nil {
		return nil, err
	}
	s := &Session{FID: fid, SessionID: sessionID, Key: key, Cert: cert, Token: strings.TrimSpace(string(token))}
	if s.Token == "" {
		return nil, fmt.Errorf("keystore: %s is empty", filepath.Join(dir, tokenFile))
	}

	// Prefer the recorded base URL; without it (a hand-made directory), the caller's URL, else
	// https on the host, which is what a polyproto server must offer.
	host, _ := serverHost(server)
	switch b, err := os.ReadFile(filepath.Join(dir, serverFile)); {
	case err == nil:
		s.Server, err = normalizeBase(string(b))
		if err != nil {
			return nil, fmt.Errorf("keystore: %s: %w", filepath.Join(dir, serverFile), err)
		}
		if h, _ := serverHost(s.Server); h != host {
			return nil, fmt.Errorf("keystore: %s names %s, not %s", filepath.Join(dir, serverFile), s.Server, host)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("keystore: %w", err)
	case strings.Contains(server, "://"):
		if s.Server, err = normalizeBase(server); err != nil {
			return nil, err
		}
	default:
		s.Server = "https://" + host
	}
	return s, nil
}

func parseKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want Ed25519", k)
	}
	return key, nil
}

// all loads every stored session. Directories that are not sessions (no key.pem) are skipped;
// broken sessions are reported together, after all the good ones were loaded.
func (k *keystore) all() ([]*Session, error) {
	// Glob on an fs.FS, so that pattern characters in Dir itself mean nothing.
	keys, err := fs.Glob(os.DirFS(k.dir), "*/*/*/"+keyFile)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var out []*Session
	var errs []error
	for _, p := range keys {
		parts := strings.Split(p, "/") // fid, host, session id, key.pem
		fid, err := identity.ParseFID(parts[0])
		if err != nil || fid.String() != parts[0] {
			continue // not a directory this SDK wrote
		}
		s, err := k.load(fid, parts[1], parts[2])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// LoadSession reads a stored session. server is the server's base URL or its bare host[:port].
func (c *Client) LoadSession(fid identity.FID, server, sessionID string) (*Session, error) {
	if c.keys == nil {
		return nil, errors.New("client: no keystore (Options.Dir is empty)")
	}
	s, err := c.keys.load(fid, server, sessionID)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return s, nil
}

// StoredSessions loads every stored session, in directory order (FID, host, session id). When
// some cannot be read, it returns the others together with an error naming each broken one.
// Without a keystore there is nothing stored.
func (c *Client) StoredSessions() ([]*Session, error) {
	if c.keys == nil {
		return nil, nil
	}
	all, err := c.keys.all()
	if err != nil {
		return all, fmt.Errorf("client: %w", err)
	}
	return all, nil
}
