package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// clockSkew is how far the server's clock may run ahead of ours before a freshly issued ID-Cert
// (or a freshly created root) counts as "not yet valid".
const clockSkew = 5 * time.Minute

// Session is one logged-in session of an actor at one server: the home server after Login or
// NewSession, a foreign server after LoginForeign (same key and ID-Cert, that server's token).
type Session struct {
	FID       identity.FID
	SessionID string
	Key       ed25519.PrivateKey
	Cert      *identity.IDCert
	Token     string
	Server    string // base URL of the server that issued Token
}

// String names the session without its key or token, so that printing a Session (%v, %+v, a
// log line) never leaks the secrets it holds.
func (s Session) String() string {
	return fmt.Sprintf("%s/%s at %s", s.FID, s.SessionID, s.Server)
}

// SessionInfo is one active session as the server lists it (GET /session).
type SessionInfo struct {
	SessionID string
	Serial    uint64
	NotBefore time.Time
	NotAfter  time.Time
	Current   bool // the session whose token made the request
}

// Service is a service provider an actor registered at its home server (PROTOCOL.md section 3).
type Service struct {
	Service string `json:"service"`
	URL     string `json:"url"`
	Primary bool   `json:"primary"`
}

// Register creates the actor localName on the home server and returns its FID.
func (c *Client) Register(ctx context.Context, localName, password string) (identity.FID, error) {
	var resp struct {
		FID string `json:"fid"`
	}
	body := map[string]string{"local_name": strings.ToLower(localName), "password": password}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/register", json: body}, &resp); err != nil {
		return identity.FID{}, fmt.Errorf("client: register %q: %w", localName, err)
	}
	fid, err := identity.ParseFID(resp.FID)
	if err != nil {
		return identity.FID{}, fmt.Errorf("client: register %q: server answered fid %q: %w", localName, resp.FID, err)
	}
	return fid, nil
}

// Login logs localName in at the home server with a new session: it makes a fresh Ed25519 key,
// builds the ID-CSR for sessionID ("" picks a random 16-character one), and checks the returned
// ID-Cert against the home server's root before storing and returning the session.
//
// When the session cannot be written to the keystore, Login returns it together with the error:
// the server has already issued it, and the caller may still use or revoke it.
func (c *Client) Login(ctx context.Context, localName, password, sessionID string) (*Session, error) {
	// The CSR names the full FID, so the home domain must be known first; the root is needed
	// anyway to check the certificate we get back.
	root, err := c.serverCert(ctx, c.base)
	if err != nil {
		return nil, fmt.Errorf("client: login %q: %w", localName, err)
	}
	fid, err := identity.ParseFID(strings.ToLower(localName) + "@" + root.Domain)
	if err != nil {
		return nil, fmt.Errorf("client: login %q: %w", localName, err)
	}
	sid, key, csr, err := newSessionKey(fid, sessionID)
	if err != nil {
		return nil, fmt.Errorf("client: login %s: %w", fid, err)
	}

	var resp struct {
		FID    string `json:"fid"`
		IDCert string `json:"id_cert"`
		Token  string `json:"token"`
	}
	body := map[string]string{"local_name": fid.Local, "password": password, "csr": csr}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/login", json: body}, &resp); err != nil {
		return nil, fmt.Errorf("client: login %s: %w", fid, err)
	}
	if got, err := identity.ParseFID(resp.FID); err != nil || got != fid {
		return nil, fmt.Errorf("client: login %s: server answered fid %q", fid, resp.FID)
	}
	s, err := sessionFromIssue(resp.IDCert, resp.Token, key, fid, sid, root, c.base)
	if err != nil {
		return nil, fmt.Errorf("client: login %s: %w", fid, err)
	}
	return c.keep(s)
}

