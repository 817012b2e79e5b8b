// Package storetest is the one behaviour suite every events.Store implementation passes.
// Each store's own test file calls Run with a Harness; nothing here is store-specific.
package storetest

import (
	"testing"

	"github.com/polyproto-chat/server/events"
)

// Harness tells the suite how to get stores of one implementation.
type Harness struct {
	// New prepares a fresh, empty backing location (a directory, a server) and returns a
	// function that opens a store on it. Opening again after Close must show everything
	// written before, unless Volatile.
	New func(t *testing.T) (open func() (events.Store, error))
	// Volatile stores keep nothing across Close (the memory store); the reopen tests skip.
	Volatile bool
	// ContiguousPositions: global positions are exactly 1, 2, 3, ... (embedded, memory).
	ContiguousPositions bool
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	_ = h
}
