package federation

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

func TestVerifyAcceptsCertOfHomeServer(t *testing.T) {
	clk := newClock()
	a := newHomeServer(t, "a.test", clk.now)
	cert := a.issue(t, "alice")
	var logs bytes.Buffer
	c := NewCerts(CertsConfig{
		Peers:  a.peers(),
		Now:    clk.now,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	status, err := c.Verify(t.Context(), []byte(cert.PEM()))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if status.Cert.Serial != cert.Serial || status.Cert.FID != cert.FID || !bytes.Equal(status.Cert.Raw, cert.Raw) {
		t.Errorf("status is of cert %d of %s, want %d of %s", status.Cert.Serial, status.Cert.FID, cert.Serial, cert.FID)
	}
	if status.InvalidatedAt != nil {
		t.Errorf("InvalidatedAt = %v, want nil", status.InvalidatedAt)
	}
	// The home server's window is 10 minutes, seconds precision.
	if want := clk.now().Add(10 * time.Minute); status.CacheUntil.Sub(want).Abs() > time.Second {
		t.Errorf("CacheUntil = %v, want %v", status.CacheUntil, want)
	}

	// DER works as well as PEM; the root is fetched once, the status every time.
	for range 20 {
		if _, err := c.Verify(t.Context(), cert.Raw); err != nil {
			t.Fatalf("verify again: %v", err)
		}
	}
	if got := a.rootHits.Load(); got != 1 {
		t.Errorf("root fetched %d times, want 1", got)
	}
	if got := a.actorHits.Load(); got != 21 {
		t.Errorf("actor certs fetched %d times, want 21", got)
	}
	for _, want := range []string{"peer=a.test", "route=/.p2/core/v1/idcert/server", "route=/.p2/core/v1/idcert/actor/{fid}", "status=200", "duration="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("debug log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestHomeRootConcurrentCallersShareOneFetch(t *testing.T) {
	clk := newClock()
	a := newHomeServer(t, "a.test", clk.now)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.set(func(h *homeServer) {
		h.rootHandler = func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(entered) })
			<-release
			writeJSON(w, h.cacheable(h.rootCert(), nil))
		}
	})
	c := NewCerts(CertsConfig{Peers: a.peers(), Now: clk.now})

	// The caller that started the fetch gives up; the fetch goes on for the others.
	impatient, cancel := context.WithCancel(t.Context())
	impatientErr := make(chan error, 1)
	go func() {
		_, err := c.HomeRoot(impatient, "a.test")
		impatientErr <- err
	}()
	<-entered
	cancel()
	if err := <-impatientErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: err = %v, want context.Canceled", err)
	}

	const callers = 16
	roots := make([]*identity.IDCert, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { roots[i], errs[i] = c.HomeRoot(t.Context(), "A.test") })
	}
	time.Sleep(50 * time.Millisecond) // let them join the fetch in flight
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if roots[i] != roots[0] || !bytes.Equal(roots[i].Raw, a.rootCert().Raw) {
			t.Fatalf("caller %d got another root", i)
		}
	}
	if got := a.rootHits.Load(); got != 1 {
		t.Errorf("root fetched %d times, want 1", got)
	}
}

