package embedded_test

import (
	"testing"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/events/embedded"
	"github.com/polyproto-chat/server/events/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) func() (events.Store, error) {
			dir := t.TempDir()
			return func() (events.Store, error) { return embedded.Open(dir, embedded.Options{}) }
		},
		ContiguousPositions: true,
		ProgressAtHead:      true,
	})
}
