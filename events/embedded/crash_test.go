package embedded_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/embedded"
)

// crashChildEnv makes the test binary act as the child process of TestCrashKeepsAcknowledged.
const crashChildEnv = "EMBEDDED_CRASH_CHILD_DIR"

// TestCrashKeepsAcknowledged runs a child process that appends with concurrent writers and prints
// every acknowledgement, kills it with SIGKILL at a random moment, reopens the store and checks
// that every acknowledged event is there and that global positions have no gap.
// CRASH_ROUNDS sets how many kill/verify rounds run (default 3).
func TestCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("running as the crash child")
	}
	rounds := 3
	if v := os.Getenv("CRASH_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	dir := t.TempDir()
	acked := map[string]ackRecord{} // "stream/rev" -> ack, across rounds: every round must keep them all
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := time.Duration(300+rand.IntN(1200)) * time.Millisecond
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Kill() })
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var a ackRecord
			// A line cut by the kill does not parse and was never a complete acknowledgement.
			if _, err := fmt.Sscanf(sc.Text(), "ack %s %d %d", &a.stream, &a.rev, &a.pos); err == nil {
				acked[fmt.Sprintf("%s/%d", a.stream, a.rev)] = a
				n++
			}
		}
		_ = cmd.Wait()
		timer.Stop()
		if n == 0 {
			t.Fatalf("round %d: child acknowledged nothing in %v", round, killAfter)
		}
		total := verifyAfterCrash(t, dir, acked)
		t.Logf("round %d: killed after %v, %d acknowledged this round, %d events recovered, all %d acknowledged present", round, killAfter, n, total, len(acked))
	}
}

type ackRecord struct {
	stream   string
	rev, pos uint64
}

func verifyAfterCrash(t *testing.T, dir string, acked map[string]ackRecord) int {
	t.Helper()
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The whole global log, in order, with no gap; each stream's revisions in order too.
	found := map[string]uint64{} // "stream/rev" -> position
	nextRev := map[string]uint64{}
	var last events.Position
	errDone := fmt.Errorf("caught up")
	err = s.SubscribeAll(ctx, 0, events.Filter{}, func(b events.Batch) error {
		if b.CaughtUp {
			return errDone
		}
		for _, e := range b.Events {
			if e.Position != last+1 {
				return fmt.Errorf("gap: position %d follows %d", e.Position, last)
			}
			if e.Revision != nextRev[e.Stream] {
				return fmt.Errorf("%s: revision %d follows %d", e.Stream, e.Revision, nextRev[e.Stream])
			}
			last = e.Position
			nextRev[e.Stream]++
			found[fmt.Sprintf("%s/%d", e.Stream, e.Revision)] = uint64(e.Position)
		}
		return nil
	})
	if err != errDone {
		t.Fatalf("reading the log back: %v", err)
	}
	for k, a := range acked {
		pos, ok := found[k]
		if !ok {
			t.Fatalf("acknowledged event %s (position %d) lost", k, a.pos)
		}
		if pos != a.pos {
			t.Fatalf("acknowledged event %s was at position %d, now at %d", k, a.pos, pos)
		}
	}
	for stream := range nextRev {
		var chain events.Chain
		for e, err := range events.ReadFrom(ctx, s, stream, 0) {
			if err != nil {
				t.Fatal(err)
			}
			if _, err := chain.Next(&e); err != nil {
				t.Fatal(err)
			}
		}
	}
	return int(last)
}

// TestCrashChild is the child: it appends until killed, printing each acknowledgement.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestCrashKeepsAcknowledged")
	}
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	const writers = 32
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("crash-w%d", w)
			payload := strings.Repeat("x", 200)
			for {
				// Any: the stream survives earlier rounds with an unknown head.
				res, err := s.Append(context.Background(), stream, events.Any{}, events.Event{Type: "test.Crash", Data: []byte(payload)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %s %d %d\n", stream, res.Revision, res.Position)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
