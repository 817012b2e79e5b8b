package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/polyproto-chat/server/federation"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// Config is everything the server is started with. Every flag has an environment fallback,
// named in its usage line.
type Config struct {
	Listen    string
	DataDir   string
	Store     string // "" = embedded Pebble in DataDir; "memory"; "kurrentdb://..." or "esdb://..."
	Domain    string
	LogFormat string
	LogLevel  slog.Level
	PublicURL string           // "" = http://<listen address>
	Peers     federation.Peers // domain -> base URL of other servers; others are https://<domain>
	CacheTTL  time.Duration    // cache window of the certs this server serves
	// ResumeLimit: events a gateway Resume replays at most before it asks the client to re-sync.
	ResumeLimit int
	DebugListen string // "" = off; else an address serving /debug/pprof/ (keep it private)
	AuthRate    int    // password checks per minute per client address; -1 = no limit
	NodeID      int    // snowflake node bits: unique per server process sharing a store
}

// parseFlags reads args with defaults taken from getenv.
func parseFlags(name string, args []string, getenv func(string) string) (Config, *flag.FlagSet, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Listen, "listen", env("P2CHAT_LISTEN", "127.0.0.1:8080"), "address for HTTP and WebSocket (env P2CHAT_LISTEN)")
	fs.StringVar(&c.DataDir, "data-dir", env("P2CHAT_DATA_DIR", "./data"), "directory for the embedded event store, read models and keys (env P2CHAT_DATA_DIR)")
	fs.StringVar(&c.Store, "store", env("P2CHAT_STORE", ""), "event store: empty = embedded Pebble in the data dir, memory, or kurrentdb://... / esdb://... (env P2CHAT_STORE)")
	fs.StringVar(&c.Domain, "domain", env("P2CHAT_DOMAIN", "localhost"), "domain of this home server, the part after @ in its actors' federation IDs (env P2CHAT_DOMAIN)")
	fs.StringVar(&c.LogFormat, "log-format", env("P2CHAT_LOG_FORMAT", "text"), "log format: text or json (env P2CHAT_LOG_FORMAT)")
	fs.StringVar(&c.PublicURL, "public-url", env("P2CHAT_PUBLIC_URL", ""), "base URL clients and other servers reach this server at, for /.well-known/polyproto-core; empty = http://<listen address> (env P2CHAT_PUBLIC_URL)")
	peers := fs.String("peers", env("P2CHAT_PEERS", ""), "domain=url,... base URLs of other servers instead of https://<domain> (env P2CHAT_PEERS)")
	fs.DurationVar(&c.CacheTTL, "cert-cache-ttl", envDuration(getenv, "P2CHAT_CERT_CACHE_TTL", time.Hour), "how long other servers may trust the status of a certificate this server serves (env P2CHAT_CERT_CACHE_TTL)")
	fs.IntVar(&c.ResumeLimit, "resume-limit", envInt(getenv, "P2CHAT_RESUME_LIMIT", 1000), "events a gateway Resume replays at most; past it the client is told to re-sync (env P2CHAT_RESUME_LIMIT)")
	fs.StringVar(&c.DebugListen, "debug-listen", env("P2CHAT_DEBUG_LISTEN", ""), "address for Go's /debug/pprof/ profiles, off when empty; never expose it publicly (env P2CHAT_DEBUG_LISTEN)")
	fs.IntVar(&c.AuthRate, "auth-rate", envInt(getenv, "P2CHAT_AUTH_RATE", 30), "requests that check or set a password (register, login, sensitive actions) per minute per client address; -1 = no limit (env P2CHAT_AUTH_RATE)")
	fs.IntVar(&c.NodeID, "node-id", envInt(getenv, "P2CHAT_NODE_ID", 0), "0-1023, part of every id this server makes; give each server sharing one event store its own (env P2CHAT_NODE_ID)")
	level := fs.String("log-level", env("P2CHAT_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env P2CHAT_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, fs, fmt.Errorf("-log-level %q: want debug, info, warn or error", *level)
	}
	var err error
	if c.Peers, err = federation.ParsePeers(*peers); err != nil {
		return c, fs, fmt.Errorf("-peers: %w", err)
	}
	return c, fs, c.validate()
}

func (c *Config) validate() error {
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("-log-format %q: want text or json", c.LogFormat)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("-listen %q: %w", c.Listen, err)
	}
	if c.DataDir == "" {
		return errors.New("-data-dir must not be empty")
	}
	if c.CacheTTL < time.Second || c.CacheTTL > 12*time.Hour {
		return fmt.Errorf("-cert-cache-ttl %s: want 1s to 12h (core 6.4 recommends 1-12 hours)", c.CacheTTL)
	}
	if c.AuthRate == 0 || c.AuthRate < -1 {
		return fmt.Errorf("-auth-rate %d: want a positive number, or -1 for no limit", c.AuthRate)
	}
	if c.NodeID < 0 || c.NodeID > snowflake.MaxNode {
		return fmt.Errorf("-node-id %d: want 0 to %d", c.NodeID, snowflake.MaxNode)
	}
	if c.ResumeLimit < 1 || c.ResumeLimit > 100_000 {
		return fmt.Errorf("-resume-limit %d: want 1 to 100000", c.ResumeLimit)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
			return fmt.Errorf("-public-url %q: want http(s)://host[:port]", c.PublicURL)
		}
		c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	}
	if err := identity.ValidateDomain(c.Domain); err != nil {
		return fmt.Errorf("-domain %q: %w", c.Domain, err)
	}
	switch s := c.Store; {
	case s == "", s == "memory", hasAnyPrefix(s, kurrentSchemes...):
	default:
		return fmt.Errorf("-store %q: want empty (embedded), memory, or a kurrentdb:// or esdb:// connection string", s)
	}
	return nil
}

var kurrentSchemes = []string{"kurrentdb://", "kurrentdb+discover://", "kurrent://", "kurrent+discover://", "esdb://", "esdb+discover://"}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// envDuration reads a duration from the environment; a malformed one falls back to def and
// the flag's own parsing reports nothing, so validate catches it through the range check.
func envDuration(getenv func(string) string, key string, def time.Duration) time.Duration {
	if v := getenv(key); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		return -1
	}
	return def
}

// envInt reads an integer from the environment; a malformed one becomes -1, which validate refuses.
func envInt(getenv func(string) string, key string, def int) int {
	if v := getenv(key); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return -1
		}
		return n
	}
	return def
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
