package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/polyproto-chat/server/events"
)

const (
	prefixGlobal = 'g'
	prefixStream = 's'
	prefixHead   = 'h'
)

func globalKey(pos events.Position) []byte {
	k := make([]byte, 9)
	k[0] = prefixGlobal
	binary.BigEndian.PutUint64(k[1:], uint64(pos))
	return k
}

func streamKey(stream string, rev uint64) []byte {
	k := make([]byte, 0, len(stream)+10)
	k = append(k, prefixStream)
	k = append(k, stream...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, rev)
}

// streamBounds covers every revision of stream (names never contain 0x00 or 0x01).
func streamBounds(stream string) (lower, upper []byte) {
	lower = append(append([]byte{prefixStream}, stream...), 0)
	upper = append(append([]byte{prefixStream}, stream...), 1)
	return lower, upper
}

func headKey(stream string) []byte { return append([]byte{prefixHead}, stream...) }

type head struct {
	rev  uint64
	hash events.Hash
}

func encodeHead(h head) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 40), h.rev), h.hash[:]...)
}

func decodeHead(b []byte) (head, error) {
	if len(b) != 8+len(events.Hash{}) {
		return head{}, fmt.Errorf("corrupt head record of %d bytes", len(b))
	}
	h := head{rev: binary.BigEndian.Uint64(b)}
	copy(h.hash[:], b[8:])
	return h, nil
}

// encodeRecord lays out a stored event; stream and type come first so that a filtered
// subscription can skip an event without decoding the rest.
func encodeRecord(e *events.RecordedEvent) []byte {
	b := make([]byte, 0, 4*binary.MaxVarintLen64+len(e.Stream)+len(e.Type)+len(e.Metadata)+len(e.Data))
	b = binary.AppendUvarint(b, uint64(len(e.Stream)))
	b = append(b, e.Stream...)
	b = binary.AppendUvarint(b, uint64(len(e.Type)))
	b = append(b, e.Type...)
	b = binary.AppendUvarint(b, e.Revision)
	b = binary.AppendUvarint(b, uint64(len(e.Metadata)))
	b = append(b, e.Metadata...)
	return append(b, e.Data...)
}

var errCorrupt = errors.New("corrupt event record")

// recordHeader returns the stream and type of a record and the rest of it.
func recordHeader(b []byte) (stream, typ string, rest []byte, err error) {
	s, b, ok := lengthPrefixed(b)
	if !ok {
		return "", "", nil, errCorrupt
	}
	t, b, ok := lengthPrefixed(b)
	if !ok {
		return "", "", nil, errCorrupt
	}
	return string(s), string(t), b, nil
}

// decodeRecord copies everything out of b, which belongs to Pebble.
func decodeRecord(pos events.Position, b []byte) (events.RecordedEvent, error) {
	stream, typ, rest, err := recordHeader(b)
	if err != nil {
		return events.RecordedEvent{}, fmt.Errorf("position %d: %w", pos, err)
	}
	return decodeRest(pos, stream, typ, rest)
}

func decodeRest(pos events.Position, stream, typ string, b []byte) (events.RecordedEvent, error) {
	rev, n := binary.Uvarint(b)
	if n <= 0 {
		return events.RecordedEvent{}, fmt.Errorf("position %d: %w", pos, errCorrupt)
	}
	meta, data, ok := lengthPrefixed(b[n:])
	if !ok {
		return events.RecordedEvent{}, fmt.Errorf("position %d: %w", pos, errCorrupt)
	}
	// One allocation for both byte slices; the caller may keep them.
	buf := make([]byte, len(meta)+len(data))
	copy(buf, meta)
	copy(buf[len(meta):], data)
	return events.RecordedEvent{
		Stream: stream, Revision: rev, Position: pos, Type: typ,
		Metadata: buf[:len(meta):len(meta)], Data: buf[len(meta):],
	}, nil
}

func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	return b[n : n+int(l)], b[n+int(l):], true
}
