package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// Exit codes: scripts tell "the server said no" (1) from "you called me wrong" (2).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const defaultServer = "http://127.0.0.1:8080"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code, so that tests can drive the CLI
// end to end. Stdin stays the process's; tests that feed a password on stdin build a Main.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	m := &Main{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv}
	return m.Execute(ctx, args)
}

// Main is one invocation of p2chat: the process edges, the global flags, and the command that
// ParseFlags picked for Run.
type Main struct {
	// The process edges are injected so that tests need no process of their own.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	Server string // --server: base URL of the server commands talk to
	Dir    string // --dir: keystore directory; "" = the XDG default, resolved when needed
	As     string // --as: FID (or local name) whose stored session to act as

	run  runFunc // the command ParseFlags picked, with its flags parsed
	args []string
}

// runFunc runs a command with its positional arguments, after its flags were parsed.
type runFunc func(ctx context.Context, args []string) error

// command is one entry of the dispatcher. Groups of commands ("service add", later "guild
// create") are two-word names; each group lives in its own file and returns its entries from
// one function listed in commands.
type command struct {
	name     string // "login", "service add"
	synopsis string // the arguments, for help: "NAME [--session ID]"
	summary  string
	min, max int // number of positional arguments
	// setup declares the command's own flags on fs and returns the function that runs it once
	// fs is parsed, so that flag values live in the closure rather than in Main.
	setup func(m *Main, fs *flag.FlagSet) runFunc
}

// usage is the command's usage line.
func (c *command) usage() string {
	return strings.TrimSpace("p2chat " + c.name + " " + c.synopsis)
}

// commands is the dispatcher's table, in the order help lists it.
func commands() []command {
	return slices.Concat(identityCommands(), serviceCommands(), chatCommands(), mlsCommands())
}

// usageError marks errors of the invocation itself, which exit with 2 instead of 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Execute parses args, runs the command and reports the outcome as an exit code; errors become
// one line on Stderr.
func (m *Main) Execute(ctx context.Context, args []string) int {
	if err := m.ParseFlags(ctx, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		m.fail(err)
		return exitUsage
	}
	if err := m.Run(ctx); err != nil {
		m.fail(err)
		if errors.As(err, new(usageError)) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// fail prints err as the single line scripts and people look for. Server errors already carry
// their code and message in err's text (client.Error); an unreachable server gets a hint, as
// that is what a newcomer meets first.
func (m *Main) fail(err error) {
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		msg += fmt.Sprintf(" (is a server running at %s? set --server or P2CHAT_SERVER)", m.Server)
	}
	fmt.Fprintf(m.Stderr, "p2chat: %s\n", msg)
}

// ParseFlags reads the global flags (env fallbacks, flags win), picks the command and parses its
// arguments. Help requests print help to Stdout and return flag.ErrHelp; everything else that
// goes wrong here is a usage error.
func (m *Main) ParseFlags(ctx context.Context, args []string) error {
	if m.Getenv == nil {
		m.Getenv = func(string) string { return "" }
	}
	m.Server = m.env("P2CHAT_SERVER", defaultServer)
	m.Dir = m.Getenv("P2CHAT_DIR")
	m.As = m.Getenv("P2CHAT_AS")

	fs := newFlagSet("p2chat")
	m.globalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			m.usage(m.Stdout)
			return err
		}
		return usagef("%v (see p2chat help)", err)
	}
	args = fs.Args()
	if len(args) == 0 {
		m.usage(m.Stderr)
		return usagef("no command given")
	}
	if args[0] == "help" {
		return m.help(args[1:])
	}

	cmd, rest, err := lookup(args)
	if err != nil {
		return err
	}
	// The command's flag set has the global flags again, with what was parsed so far as their
	// defaults, so that `p2chat login alice --server URL` works as well as the other order.
	cfs := newFlagSet("p2chat " + cmd.name)
	m.globalFlags(cfs)
	run := cmd.setup(m, cfs)
	pos, err := parseInterspersed(cfs, rest)
	if errors.Is(err, flag.ErrHelp) {
		m.commandUsage(m.Stdout, cmd)
		return err
	}
	if err != nil {
		return usagef("%s: %v (see p2chat help %s)", cmd.name, err, cmd.name)
	}
	if len(pos) < cmd.min || len(pos) > cmd.max {
		return usagef("usage: %s (see p2chat help %s)", cmd.usage(), cmd.name)
	}
	if err := m.checkGlobals(); err != nil {
		return err
	}
	m.run, m.args = run, pos
	return nil
}

// Run runs the command ParseFlags picked.
func (m *Main) Run(ctx context.Context) error {
	if m.run == nil {
		return usagef("no command given")
	}
	// Not wrapped with the command's name: SDK errors already name the step that failed
	// ("client: login alice@a.test: ..."), and ours say what to do.
	return m.run(ctx, m.args)
}

func (m *Main) env(key, def string) string {
	if v := m.Getenv(key); v != "" {
		return v
	}
	return def
}

func (m *Main) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.Server, "server", m.Server, "base `URL` of the server to talk to (env P2CHAT_SERVER; default "+defaultServer+")")
	fs.StringVar(&m.Dir, "dir", m.Dir, "`DIR` holding the stored sessions: keys, ID-Certs, tokens (env P2CHAT_DIR; default $XDG_CONFIG_HOME/p2chat or ~/.config/p2chat)")
	fs.StringVar(&m.As, "as", m.As, "act as this `FID` when sessions of several actors are stored (env P2CHAT_AS)")
}