func TestHomeRootCacheWindow(t *testing.T) {
	for _, tc := range []struct {
		name        string
		serverTTL   time.Duration // window the home server signs
		maxCacheTTL time.Duration
		cachedFor   time.Duration // how long the root is then used without a fetch
	}{
		{"home server's window", 10 * time.Minute, 0, 10 * time.Minute},
		{"capped by MaxCacheTTL", 24 * time.Hour, 0, time.Hour},
		{"capped by configured MaxCacheTTL", time.Hour, 5 * time.Minute, 5 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			a := newHomeServer(t, "a.test", clk.now)
			a.set(func(h *homeServer) { h.ttl = tc.serverTTL })
			c := NewCerts(CertsConfig{Peers: a.peers(), Now: clk.now, MaxCacheTTL: tc.maxCacheTTL})
			if _, err := c.HomeRoot(t.Context(), "a.test"); err != nil {
				t.Fatal(err)
			}
			clk.advance(tc.cachedFor - 2*time.Second) // the home server's window has seconds precision
			if _, err := c.HomeRoot(t.Context(), "a.test"); err != nil {
				t.Fatal(err)
			}
			if got := a.rootHits.Load(); got != 1 {
				t.Fatalf("root fetched %d times inside the window, want 1", got)
			}
			clk.advance(3 * time.Second)
			if _, err := c.HomeRoot(t.Context(), "a.test"); err != nil {
				t.Fatal(err)
			}
			if got := a.rootHits.Load(); got != 2 {
				t.Fatalf("root fetched %d times after the window, want 2", got)
			}
		})
	}
}

func TestVerifyFollowsRootKeyChange(t *testing.T) {
	clk := newClock()
	a := newHomeServer(t, "a.test", clk.now)
	c := NewCerts(CertsConfig{Peers: a.peers(), Now: clk.now})
	if _, err := c.Verify(t.Context(), []byte(a.issue(t, "alice").PEM())); err != nil {
		t.Fatal(err)
	}

	newRoot, err := identity.NewRoot("a.test", clk.now().Add(-90*24*time.Hour), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a.set(func(h *homeServer) { h.root = newRoot })
	cert := a.issue(t, "bob")

	// A root fetched moments ago is not fetched again for a cert it did not issue...
	if _, err := c.Verify(t.Context(), []byte(cert.PEM())); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("verify right after the key change: err = %v, want ErrUntrusted", err)
	}
	if got := a.rootHits.Load(); got != 1 {
		t.Fatalf("root fetched %d times, want 1", got)
	}
	// ...but after a minute it is, long before the cache window ends.
	clk.advance(rootRefetchFloor)
	if _, err := c.Verify(t.Context(), []byte(cert.PEM())); err != nil {
		t.Fatalf("verify a minute after the key change: %v", err)
	}
	if got := a.rootHits.Load(); got != 2 {
		t.Fatalf("root fetched %d times, want 2", got)
	}
}

