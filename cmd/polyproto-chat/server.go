package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/channel"
	"github.com/polyproto-chat/server/actors/group"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/actors/keypackages"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/embedded"
	"github.com/polyproto-chat/server/events/kurrentdb"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/federation"
	"github.com/polyproto-chat/server/gateway"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/projections"
	"github.com/polyproto-chat/server/projections/groups"
	"github.com/polyproto-chat/server/projections/history"
	"github.com/polyproto-chat/server/snowflake"
)

// shutdownGrace bounds each step of a clean shutdown.
const shutdownGrace = 10 * time.Second

// Server is one running polyproto-chat process: store, read models, actors, HTTP edge.
type Server struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	store  events.Store
	views  *projections.DB
	runner *projections.Runner
	actors *actors.System
	ln     net.Listener
	http   *http.Server
	ws     *gateway.WS
	chat   *gateway.ChatEvents

	stopRunner context.CancelFunc
	runnerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// Open builds everything and starts listening, but serves nothing until Serve.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, reg: prometheus.NewRegistry(), runnerDone: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if err := usableDir(cfg.DataDir); err != nil {
		return nil, err
	}
	store, kind, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s.store = events.Instrument(store, s.reg, kind)

	if s.views, err = projections.Open(filepath.Join(cfg.DataDir, "views"), log.With("component", "views")); err != nil {
		return nil, fmt.Errorf("read models: %w", err)
	}
	if s.runner, err = projections.NewRunner(projections.Config{
		Events: s.store, DB: s.views, Projections: readModels(),
		Logger: log.With("component", "projections"), Registerer: s.reg,
	}); err != nil {
		return nil, err
	}
	s.actors = actors.NewSystem(actors.Config{Logger: log.With("component", "actors")})

	root, err := identity.LoadOrCreateRoot(filepath.Join(cfg.DataDir, "identity"), cfg.Domain, time.Now())
	if err != nil {
		return nil, fmt.Errorf("home server identity: %w", err)
	}
	// Account events reach gateway sessions through core; its Sessions are set below, once the
	// gateway exists, which is before any account actor can run (they start on requests).
	core := &gateway.CoreEvents{Root: root, CacheTTL: cfg.CacheTTL, Now: time.Now, Logger: log.With("component", "gateway")}
	accounts, err := s.actors.Kind(account.KindName,
		account.NewProducer(account.Config{Store: s.store, Logger: log.With("component", "account"), Committed: core.Committed}),
		// Any token names an account, so strangers can wake many; let idle ones go soon.
		actors.KindOptions{IdleTimeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	guilds, err := s.actors.Kind(guild.KindName, guild.NewProducer(guild.Config{Store: s.store, Logger: log.With("component", "guild")}),
		actors.KindOptions{IdleTimeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	channels, err := s.actors.Kind(channel.KindName, channel.NewProducer(channel.Config{Store: s.store, Logger: log.With("component", "channel")}),
		actors.KindOptions{IdleTimeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	groupActors, err := s.actors.Kind(group.KindName, group.NewProducer(group.Config{Store: s.store, Logger: log.With("component", "group")}),
		actors.KindOptions{IdleTimeout: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	keyPackages, err := s.actors.Kind(keypackages.KindName,
		keypackages.NewProducer(keypackages.Config{Store: s.store, Logger: log.With("component", "keypackages")}),
		actors.KindOptions{IdleTimeout: 2 * time.Minute})
	if err != nil {
		return nil, err
	}
	groupList, err := groups.NewReader(s.views)
	if err != nil {
		return nil, err
	}
	hist, err := history.NewReader(s.views)
	if err != nil {
		return nil, err
	}
	ids, err := snowflake.NewGenerator(cfg.NodeID, nil)
	if err != nil {
		return nil, err
	}
	s.chat = gateway.NewChatEvents(s.store, log.With("component", "chat_fanout"))
	edge, err := gateway.New(gateway.Config{
		Domain:   cfg.Domain,
		Root:     root,
		Accounts: accounts,
		Certs:    federation.NewCerts(federation.CertsConfig{Peers: cfg.Peers, MaxCacheTTL: 12 * time.Hour, Logger: log.With("component", "federation")}),
		PublicURL: func() string {
			if cfg.PublicURL != "" {
				return cfg.PublicURL
			}
			return "http://" + s.Addr()
		},
		CacheTTL: cfg.CacheTTL,
		AuthRate: cfg.AuthRate,
		Logger:   log.With("component", "gateway"),
		Chat: &gateway.ChatConfig{Guilds: guilds, Channels: channels, Events: s.chat, History: hist,
			ReadModels: s.runner, Store: s.store, IDs: ids, Groups: groupActors, GroupList: groupList},
		MLS: &gateway.MLSConfig{KeyPackages: keyPackages},
	})
	if err != nil {
		return nil, err
	}
	if s.ws, err = gateway.NewWS(edge, gateway.WSConfig{Actors: s.actors, Replayer: &gateway.Replayer{Store: s.store, Core: core, Chat: s.chat},
		ResumeLimit: cfg.ResumeLimit, Logger: log.With("component", "gateway")}); err != nil {
		return nil, err
	}
	core.Sessions = s.ws.Sessions()
	s.chat.Sessions = s.ws.Sessions()

	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	s.http = &http.Server{
		Handler:           s.routes(edge.Handler()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// readModels lists the projections this server keeps.
func readModels() []projections.Projection {
	return []projections.Projection{history.Projection{}, groups.Projection{}}
}

// openStore picks the event store: embedded Pebble unless --store names another.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (events.Store, string, error) {
	switch {
	case cfg.Store == "":
		dir := filepath.Join(cfg.DataDir, "events")
		s, err := embedded.Open(dir, embedded.Options{Logger: log.With("component", "event_store")})
		if err != nil {
			return nil, "", fmt.Errorf("%w (is another server using %s?)", err, cfg.DataDir)
		}
		return s, "embedded", nil
	case cfg.Store == "memory":
		log.Warn("event store is in memory: everything is lost when the server stops")
		return memory.New(nil), "memory", nil
	default:
		s, err := kurrentdb.Open(ctx, cfg.Store, log.With("component", "event_store"))
		if err != nil {
			return nil, "", fmt.Errorf("event store: %w", err)
		}
		return s, "kurrentdb", nil
	}
}

// usableDir creates dir if needed and proves it is writable, so that a bad --data-dir fails
// at start with one clear line instead of deep inside Pebble.
func usableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

// Addr is the address the server listens on (useful with --listen 127.0.0.1:0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve runs until ctx ends, then shuts down cleanly: stop accepting, finish requests, drain
// actors, stop projections, close the store.
func (s *Server) Serve(ctx context.Context) error {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopRunner = stop
	go func() {
		defer close(s.runnerDone)
		if err := s.runner.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("projections stopped", "err", err)
		}
	}()

	go func() {
		if err := s.chat.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("chat fan-out stopped", "err", err)
		}
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(s.ln) }()
	if s.cfg.DebugListen != "" {
		go s.serveDebug(ctx)
	}
	s.log.Info("polyproto-chat serving", "addr", s.Addr(), "domain", s.cfg.Domain, "data_dir", s.cfg.DataDir, "store", storeName(s.cfg.Store))

	select {
	case err := <-serveErr:
		_ = s.Close()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	return s.Close()
}

// Close tears everything down in reverse order of dependence. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			errs = append(errs, s.http.Shutdown(ctx))
			cancel()
		} else if s.ln != nil {
			errs = append(errs, s.ln.Close())
		}
		if s.ws != nil { // after http.Shutdown, which neither refuses upgrades already in nor waits for them
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			errs = append(errs, s.ws.Shutdown(ctx))
			cancel()
		}
		if s.actors != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			errs = append(errs, s.actors.Shutdown(ctx))
			cancel()
		}
		if s.stopRunner != nil {
			s.stopRunner()
			<-s.runnerDone
		}
		if s.views != nil {
			errs = append(errs, s.views.Close())
		}
		if s.store != nil {
			errs = append(errs, s.store.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Server) routes(edge http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/.p2/", edge)
	mux.Handle("/.well-known/", edge)
	s.ws.Mount(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Code: "NOT_FOUND", Message: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

// serveDebug serves Go's profiles on their own listener, so they never share the public one.
func (s *Server) serveDebug(ctx context.Context) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Addr: s.cfg.DebugListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	s.log.Info("profiles served", "addr", s.cfg.DebugListen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("debug listener", "err", err)
	}
}

// readyz is ready when the store answers, the chat fan-out has loaded every guild and every
// projection has caught up with the log.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// A read of a stream that never exists is the cheapest round trip every store has.
	if _, err := s.store.ReadStream(ctx, "readyz-probe", events.Forwards, 0, 1); !errors.Is(err, events.ErrStreamNotFound) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "STORE_UNAVAILABLE", Message: fmt.Sprintf("event store: %v", err)})
		return
	}
	if !s.chat.CaughtUp() {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "CHAT_FANOUT_LOADING", Message: "the chat fan-out is still loading the guilds from the event log"})
		return
	}
	if !s.runner.CaughtUp() {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Code: "PROJECTIONS_CATCHING_UP", Message: "read models are still catching up with the event log", Context: s.runner.Status()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// errorBody is the error shape of every route.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Context any    `json:"context,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func storeName(spec string) string {
	switch {
	case spec == "":
		return "embedded"
	case spec == "memory":
		return "memory"
	}
	return "kurrentdb" // the connection string may hold a password: never log it
}
