package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
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
	level := fs.String("log-level", env("P2CHAT_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env P2CHAT_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	if err := c.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		return c, fs, fmt.Errorf("-log-level %q: want debug, info, warn or error", *level)
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
	if err := validDomain(c.Domain); err != nil {
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

// validDomain accepts lower-case DNS names (labels of a-z, 0-9 and '-'), as polyproto
// federation IDs are lower-case; "localhost" is fine for a laptop.
func validDomain(d string) error {
	if d == "" || len(d) > 253 {
		return errors.New("must be 1-253 characters")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q is not a DNS label", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("label %q: only lower-case letters, digits and '-'", label)
			}
		}
	}
	return nil
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
