package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/identity"
)

func TestRegister(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/.p2/core/v1/register", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		wantAuth(t, r, "", "")
		var body struct {
			LocalName string `json:"local_name"`
			Password  string `json:"password"`
		}
		if readJSON(t, r, &body) && (body.LocalName != "alice" || body.Password != "correct horse") {
			t.Errorf("body %+v", body)
		}
		writeJSON(t, w, http.StatusCreated, map[string]string{"fid": "alice@example.com"})
	})
	c := newClient(t, newServer(t, mux).URL, "")
	fid, err := c.Register(context.Background(), "Alice", "correct horse")
	if err != nil || fid != mustFID(t, "alice@example.com") {
		t.Fatalf("Register = %v, %v", fid, err)
	}
}

// loginServer is a home server for example.com whose /login handler the test can tamper with.
type loginServer struct {
	root   *identity.Root
	url    string
	answer func(t *testing.T, csr []byte) (fid string, cert *identity.IDCert, token string)
	gotCSR *identity.CSR
}

func newLoginServer(t *testing.T) *loginServer {
	ls := &loginServer{root: testRoot(t, "example.com")}
	ls.answer = func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
		return "alice@example.com", issue(t, ls.root, csr), "alice-token"
	}
	mux := http.NewServeMux()
	serveRoot(t, mux, ls.root)
	mux.HandleFunc("POST /.p2/core/v1/login", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "", "")
		var body struct {
			LocalName string `json:"local_name"`
			Password  string `json:"password"`
			CSR       string `json:"csr"`
		}
		if !readJSON(t, r, &body) {
			return
		}
		if body.LocalName != "alice" || body.Password != "password123" {
			t.Errorf("login body %+v", body)
		}
		if !strings.HasPrefix(body.CSR, "-----BEGIN CERTIFICATE REQUEST-----") {
			t.Errorf("csr is not PEM: %.40q", body.CSR)
		}
		csr, err := identity.ParseCSR([]byte(body.CSR))
		if err != nil {
			t.Errorf("ParseCSR: %v", err)
			return
		}
		ls.gotCSR = csr
		fid, cert, token := ls.answer(t, []byte(body.CSR))
		resp := map[string]string{"fid": fid, "token": token}
		if cert != nil {
			resp["id_cert"] = cert.PEM()
		}
		writeJSON(t, w, http.StatusCreated, resp)
	})
	ls.url = newServer(t, mux).URL
	return ls
}

func TestLogin(t *testing.T) {
	ls := newLoginServer(t)
	dir := t.TempDir()
	c := newClient(t, ls.url, dir)

	s, err := c.Login(context.Background(), "alice", "password123", "laptop")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	fid := mustFID(t, "alice@example.com")
	if s.FID != fid || s.SessionID != "laptop" || s.Token != "alice-token" || s.Server != ls.url {
		t.Errorf("session %+v", s)
	}
	if ls.gotCSR.FID != fid || ls.gotCSR.SessionID != "laptop" || !ls.gotCSR.PublicKey.Equal(s.Key.Public()) {
		t.Errorf("CSR for %s/%s, want %s/laptop with the session key", ls.gotCSR.FID, ls.gotCSR.SessionID, fid)
	}
	if err := s.Cert.VerifyIssuedBy(ls.root.Cert); err != nil {
		t.Errorf("cert: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "alice@example.com", hostOf(t, ls.url), "laptop", "token")); err != nil {
		t.Errorf("session not stored: %v", err)
	}

	// An empty session id picks a random one, different each time.
	s2, err := c.Login(context.Background(), "alice", "password123", "")
	if err != nil {
		t.Fatalf("Login with a random session id: %v", err)
	}
	s3, err := c.Login(context.Background(), "alice", "password123", "")
	if err != nil {
		t.Fatalf("Login with a random session id: %v", err)
	}
	if len(s2.SessionID) != 16 || s2.SessionID == s3.SessionID || s2.Key.Equal(s3.Key) {
		t.Errorf("random sessions %q and %q (want 16 characters, different, with different keys)", s2.SessionID, s3.SessionID)
	}
}

// Login must refuse whatever does not certify the key, FID and session it asked for.
func TestLoginRefusesWrongCert(t *testing.T) {
	other := testRoot(t, "example.com")
	tests := []struct {
		name   string
		answer func(ls *loginServer) func(t *testing.T, csr []byte) (string, *identity.IDCert, string)
	}{
		{"cert for another key", func(ls *loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(t *testing.T, _ []byte) (string, *identity.IDCert, string) {
				return "alice@example.com", testSession(t, ls.root, mustFID(t, "alice@example.com"), "laptop", "").Cert, "tok"
			}
		}},
		{"cert for another session id", func(ls *loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
				req, _ := identity.ParseCSR(csr)
				req.SessionID = "phone"
				cert, err := ls.root.Issue(req, identity.NewSerial(), time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return "alice@example.com", cert, "tok"
			}
		}},
		{"cert for another actor", func(ls *loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
				req, _ := identity.ParseCSR(csr)
				req.FID = mustFID(t, "mallory@example.com")
				cert, err := ls.root.Issue(req, identity.NewSerial(), time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return "alice@example.com", cert, "tok"
			}
		}},
		{"issued by another root of the same domain", func(*loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
				return "alice@example.com", issue(t, other, csr), "tok"
			}
		}},
		{"the root itself", func(ls *loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(*testing.T, []byte) (string, *identity.IDCert, string) {
				return "alice@example.com", ls.root.Cert, "tok"
			}
		}},
		{"no cert", func(*loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(*testing.T, []byte) (string, *identity.IDCert, string) { return "alice@example.com", nil, "tok" }
		}},
		{"another fid in the answer", func(ls *loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
				return "alice@evil.org", issue(t, ls.root, csr), "tok"
			}
		}},
		{"no token", func(ls *loginServer) func(*testing.T, []byte) (string, *identity.IDCert, string) {
			return func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
				return "alice@example.com", issue(t, ls.root, csr), ""
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := newLoginServer(t)
			ls.answer = tt.answer(ls)
			dir := t.TempDir()
			c := newClient(t, ls.url, dir)
			s, err := c.Login(context.Background(), "alice", "password123", "laptop")
			if err == nil {
				t.Fatalf("Login accepted %+v", s)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			if stored, _ := c.StoredSessions(); len(stored) != 0 {
				t.Errorf("stored %d sessions after a refused login", len(stored))
			}
		})
	}
}

