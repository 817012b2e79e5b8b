package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// Verifying a message: its signature must verify with the key of the author's ID-Cert named by
// cert_serial, and that cert must come from the author's home server (its root for exactly the
// author's domain, the cert issued by it, the status answer signed by it). The server already
// checked all this before storing the message; a client checks again so that it need not trust
// the server it reads from, which may be another than the author's.

// timestampSlack is how far a message's timestamp may lie outside its cert's validity: the
// server accepts timestamps up to 10 minutes off its clock.
const timestampSlack = 10 * time.Minute

// ErrUnverified is wrapped by every verification failure that is about the message itself (a
// signature that does not verify, a cert that does not fit), as opposed to failing to fetch
// what verifying needs.
var ErrUnverified = errors.New("message signature does not verify")

// signed is what a message and an update have in common for verifying.
type signed struct {
	id, channel snowflake.ID
	author      string
	serial      uint64
	sessionID   string
	timestamp   int64
	signature   string
	edit        bool
	bytes       func(server string) []byte // the canonical form that was signed, on the server of that domain
}

// VerifyMessage checks m's signature against its author's ID-Cert (version 0 over the message
// form, later versions over the edit form). The cert is fetched from the author's home server
// and cached by (FID, serial) until its status answer runs out.
func (ch *Chat) VerifyMessage(ctx context.Context, m Message) error {
	sg := signed{id: m.ID, channel: m.ChannelID, author: m.Author, serial: m.CertSerial, sessionID: m.SessionID,
		timestamp: m.Timestamp, signature: m.Signature, edit: m.Version > 0}
	if sg.edit {
		sg.bytes = func(server string) []byte {
			return identity.EditSig{Server: server, ChannelID: uint64(m.ChannelID), MessageID: uint64(m.ID), AuthorFID: m.Author,
				CertSerial: m.CertSerial, TimestampMS: m.Timestamp, Content: m.Content, Attachments: m.Attachments}.Bytes()
		}
	} else {
		sg.bytes = func(server string) []byte {
			return identity.MessageSig{Server: server, ChannelID: uint64(m.ChannelID), AuthorFID: m.Author, CertSerial: m.CertSerial,
				TimestampMS: m.Timestamp, Nonce: m.Nonce, Content: m.Content, Attachments: m.Attachments}.Bytes()
		}
	}
	if err := ch.verify(ctx, sg); err != nil {
		return fmt.Errorf("client: verify message %s by %s: %w", m.ID, m.Author, err)
	}
	return nil
}

// VerifyUpdate checks the signature of a MESSAGE_UPDATE, which is always over the edit form.
func (ch *Chat) VerifyUpdate(ctx context.Context, u MessageUpdate) error {
	sg := signed{id: u.ID, channel: u.ChannelID, author: u.Author, serial: u.CertSerial, sessionID: u.SessionID,
		timestamp: u.Timestamp, signature: u.Signature, edit: true}
	sg.bytes = func(server string) []byte {
		return identity.EditSig{Server: server, ChannelID: uint64(u.ChannelID), MessageID: uint64(u.ID), AuthorFID: u.Author,
			CertSerial: u.CertSerial, TimestampMS: u.Timestamp, Content: u.Content, Attachments: u.Attachments}.Bytes()
	}
	if err := ch.verify(ctx, sg); err != nil {
		return fmt.Errorf("client: verify edit of message %s by %s: %w", u.ID, u.Author, err)
	}
	return nil
}

