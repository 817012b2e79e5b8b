package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  polyproto-chat [serve] [flags]              start the server (the default)
  polyproto-chat projections rebuild NAME     rebuild a read model from the event log (server stopped)
  polyproto-chat audit verify STREAM...       check the hash chain of streams (flags go before the streams)

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code, writes results to stdout and logs
// and errors to stderr, so that tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "projections" || args[0] == "audit") {
		cmd, args = args[0], args[1:]
	}
	var rest []string
	switch cmd {
	case "projections":
		if len(args) < 2 || args[0] != "rebuild" {
			fmt.Fprintln(stderr, "polyproto-chat: want `projections rebuild NAME`")
			return 2
		}
		rest, args = args[:2], args[2:]
	case "audit":
		if len(args) < 1 || args[0] != "verify" {
			fmt.Fprintln(stderr, "polyproto-chat: want `audit verify STREAM...`")
			return 2
		}
		args = args[1:]
	}
	cfg, fs, err := parseFlags("polyproto-chat", args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, usage)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "polyproto-chat: %v (see polyproto-chat -h)\n", err)
		return 2
	}
	if cmd == "audit" {
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "polyproto-chat: audit verify needs at least one stream name")
			return 2
		}
		rest = fs.Args()
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "polyproto-chat: unexpected argument %q (see polyproto-chat -h)\n", fs.Arg(0))
		return 2
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)

	switch cmd {
	case "projections":
		err = rebuild(ctx, cfg, log, rest[1])
	case "audit":
		err = auditVerify(ctx, cfg, log, stdout, rest)
	default:
		var s *Server
		if s, err = Open(ctx, cfg, log); err == nil {
			err = s.Serve(ctx)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "polyproto-chat: %v\n", err)
		return 1
	}
	return 0
}
