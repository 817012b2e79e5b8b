// Package pebblelog routes the messages of Pebble (the embedded event store's and the read
// models' storage engine) to slog, so that Pebble never writes to stderr on its own.
package pebblelog

import (
	"context"
	"fmt"
	"log/slog"
)

// Logger implements Pebble's Logger: its chatter at debug level, its errors at error level.
type Logger struct{ Log *slog.Logger }

func (l Logger) Infof(format string, args ...any) {
	if l.Log.Enabled(context.Background(), slog.LevelDebug) {
		l.Log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l Logger) Errorf(format string, args ...any) { l.Log.Error(fmt.Sprintf(format, args...)) }

// Fatalf is Pebble's report of a broken invariant (corruption, a MANIFEST it cannot write), and
// Pebble's contract is that the call does not return: going on would run on an inconsistent
// state, so it panics, which still runs deferred cleanup.
func (l Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.Log.Error("pebble fatal", "error", msg)
	panic("pebble: " + msg)
}