func TestLoginRefusesUnstorableSessionID(t *testing.T) {
	ls := newLoginServer(t)
	called := false
	ls.answer = func(t *testing.T, csr []byte) (string, *identity.IDCert, string) {
		called = true
		return "alice@example.com", issue(t, ls.root, csr), "tok"
	}
	c := newClient(t, ls.url, t.TempDir())
	for _, sid := range []string{"..", "a/b", "this-session-id-is-longer-than-32"} {
		if _, err := c.Login(context.Background(), "alice", "password123", sid); err == nil {
			t.Errorf("Login with session id %q succeeded", sid)
		}
	}
	if called {
		t.Error("the server was asked for a session that could not be stored")
	}
}

func TestServerCert(t *testing.T) {
	root := testRoot(t, "example.com")
	actor := testSession(t, root, mustFID(t, "alice@example.com"), "s1", "")
	expired, err := identity.NewRoot("example.com", time.Now().Add(-2*365*24*time.Hour), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A root whose self-signature is broken (the last byte of the DER is the signature's).
	forged := *root.Cert
	forged.Raw = append([]byte(nil), root.Cert.Raw...)
	forged.Raw[len(forged.Raw)-1] ^= 1
	forgedCert, err := identity.ParseIDCert(forged.Raw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name    string
		answer  identity.CacheableCert
		wantErr bool
	}{
		{"valid", identity.SignCacheable(root, root.Cert, nil, now, now.Add(time.Hour)), false},
		// The root's cache metadata is advisory (see ServerCert).
		{"cache window passed", identity.SignCacheable(root, root.Cert, nil, now.Add(-2*time.Hour), now.Add(-time.Hour)), false},
		{"not self-issued", identity.CacheableCert{IDCertPEM: forgedCert.PEM()}, true},
		{"expired root", identity.SignCacheable(expired, expired.Cert, nil, now, now.Add(time.Hour)), true},
		{"an actor cert", identity.SignCacheable(root, actor.Cert, nil, now, now.Add(time.Hour)), true},
		{"garbage PEM", identity.CacheableCert{IDCertPEM: "nope"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /.p2/core/v1/idcert/server", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(t, w, http.StatusOK, tt.answer)
			})
			srv := newServer(t, mux)
			// Asked through a client for another home server: baseURL selects the server.
			c := newClient(t, "http://home.invalid", "")
			cert, err := c.ServerCert(context.Background(), srv.URL+"/")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ServerCert accepted %+v", cert)
				}
				return
			}
			if err != nil || cert.Domain != "example.com" || !cert.IsRoot || !cert.PublicKey.Equal(root.Cert.PublicKey) {
				t.Fatalf("ServerCert = %+v, %v", cert, err)
			}
		})
	}
}

