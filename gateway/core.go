package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/identity"
)

// maxCSR bounds a text/plain ID-CSR body.
const maxCSR = 8 << 10

// coreRoutes are polyproto core's routes (docs/PROTOCOL.md section 3).
func (s *Server) coreRoutes(mux *http.ServeMux) {
	const p = "/.p2/core/v1"
	mux.HandleFunc("POST "+p+"/register", s.handler(s.register))
	mux.HandleFunc("POST "+p+"/login", s.handler(s.login))
	mux.HandleFunc("POST "+p+"/idcert", s.handler(s.newIDCert))
	mux.HandleFunc("GET "+p+"/idcert/server", s.handler(s.serverCert))
	mux.HandleFunc("GET "+p+"/idcert/actor/{fid}", s.handler(s.actorCerts))
	mux.HandleFunc("GET "+p+"/session", s.handler(s.listSessions))
	mux.HandleFunc("DELETE "+p+"/session", s.handler(s.revokeSession))
	mux.HandleFunc("GET "+p+"/challenge", s.handler(s.challenge))
	mux.HandleFunc("POST "+p+"/session/auth", s.handler(s.foreignLogin))
	mux.HandleFunc("GET "+p+"/keytrial/{fid}", s.handler(s.keyTrials))
	mux.HandleFunc("POST "+p+"/services", s.handler(s.addService))
	mux.HandleFunc("DELETE "+p+"/services", s.handler(s.removeService))
	mux.HandleFunc("PUT "+p+"/services/primary", s.handler(s.setPrimary))
	mux.HandleFunc("GET "+p+"/services/discover/{fid}", s.handler(s.discover))
	mux.HandleFunc("GET "+p+"/services/discover/{fid}/{service}", s.handler(s.discover))
	mux.HandleFunc("GET /.well-known/polyproto-core", s.handler(s.wellKnown))
	mux.HandleFunc(p+"/", s.handler(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("%w: no route %s %s", errNotFound, r.Method, r.URL.Path)
	}))
}

// localFID turns a local name into this server's FID.
func (s *Server) localFID(local string) (identity.FID, error) {
	return identity.ParseFID(local + "@" + s.cfg.Domain)
}

