package actors

import (
	"sync"
	"testing"
	"time"
)

// TestWarmDispatcher: every scheduled run happens, even while every worker is blocked and after
// the workers stopped.
func TestWarmDispatcher(t *testing.T) {
	d := newWarmDispatcher(2, 300)
	block := make(chan struct{})
	var blocked sync.WaitGroup
	blocked.Add(2)
	for range 2 { // occupy both workers (or goroutines of their own, if a worker was not ready yet)
		d.Schedule(func() { blocked.Done(); <-block })
	}
	blocked.Wait()
	ran := make(chan struct{})
	d.Schedule(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a run waited for blocked workers")
	}
	close(block)
	d.stop()
	after := make(chan struct{})
	d.Schedule(func() { close(after) })
	select {
	case <-after:
	case <-time.After(5 * time.Second):
		t.Fatal("a run after stop never happened")
	}
}
