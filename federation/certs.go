package federation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// Routes of the home server that B asks (docs/PROTOCOL.md section 3).
const (
	routeServerCert = "/.p2/core/v1/idcert/server"
	routeActorCerts = "/.p2/core/v1/idcert/actor/{fid}"
)

// CertsConfig configures Certs. Every zero value has a default.
type CertsConfig struct {
	// HTTP does the requests. nil: a client with per-phase timeouts, size-limited headers and
	// redirects only within the same host.
	HTTP *http.Client
	// Peers maps domains to base URLs; a domain not in it is reached at https://<domain>.
	Peers Peers
	// Timeout bounds each request to a peer, body included. Zero: 5s.
	Timeout time.Duration
	// MaxCacheTTL caps how long a home server's answer is trusted, whatever cache window it
	// signs: a server may not make us skip revocation checks for a day. Zero: 1h.
	MaxCacheTTL time.Duration
	// Now is the clock for validity and cache windows. nil: time.Now.
	Now func() time.Time
	// Logger gets a debug line per fetch. nil: discard.
	Logger *slog.Logger
}

// Certs checks ID-Certs of foreign actors against their home servers: what server B does when an
// actor of home server A logs in (core 4.1.1). It caches home servers' root certs; it is safe for
// concurrent use.
type Certs struct {
	http    *http.Client
	peers   Peers
	timeout time.Duration
	maxTTL  time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	roots    map[string]rootEntry // by domain
	inflight map[string]*rootCall // by domain: the fetch concurrent callers wait for
}

