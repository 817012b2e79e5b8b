package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/internal/servertest"
)

// TestMLSAgainstRealServer runs the mls mode as its users do, against the real server binary,
// tiny: 2 groups x 3 members at a fixed rate with a keystore on disk (--state), then as fast as
// possible with the sessions and MLS groups of the first run, then the same actors in new groups
// with their MLS state in memory and two senders per group with two sends in flight each, then
// the groups on disk again, then fresh actors with no keystore at all. Every accepted message must be
// decrypted by every other member of its group, matching its send, with no error.
func TestMLSAgainstRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	dir := t.TempDir()
	bin, err := servertest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	url := servertest.Start(t, bin, "-data-dir", filepath.Join(dir, "data"), "-auth-rate", "-1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := filepath.Join(dir, "state")

	for _, tc := range []struct {
		name  string
		args  []string
		check []string
	}{
		{"fixed rate", []string{"--groups", "2", "--members", "3", "--rate", "40", "--duration", "2s", "--warmup", "500ms", "--state", state},
			[]string{"2 groups x 3 members; 6 actors, 6 gateway connections; 2 senders, 1 in flight each; 200-byte plaintexts; keystore disk",
				"40/s on a fixed schedule", "setup              set up"}},
		{"closed loop, reused state", []string{"--groups", "2", "--members", "3", "--duration", "1s", "--warmup", "200ms", "--size", "1000", "--state", state},
			[]string{"as fast as possible", "read from --state (0 messages of earlier runs caught up)", "1000-byte plaintexts"}},
		{"memory keystore, reused actors, two senders", []string{"--groups", "2", "--members", "3", "--senders", "2", "--inflight", "2", "--keystore", "memory", "--rate", "50", "--duration", "1s", "--warmup", "0s", "--state", state},
			[]string{"2 groups x 3 members; 6 actors, 6 gateway connections; 4 senders, 2 in flight each", "keystore memory", "actors read from --state, new groups made"}},
		{"disk keystore again", []string{"--groups", "2", "--members", "3", "--rate", "20", "--duration", "500ms", "--warmup", "0s", "--state", state},
			[]string{"read from --state (0 messages of earlier runs caught up)", "keystore disk"}},
		{"memory keystore, fresh actors", []string{"--groups", "1", "--members", "2", "--keystore", "memory", "--duration", "500ms", "--warmup", "0s"},
			[]string{"1 groups x 2 members; 2 actors", "setup              set up"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(ctx, append([]string{"mls", "--server", url}, tc.args...), &out, &errb)
			report := out.String()
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, report, errb.String())
			}
			t.Logf("report:\n%s", report)
			for _, want := range append(tc.check, "errors: none", " 0 missing, 0 duplicate, 0 not matching their send; 0 of failed sends, 0 foreign",
				"member errors      none; 0 other group events, 0 resyncs", "0 dropped (none)") {
				if !strings.Contains(report, want) {
					t.Errorf("report lacks %q", want)
				}
			}
			m := regexp.MustCompile(`(\d+) sent, (\d+) accepted in the whole run`).FindStringSubmatch(report)
			if m == nil || m[1] != m[2] || m[1] == "0" {
				t.Errorf("whole run: sent and accepted differ or are zero: %q", m)
			}
			for _, re := range []string{`deliveries\s+(\d+) of (\d+) expected decrypted`, `\s+(\d+) of (\d+) expected in the whole run`} {
				m := regexp.MustCompile(re).FindStringSubmatch(report)
				if m == nil || m[1] != m[2] || m[1] == "0" {
					t.Errorf("deliveries %q: got %q", re, m)
				}
			}
		})
	}

	// A state made for other flags is refused before anything is sent; so are bad flags.
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"mls", "--server", url, "--groups", "3", "--members", "3", "--state", state}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "made for --groups 2 --members 3") {
		t.Fatalf("mismatched state: exit %d\n%s", code, errb.String())
	}
	for _, args := range [][]string{{"--members", "16"}, {"--senders", "0"}, {"--size", "10"}, {"--keystore", "file"}} {
		if code := run(ctx, append([]string{"mls"}, args...), &out, &errb); code != 2 {
			t.Errorf("bad flags %q: exit %d", args, code)
		}
	}
}

// TestMLSPlaintext: a message's plaintext has the asked size and carries what the members check.
func TestMLSPlaintext(t *testing.T) {
	b := &mlsBench{cfg: mlsConfig{Size: mlsHeaderMax}, runID: "abcdefgh"}
	p := b.plaintext(1<<63, 1<<20, 1<<62)
	if len(p) > mlsHeaderMax || !bytes.HasPrefix(p, []byte("p2mls abcdefgh 9223372036854775808 1048576 4611686018427387904|")) {
		t.Fatalf("%d bytes: %q", len(p), p)
	}
	b.cfg.Size = 200
	if p := b.plaintext(7, 1, 12345); len(p) != 200 || !bytes.Equal(p, b.plaintext(7, 1, 12345)) || bytes.Equal(p, b.plaintext(8, 1, 12345)) {
		t.Fatalf("%q", p)
	}
}

// TestMachineBusy: where there is a /proc/stat, the machine's busy time is read and moves with our
// own work.
func TestMachineBusy(t *testing.T) {
	before := machineBusy()
	if before < 0 {
		t.Skip("no /proc/stat here")
	}
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	if after := machineBusy(); after < before+0.05 {
		t.Fatalf("busy %.2f s -> %.2f s after spinning 100 ms", before, after)
	}
}
