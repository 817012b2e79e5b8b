package events

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Stores wrap them with detail; test with errors.Is.
var (
	ErrWrongExpectedRevision = errors.New("wrong expected revision")
	ErrStreamNotFound        = errors.New("stream not found")
	ErrInvalidStream         = errors.New("invalid stream name")
	ErrInvalidEvent          = errors.New("invalid event")
	ErrInvalidFilter         = errors.New("invalid filter")
	ErrClosed                = errors.New("event store closed")
)

// WrongRevisionError says what the stream's revision actually was, so that a writer can
// reload and retry. It matches ErrWrongExpectedRevision.
type WrongRevisionError struct {
	Stream   string
	Expected ExpectedRevision
	Actual   uint64 // revision of the stream's last event; meaningless if !Exists
	Exists   bool
}

func (e *WrongRevisionError) Error() string {
	actual := "no stream"
	if e.Exists {
		actual = fmt.Sprintf("revision %d", e.Actual)
	}
	return fmt.Sprintf("append to %s: expected %s, stream is at %s: %v", e.Stream, e.Expected, actual, ErrWrongExpectedRevision)
}

func (e *WrongRevisionError) Unwrap() error { return ErrWrongExpectedRevision }