type credentials struct {
	LocalName string `json:"local_name"`
	Password  string `json:"password"`
	CSR       string `json:"csr,omitempty"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	var in credentials
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.CSR != "" {
		return fmt.Errorf("%w: register takes no csr; log in afterwards", errBadRequest)
	}
	fid, err := s.localFID(in.LocalName)
	if err != nil {
		return err
	}
	var hash string
	if _, err := s.argon2(r, func() (bool, error) {
		var err error
		hash, err = identity.HashPassword(in.Password)
		return err == nil, err
	}); err != nil {
		return err
	}
	if _, err := s.ask(r.Context(), fid.String(), account.Register{FID: fid.String(), PasswordHash: hash, At: s.now()}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"fid": fid.String()})
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var in credentials
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	fid, err := s.localFID(in.LocalName)
	if err != nil {
		return err
	}
	csr, err := identity.ParseCSR([]byte(in.CSR))
	if err != nil {
		return err
	}
	if err := s.checkPassword(r, fid.String(), in.Password); err != nil {
		return err
	}
	certPEM, token, err := s.issue(r, fid, csr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"fid": fid.String(), "id_cert": certPEM, "token": token})
	return nil
}

// newIDCert: a logged-in local actor opens a further session (sensitive action).
func (s *Server) newIDCert(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	body, err := readText(w, r, maxCSR)
	if err != nil {
		return err
	}
	csr, err := identity.ParseCSR(body)
	if err != nil {
		return err
	}
	if err := s.sensitive(r, p); err != nil {
		return err
	}
	fid, _ := identity.ParseFID(p.FID)
	certPEM, token, err := s.issue(r, fid, csr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id_cert": certPEM, "token": token})
	return nil
}

// issue signs csr for fid and records the new session.
func (s *Server) issue(r *http.Request, fid identity.FID, csr *identity.CSR) (certPEM, token string, err error) {
	if csr.FID != fid {
		return "", "", fmt.Errorf("%w: CSR names %s, the session is %s", errMismatch, csr.FID, fid)
	}
	now := s.now()
	// A cert must end inside the root's validity: near the root's end, sessions get shorter.
	notAfter := now.Add(s.cfg.CertValidity)
	if rootEnd := s.cfg.Root.Cert.NotAfter; notAfter.After(rootEnd) {
		notAfter = rootEnd
	}
	cert, err := s.cfg.Root.Issue(csr, identity.NewSerial(), now, notAfter)
	if err != nil {
		return "", "", err
	}
	token, hash := newToken(fid.String())
	if _, err := s.ask(r.Context(), fid.String(), account.IssueCert{Cert: certData(cert), TokenHash: hash, At: now}); err != nil {
		return "", "", err
	}
	return cert.PEM(), token, nil
}

func certData(c *identity.IDCert) account.CertData {
	return account.CertData{Serial: c.Serial, SessionID: c.SessionID, DER: c.Raw, NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}

// timestampParam reads an optional UNIX-seconds query parameter.
func timestampParam(q url.Values, name string) (*time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%w: %s must be a UNIX timestamp in seconds", errBadRequest, name)
	}
	t := time.Unix(n, 0)
	return &t, nil
}

func (s *Server) serverCert(w http.ResponseWriter, r *http.Request) error {
	at, err := timestampParam(r.URL.Query(), "timestamp")
	if err != nil {
		return err
	}
	root := s.cfg.Root.Cert
	if at != nil && root.ValidAt(*at) != nil {
		return fmt.Errorf("%w: this server had no ID-Cert at %d", errNotFound, at.Unix())
	}
	now := s.now()
	writeJSON(w, http.StatusOK, identity.SignCacheable(s.cfg.Root, root, nil, now, now.Add(s.cfg.CacheTTL)))
	return nil
}

// actorCerts serves the certs of a local actor with their cache metadata (core 6.4).
func (s *Server) actorCerts(w http.ResponseWriter, r *http.Request) error {
	fid, err := identity.ParseFID(r.PathValue("fid"))
	if err != nil {
		return err
	}
	if fid.Domain != s.cfg.Domain {
		return fmt.Errorf("%s: %w", fid, errNotLocal)
	}
	q := r.URL.Query()
	at, err := timestampParam(q, "timestamp")
	if err != nil {
		return err
	}
	rep, err := s.ask(r.Context(), fid.String(), account.Certs{SessionID: q.Get("session_id"), ValidAt: at})
	if err != nil {
		return err
	}
	now := s.now()
	out := []identity.CacheableCert{}
	for _, c := range rep.([]account.Cert) {
		cert, err := identity.ParseIDCert(c.DER)
		if err != nil {
			return fmt.Errorf("stored cert %d of %s: %w", c.Serial, fid, err) // ours: a 500 is right
		}
		var invalidated *time.Time
		if !c.RevokedAt.IsZero() {
			invalidated = &c.RevokedAt
		}
		out = append(out, identity.SignCacheable(s.cfg.Root, cert, invalidated, now, now.Add(s.cfg.CacheTTL)))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type sessionJSON struct {
	SessionID string `json:"session_id"`
	Serial    uint64 `json:"serial"`
	NotBefore int64  `json:"not_before"`
	NotAfter  int64  `json:"not_after"`
	Current   bool   `json:"current"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	rep, err := s.ask(r.Context(), p.FID, account.ListSessions{At: s.now()})
	if err != nil {
		return err
	}
	out := []sessionJSON{}
	for _, ss := range rep.([]account.Session) {
		out = append(out, sessionJSON{SessionID: ss.SessionID, Serial: ss.Serial, NotBefore: ss.NotBefore.Unix(),
			NotAfter: ss.NotAfter.Unix(), Current: ss.Serial == p.Serial})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeSession ends a session. A local actor may end any of its sessions (sensitive); a foreign
// actor only its current one here (its home server is where it revokes certs).
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	sid := r.URL.Query().Get("session_id")
	if sid == "" {
		return fmt.Errorf("%w: session_id is required", errBadRequest)
	}
	if p.Foreign {
		if sid != p.SessionID {
			return fmt.Errorf("%w: a foreign actor can end only its current session here", errForbidden)
		}
	} else if err := s.sensitive(r, p); err != nil {
		return err
	}
	if _, err := s.ask(r.Context(), p.FID, account.RevokeSession{SessionID: sid, Reason: "actor", At: s.now()}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) error {
	ch, exp, err := s.challenges.issue(s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"challenge": ch, "expires": exp.Unix()})
	return nil
}

// foreignLogin: an actor of another home server proves it holds the key of an ID-Cert its home
// server vouches for, by signing one of our challenges (core 4.1.1).
func (s *Server) foreignLogin(w http.ResponseWriter, r *http.Request) error {
	body, err := readText(w, r, 16<<10)
	if err != nil {
		return err
	}
	ans, err := identity.DecodeChallengeAnswer(body)
	if err != nil {
		return err
	}
	now := s.now()
	if !s.challenges.consume(ans.Challenge, now) {
		return errChallenge
	}
	cert, err := identity.ParseIDCert(ans.IDCert)
	if err != nil {
		return err
	}
	if cert.IsRoot {
		return fmt.Errorf("%w: a server certificate cannot log in", identity.ErrInvalidCert)
	}
	if cert.FID.Domain == s.cfg.Domain {
		return errForeignLocalActor
	}
	// Signature first: it costs no request to another server.
	if !identity.VerifyStrict(cert.PublicKey, []byte(ans.Challenge), ans.Signature) {
		return fmt.Errorf("%w: the challenge signature does not verify with the certificate's key", identity.ErrInvalidAnswer)
	}
	st, err := s.cfg.Certs.Verify(r.Context(), ans.IDCert)
	if err != nil {
		return err
	}
	token, hash := newToken(cert.FID.String())
	if _, err := s.ask(r.Context(), cert.FID.String(), account.StartForeignSession{
		Cert: certData(st.Cert), TokenHash: hash, Challenge: ans.Challenge, Signature: ans.Signature,
		StatusValidUntil: st.CacheUntil, At: now,
	}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"fid": cert.FID.String(), "token": token})
	return nil
}

