package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/polyproto-chat/server/events"
)

// errChainBroken: at least one stream's hash chain does not verify (exit 1).
var errChainBroken = errors.New("hash chain broken")

// auditVerify reads each stream from its first event and checks the hash chain (docs/PROTOCOL.md
// section 1): every event's prev_hash must be the hash of the event before it. It prints one line
// per stream and fails if any chain is broken. It reads only, so it may run beside the server
// with the KurrentDB store; the embedded store admits one process, so stop the server first.
func auditVerify(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer, streams []string) error {
	store, _, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	broken := 0
	for _, stream := range streams {
		if err := events.ValidateStream(stream); err != nil {
			return err
		}
		var (
			chain events.Chain
			n     int
			last  events.Hash
			bad   error
		)
		for e, err := range events.ReadFrom(ctx, store, stream, 0) {
			if err != nil {
				return fmt.Errorf("read %s: %w", stream, err)
			}
			if last, bad = chain.Next(&e); bad != nil {
				break
			}
			n++
		}
		switch {
		case bad != nil:
			broken++
			fmt.Fprintf(out, "BROKEN %s: %v\n", stream, bad)
		case n == 0:
			broken++
			fmt.Fprintf(out, "MISSING %s: no events\n", stream)
		default:
			fmt.Fprintf(out, "ok %s: %d events, head %x\n", stream, n, last)
		}
	}
	if broken > 0 {
		return fmt.Errorf("%d of %d streams: %w", broken, len(streams), errChainBroken)
	}
	return nil
}
