package gateway

import (
	"net"
	"testing"
)

// TestCorkConn: corked writes leave together, in order, at uncork; uncorked ones at once.
func TestCorkConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := &corkConn{Conn: a}
	got := make(chan string, 2)
	go func() {
		buf := make([]byte, 64)
		for range 2 {
			n, err := b.Read(buf)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(buf[:n])
		}
	}()
	c.cork()
	for _, s := range []string{"one ", "two ", "three"} {
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("corked write: %d, %v", n, err)
		}
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "one two three" {
		t.Fatalf("uncork wrote %q in its first read, want the three writes as one", s)
	}
	if _, err := c.Write([]byte("direct")); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "direct" {
		t.Fatalf("uncorked write arrived as %q", s)
	}
	if err := c.uncork(); err != nil { // nothing collected: no write at all
		t.Fatal(err)
	}
}