type trialJSON struct {
	Challenge   string `json:"challenge"`
	Signature   string `json:"signature"`
	Serial      uint64 `json:"serial"`
	CompletedAt int64  `json:"completed_at"`
}

func (s *Server) keyTrials(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.authenticate(r); err != nil {
		return err
	}
	fid, err := identity.ParseFID(r.PathValue("fid"))
	if err != nil {
		return err
	}
	rep, err := s.ask(r.Context(), fid.String(), account.KeyTrials{})
	if err != nil {
		return err
	}
	out := []trialJSON{}
	for _, t := range rep.([]account.Trial) {
		out = append(out, trialJSON{Challenge: t.Challenge, Signature: fmt.Sprintf("%x", t.Signature), Serial: t.Serial, CompletedAt: t.CompletedAt.Unix()})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Service is the Service object of core section 9.
type Service struct {
	Service string `json:"service"`
	URL     string `json:"url"`
	Primary bool   `json:"primary"`
}

var serviceName = regexp.MustCompile(`^[a-z0-9_-]{2,64}$`)

func checkService(name, rawURL string) error {
	if !serviceName.MatchString(name) {
		return fmt.Errorf("%w: service %q must be 2-64 of [a-z0-9_-]", errBadRequest, name)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(rawURL) > 512 {
		return fmt.Errorf("%w: url %q must be an http(s) base URL", errBadRequest, rawURL)
	}
	return nil
}

// localPrincipal authenticates and refuses foreign sessions: services belong to the home server.
func (s *Server) localPrincipal(r *http.Request) (account.Principal, error) {
	p, err := s.authenticate(r)
	if err == nil && p.Foreign {
		err = fmt.Errorf("%w: services are kept by the actor's home server", errForbidden)
	}
	return p, err
}

func (s *Server) addService(w http.ResponseWriter, r *http.Request) error {
	p, err := s.localPrincipal(r)
	if err != nil {
		return err
	}
	var in struct {
		Service Service `json:"service"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := checkService(in.Service.Service, in.Service.URL); err != nil {
		return err
	}
	rep, err := s.ask(r.Context(), p.FID, account.AddService{Service: in.Service.Service, URL: in.Service.URL, Primary: in.Service.Primary})
	if err != nil {
		return err
	}
	sv := rep.(account.Service)
	writeJSON(w, http.StatusCreated, Service{Service: sv.Service, URL: sv.URL, Primary: sv.Primary})
	return nil
}

func (s *Server) removeService(w http.ResponseWriter, r *http.Request) error {
	p, err := s.localPrincipal(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	name, u := q.Get("name"), q.Get("url")
	if name == "" || u == "" {
		return fmt.Errorf("%w: name and url are required", errBadRequest)
	}
	rep, err := s.ask(r.Context(), p.FID, account.ListServices{})
	if err != nil {
		return err
	}
	for _, sv := range rep.([]account.Service) {
		if sv.Service == name && sv.URL == u && sv.Primary {
			if err := s.sensitive(r, p); err != nil { // removing the primary changes it (core 9.1.1)
				return err
			}
		}
	}
	rep, err = s.ask(r.Context(), p.FID, account.RemoveService{Service: name, URL: u})
	if err != nil {
		return err
	}
	rm := rep.(account.RemovedService)
	writeJSON(w, http.StatusOK, []map[string]string{{"service": rm.Service, "new_primary": rm.NewPrimary}})
	return nil
}

func (s *Server) setPrimary(w http.ResponseWriter, r *http.Request) error {
	p, err := s.localPrincipal(r)
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := s.sensitive(r, p); err != nil {
		return err
	}
	rep, err := s.ask(r.Context(), p.FID, account.SetPrimaryService{Service: in.Name, URL: in.URL})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, services(rep.([]account.Service), false))
	return nil
}

func (s *Server) discover(w http.ResponseWriter, r *http.Request) error {
	fid, err := identity.ParseFID(r.PathValue("fid"))
	if err != nil {
		return err
	}
	if fid.Domain != s.cfg.Domain {
		return fmt.Errorf("%s: %w", fid, errNotLocal)
	}
	onlyPrimary := false
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.ParseUint(l, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("%w: limit must be a positive integer", errBadRequest)
		}
		onlyPrimary = n == 1
	}
	rep, err := s.ask(r.Context(), fid.String(), account.ListServices{})
	if err != nil {
		return err
	}
	var found []account.Service
	for _, sv := range rep.([]account.Service) {
		if name := r.PathValue("service"); name == "" || sv.Service == name {
			found = append(found, sv)
		}
	}
	out := services(found, onlyPrimary)
	if len(out) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func services(in []account.Service, onlyPrimary bool) []Service {
	out := []Service{}
	for _, sv := range in {
		if !onlyPrimary || sv.Primary {
			out = append(out, Service{Service: sv.Service, URL: sv.URL, Primary: sv.Primary})
		}
	}
	return out
}

func (s *Server) wellKnown(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"api": s.cfg.PublicURL() + "/.p2/core/"})
	return nil
}
