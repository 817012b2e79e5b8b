package events

import (
	"context"
	"errors"
	"iter"
)

// ReadFrom yields every event of stream from revision from onwards, paging through
// ReadStream. A missing stream yields nothing.
func ReadFrom(ctx context.Context, s Store, stream string, from uint64) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		for {
			page, err := s.ReadStream(ctx, stream, Forwards, from, MaxReadLimit)
			if errors.Is(err, ErrStreamNotFound) {
				return
			}
			if err != nil {
				yield(RecordedEvent{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < MaxReadLimit {
				return
			}
			from = page[len(page)-1].Revision + 1
		}
	}
}