func (ch *Chat) verify(ctx context.Context, sg signed) error {
	sig, err := base64.RawURLEncoding.DecodeString(sg.signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64url: %v", ErrUnverified, err)
	}
	author, err := identity.ParseFID(sg.author)
	if err != nil {
		return fmt.Errorf("%w: author: %v", ErrUnverified, err)
	}
	// The channel is on the server this Chat talks to, whose domain the author signed.
	server, err := ch.ownDomain(ctx)
	if err != nil {
		return fmt.Errorf("the domain of the channel's server: %w", err)
	}
	cc, err := ch.authorCert(ctx, author, sg.serial, sg.sessionID)
	if err != nil {
		return err
	}
	if err := checkSignedBy(cc, sg); err != nil {
		return err
	}
	if err := identity.VerifyMessage(cc.cert.PublicKey, sg.bytes(server), sig); err != nil {
		return fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	return nil
}

// checkSignedBy checks that cc could have signed sg when sg says it was signed: the session
// named, the cert valid then, and not yet revoked.
func checkSignedBy(cc cachedCert, sg signed) error {
	at := time.UnixMilli(sg.timestamp)
	switch {
	case sg.sessionID != "" && cc.cert.SessionID != sg.sessionID:
		return fmt.Errorf("%w: cert serial %d is of session %q, the message names %q", ErrUnverified,
			sg.serial, cc.cert.SessionID, sg.sessionID)
	case at.Before(cc.cert.NotBefore.Add(-timestampSlack)) || at.After(cc.cert.NotAfter.Add(timestampSlack)):
		return fmt.Errorf("%w: signed at %s, outside the validity of cert serial %d (%s..%s)", ErrUnverified,
			at.UTC().Format(time.RFC3339), sg.serial, cc.cert.NotBefore.Format(time.RFC3339), cc.cert.NotAfter.Format(time.RFC3339))
	case cc.invalidatedAt != nil && at.After(time.Unix(*cc.invalidatedAt, 0)):
		return fmt.Errorf("%w: signed at %s, after cert serial %d was revoked at %s", ErrUnverified,
			at.UTC().Format(time.RFC3339), sg.serial, time.Unix(*cc.invalidatedAt, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// authorCert returns the cert of author with serial, from the cache or the author's home server.
func (ch *Chat) authorCert(ctx context.Context, author identity.FID, serial uint64, sessionID string) (cachedCert, error) {
	key := certKey{fid: author.String(), serial: serial}
	now := time.Now()
	if cc, ok := ch.certs.cert(key, now); ok {
		return cc, nil
	}
	server, err := ch.homeServer(ctx, author.Domain)
	if err != nil {
		return cachedCert{}, fmt.Errorf("home server of %s: %w", author, err)
	}
	root, err := ch.root(ctx, server, author.Domain)
	if err != nil {
		return cachedCert{}, err
	}
	var list []identity.CacheableCert
	query := url.Values{}
	if sessionID != "" {
		query.Set("session_id", sessionID)
	}
	r := request{method: http.MethodGet, server: server, path: "/idcert/actor/" + url.PathEscape(author.String()), query: query}
	if _, err := ch.c.do(ctx, r, &list); err != nil {
		return cachedCert{}, fmt.Errorf("ID-Certs of %s: %w", author, err)
	}
	// Every cert the answer holds is cached, not only the one asked for: the next message of
	// the same session usually has the same serial, and a session's renewed cert a new one.
	// A cert that does not check out is skipped rather than fatal: it may be another one than
	// the one asked for, and its error is reported only if the one asked for is not found.
	var (
		out     cachedCert
		found   bool
		skipped error
	)
	for i := range list {
		cert, err := list[i].Verify(root, now)
		if err == nil && cert.FID != author {
			err = fmt.Errorf("a cert of %s", cert.FID)
		}
		if err != nil {
			skipped = err
			continue
		}
		cc := cachedCert{cert: cert, invalidatedAt: list[i].InvalidatedAt, until: time.Unix(list[i].CacheNotValidAfter, 0)}
		ch.certs.put(certKey{fid: author.String(), serial: cert.Serial}, cc)
		if cert.Serial == serial {
			out, found = cc, true
		}
	}
	if found {
		return out, nil
	}
	err = errNoCert
	if skipped != nil {
		err = fmt.Errorf("%w (one it answered was refused: %w)", errNoCert, skipped)
	}
	return cachedCert{}, fmt.Errorf("%w: cert serial %d of %s (session %q) from %s: %w", ErrUnverified, serial, author, sessionID, server, err)
}

// homeServer is the base URL of domain's server: the resolver's answer, else the Chat's own
// server for its own domain, else https://<domain>.
func (ch *Chat) homeServer(ctx context.Context, domain string) (string, error) {
	if ch.resolve != nil {
		u, err := ch.resolve(ctx, domain)
		if err != nil {
			return "", err
		}
		if u != "" {
			return normalizeBase(u)
		}
	}
	own, err := ch.ownDomain(ctx)
	if err != nil {
		return "", err
	}
	if domain == own {
		return normalizeBase(ch.s.Server)
	}
	return normalizeBase("https://" + domain)
}

// ownDomain is the domain of the server the Chat talks to, learnt from its root once.
func (ch *Chat) ownDomain(ctx context.Context) (string, error) {
	ch.certs.mu.Lock()
	d := ch.certs.home
	ch.certs.mu.Unlock()
	if d != "" {
		return d, nil
	}
	server, err := normalizeBase(ch.s.Server)
	if err != nil {
		return "", err
	}
	root, err := ch.cachedRoot(ctx, server)
	if err != nil {
		return "", err
	}
	ch.certs.mu.Lock()
	ch.certs.home = root.Domain
	ch.certs.mu.Unlock()
	return root.Domain, nil
}

// root is the root of server, which must be the authority for domain.
func (ch *Chat) root(ctx context.Context, server, domain string) (*identity.IDCert, error) {
	root, err := ch.cachedRoot(ctx, server)
	if err != nil {
		return nil, err
	}
	if root.Domain != domain {
		return nil, fmt.Errorf("%w: %s is the server of %q, not of %q", ErrUnverified, server, root.Domain, domain)
	}
	return root, nil
}

// cachedRoot fetches and checks a server's root once; roots live for years, and serverCert
// checks that it is valid at the time of fetching.
func (ch *Chat) cachedRoot(ctx context.Context, server string) (*identity.IDCert, error) {
	ch.certs.mu.Lock()
	root := ch.certs.roots[server]
	ch.certs.mu.Unlock()
	if root != nil && root.ValidAt(time.Now()) == nil {
		return root, nil
	}
	root, err := ch.c.serverCert(ctx, server)
	if err != nil {
		return nil, err
	}
	ch.certs.mu.Lock()
	ch.certs.roots[server] = root
	ch.certs.mu.Unlock()
	return root, nil
}

// certCache keeps the ID-Certs VerifyMessage fetched, by (fid, serial), and the roots of the
// servers it fetched them from, by base URL.
type certCache struct {
	mu    sync.Mutex
	certs map[certKey]cachedCert
	roots map[string]*identity.IDCert
	home  string // the domain of the Chat's own server, once known
}

type certKey struct {
	fid    string
	serial uint64
}

type cachedCert struct {
	cert          *identity.IDCert
	invalidatedAt *int64    // UNIX seconds, when the home server revoked it
	until         time.Time // end of the home server's cache window
}

func newCertCache() *certCache {
	return &certCache{certs: map[certKey]cachedCert{}, roots: map[string]*identity.IDCert{}}
}

var errNoCert = errors.New("the author's home server lists no such ID-Cert")

func (c *certCache) cert(k certKey, now time.Time) (cachedCert, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.certs[k]
	if !ok || now.After(cc.until) {
		return cachedCert{}, false
	}
	return cc, true
}

func (c *certCache) put(k certKey, cc cachedCert) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.certs[k] = cc
}

// sessionHasKey tells whether key is the key of a live ID-Cert of fid's session, per fid's home
// server: how an MLS leaf is checked (docs/PROTOCOL.md section 7).
func (ch *Chat) sessionHasKey(ctx context.Context, fid identity.FID, sessionID string, key []byte) (bool, error) {
	server, err := ch.homeServer(ctx, fid.Domain)
	if err != nil {
		return false, fmt.Errorf("home server of %s: %w", fid, err)
	}
	root, err := ch.root(ctx, server, fid.Domain)
	if err != nil {
		return false, err
	}
	var list []identity.CacheableCert
	r := request{method: http.MethodGet, server: server, path: "/idcert/actor/" + url.PathEscape(fid.String()), query: url.Values{"session_id": {sessionID}}}
	if _, err := ch.c.do(ctx, r, &list); err != nil {
		return false, fmt.Errorf("ID-Certs of %s: %w", fid, err)
	}
	now := time.Now()
	for i := range list {
		cert, err := list[i].Verify(root, now)
		if err != nil || cert.FID != fid || cert.SessionID != sessionID || list[i].InvalidatedAt != nil || cert.ValidAt(now) != nil {
			continue
		}
		if bytes.Equal(cert.PublicKey, key) {
			return true, nil
		}
	}
	return false, nil
}
