package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/identity"
)

// edge is a real server on 127.0.0.1:0 as the binary wires it (newGatewayServer): the routes,
// the account actors over a memory store and the error table (no peers: foreign certs are
// refused).
type edge struct {
	url   string
	store *memory.Store
}

func newEdge(t *testing.T) *edge {
	t.Helper()
	g := newGatewayServer(t, WSConfig{}, nil)
	return &edge{url: g.http, store: g.store}
}

type call struct {
	method, path string
	body         string
	header       map[string]string
}

func (e *edge) do(t *testing.T, c call) (int, ErrorBody, []byte) {
	t.Helper()
	req, _ := http.NewRequest(c.method, e.url+c.path, strings.NewReader(c.body))
	if c.body != "" && !strings.HasPrefix(c.body, "-----") {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Code == "" || eb.Message == "" {
			t.Fatalf("%s %s: %d with a body that is not {code, message}: %q", c.method, c.path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, eb, raw
}

func csrPEM(t *testing.T, fid, session string) (ed25519.PrivateKey, string) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	f, err := identity.ParseFID(fid)
	if err != nil {
		t.Fatal(err)
	}
	der, err := identity.NewCSR(key, f, session)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// streamLen counts the events of an account stream.
func (e *edge) streamLen(t *testing.T, fid string) int {
	t.Helper()
	evs, err := e.store.ReadStream(context.Background(), account.Stream(fid), events.Forwards, 0, 100)
	if err != nil {
		return 0
	}
	return len(evs)
}

// TestBadInputIsRefusedClearly: every route answers hostile or wrong input with a 4xx and a
// {code, message} body, and stores nothing.
func TestBadInputIsRefusedClearly(t *testing.T) {
	e := newEdge(t)
	const pw = "a fine password"
	if code, eb, _ := e.do(t, call{method: "POST", path: "/.p2/core/v1/register/", body: jsonBody(map[string]string{"local_name": "alice", "password": pw})}); code != 201 {
		t.Fatalf("register (with a trailing slash): %d %+v", code, eb)
	}
	_, csr := csrPEM(t, "alice@a.test", "laptop")
	code, eb, raw := e.do(t, call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": pw, "csr": csr})})
	if code != 201 {
		t.Fatalf("login: %d %+v", code, eb)
	}
	var login struct{ Token string }
	_ = json.Unmarshal(raw, &login)
	bearer := map[string]string{"Authorization": "Bearer " + login.Token}
	stored := e.streamLen(t, "alice@a.test")

	_, otherCSR := csrPEM(t, "bob@a.test", "x")
	_, sameSession := csrPEM(t, "alice@a.test", "laptop")
	_, freshCSR := csrPEM(t, "alice@a.test", "phone")
	big := strings.Repeat("x", maxJSONBody+1)
	cases := []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"register: empty body", call{method: "POST", path: "/.p2/core/v1/register"}, 400, "P2_CORE_BAD_REQUEST"},
		{"register: malformed JSON", call{method: "POST", path: "/.p2/core/v1/register", body: `{"local_name": "x",`}, 400, "P2_CORE_BAD_REQUEST"},
		{"register: unknown field", call{method: "POST", path: "/.p2/core/v1/register", body: `{"local_name":"x","password":"12345678","admin":true}`}, 400, "P2_CORE_BAD_REQUEST"},
		{"register: wrong type", call{method: "POST", path: "/.p2/core/v1/register", body: `{"local_name":5,"password":"12345678"}`}, 400, "P2_CORE_BAD_REQUEST"},
		{"register: two objects", call{method: "POST", path: "/.p2/core/v1/register", body: `{"local_name":"x","password":"12345678"}{}`}, 400, "P2_CORE_BAD_REQUEST"},
		{"register: oversize", call{method: "POST", path: "/.p2/core/v1/register", body: `{"local_name":"` + big + `"}`}, 413, "P2_CORE_TOO_LARGE"},
		{"register: bad name", call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": "al ice", "password": pw})}, 400, "P2_CORE_INVALID_FID"},
		{"register: name with a domain", call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": "x@b.test", "password": pw})}, 400, "P2_CORE_INVALID_FID"},
		{"register: weak password", call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": "carol", "password": "short"})}, 400, "P2_CORE_WEAK_PASSWORD"},
		{"register: taken", call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": "Alice", "password": pw})}, 409, "P2_CORE_FEDERATION_ID_TAKEN"},
		{"login: garbage CSR", call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": pw, "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"})}, 400, "P2_CORE_INVALID_CSR"},
		{"login: CSR of another actor", call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": pw, "csr": otherCSR})}, 400, "P2_CORE_CSR_MISMATCH"},
		{"login: wrong password", call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": "not the password", "csr": freshCSR})}, 401, "P2_CORE_BAD_CREDENTIALS"},
		{"login: unknown actor looks the same", call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "nobody", "password": pw, "csr": freshCSR})}, 401, "P2_CORE_BAD_CREDENTIALS"},
		{"login: session id in use", call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": pw, "csr": sameSession})}, 409, "P2_CORE_SESSION_ID_IN_USE"},
		{"idcert: no token", call{method: "POST", path: "/.p2/core/v1/idcert", body: freshCSR}, 401, "P2_CORE_UNAUTHORIZED"},
		{"idcert: forged token", call{method: "POST", path: "/.p2/core/v1/idcert", body: freshCSR, header: map[string]string{"Authorization": "Bearer YWxpY2VAYS50ZXN0.forged"}}, 401, "P2_CORE_UNAUTHORIZED"},
		{"idcert: token of nobody", call{method: "POST", path: "/.p2/core/v1/idcert", body: freshCSR, header: map[string]string{"Authorization": "Bearer !!!.x"}}, 401, "P2_CORE_UNAUTHORIZED"},
		{"idcert: no sensitive solution", call{method: "POST", path: "/.p2/core/v1/idcert", body: freshCSR, header: bearer}, 403, "P2_CORE_SENSITIVE_SOLUTION_REQUIRED"},
		{"idcert: wrong sensitive solution", call{method: "POST", path: "/.p2/core/v1/idcert", body: freshCSR, header: map[string]string{"Authorization": bearer["Authorization"], "X-P2-Sensitive-Solution": "nope"}}, 403, "P2_CORE_SENSITIVE_SOLUTION_REQUIRED"},
		{"idcert: oversize CSR", call{method: "POST", path: "/.p2/core/v1/idcert", body: "-----" + strings.Repeat("A", maxCSR), header: bearer}, 413, "P2_CORE_TOO_LARGE"},
		{"actor certs: bad fid", call{method: "GET", path: "/.p2/core/v1/idcert/actor/not-a-fid"}, 400, "P2_CORE_INVALID_FID"},
		{"actor certs: foreign domain", call{method: "GET", path: "/.p2/core/v1/idcert/actor/bob@b.test"}, 404, "P2_CORE_ACTOR_NOT_FOUND"},
		{"actor certs: unknown actor", call{method: "GET", path: "/.p2/core/v1/idcert/actor/nobody@a.test"}, 404, "P2_CORE_ACTOR_NOT_FOUND"},
		{"actor certs: bad timestamp", call{method: "GET", path: "/.p2/core/v1/idcert/actor/alice@a.test?timestamp=yesterday"}, 400, "P2_CORE_BAD_REQUEST"},
		{"server cert: before it existed", call{method: "GET", path: "/.p2/core/v1/idcert/server?timestamp=1000"}, 404, "P2_CORE_NOT_FOUND"},
		{"revoke: no session id", call{method: "DELETE", path: "/.p2/core/v1/session", header: bearer}, 400, "P2_CORE_BAD_REQUEST"},
		{"revoke: without the password", call{method: "DELETE", path: "/.p2/core/v1/session?session_id=laptop", header: bearer}, 403, "P2_CORE_SENSITIVE_SOLUTION_REQUIRED"},
		{"foreign login: garbage", call{method: "POST", path: "/.p2/core/v1/session/auth", body: `{"challenge":`}, 400, "P2_CORE_INVALID_CHALLENGE_ANSWER"},
		{"foreign login: unknown challenge", call{method: "POST", path: "/.p2/core/v1/session/auth", body: jsonBody(map[string]string{
			"challenge": strings.Repeat("c", 64), "signature": strings.Repeat("ab", 64), "idCert": "x"})}, 401, "P2_CORE_CHALLENGE_INVALID"},
		{"service: bad name", call{method: "POST", path: "/.p2/core/v1/services", header: bearer, body: `{"service":{"service":"Chat!","url":"https://a.test","primary":true}}`}, 400, "P2_CORE_BAD_REQUEST"},
		{"service: bad url", call{method: "POST", path: "/.p2/core/v1/services", header: bearer, body: `{"service":{"service":"chat","url":"ftp://a.test","primary":true}}`}, 400, "P2_CORE_BAD_REQUEST"},
		{"service: no token", call{method: "POST", path: "/.p2/core/v1/services", body: `{"service":{"service":"chat","url":"https://a.test","primary":true}}`}, 401, "P2_CORE_UNAUTHORIZED"},
		{"discover: unknown actor", call{method: "GET", path: "/.p2/core/v1/services/discover/nobody@a.test"}, 404, "P2_CORE_ACTOR_NOT_FOUND"},
		{"discover: bad limit", call{method: "GET", path: "/.p2/core/v1/services/discover/alice@a.test?limit=0"}, 400, "P2_CORE_BAD_REQUEST"},
		{"unknown route", call{method: "GET", path: "/.p2/core/v1/nope"}, 404, "P2_CORE_NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, eb, _ := e.do(t, c.c)
			if code != c.status || eb.Code != c.code {
				t.Fatalf("%d %s (%s), want %d %s", code, eb.Code, eb.Message, c.status, c.code)
			}
		})
	}
	if n := e.streamLen(t, "alice@a.test"); n != stored {
		t.Fatalf("refused requests stored events: %d events, want %d", n, stored)
	}
	for _, fid := range []string{"carol@a.test", "nobody@a.test", "bob@a.test"} {
		if n := e.streamLen(t, fid); n != 0 {
			t.Fatalf("%s has %d events after refused requests", fid, n)
		}
	}
}

// TestCoreRoutesHappyPath walks the routes a client uses after login.
func TestCoreRoutesHappyPath(t *testing.T) {
	e := newEdge(t)
	const pw = "a fine password"
	e.do(t, call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": "alice", "password": pw})})
	_, csr := csrPEM(t, "alice@a.test", "laptop")
	_, _, raw := e.do(t, call{method: "POST", path: "/.p2/core/v1/login", body: jsonBody(map[string]string{"local_name": "alice", "password": pw, "csr": csr})})
	var login struct{ Token string }
	_ = json.Unmarshal(raw, &login)
	auth := map[string]string{"Authorization": "Bearer " + login.Token}
	sens := map[string]string{"Authorization": "Bearer " + login.Token, "X-P2-Sensitive-Solution": pw}

	// A second session (sensitive), listed next to the first.
	_, phone := csrPEM(t, "alice@a.test", "phone")
	if code, eb, _ := e.do(t, call{method: "POST", path: "/.p2/core/v1/idcert", body: phone, header: sens}); code != 201 {
		t.Fatalf("new idcert: %d %+v", code, eb)
	}
	_, _, raw = e.do(t, call{method: "GET", path: "/.p2/core/v1/session", header: auth})
	var sessions []struct {
		SessionID string `json:"session_id"`
		Current   bool
	}
	if err := json.Unmarshal(raw, &sessions); err != nil || len(sessions) != 2 || !sessions[0].Current || sessions[1].Current {
		t.Fatalf("sessions: %s", raw)
	}

	// Certs with cache metadata, verifiable with the server's root.
	_, _, raw = e.do(t, call{method: "GET", path: "/.p2/core/v1/idcert/server"})
	var rootC identity.CacheableCert
	_ = json.Unmarshal(raw, &rootC)
	root, err := identity.ParseIDCert([]byte(rootC.IDCertPEM))
	if err != nil {
		t.Fatal(err)
	}
	_, _, raw = e.do(t, call{method: "GET", path: "/.p2/core/v1/idcert/actor/alice@a.test?session_id=laptop"})
	var certs []identity.CacheableCert
	if err := json.Unmarshal(raw, &certs); err != nil || len(certs) != 1 {
		t.Fatalf("actor certs: %s", raw)
	}
	if _, err := certs[0].Verify(root, time.Now()); err != nil || certs[0].InvalidatedAt != nil {
		t.Fatalf("cacheable cert: %v", err)
	}

	// Revoking the phone session marks its cert invalidated, signed.
	if code, eb, _ := e.do(t, call{method: "DELETE", path: "/.p2/core/v1/session?session_id=phone", header: sens}); code != 204 {
		t.Fatalf("revoke: %d %+v", code, eb)
	}
	_, _, raw = e.do(t, call{method: "GET", path: "/.p2/core/v1/idcert/actor/alice@a.test?session_id=phone"})
	_ = json.Unmarshal(raw, &certs)
	if len(certs) != 1 || certs[0].InvalidatedAt == nil {
		t.Fatalf("revoked cert not marked: %s", raw)
	}
	if _, err := certs[0].Verify(root, time.Now()); err != nil {
		t.Fatalf("revoked cert's cache signature: %v", err)
	}

	// Services: the first is primary; discovery by service and with limit=1.
	if code, eb, _ := e.do(t, call{method: "POST", path: "/.p2/core/v1/services", header: auth, body: `{"service":{"service":"chat","url":"https://a.test","primary":false}}`}); code != 201 {
		t.Fatalf("add service: %d %+v", code, eb)
	}
	e.do(t, call{method: "POST", path: "/.p2/core/v1/services", header: auth, body: `{"service":{"service":"chat","url":"https://b.test","primary":false}}`})
	if code, _, raw := e.do(t, call{method: "GET", path: "/.p2/core/v1/services/discover/alice@a.test/chat?limit=1"}); code != 200 || !bytes.Contains(raw, []byte(`"url":"https://a.test","primary":true`)) || bytes.Contains(raw, []byte("b.test")) {
		t.Fatalf("discover primary: %d %s", code, raw)
	}
	if code, _, _ := e.do(t, call{method: "GET", path: "/.p2/core/v1/services/discover/alice@a.test/mls"}); code != 204 {
		t.Fatalf("discover a service with no provider: %d", code)
	}
	if code, eb, _ := e.do(t, call{method: "DELETE", path: "/.p2/core/v1/services?name=chat&url=https://a.test", header: auth}); code != 403 {
		t.Fatalf("removing the primary without the password: %d %+v", code, eb)
	}
	if code, _, raw := e.do(t, call{method: "DELETE", path: "/.p2/core/v1/services?name=chat&url=https://a.test", header: sens}); code != 200 || !bytes.Contains(raw, []byte(`"new_primary":"https://b.test"`)) {
		t.Fatalf("remove primary: %d %s", code, raw)
	}
	if code, _, raw := e.do(t, call{method: "GET", path: "/.well-known/polyproto-core"}); code != 200 || !bytes.Contains(raw, []byte(e.url+"/.p2/core/")) {
		t.Fatalf("well-known: %d %s", code, raw)
	}
}

// TestPasswordChecksAreRateLimited: one address gets AuthRate password checks in a burst, then
// 429 with a clear body; another address is not affected.
func TestPasswordChecksAreRateLimited(t *testing.T) {
	l := newAddrLimiter(3, time.Minute)
	now := time.Now()
	for i := range 3 {
		if !l.allow("192.0.2.1", now) {
			t.Fatalf("request %d refused inside the burst", i)
		}
	}
	if l.allow("192.0.2.1", now) {
		t.Fatal("fourth request in the same instant allowed")
	}
	if !l.allow("192.0.2.2", now) {
		t.Fatal("another address was limited")
	}
	if !l.allow("192.0.2.1", now.Add(21*time.Second)) { // 3 per minute: one back every 20 s
		t.Fatal("no token back after 21 s")
	}
	if !newAddrLimiter(-1, time.Minute).allow("x", now) {
		t.Fatal("a negative rate must disable the limit")
	}

	// Over HTTP, with the default rate and a clock that stands still, so that no token comes
	// back however slowly the requests run.
	frozen := time.Now()
	g := newGatewayServer(t, WSConfig{}, nil, func(c *Config) { c.Now = func() time.Time { return frozen } })
	e := &edge{url: g.http, store: g.store}
	for i := 0; i < 31; i++ {
		code, eb, _ := e.do(t, call{method: "POST", path: "/.p2/core/v1/register", body: jsonBody(map[string]string{"local_name": fmt.Sprintf("user%d", i), "password": "a fine password"})})
		want := http.StatusCreated
		if i == 30 {
			want = http.StatusTooManyRequests
		}
		if code != want || (i == 30 && eb.Code != "P2_CORE_RATE_LIMITED") {
			t.Fatalf("registration %d: %d %+v, want %d", i, code, eb, want)
		}
	}
}
