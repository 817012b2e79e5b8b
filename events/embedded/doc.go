// Package embedded is the default events.Store: a Pebble v2 database in the server's data
// directory, with no service to install.
//
// One sequencer goroutine owns every write. It takes all appends waiting at that moment,
// checks each expected revision against the stream heads (including heads moved by earlier
// appends of the same round), assigns contiguous global positions, seals the envelopes
// (prev_hash chain) and commits the round as ONE Pebble batch with a WAL fsync. Only then are
// the writers answered: concurrent appends share one sync (group commit), an acknowledged
// append is on disk, and since a round is one atomic batch a crash leaves a prefix of rounds,
// so global positions have no gaps.
//
// Key layout (one-byte prefixes):
//
//	g <pos u64be>                      -> record (stream, revision, type, metadata, data)
//	s <stream> 0x00 <revision u64be>   -> pos u64be
//	h <stream>                         -> last revision u64be, hash of the last event
//
// Readers never see past the last synced position. Subscriptions read the g range with the
// same code during catch-up and live, which is why there is no seam between the two.
package embedded
