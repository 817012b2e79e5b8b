package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/federation"
	"github.com/polyproto-chat/server/identity"
)

// Config is what the edge needs. Zero durations pick the documented defaults.
type Config struct {
	Domain   string         // this home server's domain
	Root     *identity.Root // its root key and certificate
	Accounts *actors.Kind   // the account actors (actors/account), by FID
	Certs    CertVerifier   // foreign certs (federation.Certs)
	// PublicURL is the base URL clients reach this server at, for /.well-known/polyproto-core.
	PublicURL func() string

	CertValidity time.Duration // of issued actor certs; zero: 30 days
	CacheTTL     time.Duration // cache window of served certs; zero: 1 hour
	ChallengeTTL time.Duration // zero: 2 minutes
	// AuthRate bounds, per client address, the requests that cost an argon2id hash (register,
	// login, further ID-Certs, sensitive actions) per minute, with bursts of as many. Zero: 30;
	// negative: no limit.
	AuthRate int
	Now      func() time.Time
	Logger   *slog.Logger

	// Chat serves /.p2/chat/v1/ (guild chat); nil: those routes are not served.
	Chat *ChatConfig
	// MLS serves /.p2/mls/v1/ (the KeyPackage directory); nil: not served.
	MLS *MLSConfig
}

// CertVerifier checks certs of foreign actors with their home servers (federation.Certs).
type CertVerifier interface {
	Verify(ctx context.Context, certPEMOrDER []byte) (federation.CertStatus, error)
	ActorCert(ctx context.Context, fid identity.FID, sessionID string, serial uint64) (federation.CertStatus, error)
}

// Server serves the client edge.
type Server struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	challenges *challenges
	// hashing bounds concurrent argon2id runs: each takes tens of MiB and a core for tens of ms.
	hashing chan struct{}
	// authLimit bounds argon2id runs per client address, so one client cannot keep the cores busy.
	authLimit *addrLimiter
	// dummyHash is checked against when an actor is unknown, so a login takes as long whether or
	// not the name exists. Made on first need: an argon2id hash holds 64 MiB while it runs, which
	// a server that never sees a login of a stranger need not pay at start.
	dummyHash func() (string, error)
	// keys caches the public keys of session certs, for message signatures.
	keys sessionKeys
}

// New checks cfg and returns the edge.
func New(cfg Config) (*Server, error) {
	if cfg.Root == nil || cfg.Accounts == nil || cfg.Certs == nil || cfg.Domain == "" || cfg.PublicURL == nil {
		return nil, fmt.Errorf("gateway: Domain, Root, Accounts, Certs and PublicURL are required")
	}
	if cfg.CertValidity <= 0 {
		cfg.CertValidity = 30 * 24 * time.Hour
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = time.Hour
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AuthRate == 0 {
		cfg.AuthRate = 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, now: cfg.Now,
		challenges: newChallenges(cfg.ChallengeTTL, 100_000),
		authLimit:  newAddrLimiter(cfg.AuthRate, time.Minute),
		hashing:    make(chan struct{}, min(runtime.GOMAXPROCS(0), 4)), // 64 MiB each
		dummyHash:  sync.OnceValues(func() (string, error) { return identity.HashPassword("not a password of anyone") }),
	}, nil
}

// Handler serves /.p2/ and /.well-known/polyproto-core; /x/ is served as /x.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.coreRoutes(mux)
	if s.cfg.Chat != nil {
		s.chatRoutes(mux)
	}
	if s.cfg.MLS != nil {
		s.mlsRoutes(mux)
	}
	return trimSlash(mux)
}

// handler adapts a handler that returns an error to net/http, writing the error as the table says.
func (s *Server) handler(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			// A panic is a bug: the client gets the internal-error body, not a dropped
			// connection, and the log gets the stack.
			if p := recover(); p != nil {
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeJSON(w, http.StatusInternalServerError, ErrorBody{Code: "P2_CORE_INTERNAL", Message: "internal error; the server logged it"})
			}
		}()
		if err := h(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}

// ask sends cmd to the account of fid and returns the command's reply.
func (s *Server) ask(ctx context.Context, fid string, cmd any) (any, error) {
	res, err := s.cfg.Accounts.Request(ctx, fid, cmd)
	if err != nil {
		return nil, err
	}
	return res.(*actors.Result).Reply, nil
}

