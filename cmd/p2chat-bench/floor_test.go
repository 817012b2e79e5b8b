package main

import (
	"context"
	"testing"
	"time"
)

// TestFloor runs the floor small and checks its counts hang together: every accepted message
// fans out to each member of its channel (the windows of the two counts differ by what is in
// flight at their edges, hence the tolerance).
func TestFloor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := floor(ctx, floorConfig{Channels: 3, Members: 4, Inflight: 2, Frame: 200, Duration: time.Second, Warmup: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.errors != 0 || rep.accepted == 0 || rep.cpu <= 0 {
		t.Fatalf("report %+v", rep)
	}
	if perMsg := float64(rep.delivered) / float64(rep.accepted); perMsg < 3 || perMsg > 5 {
		t.Fatalf("%.2f deliveries per accepted message, want about 4 (%+v)", perMsg, rep)
	}
}
