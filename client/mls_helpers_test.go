package client

import (
	"context"
	"testing"

	"github.com/polyproto-chat/server/internal/servertest"
)

// startTestServer builds the server binary and runs it with args until the test ends (skipped
// with -short, like every test that runs the binary), and returns its base URL.
func startTestServer(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	bin, err := servertest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, bin, args...)
}

// mlsLogin logs name in with session (registering it first if register) and returns the
// session, its Chat and its MLS state; keys > 0 uploads that many KeyPackages and a last-resort one.
func mlsLogin(t *testing.T, ctx context.Context, c *Client, name, session string, register bool, keys int, opts ChatOptions) (*Session, *Chat, *MLS) {
	t.Helper()
	if register {
		if _, err := c.Register(ctx, name, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Login(ctx, name, "correct horse battery", session)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Chat(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ch.MLS()
	if err != nil {
		t.Fatal(err)
	}
	if keys > 0 {
		if _, err := m.UploadKeyPackages(ctx, keys, true); err != nil {
			t.Fatal(err)
		}
	}
	return s, ch, m
}

// connectMember connects the session's gateway and starts the pump that feeds its dispatches
// through MLS.Handle.
func connectMember(t *testing.T, ctx context.Context, c *Client, s *Session, ch *Chat, m *MLS) *groupMember {
	t.Helper()
	g, err := c.Connect(ctx, s, GatewayOptions{Services: []string{"chat"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	gm := &groupMember{name: s.FID.Local + "/" + s.SessionID, s: s, ch: ch, m: m, events: make(chan GroupEvent, 1000), errs: make(chan error, 10)}
	go gm.pump(ctx, g)
	return gm
}
