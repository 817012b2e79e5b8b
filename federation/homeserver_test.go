package federation

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// clock is the injected clock of a test, shared by Certs and the fake home server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// homeServer plays home server A: it issues actor certs with a real identity.Root and answers the
// two idcert routes honestly unless a test replaces an answer.
type homeServer struct {
	domain string
	now    func() time.Time
	srv    *httptest.Server

	rootHits, actorHits atomic.Int64

	mu           sync.Mutex
	root         *identity.Root
	ttl          time.Duration // cache window of honest answers
	certs        []*identity.IDCert
	revoked      map[uint64]time.Time
	rootHandler  http.HandlerFunc // nil: the honest answer
	actorHandler http.HandlerFunc // nil: the honest answer
}

func newHomeServer(t *testing.T, domain string, now func() time.Time) *homeServer {
	t.Helper()
	root, err := identity.NewRoot(domain, now().Add(-90*24*time.Hour), 2*365*24*time.Hour)
	if err != nil {
		t.Fatalf("new root: %v", err)
	}
	h := &homeServer{domain: domain, now: now, root: root, ttl: 10 * time.Minute, revoked: map[uint64]time.Time{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *homeServer) peers() Peers { return Peers{h.domain: h.srv.URL} }

func (h *homeServer) set(f func(h *homeServer)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *homeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Accept") != "application/json" {
		http.Error(w, "want Accept: application/json", http.StatusNotAcceptable)
		return
	}
	const actorPrefix = "/.p2/core/v1/idcert/actor/"
	switch {
	case r.URL.Path == routeServerCert:
		h.rootHits.Add(1)
		h.mu.Lock()
		custom := h.rootHandler
		h.mu.Unlock()
		if custom != nil {
			custom(w, r)
			return
		}
		writeJSON(w, h.cacheable(h.rootCert(), nil))
	case strings.HasPrefix(r.URL.Path, actorPrefix):
		h.actorHits.Add(1)
		h.mu.Lock()
		custom := h.actorHandler
		h.mu.Unlock()
		if custom != nil {
			custom(w, r)
			return
		}
		fid, err := identity.ParseFID(strings.TrimPrefix(r.URL.Path, actorPrefix))
		if err != nil || fid.Domain != h.domain {
			http.Error(w, `{"code":"P2_CORE_NOT_FOUND","message":"no such actor"}`, http.StatusNotFound)
			return
		}
		writeJSON(w, h.actorCerts(fid, r.URL.Query().Get("session_id")))
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *homeServer) rootCert() *identity.IDCert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.root.Cert
}

// cacheable signs cert's status with the current root and an honest cache window.
func (h *homeServer) cacheable(cert *identity.IDCert, invalidatedAt *time.Time) identity.CacheableCert {
	h.mu.Lock()
	root, ttl := h.root, h.ttl
	h.mu.Unlock()
	now := h.now()
	return identity.SignCacheable(root, cert, invalidatedAt, now.Add(-time.Minute), now.Add(ttl))
}

func (h *homeServer) actorCerts(fid identity.FID, sessionID string) []identity.CacheableCert {
	h.mu.Lock()
	var certs []*identity.IDCert
	invalidated := map[uint64]*time.Time{}
	for _, c := range h.certs {
		if c.FID == fid && (sessionID == "" || c.SessionID == sessionID) {
			certs = append(certs, c)
			if at, ok := h.revoked[c.Serial]; ok {
				invalidated[c.Serial] = &at
			}
		}
	}
	h.mu.Unlock()
	list := []identity.CacheableCert{}
	for _, c := range certs {
		list = append(list, h.cacheable(c, invalidated[c.Serial]))
	}
	return list
}

// issue gives local a cert for a new session, valid for 30 days from an hour ago, and lists it.
func (h *homeServer) issue(t *testing.T, local string) *identity.IDCert {
	t.Helper()
	now := h.now()
	return h.issueWith(t, h.root, local, "s"+strings.ToLower(rand.Text()[:10]), identity.NewSerial(), now.Add(-time.Hour), now.Add(30*24*time.Hour), true)
}

// issueWith issues a cert with any root, session, serial and validity; listed says whether the
// home server lists it on its actor route.
func (h *homeServer) issueWith(t *testing.T, root *identity.Root, local, sessionID string, serial uint64, notBefore, notAfter time.Time, listed bool) *identity.IDCert {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrPEM, err := identity.NewCSR(key, identity.FID{Local: local, Domain: root.Cert.Domain}, sessionID)
	if err != nil {
		t.Fatalf("new csr: %v", err)
	}
	csr, err := identity.ParseCSR(csrPEM)
	if err != nil {
		t.Fatalf("parse csr: %v", err)
	}
	cert, err := root.Issue(csr, serial, notBefore, notAfter)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	if listed {
		h.set(func(h *homeServer) { h.certs = append(h.certs, cert) })
	}
	return cert
}