func TestActorCertStatus(t *testing.T) {
	clk := newClock()
	a := newHomeServer(t, "a.test", clk.now)
	a.set(func(h *homeServer) { h.ttl = 3 * time.Hour })
	cert := a.issue(t, "alice")
	other := a.issue(t, "alice") // another session of the same actor
	at := clk.now().Add(-5 * time.Minute).Truncate(time.Second)
	a.set(func(h *homeServer) { h.revoked[other.Serial] = at })
	c := NewCerts(CertsConfig{Peers: a.peers(), Now: clk.now})

	status, err := c.ActorCert(t.Context(), cert.FID, cert.SessionID, cert.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if status.InvalidatedAt != nil || status.Cert.Serial != cert.Serial {
		t.Errorf("status = %+v, want cert %d, not invalidated", status, cert.Serial)
	}
	if want := clk.now().Add(time.Hour); !status.CacheUntil.Equal(want) {
		t.Errorf("CacheUntil = %v, want it capped at %v", status.CacheUntil, want)
	}

	// A revoked cert is a status, not an error, for ActorCert; Verify refuses it.
	status, err = c.ActorCert(t.Context(), other.FID, other.SessionID, other.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if status.InvalidatedAt == nil || !status.InvalidatedAt.Equal(at) {
		t.Errorf("InvalidatedAt = %v, want %v", status.InvalidatedAt, at)
	}
	status, err = c.Verify(t.Context(), []byte(other.PEM()))
	if !errors.Is(err, ErrRevoked) || errors.Is(err, ErrUntrusted) {
		t.Fatalf("verify revoked cert: err = %v, want ErrRevoked", err)
	}
	if status.InvalidatedAt == nil || !status.InvalidatedAt.Equal(at) {
		t.Errorf("verify revoked cert: InvalidatedAt = %v, want %v", status.InvalidatedAt, at)
	}

	// The serial must be of that session.
	if _, err := c.ActorCert(t.Context(), cert.FID, cert.SessionID, other.Serial); !errors.Is(err, ErrUntrusted) {
		t.Errorf("serial of another session: err = %v, want ErrUntrusted", err)
	}
}

// The root's cache metadata is signed by the key it introduces, so it proves nothing: a bad
// signature is ignored, and a window we are not in only stops the root from being cached.
func TestHomeRootCacheMetadataIsAdvisory(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     func(h *homeServer) identity.CacheableCert
		wantCached bool
	}{
		{
			name: "bad signature",
			answer: func(h *homeServer) identity.CacheableCert {
				cc := h.cacheable(h.rootCert(), nil)
				cc.CacheSignature = strings.Repeat("ab", 64)
				return cc
			},
			wantCached: true,
		},
		{
			name: "window over",
			answer: func(h *homeServer) identity.CacheableCert {
				now := h.now()
				return identity.SignCacheable(h.root, h.root.Cert, nil, now.Add(-time.Hour), now.Add(-time.Minute))
			},
		},
		{
			name: "window begins later",
			answer: func(h *homeServer) identity.CacheableCert {
				now := h.now()
				return identity.SignCacheable(h.root, h.root.Cert, nil, now.Add(time.Hour), now.Add(2*time.Hour))
			},
		},
		{
			name: "no metadata",
			answer: func(h *homeServer) identity.CacheableCert {
				return identity.CacheableCert{IDCertPEM: h.rootCert().PEM()}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			a := newHomeServer(t, "a.test", clk.now)
			a.set(func(h *homeServer) {
				h.rootHandler = func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.answer(h)) }
			})
			cert := a.issue(t, "alice")
			c := NewCerts(CertsConfig{Peers: a.peers(), Now: clk.now})
			for range 2 {
				if _, err := c.Verify(t.Context(), []byte(cert.PEM())); err != nil {
					t.Fatalf("verify: %v", err)
				}
			}
			want := int64(2)
			if tc.wantCached {
				want = 1
			}
			if got := a.rootHits.Load(); got != want {
				t.Errorf("root fetched %d times, want %d", got, want)
			}
		})
	}
}

// A home server issues certs and signs cache windows from its own "now", which may be a little
// ahead of ours.
func TestVerifyAllowsClockSkew(t *testing.T) {
	for _, tc := range []struct {
		ahead time.Duration
		want  error
	}{
		{0, nil},
		{30 * time.Second, nil},
		{clockSkew, nil},
		{clockSkew + 2*time.Second, ErrUntrusted},
	} {
		t.Run(tc.ahead.String(), func(t *testing.T) {
			ours := newClock()
			theirs := &clock{t: ours.now().Add(tc.ahead)}
			a := newHomeServer(t, "a.test", theirs.now)
			a.set(func(h *homeServer) {
				h.actorHandler = func(w http.ResponseWriter, r *http.Request) {
					now := h.now()
					h.mu.Lock()
					certs := h.certs
					h.mu.Unlock()
					var list []identity.CacheableCert
					for _, c := range certs {
						list = append(list, identity.SignCacheable(h.root, c, nil, now, now.Add(time.Hour)))
					}
					writeJSON(w, list)
				}
			})
			// Issued the way the gateway does: from the home server's now.
			now := theirs.now()
			cert := a.issueWith(t, a.root, "alice", "s1", identity.NewSerial(), now, now.Add(30*24*time.Hour), true)
			c := NewCerts(CertsConfig{Peers: a.peers(), Now: ours.now})
			_, err := c.Verify(t.Context(), []byte(cert.PEM()))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("home server %v ahead: err = %v, want %v", tc.ahead, err, tc.want)
			}
		})
	}
}