// newToken makes a session token for fid: base64url(fid) "." secret (see docs/PROTOCOL.md 3).
func newToken(fid string) (string, [32]byte) {
	secret, _ := identity.NewToken()
	token := base64.RawURLEncoding.EncodeToString([]byte(fid)) + "." + secret
	return token, identity.HashToken(token)
}

// authenticate resolves the request's bearer token to its live session.
func (s *Server) authenticate(r *http.Request) (account.Principal, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return account.Principal{}, errNoToken
	}
	return s.authenticateToken(r.Context(), token)
}

// authenticateToken resolves a session token to its live session (REST bearer tokens and the
// gateway's Identify and Resume). For a foreign session whose home server's last "not revoked"
// answer is too old, it asks the home server again.
func (s *Server) authenticateToken(ctx context.Context, token string) (account.Principal, error) {
	enc, _, ok := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil || len(token) > 1024 {
		return account.Principal{}, errNoToken
	}
	fid, err := identity.ParseFID(string(raw))
	if err != nil || fid.String() != string(raw) {
		return account.Principal{}, errNoToken
	}
	now := s.now()
	rep, err := s.ask(ctx, fid.String(), account.Authenticate{TokenHash: identity.HashToken(token), At: now})
	if err != nil {
		return account.Principal{}, err
	}
	p := rep.(account.Principal)
	if !p.Foreign || now.Before(p.StatusValidUntil) {
		return p, nil
	}
	st, err := s.cfg.Certs.ActorCert(ctx, fid, p.SessionID, p.Serial)
	if err != nil {
		return account.Principal{}, fmt.Errorf("checking %s's certificate with its home server: %w", fid, err)
	}
	if st.InvalidatedAt != nil {
		_, rerr := s.ask(ctx, fid.String(), account.RevokeSession{Serial: p.Serial, Reason: "home_server", At: now})
		if rerr != nil {
			s.log.Warn("recording a revocation by the home server failed", "fid", fid.String(), "err", rerr)
		}
		return account.Principal{}, fmt.Errorf("%w: %w", account.ErrUnauthorized, federation.ErrRevoked)
	}
	if _, err := s.ask(ctx, fid.String(), account.RefreshForeignStatus{Serial: p.Serial, ValidUntil: st.CacheUntil, At: now}); err != nil {
		return account.Principal{}, err
	}
	p.StatusValidUntil = st.CacheUntil
	return p, nil
}

// checkPassword verifies password against the actor's stored hash, in constant time whether or
// not the actor exists. Unknown actor and wrong password are the same error.
func (s *Server) checkPassword(r *http.Request, fid, password string) error {
	rep, err := s.ask(r.Context(), fid, account.PasswordHash{})
	var hash string
	switch {
	case err == nil:
		hash = rep.(string)
	case isNotRegistered(err):
		if hash, err = s.dummyHash(); err != nil {
			return err
		}
		err = account.ErrNotRegistered
	default:
		return err
	}
	ok, cerr := s.argon2(r, func() (bool, error) { return identity.CheckPassword(hash, password) })
	if cerr != nil {
		return cerr
	}
	if err != nil || !ok {
		return errBadCredentials
	}
	return nil
}

// argon2 runs f when a hashing slot is free and the client is within its AuthRate.
func (s *Server) argon2(r *http.Request, f func() (bool, error)) (bool, error) {
	if !s.authLimit.allow(clientAddr(r), s.now()) {
		return false, errRateLimited
	}
	select {
	case s.hashing <- struct{}{}:
	case <-r.Context().Done():
		return false, r.Context().Err()
	}
	defer func() { <-s.hashing }()
	return f()
}

// sensitive checks the second factor of a sensitive action (core 4.2): the actor's password.
func (s *Server) sensitive(r *http.Request, p account.Principal) error {
	pw := r.Header.Get("X-P2-Sensitive-Solution")
	if pw == "" || p.Foreign {
		return errSensitive
	}
	if err := s.checkPassword(r, p.FID, pw); err != nil {
		if errors.Is(err, errBadCredentials) {
			return fmt.Errorf("%w: the password given is wrong", errSensitive)
		}
		return err
	}
	return nil
}

func isNotRegistered(err error) bool { return errors.Is(err, account.ErrNotRegistered) }
