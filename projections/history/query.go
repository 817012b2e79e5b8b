package history

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/polyproto-chat/server/projections"
)

// Page sizes (docs/PROTOCOL.md: limit 1-100, default 50).
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// Query selects a page of a channel's history. At most one of Before, After and Around should be
// set (the gateway refuses the rest); if several are, Around wins, then Before, then After.
type Query struct {
	Before uint64 // the Limit newest messages with an id below Before
	After  uint64 // the Limit oldest messages with an id above After
	// Around: the message Around (if it exists), Limit/2 older ones and the rest newer; when one
	// side runs short the other side fills the page.
	Around uint64
	Limit  int // 1-100; 0 (or anything below 1) means 50, anything above 100 means 100
}

// Facts is what the history knows of one message, for the checks of an edit, deletion, pin or
// reaction (the gateway turns it into actors/channel.Target).
type Facts struct {
	Exists   bool   // false: never existed or deleted
	Author   string // FID
	Pinned   bool
	Reacted  bool // the fid asked about already reacted with the emoji asked about
	Emoji    bool // the emoji asked about is on the message, by anyone
	Distinct int  // distinct emoji on the message
}

// Reader answers the history queries from the committed read model. It is safe for concurrent
// use. Reads see whatever the runner has committed; a caller that needs its own writes waits
// for the runner's checkpoint first.
type Reader struct {
	r *projections.Reader
	// sizeHint is the average size of a message on the last page served, so that the next page's
	// buffer is allocated once at about the right size instead of growing several times.
	sizeHint atomic.Int64
}

// initialSizeHint is a message with short content: the signature, ids and FID alone take
// about 300 bytes of JSON.
const initialSizeHint = 512

// NewReader reads the history read model of db.
func NewReader(db *projections.DB) (*Reader, error) {
	r, err := db.Reader(Name)
	if err != nil {
		return nil, fmt.Errorf("history reader: %w", err)
	}
	h := &Reader{r: r}
	h.sizeHint.Store(initialSizeHint)
	return h, nil
}

// Page returns a page of channel ch's messages as a JSON array, newest first, ready to be
// written to the response as it is. A channel without messages, or a query past either end,
// gives "[]".
func (h *Reader) Page(ch uint64, q Query) (page []byte, err error) {
	limit := clampLimit(q.Limit)
	lo, hi, hiLen := channelBounds(ch)
	it, err := h.r.NewIter(lo[:], hi[:hiLen])
	if err != nil {
		return nil, fmt.Errorf("history page of channel %d: %w", ch, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			page, err = nil, fmt.Errorf("history page of channel %d: %w", ch, cerr)
		}
	}()

	// Each mode leaves the iterator on the newest message of the page and says how many to take
	// from there walking back: one iterator, each row visited at most three times.
	var kb [keyLen]byte
	var n int
	switch {
	case q.Around != 0:
		n = seekAround(it, ch, q.Around, limit)
	case q.Before != 0:
		it.SeekLT(msgKey(kb[:0], ch, q.Before))
		n = limit
	case q.After != 0:
		n = seekAfter(it, ch, q.After, limit)
	default:
		it.Last()
		n = limit
	}
	page, count, err := h.emit(it, n)
	if err != nil {
		return nil, fmt.Errorf("history page of channel %d: %w", ch, err)
	}
	if count > 0 {
		// An eighth more than the average: pages of similar messages vary by a few percent,
		// and a buffer that has to grow once costs twice the memory of one a little too large.
		avg := len(page)/count + 1
		h.sizeHint.Store(int64(avg + avg/8))
	}
	return page, nil
}

func clampLimit(l int) int {
	switch {
	case l < 1:
		return DefaultLimit
	case l > MaxLimit:
		return MaxLimit
	}
	return l
}

// channelBounds are the bounds of channel ch's message rows, [lo, hi[:hiLen]) = [m ch, m ch+1),
// in arrays so that a page allocates nothing for them.
func channelBounds(ch uint64) (lo, hi [9]byte, hiLen int) {
	lo[0], hi[0] = tagMessage, tagMessage
	binary.BigEndian.PutUint64(lo[1:], ch)
	if ch == math.MaxUint64 {
		hi[0]++
		return lo, hi, 1
	}
	binary.BigEndian.PutUint64(hi[1:], ch+1)
	return lo, hi, len(hi)
}

// idOf is the message id of a row key (m|p, channel, id).
func idOf(k []byte) uint64 {
	if len(k) != keyLen {
		return 0 // not one of ours; no row has id 0, so it matches nothing
	}
	return binary.BigEndian.Uint64(k[9:])
}

// seekAfter positions it on the newest of the limit oldest messages above x and returns how many
// there are.
func seekAfter(it *projections.Iterator, ch, x uint64, limit int) int {
	var kb [keyLen]byte
	if x == math.MaxUint64 || !it.SeekGE(msgKey(kb[:0], ch, x+1)) {
		return 0
	}
	return 1 + forward(it, limit-1)
}