func TestNewSession(t *testing.T) {
	root := testRoot(t, "example.com")
	fid := mustFID(t, "alice@example.com")
	var got *identity.CSR
	mux := http.NewServeMux()
	serveRoot(t, mux, root)
	mux.HandleFunc("POST /.p2/core/v1/idcert", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "tok-laptop", "password123")
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		body := readBody(t, r)
		csr, err := identity.ParseCSR([]byte(body))
		if err != nil || !strings.HasPrefix(body, "-----BEGIN CERTIFICATE REQUEST-----") {
			t.Errorf("body is not a PEM ID-CSR: %v", err)
			return
		}
		got = csr
		writeJSON(t, w, http.StatusCreated, map[string]string{"id_cert": issue(t, root, []byte(body)).PEM(), "token": "tok-phone"})
	})
	srv := newServer(t, mux)
	dir := t.TempDir()
	c := newClient(t, srv.URL, dir)
	s := testSession(t, root, fid, "laptop", srv.URL)

	ns, err := c.NewSession(context.Background(), s, "password123", "phone")
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	if ns.SessionID != "phone" || ns.Token != "tok-phone" || ns.FID != fid || ns.Key.Equal(s.Key) || ns.Server != srv.URL {
		t.Errorf("new session %+v", ns)
	}
	if got.SessionID != "phone" || got.FID != fid || !got.PublicKey.Equal(ns.Key.Public()) {
		t.Errorf("CSR for %s/%s", got.FID, got.SessionID)
	}
	if _, err := c.LoadSession(fid, srv.URL, "phone"); err != nil {
		t.Errorf("new session not stored: %v", err)
	}
}

// A session at a foreign server cannot mint ID-Certs: that server is not the actor's authority.
func TestNewSessionRefusesForeignServer(t *testing.T) {
	home, foreign := testRoot(t, "example.com"), testRoot(t, "other.net")
	mux := http.NewServeMux()
	serveRoot(t, mux, foreign)
	mux.HandleFunc("POST /.p2/core/v1/idcert", func(w http.ResponseWriter, r *http.Request) {
		t.Error("CSR sent to a foreign server")
	})
	srv := newServer(t, mux)
	c := newClient(t, "http://home.invalid", "")
	s := testSession(t, home, mustFID(t, "alice@example.com"), "laptop", srv.URL)
	if _, err := c.NewSession(context.Background(), s, "password123", "phone"); err == nil {
		t.Fatal("NewSession at a foreign server succeeded")
	}
}

