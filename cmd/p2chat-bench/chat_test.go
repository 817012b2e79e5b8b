package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/polyproto-chat/server/internal/servertest"
)

// TestChatAgainstRealServer runs the chat mode as its users do, against the real server binary,
// tiny: 2 channels x 3 members at a fixed rate, then again as fast as possible with the actors
// and guilds of the first run (--state), then 4 channels in 2 guilds. Every acknowledged message
// must reach every member, with no error and no dropped connection.
func TestChatAgainstRealServer(t *testing.T) {
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
	state := filepath.Join(dir, "state.json")

	for _, tc := range []struct {
		name  string
		args  []string
		check []string
	}{
		{"fixed rate", []string{"--channels", "2", "--members", "3", "--rate", "40", "--duration", "2s", "--warmup", "500ms", "--state", state},
			[]string{"2 channels x 3 members (1 per guild, 2 guilds); 6 actors, 6 gateway connections; 2 senders", "40/s on a fixed schedule", "setup              set up"}},
		{"closed loop, reused state", []string{"--channels", "2", "--members", "3", "--senders", "2", "--inflight", "2", "--duration", "1s", "--warmup", "200ms", "--state", state},
			[]string{"as fast as possible", "read from --state", "4 senders, 2 in flight each"}},
		{"two channels per guild", []string{"--channels", "4", "--members", "2", "--channels-per-guild", "2", "--rate", "50", "--duration", "1s", "--warmup", "0s"},
			[]string{"4 channels x 2 members (2 per guild, 2 guilds); 4 actors, 4 gateway connections"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(ctx, append([]string{"chat", "--server", url}, tc.args...), &out, &errb)
			report := out.String()
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, report, errb.String())
			}
			t.Logf("report:\n%s", report)
			for _, want := range append(tc.check, "errors: none", " 0 missing, 0 duplicate; 0 of failed sends, 0 foreign", "0 dropped (none)") {
				if !strings.Contains(report, want) {
					t.Errorf("report lacks %q", want)
				}
			}
			// Every acknowledged message went to every member: delivered == expected, both in
			// the measured time and over the whole run, and something was sent at all.
			m := regexp.MustCompile(`(\d+) sent, (\d+) acknowledged in the whole run`).FindStringSubmatch(report)
			if m == nil || m[1] != m[2] || m[1] == "0" {
				t.Errorf("whole run: sent and acknowledged differ or are zero: %q", m)
			}
			for _, re := range []string{`deliveries\s+(\d+) of (\d+) expected \(`, `\s+(\d+) of (\d+) expected in the whole run`} {
				m := regexp.MustCompile(re).FindStringSubmatch(report)
				if m == nil || m[1] != m[2] || m[1] == "0" {
					t.Errorf("deliveries %q: got %q", re, m)
				}
			}
		})
	}

	// A state file made for other flags is refused before anything is sent.
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"chat", "--server", url, "--channels", "3", "--state", state}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "made for --channels 2 --members 3") {
		t.Fatalf("mismatched state: exit %d\n%s", code, errb.String())
	}
	if code := run(ctx, []string{"chat", "--senders", "0"}, &out, &errb); code != 2 {
		t.Fatalf("bad flags: exit %d", code)
	}
}

func TestLatHist(t *testing.T) {
	var h latHist
	vals := make([]time.Duration, 0, 10000)
	for range 10000 {
		d := time.Duration(rand.ExpFloat64()*5000) * time.Microsecond
		vals = append(vals, d)
		h.add(d)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.quantile(q)
		if got < exact-time.Microsecond || float64(got) > float64(exact)*1.04+float64(time.Microsecond) {
			t.Errorf("q%.3f: got %s, exact %s", q, got, exact)
		}
	}
	if h.maxDur() != vals[len(vals)-1].Truncate(time.Microsecond) {
		t.Errorf("max %s, want %s", h.maxDur(), vals[len(vals)-1])
	}
	for v := range uint64(1 << 16) {
		if i := histBucket(v); histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d of upper bound %d", v, i, histUpper(i))
		}
	}
}

func TestFrameScan(t *testing.T) {
	frame := []byte(`{"n":"chat","op":0,"d":{"t":"MESSAGE_CREATE","c":"42","d":{"id":"1","content":"say \"nonce\":\"abc.9\"","nonce":"abc.17","timestamp":1}},"s":1234}`)
	if !bytes.HasPrefix(frame, msgCreatePrefix) {
		t.Fatal("prefix")
	}
	if s, ok := trailingS(frame); !ok || s != 1234 {
		t.Errorf("s: %d %v", s, ok)
	}
	if seq, ok := nonceSeq(frame, []byte("abc.")); !ok || seq != 17 {
		t.Errorf("nonce: %d %v", seq, ok)
	}
	if _, ok := nonceSeq(frame, []byte("xyz.")); ok {
		t.Error("another run's nonce accepted")
	}
}

// TestWriteSyscalls: the count comes from /proc/<pid>/io and moves with our own writes.
func TestWriteSyscalls(t *testing.T) {
	before, err := writeSyscalls(os.Getpid())
	if err != nil {
		t.Skipf("no /proc/<pid>/io here: %v", err)
	}
	f, err := os.Create(t.TempDir() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if after, err := writeSyscalls(os.Getpid()); err != nil || after < before+10 {
		t.Fatalf("write system calls %d -> %d (%v), want at least 10 more", before, after, err)
	}
	if _, err := writeSyscalls(-1); err == nil {
		t.Fatal("pid -1 gave no error")
	}
}
