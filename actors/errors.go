package actors

import "errors"

// Errors a requester can branch on with errors.Is. Store errors (for example
// events.ErrWrongExpectedRevision) reach the requester wrapped, unchanged in kind.
var (
	// ErrStopped: the system or kind is shut down, or the activation stopped before the command
	// was appended. Nothing of the command was written.
	ErrStopped = errors.New("actor stopped")
	// ErrCrashed: the actor panicked while handling this command, or while this command was
	// queued behind another one. Nothing of the command was written; the actor restarts and
	// reloads from its stream.
	ErrCrashed = errors.New("actor crashed")
)