// checkGlobals refuses malformed global values before any request, as usage errors.
func (m *Main) checkGlobals() error {
	if _, err := client.New(m.Server, client.Options{}); err != nil {
		return usagef("--server: %v", err)
	}
	if strings.Contains(m.As, "@") {
		if _, err := identity.ParseFID(m.As); err != nil {
			return usagef("--as %q: %v", m.As, err)
		}
	}
	return nil
}

// newFlagSet returns a flag set that reports errors to the caller instead of printing them, so
// that every error is the one line Execute prints.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseInterspersed parses fs's flags wherever they appear among args and returns the
// positional arguments: `login alice --session laptop` reads naturally, while the flag package
// alone stops at the first positional argument. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		one := []string{a}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		// A flag that takes a value takes the next argument, as the flag package would.
		if f := fs.Lookup(name); f != nil && !inline && !isBoolFlag(f) && i+1 < len(args) {
			i++
			one = append(one, args[i])
		}
		if err := fs.Parse(one); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// lookup finds the command named by args' first one or two words.
func lookup(args []string) (*command, []string, error) {
	all := commands()
	if len(args) >= 2 {
		if i := slices.IndexFunc(all, func(c command) bool { return c.name == args[0]+" "+args[1] }); i >= 0 {
			return &all[i], args[2:], nil
		}
	}
	if i := slices.IndexFunc(all, func(c command) bool { return c.name == args[0] }); i >= 0 {
		return &all[i], args[1:], nil
	}
	if sub := subcommands(all, args[0]); len(sub) > 0 {
		if len(args) == 1 {
			return nil, nil, usagef("%s: want a subcommand: %s (see p2chat help)", args[0], strings.Join(sub, ", "))
		}
		return nil, nil, usagef("%s: unknown subcommand %q, want %s (see p2chat help)", args[0], args[1], strings.Join(sub, ", "))
	}
	return nil, nil, usagef("unknown command %q (see p2chat help)", args[0])
}

// subcommands lists the second words of group's commands.
func subcommands(all []command, group string) []string {
	var out []string
	for _, c := range all {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			out = append(out, sub)
		}
	}
	return out
}

// help answers `p2chat help [COMMAND]` on Stdout.
func (m *Main) help(args []string) error {
	if len(args) == 0 {
		m.usage(m.Stdout)
		return flag.ErrHelp
	}
	cmd, rest, err := lookup(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("help: unexpected argument %q", rest[0])
	}
	m.commandUsage(m.Stdout, cmd)
	return flag.ErrHelp
}

func (m *Main) usage(w io.Writer) {
	fmt.Fprint(w, "p2chat is the command-line client of a polyproto-chat server.\n\n")
	fmt.Fprint(w, "usage: p2chat [global flags] COMMAND [arguments and flags]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimPrefix(c.usage(), "p2chat "), c.summary)
	}
	fmt.Fprintf(tw, "  help [COMMAND]\tlist the commands, or a command's flags\n")
	tw.Flush()
	fmt.Fprint(w, "\nglobal flags (also accepted after the command):\n")
	fs := newFlagSet("p2chat")
	(&Main{}).globalFlags(fs)
	printFlags(w, fs)
	fmt.Fprint(w, "\nPasswords come from --password, else P2CHAT_PASSWORD, else one line on stdin (not from a terminal).\n"+
		"Output is one item per line; errors are one line on stderr (exit 1; usage errors exit 2).\n"+
		"Encrypted DMs and groups: dm send, dm read, group send and group read first upload KeyPackages when the\n"+
		"session has few left (p2chat keys upload does it by hand), so a newcomer's first DM works without a separate step.\n")
}

func (m *Main) commandUsage(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", cmd.usage(), cmd.summary)
	fs := newFlagSet("p2chat " + cmd.name)
	cmd.setup(&Main{}, fs)
	global := newFlagSet("p2chat")
	(&Main{}).globalFlags(global)
	if flagCount(fs) > 0 {
		fmt.Fprint(w, "\nflags:\n")
		printFlags(w, fs)
	}
	fmt.Fprint(w, "\nglobal flags:\n")
	printFlags(w, global)
}

func flagCount(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}

// printFlags lists fs's flags with two dashes, the spelling the README and help use.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if isBoolFlag(f) {
			name = ""
		}
		fmt.Fprintf(tw, "  --%s %s\t%s\n", f.Name, name, usage)
	})
	tw.Flush()
}

// client returns an SDK client for --server that keeps sessions in the keystore directory.
func (m *Main) client() (*client.Client, error) {
	dir, err := m.dir()
	if err != nil {
		return nil, err
	}
	c, err := client.New(m.Server, client.Options{Dir: dir})
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// dir resolves the keystore directory. HOME and XDG_CONFIG_HOME come from Getenv, not the
// process, so that a test's environment decides where keys go.
func (m *Main) dir() (string, error) {
	if m.Dir != "" {
		return m.Dir, nil
	}
	// The XDG spec says a relative XDG_CONFIG_HOME is to be ignored.
	if x := m.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "p2chat"), nil
	}
	if h := m.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "p2chat"), nil
	}
	return "", errors.New("no directory for sessions: set --dir or P2CHAT_DIR (HOME is not set)")
}
