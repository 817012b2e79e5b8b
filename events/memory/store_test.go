package memory_test

import (
	"testing"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/memory"
	"github.com/polyproto-chat/server/events/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(*testing.T) func() (events.Store, error) {
			return func() (events.Store, error) { return memory.New(nil), nil }
		},
		Volatile:            true,
		ContiguousPositions: true,
		ProgressAtHead:      true,
	})
}