// NewSession asks the home server for a further session of s's actor (a sensitive action, so it
// takes the password as well as s's token), with a new key and ID-Cert. The new session is stored
// like one from Login, with the same partial-failure rule.
func (c *Client) NewSession(ctx context.Context, s *Session, password, sessionID string) (*Session, error) {
	if err := checkSession(s); err != nil {
		return nil, fmt.Errorf("client: new session: %w", err)
	}
	// Only the home server issues ID-Certs for its actors; a root for another domain means s is
	// a foreign session, and the CSR would be refused or, worse, answered by the wrong authority.
	root, err := c.serverCert(ctx, s.Server)
	if err != nil {
		return nil, fmt.Errorf("client: new session for %s: %w", s.FID, err)
	}
	if root.Domain != s.FID.Domain {
		return nil, fmt.Errorf("client: new session for %s: %s is the server of %q, not the actor's home server",
			s.FID, s.Server, root.Domain)
	}
	sid, key, csr, err := newSessionKey(s.FID, sessionID)
	if err != nil {
		return nil, fmt.Errorf("client: new session for %s: %w", s.FID, err)
	}

	var resp struct {
		IDCert string `json:"id_cert"`
		Token  string `json:"token"`
	}
	r := request{method: http.MethodPost, server: s.Server, path: "/idcert", token: s.Token, sensitive: password, text: csr}
	if _, err := c.do(ctx, r, &resp); err != nil {
		return nil, fmt.Errorf("client: new session for %s: %w", s.FID, err)
	}
	ns, err := sessionFromIssue(resp.IDCert, resp.Token, key, s.FID, sid, root, s.Server)
	if err != nil {
		return nil, fmt.Errorf("client: new session for %s: %w", s.FID, err)
	}
	return c.keep(ns)
}

// Sessions lists the active sessions of s's actor at s's server.
func (c *Client) Sessions(ctx context.Context, s *Session) ([]SessionInfo, error) {
	if err := checkSession(s); err != nil {
		return nil, fmt.Errorf("client: list sessions: %w", err)
	}
	var out []SessionInfo
	r := request{method: http.MethodGet, server: s.Server, path: "/session", token: s.Token}
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, fmt.Errorf("client: list sessions of %s: %w", s.FID, err)
	}
	return out, nil
}

// Revoke ends the session sessionID ("" is s's own) of s's actor at s's server. At the home server
// this invalidates its ID-Cert, so password is required there; foreign servers only need the
// token, and an empty password sends no X-P2-Sensitive-Solution header. After the server
// confirmed, the revoked session's files for that server are removed from the keystore, since
// its token no longer works there.
func (c *Client) Revoke(ctx context.Context, s *Session, password, sessionID string) error {
	if err := checkSession(s); err != nil {
		return fmt.Errorf("client: revoke: %w", err)
	}
	if sessionID == "" {
		sessionID = s.SessionID
	}
	r := request{
		method: http.MethodDelete, server: s.Server, path: "/session",
		query: url.Values{"session_id": {sessionID}}, token: s.Token, sensitive: password,
	}
	if _, err := c.do(ctx, r, nil); err != nil {
		return fmt.Errorf("client: revoke session %q of %s: %w", sessionID, s.FID, err)
	}
	if c.keys != nil {
		if err := c.keys.remove(s.FID, s.Server, sessionID); err != nil {
			return fmt.Errorf("client: revoked session %q of %s, but: %w", sessionID, s.FID, err)
		}
	}
	return nil
}

