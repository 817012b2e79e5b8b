package history

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/projections"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Name of the projection: its keys, checkpoint, metrics and `projections rebuild history`.
const Name = "history"

// streamPrefix is actors/channel.StreamPrefix, repeated so that a read model does not depend on
// the actor package.
const streamPrefix = "channel-"

// Key layout, relative to the projection's prefix (the Writer and Reader add it):
//
//	m <channel u64be> <message u64be>  the message's JSON, exactly as served
//	p <channel u64be> <message u64be>  empty: the message is pinned
//
// Big-endian ids sort numerically, and snowflakes sort by creation time, so one channel's
// messages form one contiguous range in id order: a page is a short scan of it.
const (
	tagMessage = 'm'
	tagPin     = 'p'
	keyLen     = 17
)

// layoutVersion changes whenever the key layout or the stored JSON changes; the runner then
// rebuilds the read model from the event store.
const layoutVersion = 1

// Projection maintains the message history of every channel. It has no state: everything is
// in the read model, read and written through the Writer.
type Projection struct{}

var (
	_ projections.Projection = Projection{}
	_ projections.Versioned  = Projection{}
)

func (Projection) Name() string    { return Name }
func (Projection) Version() uint64 { return layoutVersion }

func (Projection) Filter() events.Filter {
	return events.Filter{StreamPrefixes: []string{streamPrefix}}
}

// errInvalidEvent marks an event this projection cannot apply. The runner retries it for ever,
// which is what we want: it is a bug in whoever wrote it, not something to skip silently.
var errInvalidEvent = errors.New("invalid channel event")

// Event types this projection applies. A channel stream may gain other event types; they are
// skipped without decoding, so that an older server does not stall on a newer event.
var handled = map[string]bool{}

func init() {
	for _, m := range []proto.Message{
		(*eventsv1.MessageCreated)(nil), (*eventsv1.MessageEdited)(nil),
		(*eventsv1.MessageDeleted)(nil), (*eventsv1.MessagesBulkDeleted)(nil),
		(*eventsv1.MessagePinned)(nil), (*eventsv1.MessageUnpinned)(nil),
		(*eventsv1.ReactionAdded)(nil), (*eventsv1.ReactionRemoved)(nil),
	} {
		handled[string(m.ProtoReflect().Descriptor().FullName())] = true
	}
}

// Apply folds one channel event into the read model. Every change reads the current row through
// w and writes the whole row back, so applying an event again from the state before it (after
// a discarded batch) gives the same result.
func (Projection) Apply(w *projections.Writer, e events.RecordedEvent) error {
	if !handled[e.Type] {
		return nil
	}
	ch, err := channelOf(e.Stream)
	if err != nil {
		return err
	}
	msg, err := events.Decode(&e)
	if err != nil {
		return err
	}
	switch m := msg.(type) {
	case *eventsv1.MessageCreated:
		return create(w, ch, m)
	case *eventsv1.MessageEdited:
		return edit(w, ch, m, &e)
	case *eventsv1.MessageDeleted:
		return remove(w, ch, m.GetMessageId())
	case *eventsv1.MessagesBulkDeleted:
		for _, id := range m.GetMessageIds() {
			if err := remove(w, ch, id); err != nil {
				return err
			}
		}
		return nil
	case *eventsv1.MessagePinned:
		return pin(w, ch, m.GetMessageId(), true)
	case *eventsv1.MessageUnpinned:
		return pin(w, ch, m.GetMessageId(), false)
	case *eventsv1.ReactionAdded:
		return modify(w, ch, m.GetMessageId(), func(msg *Message) bool {
			return addReaction(msg, m.GetEmoji(), m.GetFid())
		})
	case *eventsv1.ReactionRemoved:
		return modify(w, ch, m.GetMessageId(), func(msg *Message) bool {
			return removeReaction(msg, m.GetEmoji(), m.GetFid())
		})
	}
	return nil
}

