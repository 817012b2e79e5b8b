package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/polyproto-chat/server/client"
	"github.com/polyproto-chat/server/identity"
)

// identityCommands are the polyproto core identity commands: accounts, sessions, foreign login.
func identityCommands() []command {
	return []command{
		{name: "register", synopsis: "NAME", min: 1, max: 1, setup: (*Main).register,
			summary: "create the account NAME at --server; prints its FID"},
		{name: "login", synopsis: "NAME [--session ID]", min: 1, max: 1, setup: (*Main).login,
			summary: "log NAME in at --server with a new session and store it; prints the FID, session, cert serial and validity"},
		{name: "login-foreign", synopsis: "URL", min: 1, max: 1, setup: (*Main).loginForeign,
			summary: "log the stored session at --server in at the server at URL with its ID-Cert; prints the FID and that server"},
		{name: "whoami", synopsis: "", min: 0, max: 0, setup: (*Main).whoami,
			summary: "list the stored sessions: FID, server, session id, cert expiry"},
		{name: "sessions", synopsis: "", min: 0, max: 0, setup: (*Main).sessions,
			summary: "list the live sessions at --server: session id, serial, not before, not after, current or -"},
		{name: "revoke", synopsis: "SESSION_ID", min: 1, max: 1, setup: (*Main).revoke,
			summary: "end a session at --server (at the home server this needs the password)"},
	}
}

func (m *Main) register(fs *flag.FlagSet) runFunc {
	pw := passwordFlag(fs)
	return func(ctx context.Context, args []string) error {
		password, err := m.password(*pw)
		if err != nil {
			return err
		}
		c, err := m.client()
		if err != nil {
			return err
		}
		name, err := localName(ctx, c, args[0])
		if err != nil {
			return err
		}
		fid, err := c.Register(ctx, name, password)
		if err != nil {
			return err
		}
		fmt.Fprintln(m.Stdout, fid)
		return nil
	}
}

func (m *Main) login(fs *flag.FlagSet) runFunc {
	pw := passwordFlag(fs)
	sid := fs.String("session", "", "`ID` of the new session, 1-32 printable characters (default: random)")
	return func(ctx context.Context, args []string) error {
		password, err := m.password(*pw)
		if err != nil {
			return err
		}
		c, err := m.client()
		if err != nil {
			return err
		}
		name, err := localName(ctx, c, args[0])
		if err != nil {
			return err
		}
		// A session that was issued but not stored comes back with the error: show it anyway,
		// so that the user can revoke it.
		s, err := c.Login(ctx, name, password, *sid)
		if s != nil {
			m.record("fid", s.FID.String(), "server", s.Server, "session_id", s.SessionID,
				"serial", fmt.Sprint(s.Cert.Serial), "not_before", stamp(s.Cert.NotBefore), "not_after", stamp(s.Cert.NotAfter))
		}
		return err
	}
}

func (m *Main) loginForeign(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		c, err := m.client()
		if err != nil {
			return err
		}
		home, err := m.session(c)
		if err != nil {
			return err
		}
		s, err := c.LoginForeign(ctx, home, args[0])
		if s != nil {
			m.record("fid", s.FID.String(), "server", s.Server, "session_id", s.SessionID)
		}
		return err
	}
}

func (m *Main) whoami(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		c, err := m.client()
		if err != nil {
			return err
		}
		// Sessions that could be read are listed even when others could not; the error still
		// makes the exit code say that something in the directory needs attention.
		all, loadErr := c.StoredSessions()
		n := 0
		for _, s := range all {
			if !m.isAs(s.FID) {
				continue
			}
			fmt.Fprintln(m.Stdout, s.FID, s.Server, s.SessionID, stamp(s.Cert.NotAfter))
			n++
		}
		if loadErr != nil {
			return loadErr
		}
		if n == 0 {
			dir, _ := m.dir()
			return fmt.Errorf("no stored sessions in %s: log in with p2chat login NAME", dir)
		}
		return nil
	}
}

func (m *Main) sessions(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, args []string) error {
		c, err := m.client()
		if err != nil {
			return err
		}
		s, err := m.session(c)
		if err != nil {
			return err
		}
		list, err := c.Sessions(ctx, s)
		if err != nil {
			return err
		}
		for _, info := range list {
			current := "-"
			if info.Current {
				current = "current"
			}
			fmt.Fprintln(m.Stdout, info.SessionID, info.Serial, stamp(info.NotBefore), stamp(info.NotAfter), current)
		}
		return nil
	}
}

func (m *Main) revoke(fs *flag.FlagSet) runFunc {
	pw := passwordFlag(fs)
	return func(ctx context.Context, args []string) error {
		c, err := m.client()
		if err != nil {
			return err
		}
		s, err := m.session(c)
		if err != nil {
			return err
		}
		// Only the home server may see the password: a foreign server ends its own sessions on
		// the token alone, and sending it the password would hand it the account.
		root, err := c.ServerCert(ctx, s.Server)
		if err != nil {
			return err
		}
		password := ""
		if root.Domain == s.FID.Domain {
			if password, err = m.password(*pw); err != nil {
				return err
			}
		}
		if err := c.Revoke(ctx, s, password, args[0]); err != nil {
			// The server answers a wrong password as a missing one; say which it was.
			var ce *client.Error
			if password != "" && errors.As(err, &ce) && ce.Code == "P2_CORE_SENSITIVE_SOLUTION_REQUIRED" {
				return fmt.Errorf("the password was refused: %w", err)
			}
			return err
		}
		fmt.Fprintln(m.Stdout, "revoked", args[0])
		return nil
	}
}

// localName accepts an account as a local name or as a full FID; a FID must belong to the server,
// or the user would create or log in to an account other than the one they named.
func localName(ctx context.Context, c *client.Client, arg string) (string, error) {
	if !strings.Contains(arg, "@") {
		return arg, nil
	}
	fid, err := identity.ParseFID(arg)
	if err != nil {
		return "", usageError{err}
	}
	root, err := c.ServerCert(ctx, "")
	if err != nil {
		return "", err
	}
	if root.Domain != fid.Domain {
		return "", usagef("%s is not an account of %s, which is the server of %s: choose its server with --server", fid, c.BaseURL(), root.Domain)
	}
	return fid.Local, nil
}

// record prints one result as "key value" lines, in the order given.
func (m *Main) record(kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintln(m.Stdout, kv[i], kv[i+1])
	}
}

// stamp formats times the same way everywhere: RFC 3339 in UTC, which sorts as text.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}