// LoginForeign logs s's actor in at the server at foreignURL with s's key and ID-Cert (core
// 4.1.1): it fetches a challenge there, signs it, and posts it with the certificate. The foreign
// server checks the certificate with the actor's home server. The result shares s's key and cert
// and carries the foreign server's token; it is stored like any other session.
func (c *Client) LoginForeign(ctx context.Context, s *Session, foreignURL string) (*Session, error) {
	if err := checkSession(s); err != nil {
		return nil, fmt.Errorf("client: foreign login: %w", err)
	}
	if s.Cert == nil {
		return nil, fmt.Errorf("client: foreign login of %s: session has no ID-Cert", s.FID)
	}
	server, err := normalizeBase(foreignURL)
	if err != nil {
		return nil, fmt.Errorf("client: foreign login of %s: %w", s.FID, err)
	}

	// The answer's "expires" is only advice: the server enforces it, and we answer at once.
	var ch struct {
		Challenge string `json:"challenge"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, server: server, path: "/challenge"}, &ch); err != nil {
		return nil, fmt.Errorf("client: foreign login of %s at %s: challenge: %w", s.FID, server, err)
	}
	if err := checkChallenge(ch.Challenge); err != nil {
		return nil, fmt.Errorf("client: foreign login of %s at %s: %w", s.FID, server, err)
	}

	body := map[string]string{
		"challenge": ch.Challenge,
		"signature": hex.EncodeToString(ed25519.Sign(s.Key, []byte(ch.Challenge))),
		"idCert":    s.Cert.PEM(),
	}
	var resp struct {
		FID   string `json:"fid"`
		Token string `json:"token"`
	}
	if _, err := c.do(ctx, request{method: http.MethodPost, server: server, path: "/session/auth", json: body}, &resp); err != nil {
		return nil, fmt.Errorf("client: foreign login of %s at %s: %w", s.FID, server, err)
	}
	if got, err := identity.ParseFID(resp.FID); err != nil || got != s.FID {
		return nil, fmt.Errorf("client: foreign login of %s at %s: server answered fid %q", s.FID, server, resp.FID)
	}
	if resp.Token == "" {
		return nil, fmt.Errorf("client: foreign login of %s at %s: no token in the answer", s.FID, server)
	}
	fs := &Session{FID: s.FID, SessionID: s.SessionID, Key: s.Key, Cert: s.Cert, Token: resp.Token, Server: server}
	return c.keep(fs)
}

// AddService registers a service provider for s's actor at s's server (its home server).
func (c *Client) AddService(ctx context.Context, s *Session, service, serviceURL string, primary bool) (Service, error) {
	if err := checkSession(s); err != nil {
		return Service{}, fmt.Errorf("client: add service: %w", err)
	}
	body := map[string]Service{"service": {Service: service, URL: serviceURL, Primary: primary}}
	var out Service
	r := request{method: http.MethodPost, server: s.Server, path: "/services", token: s.Token, json: body}
	if _, err := c.do(ctx, r, &out); err != nil {
		return Service{}, fmt.Errorf("client: add service %q for %s: %w", service, s.FID, err)
	}
	return out, nil
}

// Discover lists the providers of service ("" = all services) that fid registered, asking the
// home server of this Client. No providers is an empty result, not an error; an unknown actor is
// an *Error with status 404.
func (c *Client) Discover(ctx context.Context, fid identity.FID, service string) ([]Service, error) {
	path := "/services/discover/" + url.PathEscape(fid.String())
	if service != "" {
		path += "/" + url.PathEscape(service)
	}
	var out []Service
	if _, err := c.do(ctx, request{method: http.MethodGet, path: path}, &out); err != nil {
		return nil, fmt.Errorf("client: discover %q of %s: %w", service, fid, err)
	}
	return out, nil
}

// ServerCert fetches the root ID-Cert of the server at baseURL ("" = the home server) and checks
// that it is a root, self-issued, and valid now. It says which domain the server is the authority
// for; whether to trust that is the caller's decision (the home server is trusted on first use,
// over the transport's TLS).
//
// The answer's cache metadata is not checked, as in federation.Certs: it is signed by the very key
// it introduces, so it proves nothing the transport does not, and CacheableCert.Verify refuses
// roots by design (polyproto core 6.4.1 gives roots no cache signature).
func (c *Client) ServerCert(ctx context.Context, baseURL string) (*identity.IDCert, error) {
	server := c.base
	if baseURL != "" {
		var err error
		if server, err = normalizeBase(baseURL); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	root, err := c.serverCert(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return root, nil
}

// serverCert is ServerCert for a normalised base URL.
func (c *Client) serverCert(ctx context.Context, server string) (*identity.IDCert, error) {
	var cc identity.CacheableCert
	if _, err := c.do(ctx, request{method: http.MethodGet, server: server, path: "/idcert/server"}, &cc); err != nil {
		return nil, fmt.Errorf("root certificate of %s: %w", server, err)
	}
	root, err := parseCertPEM(cc.IDCertPEM)
	if err != nil {
		return nil, fmt.Errorf("root certificate of %s: %w", server, err)
	}
	if !root.IsRoot {
		return nil, fmt.Errorf("root certificate of %s: not a root (CA) certificate", server)
	}
	if err := root.VerifyIssuedBy(root); err != nil {
		return nil, fmt.Errorf("root certificate of %s: not self-issued: %w", server, err)
	}
	if err := validNow(root, time.Now()); err != nil {
		return nil, fmt.Errorf("root certificate of %s: %w", server, err)
	}
	return root, nil
}

// checkChallenge refuses challenges we should not sign. The signature covers the challenge's raw
// bytes with no domain separation, so the session key would sign whatever a server sends: keeping
// to core's 32-256 characters and to printable ASCII (core recommends letters and digits) means a
// server cannot pass off binary data, such as the encoding of a message, as a challenge.
func checkChallenge(ch string) error {
	if n := len(ch); n < 32 || n > 256 {
		return fmt.Errorf("challenge of %d characters, want 32-256", n)
	}
	for i := 0; i < len(ch); i++ {
		if ch[i] < 0x20 || ch[i] > 0x7e {
			return fmt.Errorf("challenge contains byte %#x, want printable ASCII", ch[i])
		}
	}
	return nil
}

// keep stores s when a keystore is configured. On failure it still returns s (see Login).
func (c *Client) keep(s *Session) (*Session, error) {
	if c.keys == nil {
		return s, nil
	}
	if err := c.keys.save(s); err != nil {
		return s, fmt.Errorf("client: session %s/%s issued but not stored: %w", s.FID, s.SessionID, err)
	}
	return s, nil
}

// checkSession refuses sessions that cannot authenticate anything, before any request is sent.
func checkSession(s *Session) error {
	switch {
	case s == nil:
		return errors.New("nil session")
	case s.Token == "":
		return fmt.Errorf("session %s/%s has no token", s.FID, s.SessionID)
	case len(s.Key) != ed25519.PrivateKeySize:
		return fmt.Errorf("session %s/%s has no Ed25519 key", s.FID, s.SessionID)
	case s.Server == "":
		return fmt.Errorf("session %s/%s has no server", s.FID, s.SessionID)
	}
	return nil
}

// newSessionKey picks the session id, makes the session's key and returns its PEM ID-CSR.
func newSessionKey(fid identity.FID, sessionID string) (string, ed25519.PrivateKey, string, error) {
	if sessionID == "" {
		// 16 base32 characters: 80 random bits, comfortably unique among one actor's sessions.
		sessionID = rand.Text()[:16]
	}
	if err := identity.ValidSessionID(sessionID); err != nil {
		return "", nil, "", err
	}
	// Session ids may contain '/' or be ".."; such a session could not be stored, and finding
	// that out after the server issued it would leave a session we cannot keep.
	if err := pathComponent(sessionID); err != nil {
		return "", nil, "", fmt.Errorf("session ID: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, "", fmt.Errorf("session key: %w", err)
	}
	der, err := identity.NewCSR(key, fid, sessionID)
	if err != nil {
		return "", nil, "", fmt.Errorf("ID-CSR: %w", err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	return sessionID, key, string(csr), nil
}

// sessionFromIssue checks an ID-Cert the home server issued for a CSR of ours: it must be an actor
// cert for our key, FID and session id, issued by root and valid now. A server that answered with
// anything else would have us sign messages under an identity we did not ask for.
func sessionFromIssue(certPEM, token string, key ed25519.PrivateKey, fid identity.FID, sid string, root *identity.IDCert, server string) (*Session, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("issued ID-Cert: %w", err)
	}
	if err := checkCertFor(cert, key, fid, sid); err != nil {
		return nil, fmt.Errorf("issued ID-Cert: %w", err)
	}
	if err := cert.VerifyIssuedBy(root); err != nil {
		return nil, fmt.Errorf("issued ID-Cert: %w", err)
	}
	if err := validNow(cert, time.Now()); err != nil {
		return nil, fmt.Errorf("issued ID-Cert: %w", err)
	}
	if token == "" {
		return nil, errors.New("no token in the answer")
	}
	return &Session{FID: fid, SessionID: sid, Key: key, Cert: cert, Token: token, Server: server}, nil
}

// validNow checks cert's validity at now, allowing the issuer's clock to run clockSkew ahead:
// servers start validity at the moment of issue.
func validNow(cert *identity.IDCert, now time.Time) error {
	if now.Before(cert.NotBefore) && cert.NotBefore.Sub(now) <= clockSkew {
		now = cert.NotBefore
	}
	return cert.ValidAt(now)
}

// checkCertFor checks that cert is the actor cert of key for fid's session sid.
func checkCertFor(cert *identity.IDCert, key ed25519.PrivateKey, fid identity.FID, sid string) error {
	switch {
	case cert.IsRoot:
		return errors.New("is a root certificate, not an actor's")
	case !cert.PublicKey.Equal(key.Public()):
		return errors.New("certifies another public key")
	case cert.FID != fid:
		return fmt.Errorf("is for %s, want %s", cert.FID, fid)
	case cert.SessionID != sid:
		return fmt.Errorf("is for session %q, want %q", cert.SessionID, sid)
	}
	return nil
}

// parseCertPEM parses an ID-Cert sent as one PEM "CERTIFICATE" block (ParseIDCert refuses
// anything around the block and enforces the polyproto profile).
func parseCertPEM(s string) (*identity.IDCert, error) {
	return identity.ParseIDCert([]byte(s))
}
