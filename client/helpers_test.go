package client

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

// testRoot makes a home server root for domain, valid from an hour ago for a year.
func testRoot(t *testing.T, domain string) *identity.Root {
	t.Helper()
	root, err := identity.NewRoot(domain, time.Now().Add(-time.Hour), 365*24*time.Hour)
	if err != nil {
		t.Fatalf("NewRoot(%q): %v", domain, err)
	}
	return root
}

// issue signs an actor cert for a PEM or DER CSR, the way the home server does.
func issue(t *testing.T, root *identity.Root, csr []byte) *identity.IDCert {
	t.Helper()
	req, err := identity.ParseCSR(csr)
	if err != nil {
		t.Errorf("server side: ParseCSR: %v", err)
		return nil
	}
	now := time.Now()
	cert, err := root.Issue(req, identity.NewSerial(), now.Add(-time.Minute), now.Add(30*24*time.Hour))
	if err != nil {
		t.Errorf("server side: Issue: %v", err)
		return nil
	}
	return cert
}

// testSession makes a key and an ID-Cert for fid/sid issued by root, without any server.
func testSession(t *testing.T, root *identity.Root, fid identity.FID, sid, server string) *Session {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := identity.NewCSR(key, fid, sid)
	if err != nil {
		t.Fatalf("NewCSR: %v", err)
	}
	cert := issue(t, root, csr)
	if cert == nil {
		t.FailNow()
	}
	return &Session{FID: fid, SessionID: sid, Key: key, Cert: cert, Token: "tok-" + sid, Server: server}
}

// serveRoot answers GET /idcert/server with root's cert, cacheable for the next hour.
func serveRoot(t *testing.T, mux *http.ServeMux, root *identity.Root) {
	mux.HandleFunc("GET /.p2/core/v1/idcert/server", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		writeJSON(t, w, http.StatusOK, identity.SignCacheable(root, root.Cert, nil, now, now.Add(time.Hour)))
	})
}

func newServer(t *testing.T, mux *http.ServeMux) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, base string, dir string) *Client {
	t.Helper()
	c, err := New(base, Options{HTTP: &http.Client{Timeout: 10 * time.Second}, Dir: dir})
	if err != nil {
		t.Fatalf("New(%q): %v", base, err)
	}
	return c
}

func writeJSON(t *testing.T, w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.Errorf("server side: encode answer: %v", err)
	}
}

// readJSON decodes a request body strictly, as the server does ("unknown fields are refused"),
// after checking the content type.
func readJSON(t *testing.T, r *http.Request, v any) bool {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("%s %s: body: %v", r.Method, r.URL.Path, err)
		return false
	}
	return true
}

func readBody(t *testing.T, r *http.Request) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read body: %v", err)
	}
	return string(b)
}

// wantAuth checks the bearer and sensitive-action headers of a request.
func wantAuth(t *testing.T, r *http.Request, token, sensitive string) {
	t.Helper()
	if got, want := r.Header.Get("Authorization"), "Bearer "+token; token != "" && got != want {
		t.Errorf("%s %s: Authorization %q, want %q", r.Method, r.URL.Path, got, want)
	}
	if token == "" && r.Header.Get("Authorization") != "" {
		t.Errorf("%s %s: unexpected Authorization header", r.Method, r.URL.Path)
	}
	got, present := r.Header.Get("X-P2-Sensitive-Solution"), len(r.Header.Values("X-P2-Sensitive-Solution")) > 0
	if sensitive == "" && present {
		t.Errorf("%s %s: unexpected X-P2-Sensitive-Solution header", r.Method, r.URL.Path)
	}
	if sensitive != "" && got != sensitive {
		t.Errorf("%s %s: X-P2-Sensitive-Solution %q, want %q", r.Method, r.URL.Path, got, sensitive)
	}
}

func mustFID(t *testing.T, s string) identity.FID {
	t.Helper()
	fid, err := identity.ParseFID(s)
	if err != nil {
		t.Fatal(err)
	}
	return fid
}

func hostOf(t *testing.T, base string) string {
	t.Helper()
	h, err := serverHost(base)
	if err != nil || h == "" || strings.Contains(h, "/") {
		t.Fatalf("host of %q: %q, %v", base, h, err)
	}
	return h
}
