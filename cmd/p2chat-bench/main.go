package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// mode is one subcommand: `p2chat-bench <name> [flags]`.
type mode struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// modes is the command table.
var modes = []mode{
	{"idle", "hold N identified idle gateway connections, report server RSS per connection", runIdle},
	{"chat", "drive signed guild chat messages through REST to M gateway members per channel, report throughput and latency", runChat},
	{"mls", "drive end-to-end encrypted messages through the SDK's MLS groups (N groups of M members, every member decrypting), report throughput and latency", runMLS},
	{"floor", "the unavoidable part of chat alone (sign, HTTP, verify, frame writes and reads) in one process: an upper bound on throughput", runFloor},
}

func usage() string {
	var b strings.Builder
	for i, m := range modes {
		prefix := "usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintf(&b, "%sp2chat-bench %s [flags]    %s\n", prefix, m.name, m.summary)
	}
	return b.String()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		for _, m := range modes {
			if m.name == args[0] {
				return m.run(ctx, args[1:], stdout, stderr)
			}
		}
	}
	fmt.Fprint(stderr, usage())
	return 2
}

func runIdle(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg idleConfig
	fs.StringVar(&cfg.Server, "server", envOr("P2CHAT_SERVER", "http://127.0.0.1:8080"), "server base URL (env P2CHAT_SERVER)")
	fs.IntVar(&cfg.Conns, "conns", 1000, "gateway connections to open")
	fs.IntVar(&cfg.Sessions, "sessions", 50, "actor sessions (logins) the connections are spread over")
	fs.DurationVar(&cfg.Hold, "hold", 60e9, "how long to hold the connections once all are open")
	fs.IntVar(&cfg.DialRate, "dial-rate", 1000, "new connections per second")
	fs.StringVar(&cfg.Password, "password", "bench password 1234", "password of the benchmark user")
	fs.StringVar(&cfg.Tokens, "tokens", "", "file of session tokens: used if it exists, else written after logging in (for a clean memory baseline, see the package doc)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Conns < 1 || cfg.Sessions < 1 || cfg.DialRate < 1 {
		fmt.Fprintln(stderr, "p2chat-bench: -conns, -sessions and -dial-rate must be positive")
		return 2
	}
	rep, err := idle(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "p2chat-bench: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if rep.Dropped > 0 || rep.Failed > 0 {
		return 1
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// runReport is a finished run of a load mode.
type runReport interface {
	print(w io.Writer)
	clean() bool // nothing missing, duplicated, refused or dropped
}

// finish prints a run's report and gives the exit code: 1 for a failed or unclean run.
func finish[R runReport](rep R, err error, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintf(stderr, "p2chat-bench: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if !rep.clean() {
		return 1
	}
	return 0
}
