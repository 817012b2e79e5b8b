package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/internal/servertest"
)

// TestIdleAgainstRealServer runs the load tool as its users do, against the real server binary
// (built here), small: 20 connections over 2 sessions for a second.
func TestIdleAgainstRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	dir := t.TempDir()
	bin, err := servertest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	url := servertest.Start(t, bin, "-data-dir", filepath.Join(dir, "data"))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"idle", "-server", url, "-conns", "20", "-sessions", "2", "-hold", "1s",
		"-tokens", filepath.Join(dir, "tokens")}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"20 requested, 20 identified, 0 failed to open, 0 dropped", "per connection"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
	// The second run reuses the stored tokens instead of logging in.
	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"idle", "-server", url, "-conns", "5", "-hold", "100ms", "-tokens", filepath.Join(dir, "tokens")}, &out, &errb); code != 0 ||
		!strings.Contains(errb.String(), "using 2 session tokens") {
		t.Fatalf("second run: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if code := run(ctx, []string{"bogus"}, &out, &errb); code != 2 {
		t.Fatalf("unknown mode: exit %d", code)
	}
}