// channelOf parses the channel id out of "channel-<decimal id>".
func channelOf(stream string) (uint64, error) {
	s, ok := strings.CutPrefix(stream, streamPrefix)
	if !ok {
		return 0, fmt.Errorf("%w: stream %q is not a channel stream", errInvalidEvent, stream)
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || !validID(id) {
		return 0, fmt.Errorf("%w: stream %q: channel id must be a snowflake", errInvalidEvent, stream)
	}
	return id, nil
}

// validID: a snowflake as snowflake.ID's JSON accepts it (non-zero, top bit clear). A row
// holding any other id could be written but never read back (Message, Facts, the next edit).
func validID(id uint64) bool { return id != 0 && id < 1<<63 }

func msgKey(dst []byte, ch, id uint64) []byte {
	return projections.AppendUint64(projections.AppendUint64(append(dst, tagMessage), ch), id)
}

func pinKey(dst []byte, ch, id uint64) []byte {
	return projections.AppendUint64(projections.AppendUint64(append(dst, tagPin), ch), id)
}

// create stores a new message. The row is written whole from the event, so a repeat of the
// event writes the same bytes again.
func create(w *projections.Writer, ch uint64, e *eventsv1.MessageCreated) error {
	if !validID(e.GetMessageId()) || !validID(e.GetGuildId()) {
		return fmt.Errorf("%w: MessageCreated with message id %d, guild id %d", errInvalidEvent, e.GetMessageId(), e.GetGuildId())
	}
	v, err := json.Marshal(FromCreated(ch, e))
	if err != nil {
		return fmt.Errorf("encode message %d: %w", e.GetMessageId(), err)
	}
	var kb [keyLen]byte
	return w.Set(msgKey(kb[:0], ch, e.GetMessageId()), v)
}

// edit installs a new signed version. An edit of a message deleted since is dropped: the
// deletion wins, as it did for the actor.
func edit(w *projections.Writer, ch uint64, e *eventsv1.MessageEdited, rec *events.RecordedEvent) error {
	meta, err := rec.Meta()
	if err != nil {
		return err
	}
	return modify(w, ch, e.GetMessageId(), func(m *Message) bool {
		m.Content = e.GetContent()
		m.Attachments = nonNil(e.GetAttachments())
		m.Timestamp = e.GetTimestampMs()
		m.CertSerial = strconv.FormatUint(e.GetCertSerial(), 10)
		m.SessionID = e.GetSessionId()
		m.Signature = base64.RawURLEncoding.EncodeToString(e.GetSignature())
		m.Version++
		// The store's clock, not the author's: when the server accepted the edit.
		if at := meta.GetRecordedAt(); at != nil {
			t := at.AsTime().UTC()
			m.EditedAt = &t
		}
		return true
	})
}

func remove(w *projections.Writer, ch, id uint64) error {
	var kb [keyLen]byte
	if err := w.Delete(msgKey(kb[:0], ch, id)); err != nil {
		return err
	}
	// A deleted message leaves the pins with it.
	return w.Delete(pinKey(kb[:0], ch, id))
}

// pin sets the flag in the message and the pins index together; a message that is gone stays
// out of the index.
func pin(w *projections.Writer, ch, id uint64, pinned bool) error {
	found := false
	err := modify(w, ch, id, func(m *Message) bool {
		found = true
		changed := m.Pinned != pinned
		m.Pinned = pinned
		return changed
	})
	if err != nil || !found {
		return err
	}
	var kb [keyLen]byte
	if pinned {
		return w.Set(pinKey(kb[:0], ch, id), nil)
	}
	return w.Delete(pinKey(kb[:0], ch, id))
}

// modify reads message id of channel ch, lets change edit it and writes it back if change says
// it changed. A message that does not exist (never did, or was deleted) is left alone.
func modify(w *projections.Writer, ch, id uint64, change func(*Message) bool) error {
	var kb [keyLen]byte
	key := msgKey(kb[:0], ch, id)
	v, err := w.Get(key)
	if errors.Is(err, projections.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read message %d of channel %d: %w", id, ch, err)
	}
	var m Message
	if err := json.Unmarshal(v, &m); err != nil {
		return fmt.Errorf("decode stored message %d of channel %d: %w", id, ch, err)
	}
	if !change(&m) {
		return nil
	}
	if v, err = json.Marshal(m); err != nil {
		return fmt.Errorf("encode message %d of channel %d: %w", id, ch, err)
	}
	return w.Set(key, v)
}

// addReaction appends fid to emoji's reaction, creating it after the existing ones. It reports
// whether anything changed (a second reaction by the same fid does not).
func addReaction(m *Message, emoji, fid string) bool {
	i := reactionIndex(m.Reactions, emoji)
	if i < 0 {
		m.Reactions = append(m.Reactions, Reaction{Emoji: emoji, Count: 1, FIDs: []string{fid}})
		return true
	}
	r := &m.Reactions[i]
	if slices.Contains(r.FIDs, fid) {
		return false
	}
	r.FIDs = append(r.FIDs, fid)
	r.Count = len(r.FIDs)
	return true
}

// removeReaction takes fid off emoji's reaction and drops the reaction when no one is left.
func removeReaction(m *Message, emoji, fid string) bool {
	i := reactionIndex(m.Reactions, emoji)
	if i < 0 {
		return false
	}
	r := &m.Reactions[i]
	j := slices.Index(r.FIDs, fid)
	if j < 0 {
		return false
	}
	r.FIDs = slices.Delete(r.FIDs, j, j+1)
	r.Count = len(r.FIDs)
	if r.Count == 0 {
		m.Reactions = slices.Delete(m.Reactions, i, i+1)
	}
	return true
}

func reactionIndex(rs []Reaction, emoji string) int {
	return slices.IndexFunc(rs, func(r Reaction) bool { return r.Emoji == emoji })
}