func TestSessions(t *testing.T) {
	root := testRoot(t, "example.com")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.p2/core/v1/session", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "tok-laptop", "")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[
			{"session_id":"laptop","serial":9223372036854775807,"not_before":1767225600,"not_after":1769817600,"current":true},
			{"session_id":"phone","serial":"42","not_before":"2026-01-01T00:00:00Z","not_after":"1769817600","current":false}
		]`))
	})
	srv := newServer(t, mux)
	c := newClient(t, "http://home.invalid", "")
	s := testSession(t, root, mustFID(t, "alice@example.com"), "laptop", srv.URL)

	got, err := c.Sessions(context.Background(), s)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	jan1, mar1 := time.Unix(1767225600, 0), time.Unix(1769817600, 0)
	want := []SessionInfo{
		{SessionID: "laptop", Serial: 1<<63 - 1, NotBefore: jan1, NotAfter: mar1, Current: true},
		{SessionID: "phone", Serial: 42, NotBefore: jan1, NotAfter: mar1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d sessions, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.SessionID != w.SessionID || g.Serial != w.Serial || !g.NotBefore.Equal(w.NotBefore) ||
			!g.NotAfter.Equal(w.NotAfter) || g.Current != w.Current {
			t.Errorf("session %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestRevoke(t *testing.T) {
	root := testRoot(t, "example.com")
	fid := mustFID(t, "alice@example.com")
	tests := []struct {
		name, password, sessionID string
		wantQuery                 string
	}{
		{"another session", "password123", "phone", "phone"},
		{"own session, empty id", "password123", "", "laptop"},
		{"foreign server, no password", "", "laptop", "laptop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("DELETE /.p2/core/v1/session", func(w http.ResponseWriter, r *http.Request) {
				wantAuth(t, r, "tok-laptop", tt.password)
				if got := r.URL.Query()["session_id"]; len(got) != 1 || got[0] != tt.wantQuery {
					t.Errorf("session_id %q, want %q", got, tt.wantQuery)
				}
				w.WriteHeader(http.StatusNoContent)
			})
			srv := newServer(t, mux)
			c := newClient(t, srv.URL, t.TempDir())
			s := testSession(t, root, fid, "laptop", srv.URL)
			if err := c.keys.save(s); err != nil {
				t.Fatal(err)
			}
			if err := c.Revoke(context.Background(), s, tt.password, tt.sessionID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			_, err := c.LoadSession(fid, srv.URL, "laptop")
			if ownGone := err != nil; ownGone != (tt.wantQuery == "laptop") {
				t.Errorf("own session still stored = %v after revoking %q", !ownGone, tt.wantQuery)
			}
		})
	}
}

func TestLoginForeign(t *testing.T) {
	root := testRoot(t, "example.com")
	fid := mustFID(t, "alice@example.com")
	challenge := strings.Repeat("aZ9", 21) + "x" // 64 characters
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.p2/core/v1/challenge", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "", "")
		writeJSON(t, w, http.StatusOK, map[string]any{"challenge": challenge, "expires": time.Now().Add(2 * time.Minute).Unix()})
	})
	mux.HandleFunc("POST /.p2/core/v1/session/auth", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "", "")
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		// The server's own strict decoder: exactly the three keys, hex signature.
		ans, err := identity.DecodeChallengeAnswer([]byte(readBody(t, r)))
		if err != nil {
			t.Errorf("answer: %v", err)
			return
		}
		cert, err := identity.ParseIDCert(ans.IDCert)
		if err != nil {
			t.Errorf("idCert: %v", err)
			return
		}
		if ans.Challenge != challenge {
			t.Errorf("challenge %q, want %q", ans.Challenge, challenge)
		}
		if err := ans.Verify(cert); err != nil {
			t.Errorf("signature: %v", err)
		}
		if err := cert.VerifyIssuedBy(root.Cert); err != nil || cert.FID != fid {
			t.Errorf("idCert of %s: %v", cert.FID, err)
		}
		writeJSON(t, w, http.StatusCreated, map[string]string{"fid": fid.String(), "token": "foreign-token"})
	})
	foreign := newServer(t, mux)
	dir := t.TempDir()
	c := newClient(t, "http://home.invalid", dir)
	s := testSession(t, root, fid, "laptop", "http://home.invalid")

	fs, err := c.LoginForeign(context.Background(), s, foreign.URL+"/")
	if err != nil {
		t.Fatalf("LoginForeign: %v", err)
	}
	if fs.Server != foreign.URL || fs.Token != "foreign-token" || fs.SessionID != "laptop" || !fs.Key.Equal(s.Key) || fs.Cert != s.Cert {
		t.Errorf("foreign session %+v", fs)
	}
	loaded, err := c.LoadSession(fid, hostOf(t, foreign.URL), "laptop")
	if err != nil || loaded.Server != foreign.URL || loaded.Token != "foreign-token" {
		t.Errorf("stored foreign session = %+v, %v", loaded, err)
	}
}

func TestLoginForeignRefusesOddChallenge(t *testing.T) {
	root := testRoot(t, "example.com")
	for _, ch := range []string{"", "short", strings.Repeat("x", 257), strings.Repeat("x", 40) + "\n\x00", strings.Repeat("é", 32)} {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /.p2/core/v1/challenge", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(t, w, http.StatusOK, map[string]any{"challenge": ch, "expires": 0})
		})
		mux.HandleFunc("POST /.p2/core/v1/session/auth", func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("signed a challenge of %d characters", len(ch))
		})
		c := newClient(t, "http://home.invalid", "")
		s := testSession(t, root, mustFID(t, "alice@example.com"), "laptop", "http://home.invalid")
		if _, err := c.LoginForeign(context.Background(), s, newServer(t, mux).URL); err == nil {
			t.Errorf("LoginForeign accepted a challenge of %d characters", len(ch))
		}
	}
}

func TestAddService(t *testing.T) {
	root := testRoot(t, "example.com")
	mux := http.NewServeMux()
	mux.HandleFunc("POST /.p2/core/v1/services", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "tok-laptop", "")
		var body struct {
			Service struct {
				Service string `json:"service"`
				URL     string `json:"url"`
				Primary *bool  `json:"primary"`
			} `json:"service"`
		}
		if !readJSON(t, r, &body) {
			return
		}
		if b := body.Service; b.Service != "chat" || b.URL != "https://chat.example.com" || b.Primary == nil || !*b.Primary {
			t.Errorf("body %+v", b)
		}
		writeJSON(t, w, http.StatusCreated, Service{Service: "chat", URL: "https://chat.example.com", Primary: true})
	})
	srv := newServer(t, mux)
	c := newClient(t, srv.URL, "")
	s := testSession(t, root, mustFID(t, "alice@example.com"), "laptop", srv.URL)
	got, err := c.AddService(context.Background(), s, "chat", "https://chat.example.com", true)
	if err != nil || got != (Service{Service: "chat", URL: "https://chat.example.com", Primary: true}) {
		t.Fatalf("AddService = %+v, %v", got, err)
	}
}

func TestDiscover(t *testing.T) {
	fid := mustFID(t, "alice@example.com")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.p2/core/v1/services/discover/{fid}", func(w http.ResponseWriter, r *http.Request) {
		wantAuth(t, r, "", "")
		switch r.PathValue("fid") {
		case "alice@example.com":
			writeJSON(t, w, http.StatusOK, []Service{{"chat", "https://a", true}, {"files", "https://b", true}})
		case "nobody@example.com":
			writeJSON(t, w, http.StatusNotFound, map[string]string{"code": "P2_CORE_ACTOR_NOT_FOUND", "message": "no such actor"})
		default:
			t.Errorf("discover for %q", r.PathValue("fid"))
		}
	})
	mux.HandleFunc("GET /.p2/core/v1/services/discover/{fid}/{service}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("fid") != "alice@example.com" {
			t.Errorf("discover for %q", r.PathValue("fid"))
		}
		switch r.PathValue("service") {
		case "chat":
			writeJSON(t, w, http.StatusOK, []Service{{"chat", "https://a", true}, {"chat", "https://c", false}})
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := newClient(t, newServer(t, mux).URL, "")
	ctx := context.Background()

	if got, err := c.Discover(ctx, fid, ""); err != nil || len(got) != 2 || got[1].Service != "files" {
		t.Errorf("Discover(all) = %+v, %v", got, err)
	}
	if got, err := c.Discover(ctx, fid, "chat"); err != nil || len(got) != 2 || got[1] != (Service{"chat", "https://c", false}) {
		t.Errorf("Discover(chat) = %+v, %v", got, err)
	}
	if got, err := c.Discover(ctx, fid, "voice"); err != nil || len(got) != 0 {
		t.Errorf("Discover(voice) = %+v, %v; want none", got, err)
	}
	var e *Error
	if _, err := c.Discover(ctx, mustFID(t, "nobody@example.com"), ""); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("Discover(unknown actor) error = %v, want a 404 *Error", err)
	}
}

// Requests that need a session refuse an unusable one before touching the network.
func TestFlowsRefuseIncompleteSession(t *testing.T) {
	c := newClient(t, "http://home.invalid", "")
	ctx := context.Background()
	for name, s := range map[string]*Session{
		"nil":       nil,
		"no token":  {Key: make(ed25519.PrivateKey, ed25519.PrivateKeySize), Server: "http://x"},
		"no key":    {Token: "t", Server: "http://x"},
		"no server": {Token: "t", Key: make(ed25519.PrivateKey, ed25519.PrivateKeySize)},
	} {
		if _, err := c.Sessions(ctx, s); err == nil {
			t.Errorf("%s: Sessions succeeded", name)
		}
		if err := c.Revoke(ctx, s, "pw", ""); err == nil {
			t.Errorf("%s: Revoke succeeded", name)
		}
		if _, err := c.LoginForeign(ctx, s, "http://y"); err == nil {
			t.Errorf("%s: LoginForeign succeeded", name)
		}
	}
}

func TestSessionStringHidesSecrets(t *testing.T) {
	root := testRoot(t, "example.com")
	s := testSession(t, root, mustFID(t, "alice@example.com"), "laptop", "https://example.com")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%v", *s)} {
		if strings.Contains(out, s.Token) || strings.Contains(out, fmt.Sprint([]byte(s.Key))) {
			t.Errorf("printed session shows a secret: %s", out)
		}
	}
	if got := s.String(); got != "alice@example.com/laptop at https://example.com" {
		t.Errorf("String() = %q", got)
	}
}