// NewCerts applies the defaults of cfg.
func NewCerts(cfg CertsConfig) *Certs {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxCacheTTL <= 0 {
		cfg.MaxCacheTTL = time.Hour
	}
	if cfg.HTTP == nil {
		cfg.HTTP = newHTTPClient(cfg.Timeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Certs{
		http:     cfg.HTTP,
		peers:    cfg.Peers,
		timeout:  cfg.Timeout,
		maxTTL:   cfg.MaxCacheTTL,
		now:      cfg.Now,
		log:      cfg.Logger,
		roots:    map[string]rootEntry{},
		inflight: map[string]*rootCall{},
	}
}

// CertStatus is what an actor's home server says about one of its certs.
type CertStatus struct {
	Cert          *identity.IDCert
	InvalidatedAt *time.Time // non-nil: revoked at that time
	CacheUntil    time.Time  // trust this answer until then (home server's cacheNotValidAfter, capped)
}

// Verify is the foreign-login check of an ID-Cert presented by a client: it parses the cert
// strictly, checks it is an actor cert inside its validity period and issued by the root its
// domain's server serves, and asks that server for the cert's status. The server's copy must be
// the very cert presented. A revoked cert returns its status together with ErrRevoked.
func (c *Certs) Verify(ctx context.Context, certPEMOrDER []byte) (CertStatus, error) {
	cert, err := identity.ParseIDCert(certPEMOrDER)
	if err != nil {
		return CertStatus{}, fmt.Errorf("%w: presented cert: %w", ErrUntrusted, err)
	}
	if cert.IsRoot {
		return CertStatus{}, fmt.Errorf("%w: presented cert %d: a root cert, not an actor cert", ErrUntrusted, cert.Serial)
	}
	name := fmt.Sprintf("cert %d of %s session %q", cert.Serial, cert.FID, cert.SessionID)
	if cert.FID.Domain != cert.Domain {
		return CertStatus{}, fmt.Errorf("%w: %s: issued for domain %s", ErrUntrusted, name, cert.Domain)
	}
	// Validity first: an expired cert costs no request to its home server.
	now := c.now()
	if err := cert.ValidAt(easeStart(now, cert.NotBefore)); err != nil {
		return CertStatus{}, fmt.Errorf("%w: %s: %w", ErrUntrusted, name, err)
	}
	var status CertStatus
	err = c.withRoot(ctx, cert.Domain, func(root *identity.IDCert) error {
		if err := cert.VerifyIssuedBy(root); err != nil {
			return fmt.Errorf("%w: %s: not issued by the root of %s: %w", ErrUntrusted, name, cert.Domain, err)
		}
		var err error
		status, err = c.actorCert(ctx, root, cert.FID, cert.SessionID, cert.Serial)
		return err
	})
	if err != nil {
		return CertStatus{}, err
	}
	if !bytes.Equal(status.Cert.Raw, cert.Raw) {
		return CertStatus{}, fmt.Errorf("%w: %s: peer %s holds another cert with this serial", ErrUntrusted, name, cert.Domain)
	}
	if status.InvalidatedAt != nil {
		return status, fmt.Errorf("%w: %s: invalidated at %s", ErrRevoked, name, status.InvalidatedAt.UTC().Format(time.RFC3339))
	}
	return status, nil
}

// ActorCert asks fid's home server for the status of the cert with this serial of that session,
// verified against the home server's root (HomeRoot). The answer is not cached here: the caller
// keeps it with its session until CacheUntil. It does not check the cert's validity period.
func (c *Certs) ActorCert(ctx context.Context, fid identity.FID, sessionID string, serial uint64) (CertStatus, error) {
	if _, err := identity.ParseFID(fid.String()); err != nil {
		return CertStatus{}, fmt.Errorf("%w: actor %q: %w", ErrUntrusted, fid, err)
	}
	if sessionID == "" {
		return CertStatus{}, fmt.Errorf("%w: actor %s: no session id", ErrUntrusted, fid)
	}
	var status CertStatus
	err := c.withRoot(ctx, fid.Domain, func(root *identity.IDCert) error {
		var err error
		status, err = c.actorCert(ctx, root, fid, sessionID, serial)
		return err
	})
	return status, err
}

func (c *Certs) actorCert(ctx context.Context, root *identity.IDCert, fid identity.FID, sessionID string, serial uint64) (CertStatus, error) {
	name := fmt.Sprintf("cert %d of %s session %q", serial, fid, sessionID)
	target := "/.p2/core/v1/idcert/actor/" + url.PathEscape(fid.String()) + "?" + url.Values{"session_id": {sessionID}}.Encode()
	var list []identity.CacheableCert
	if err := c.getJSON(ctx, fid.Domain, routeActorCerts, target, &list); err != nil {
		if se := (*statusError)(nil); errors.As(err, &se) && se.status == http.StatusNotFound {
			return CertStatus{}, fmt.Errorf("%w: %s: peer %s does not know the actor: %w", ErrUntrusted, name, fid.Domain, se)
		}
		return CertStatus{}, err
	}
	now := c.now()
	var found []CertStatus
	var refused error
	for i := range list {
		entry := &list[i]
		// Other entries are the home server's business; only the one asked for is verified.
		if cert, err := identity.ParseIDCert([]byte(entry.IDCertPEM)); err != nil || cert.Serial != serial {
			continue
		}
		cert, err := entry.Verify(root, easeStart(now, time.Unix(entry.CacheNotValidBefore, 0)))
		if err == nil && (cert.FID != fid || cert.SessionID != sessionID) {
			err = fmt.Errorf("cert is of %s session %q", cert.FID, cert.SessionID)
		}
		if err != nil {
			if refused == nil {
				refused = err
			}
			continue
		}
		status := CertStatus{Cert: cert, CacheUntil: earliest(time.Unix(entry.CacheNotValidAfter, 0), now.Add(c.maxTTL))}
		if entry.InvalidatedAt != nil {
			at := time.Unix(*entry.InvalidatedAt, 0)
			status.InvalidatedAt = &at
		}
		found = append(found, status)
	}
	if len(found) == 0 && refused != nil {
		return CertStatus{}, fmt.Errorf("%w: %s: peer %s answered: %w", ErrUntrusted, name, fid.Domain, refused)
	}
	if len(found) == 0 {
		return CertStatus{}, fmt.Errorf("%w: %s: peer %s does not list it", ErrUntrusted, name, fid.Domain)
	}
	// Should the server list the cert twice, a revocation wins.
	for _, s := range found {
		if s.InvalidatedAt != nil {
			return s, nil
		}
	}
	return found[0], nil
}