// seekAround positions it on the newest message of the page around x and returns the page size.
func seekAround(it *projections.Iterator, ch, x uint64, limit int) int {
	var kb [keyLen]byte
	key := msgKey(kb[:0], ch, x)
	older := 0
	for ok := it.SeekLT(key); ok && older < limit; ok = it.Prev() {
		older++
	}
	hit := 0
	ok := it.SeekGE(key)
	if ok && idOf(it.Key()) == x {
		hit = 1
	}
	// Older messages get Limit/2 places, or fewer if there are not as many; newer ones the rest.
	wantNewer := limit - hit - min(limit/2, older)
	newer := 0
	switch {
	case hit == 1:
		newer = forward(it, wantNewer)
	case ok: // on the oldest newer message; wantNewer >= 1 here since limit/2 < limit
		newer = 1 + forward(it, wantNewer-1)
	default: // nothing at or after x: the page starts with the newest older message
		it.SeekLT(key)
	}
	// Older messages fill what the newer side left.
	return newer + hit + min(limit-hit-newer, older)
}

// forward moves it up to k rows on from a valid position and returns how many it moved. The
// iterator is left on the last row it reached, never past the end.
func forward(it *projections.Iterator, k int) int {
	n := 0
	for n < k {
		if !it.Next() {
			it.Last() // back onto the row we had reached, which is the channel's last
			break
		}
		n++
	}
	return n
}

// emit writes up to n rows, from the iterator's position backwards, as a JSON array.
func (h *Reader) emit(it *projections.Iterator, n int) (page []byte, count int, err error) {
	buf := make([]byte, 0, 2+int64(n)*h.sizeHint.Load())
	buf = append(buf, '[')
	for ; count < n && it.Valid(); it.Prev() {
		v, err := it.Value()
		if err != nil {
			return nil, 0, err
		}
		if count > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, v...)
		count++
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	return append(buf, ']'), count, nil
}

// Raw returns message id of channel ch as stored: the JSON the API serves.
func (h *Reader) Raw(ch, id uint64) ([]byte, bool, error) {
	var kb [keyLen]byte
	v, err := h.r.Get(msgKey(kb[:0], ch, id))
	if errors.Is(err, projections.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("history message %d of channel %d: %w", id, ch, err)
	}
	return v, true, nil
}

// Message returns message id of channel ch, decoded.
func (h *Reader) Message(ch, id uint64) (Message, bool, error) {
	v, ok, err := h.Raw(ch, id)
	if !ok || err != nil {
		return Message{}, false, err
	}
	var m Message
	if err := json.Unmarshal(v, &m); err != nil {
		return Message{}, false, fmt.Errorf("history message %d of channel %d: decode: %w", id, ch, err)
	}
	return m, true, nil
}

// Facts describes message id of channel ch for a command by fid about emoji (either may be
// empty when the command has none).
func (h *Reader) Facts(ch, id uint64, fid, emoji string) (Facts, error) {
	m, ok, err := h.Message(ch, id)
	if !ok || err != nil {
		return Facts{}, err
	}
	f := Facts{Exists: true, Author: m.Author, Pinned: m.Pinned, Distinct: len(m.Reactions)}
	if i := reactionIndex(m.Reactions, emoji); i >= 0 {
		f.Emoji = true
		f.Reacted = slices.Contains(m.Reactions[i].FIDs, fid)
	}
	return f, nil
}

// Exist reports, for each of ids, whether channel ch has that message, all from one snapshot.
func (h *Reader) Exist(ch uint64, ids []uint64) (found []bool, err error) {
	lo, hi, hiLen := channelBounds(ch)
	it, err := h.r.NewIter(lo[:], hi[:hiLen])
	if err != nil {
		return nil, fmt.Errorf("history exist in channel %d: %w", ch, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			found, err = nil, fmt.Errorf("history exist in channel %d: %w", ch, cerr)
		}
	}()
	found = make([]bool, len(ids))
	var kb [keyLen]byte
	for i, id := range ids {
		key := msgKey(kb[:0], ch, id)
		found[i] = it.SeekGE(key) && bytes.Equal(it.Key(), key)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("history exist in channel %d: %w", ch, err)
	}
	return found, nil
}

// Pins returns channel ch's pinned messages as a JSON array, newest first.
func (h *Reader) Pins(ch uint64) (page []byte, err error) {
	// One iterator over both the pins index and the messages, so that both come from the same
	// snapshot: a message unpinned or deleted meanwhile is either wholly in or wholly out.
	var lo, pins [9]byte
	msgKey(lo[:0], ch, 0)
	pins[0] = tagPin
	binary.BigEndian.PutUint64(pins[1:], ch)
	it, err := h.r.NewIter(lo[:], projections.PrefixEnd(pins[:]))
	if err != nil {
		return nil, fmt.Errorf("history pins of channel %d: %w", ch, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			page, err = nil, fmt.Errorf("history pins of channel %d: %w", ch, cerr)
		}
	}()

	buf := make([]byte, 0, 2+8*h.sizeHint.Load())
	buf = append(buf, '[')
	var kb [keyLen]byte
	count := 0
	for ok := it.Last(); ok && bytes.HasPrefix(it.Key(), pins[:]); {
		id := idOf(it.Key())
		key := msgKey(kb[:0], ch, id)
		if it.SeekGE(key) && bytes.Equal(it.Key(), key) {
			v, err := it.Value()
			if err != nil {
				return nil, fmt.Errorf("history pins of channel %d: %w", ch, err)
			}
			if count > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, v...)
			count++
		}
		ok = it.SeekLT(pinKey(kb[:0], ch, id))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("history pins of channel %d: %w", ch, err)
	}
	return append(buf, ']'), nil
}
