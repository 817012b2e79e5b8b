// Package servertest runs the real polyproto-chat binary for the end-to-end tests of the
// packages that talk to it from outside (the SDK, the CLI, the load tool): built from
// cmd/polyproto-chat, started on 127.0.0.1:0, stopped with SIGTERM at the end of the test (a
// clean exit is part of what is tested), its log shown when the test fails.
package servertest

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the server into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "polyproto-chat")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/polyproto-chat/server/cmd/polyproto-chat").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the server: %w\n%s", err, out)
	}
	return bin, nil
}

var servingLine = regexp.MustCompile(`msg="polyproto-chat serving" addr=(\S+)`)

// Start runs bin with -listen 127.0.0.1:0 and args until the test ends and returns its base
// URL (http://host:port).
func Start(t testing.TB, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	addr := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	logText := func() string {
		mu.Lock()
		defer mu.Unlock()
		return log.String()
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { <-drained; done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server %v: %v", args, err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("server %v did not stop within 15s of SIGTERM", args)
		}
		if t.Failed() {
			t.Logf("server %v log:\n%s", args, logText())
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case <-drained:
		t.Fatalf("server %v exited before serving:\n%s", args, logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("server %v did not log that it serves within 30s", args)
	}
	return ""
}
