package federation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// rootRefetchFloor: a cached root younger than this is not fetched again when a cert fails to
// verify against it. Refetching lets a home server's key change take effect before the cache
// window ends; the floor stops forged certs from making us hammer their home server.
const rootRefetchFloor = time.Minute

type rootEntry struct {
	cert      *identity.IDCert
	until     time.Time // not used from then on
	fetchedAt time.Time
}

type rootCall struct {
	done chan struct{} // closed when cert and err are set
	cert *identity.IDCert
	err  error
}

// HomeRoot returns the root cert of domain's home server, from GET <base>/.p2/core/v1/idcert/server:
// it must be a root for exactly that domain, self-issued, valid now and not marked invalidated. It
// is cached until the earliest of the end of the cache window the server sent, now + MaxCacheTTL
// and the root's own expiry; failures are not cached. Concurrent callers share one fetch, which is
// not cancelled when one of them gives up.
func (c *Certs) HomeRoot(ctx context.Context, domain string) (*identity.IDCert, error) {
	domain = strings.ToLower(domain)
	if err := identity.ValidateDomain(domain); err != nil {
		return nil, fmt.Errorf("%w: home server domain %q: %w", ErrUntrusted, domain, err)
	}
	return c.root(ctx, domain, nil)
}

// withRoot runs check with domain's root. If check finds the root wanting (ErrUntrusted) and the
// root is old enough to refetch, it runs check once more with a freshly fetched root, in case the
// home server changed its key since.
func (c *Certs) withRoot(ctx context.Context, domain string, check func(root *identity.IDCert) error) error {
	root, err := c.HomeRoot(ctx, domain)
	if err != nil {
		return err
	}
	err = check(root)
	if !errors.Is(err, ErrUntrusted) {
		return err
	}
	fresh, ferr := c.root(ctx, strings.ToLower(domain), root)
	if ferr != nil || bytes.Equal(fresh.Raw, root.Raw) {
		return err
	}
	return check(fresh)
}

// root returns domain's cached root or fetches it. stale, if not nil, is a root a cert did not
// verify against: it is dropped from the cache unless fetched less than rootRefetchFloor ago.
func (c *Certs) root(ctx context.Context, domain string, stale *identity.IDCert) (*identity.IDCert, error) {
	c.mu.Lock()
	now := c.now()
	if e, ok := c.roots[domain]; ok {
		expired := !now.Before(e.until)
		refetch := stale != nil && e.cert == stale && now.Sub(e.fetchedAt) >= rootRefetchFloor
		if !expired && !refetch {
			c.mu.Unlock()
			return e.cert, nil
		}
		delete(c.roots, domain)
	}
	call, ok := c.inflight[domain]
	if !ok {
		if err := ctx.Err(); err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("root of %s: %w", domain, context.Cause(ctx))
		}
		call = &rootCall{done: make(chan struct{})}
		c.inflight[domain] = call
		// The fetch outlives the caller that started it, bounded by the timeout, so that
		// one impatient caller does not fail the others waiting on it.
		go c.fetchRoot(context.WithoutCancel(ctx), domain, call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.cert, call.err
	case <-ctx.Done():
		return nil, fmt.Errorf("root of %s: %w", domain, context.Cause(ctx))
	}
}

func (c *Certs) fetchRoot(ctx context.Context, domain string, call *rootCall) {
	var (
		cert  *identity.IDCert
		until time.Time
		err   error
	)
	defer func() {
		// The cert parser meets hostile input here, outside the HTTP server's recovery:
		// a bug there must fail this fetch, not the process.
		if p := recover(); p != nil {
			cert, err = nil, fmt.Errorf("%w: peer %s: root cert: panic: %v", ErrUntrusted, domain, p)
			c.log.ErrorContext(ctx, "federation root fetch panicked", "peer", domain, "panic", p)
		}
		c.mu.Lock()
		delete(c.inflight, domain)
		if now := c.now(); err == nil && now.Before(until) {
			for d, e := range c.roots {
				if !now.Before(e.until) {
					delete(c.roots, d)
				}
			}
			c.roots[domain] = rootEntry{cert: cert, until: until, fetchedAt: now}
		}
		call.cert, call.err = cert, err
		c.mu.Unlock()
		close(call.done)
	}()
	cert, until, err = c.loadRoot(ctx, domain)
}

// loadRoot fetches and checks domain's root and says until when to trust it.
//
// The root's cache metadata is advisory: polyproto (core 6.4.1) does not have a home server's
// self-signed cert validated by cache signature, and a signature by the very key being introduced
// would prove nothing the transport did not. So the signature is not checked (identity's
// CacheableCert.Verify refuses roots), and a cache window that is over or malformed only means the
// root is used for the calls waiting on this fetch and not cached.
func (c *Certs) loadRoot(ctx context.Context, domain string) (*identity.IDCert, time.Time, error) {
	var cc identity.CacheableCert
	if err := c.getJSON(ctx, domain, routeServerCert, routeServerCert, &cc); err != nil {
		return nil, time.Time{}, err
	}
	untrusted := func(err error) (*identity.IDCert, time.Time, error) {
		return nil, time.Time{}, fmt.Errorf("%w: peer %s: root cert: %w", ErrUntrusted, domain, err)
	}
	root, err := identity.ParseIDCert([]byte(cc.IDCertPEM))
	if err != nil {
		return untrusted(err)
	}
	if !root.IsRoot {
		return untrusted(errors.New("not a root cert"))
	}
	if root.Domain != domain {
		return untrusted(fmt.Errorf("a root for %s", root.Domain))
	}
	if err := root.VerifyIssuedBy(root); err != nil {
		return untrusted(fmt.Errorf("not self-issued: %w", err))
	}
	now := c.now()
	if err := root.ValidAt(easeStart(now, root.NotBefore)); err != nil {
		return untrusted(err)
	}
	if cc.InvalidatedAt != nil {
		// Unsigned, but a server disowning its own root is believed.
		return nil, time.Time{}, fmt.Errorf("%w: peer %s: root cert is marked invalidated", ErrRevoked, domain)
	}
	until := earliest(time.Unix(cc.CacheNotValidAfter, 0), now.Add(c.maxTTL), root.NotAfter)
	if time.Unix(cc.CacheNotValidBefore, 0).Sub(now) > clockSkew {
		until = time.Time{} // a window that has not begun, even allowing for skew
	}
	return root, until, nil
}
