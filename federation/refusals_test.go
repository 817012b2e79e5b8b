package federation

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// TestVerifyRefuses plays a home server that is wrong, hostile or away, and checks which
// sentinel the presented cert is refused with.
func TestVerifyRefuses(t *testing.T) {
	type setup struct {
		a    *homeServer
		clk  *clock
		cert *identity.IDCert // presented to B; a.issue(t, "alice") unless the case changes it
		cfg  *CertsConfig
	}
	serveRoot := func(s *setup, f func(h *homeServer, w http.ResponseWriter, r *http.Request)) {
		s.a.set(func(h *homeServer) {
			h.rootHandler = func(w http.ResponseWriter, r *http.Request) { f(h, w, r) }
		})
	}
	serveActor := func(s *setup, f func(h *homeServer, w http.ResponseWriter, r *http.Request)) {
		s.a.set(func(h *homeServer) {
			h.actorHandler = func(w http.ResponseWriter, r *http.Request) { f(h, w, r) }
		})
	}
	status := func(code int) func(h *homeServer, w http.ResponseWriter, r *http.Request) {
		return func(h *homeServer, w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"code":"P2_CORE_WHATEVER","message":"no"}`, code)
		}
	}
	body := func(s string) func(h *homeServer, w http.ResponseWriter, r *http.Request) {
		return func(h *homeServer, w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(s)) }
	}
	slow := func(h *homeServer, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}

	for _, tc := range []struct {
		name       string
		change     func(t *testing.T, s *setup)
		want       error
		wantAlso   error // a cause that must be wrapped too, if not nil
		noFetch    bool  // refused before asking the home server anything
		noActorGet bool  // refused before asking for the actor's certs
	}{
		{
			name: "cert from an attacker's root for the same domain",
			change: func(t *testing.T, s *setup) {
				evil, err := identity.NewRoot("a.test", s.clk.now().Add(-time.Hour), 365*24*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				now := s.clk.now()
				s.cert = s.a.issueWith(t, evil, "alice", "s1", identity.NewSerial(), now.Add(-time.Hour), now.Add(time.Hour), true)
			},
			want: ErrUntrusted, noActorGet: true,
		},
		{
			name: "expired cert",
			change: func(t *testing.T, s *setup) {
				now := s.clk.now()
				s.cert = s.a.issueWith(t, s.a.root, "alice", "s1", identity.NewSerial(), now.Add(-48*time.Hour), now.Add(-time.Hour), true)
			},
			want: ErrUntrusted, wantAlso: identity.ErrExpired, noFetch: true,
		},
		{
			name: "garbage presented",
			change: func(t *testing.T, s *setup) {
				s.cert = &identity.IDCert{Raw: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}
			},
			want: ErrUntrusted, noFetch: true,
		},
		{
			name:   "root presented as an actor cert",
			change: func(t *testing.T, s *setup) { s.cert = s.a.root.Cert },
			want:   ErrUntrusted, noFetch: true,
		},
		{
			name: "revoked cert",
			change: func(t *testing.T, s *setup) {
				s.a.set(func(h *homeServer) { h.revoked[s.cert.Serial] = s.clk.now().Add(-time.Minute) })
			},
			want: ErrRevoked,
		},
		{
			name: "cert not listed by the home server",
			change: func(t *testing.T, s *setup) {
				now := s.clk.now()
				s.cert = s.a.issueWith(t, s.a.root, "alice", "s1", identity.NewSerial(), now.Add(-time.Hour), now.Add(time.Hour), false)
			},
			want: ErrUntrusted,
		},
		{
			name: "home server holds another cert with the same serial",
			change: func(t *testing.T, s *setup) {
				now := s.clk.now()
				serial := identity.NewSerial()
				s.a.issueWith(t, s.a.root, "alice", "s1", serial, now.Add(-time.Hour), now.Add(time.Hour), true)
				s.cert = s.a.issueWith(t, s.a.root, "alice", "s1", serial, now.Add(-time.Hour), now.Add(time.Hour), false)
			},
			want: ErrUntrusted,
		},
		{
			name:   "actor unknown to the home server (404)",
			change: func(t *testing.T, s *setup) { serveActor(s, status(http.StatusNotFound)) },
			want:   ErrUntrusted,
		},
		{
			name: "bad cacheSignature on the actor cert",
			change: func(t *testing.T, s *setup) {
				serveActor(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					cc := h.cacheable(s.cert, nil)
					cc.CacheNotValidAfter++ // the signature no longer covers what is said
					writeJSON(w, []identity.CacheableCert{cc})
				})
			},
			want: ErrUntrusted,
		},
		{
			name: "actor cert's status signed by another key",
			change: func(t *testing.T, s *setup) {
				evil, err := identity.NewRoot("a.test", s.clk.now().Add(-time.Hour), 365*24*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				serveActor(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					now := h.now()
					writeJSON(w, []identity.CacheableCert{identity.SignCacheable(evil, s.cert, nil, now.Add(-time.Minute), now.Add(time.Hour))})
				})
			},
			want: ErrUntrusted,
		},
		{
			name: "actor cert's cache window already over",
			change: func(t *testing.T, s *setup) {
				serveActor(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					now := h.now()
					writeJSON(w, []identity.CacheableCert{identity.SignCacheable(h.root, s.cert, nil, now.Add(-time.Hour), now.Add(-time.Minute))})
				})
			},
			want: ErrUntrusted, wantAlso: identity.ErrCacheExpired,
		},
		{
			name: "root served for a different domain",
			change: func(t *testing.T, s *setup) {
				other, err := identity.NewRoot("other.test", s.clk.now().Add(-time.Hour), 365*24*time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					now := h.now()
					writeJSON(w, identity.SignCacheable(other, other.Cert, nil, now.Add(-time.Minute), now.Add(time.Hour)))
				})
			},
			want: ErrUntrusted, noActorGet: true,
		},
		{
			name: "actor cert served as root",
			change: func(t *testing.T, s *setup) {
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) { writeJSON(w, h.cacheable(s.cert, nil)) })
			},
			want: ErrUntrusted, noActorGet: true,
		},
		{
			name: "root marked invalidated",
			change: func(t *testing.T, s *setup) {
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					at := h.now().Add(-time.Minute)
					writeJSON(w, h.cacheable(h.root.Cert, &at))
				})
			},
			want: ErrRevoked, noActorGet: true,
		},
		{name: "garbage JSON as root", change: func(t *testing.T, s *setup) { serveRoot(s, body(`{"idCertPem": 12`)) }, want: ErrPeerUnavailable, noActorGet: true},
		{name: "null as root", change: func(t *testing.T, s *setup) { serveRoot(s, body(`null`)) }, want: ErrPeerUnavailable, noActorGet: true},
		{name: "unknown field in root", change: func(t *testing.T, s *setup) { serveRoot(s, body(`{"idCertPem":"","evil":1}`)) }, want: ErrPeerUnavailable, noActorGet: true},
		{
			name: "data after the root's JSON",
			change: func(t *testing.T, s *setup) {
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					writeJSON(w, h.cacheable(h.root.Cert, nil))
					_, _ = w.Write([]byte("{}"))
				})
			},
			want: ErrPeerUnavailable, noActorGet: true,
		},
		{name: "garbage JSON as actor certs", change: func(t *testing.T, s *setup) { serveActor(s, body(`[{"idCertPem":`)) }, want: ErrPeerUnavailable},
		{name: "object instead of list of actor certs", change: func(t *testing.T, s *setup) { serveActor(s, body(`{}`)) }, want: ErrPeerUnavailable},
		{
			name: "oversize root body, length declared",
			change: func(t *testing.T, s *setup) {
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", strconv.Itoa(maxBody+1))
					_, _ = w.Write([]byte(strings.Repeat(" ", maxBody+1)))
				})
			},
			want: ErrPeerUnavailable, noActorGet: true,
		},
		{
			name: "oversize actor body, chunked",
			change: func(t *testing.T, s *setup) {
				serveActor(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					cc := h.cacheable(s.cert, nil)
					_, _ = fmt.Fprintf(w, `[{"idCertPem":%q,"cacheNotValidBefore":%d,"cacheNotValidAfter":%d,"cacheSignature":"%s%s"}]`,
						cc.IDCertPEM, cc.CacheNotValidBefore, cc.CacheNotValidAfter, cc.CacheSignature, strings.Repeat("0", maxBody))
				})
			},
			want: ErrPeerUnavailable,
		},
		{name: "root route answers 500", change: func(t *testing.T, s *setup) { serveRoot(s, status(http.StatusInternalServerError)) }, want: ErrPeerUnavailable, noActorGet: true},
		{name: "root route answers 404", change: func(t *testing.T, s *setup) { serveRoot(s, status(http.StatusNotFound)) }, want: ErrPeerUnavailable, noActorGet: true},
		{name: "actor route answers 500", change: func(t *testing.T, s *setup) { serveActor(s, status(http.StatusInternalServerError)) }, want: ErrPeerUnavailable},
		{name: "root route slower than the timeout", change: func(t *testing.T, s *setup) { serveRoot(s, slow) }, want: ErrPeerUnavailable, noActorGet: true},
		{name: "actor route slower than the timeout", change: func(t *testing.T, s *setup) { serveActor(s, slow) }, want: ErrPeerUnavailable},
		{
			name: "root body stalls after the headers",
			change: func(t *testing.T, s *setup) {
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					_, _ = w.Write([]byte(`{"idCertPem":`))
					w.(http.Flusher).Flush()
					slow(h, w, r)
				})
			},
			want: ErrPeerUnavailable, noActorGet: true,
		},
		{
			name: "redirect to another host",
			change: func(t *testing.T, s *setup) {
				// elsewhere answers honestly, but it is not a.test's server.
				elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					writeJSON(w, s.a.cacheable(s.a.rootCert(), nil))
				}))
				t.Cleanup(elsewhere.Close)
				serveRoot(s, func(h *homeServer, w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Location", elsewhere.URL+routeServerCert)
					w.WriteHeader(http.StatusFound)
				})
			},
			want: ErrPeerUnavailable, noActorGet: true,
		},
		{
			name:   "domain with no peer mapping (https://a.test does not resolve here)",
			change: func(t *testing.T, s *setup) { s.cfg.Peers = nil },
			want:   ErrPeerUnavailable, noFetch: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &setup{clk: newClock()}
			s.a = newHomeServer(t, "a.test", s.clk.now)
			s.cert = s.a.issue(t, "alice")
			s.cfg = &CertsConfig{Peers: s.a.peers(), Now: s.clk.now, Timeout: 300 * time.Millisecond}
			tc.change(t, s)
			c := NewCerts(*s.cfg)

			start := time.Now()
			_, err := c.Verify(t.Context(), []byte(s.cert.PEM()))
			t.Logf("err: %v", err)
			for _, sentinel := range []error{ErrUntrusted, ErrRevoked, ErrPeerUnavailable} {
				if errors.Is(err, sentinel) != (sentinel == tc.want) {
					t.Errorf("errors.Is(err, %v) = %v, want %v", sentinel, !(sentinel == tc.want), sentinel == tc.want)
				}
			}
			if tc.wantAlso != nil && !errors.Is(err, tc.wantAlso) {
				t.Errorf("err does not wrap %v", tc.wantAlso)
			}
			if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
				t.Errorf("refused after %v, want within the timeouts", elapsed)
			}
			if tc.noFetch && s.a.rootHits.Load()+s.a.actorHits.Load() != 0 {
				t.Errorf("home server asked %d+%d times, want no request", s.a.rootHits.Load(), s.a.actorHits.Load())
			}
			if tc.noActorGet && s.a.actorHits.Load() != 0 {
				t.Errorf("actor certs asked %d times, want no request", s.a.actorHits.Load())
			}
		})
	}
}
