package channel

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/permissions"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Decide checks cmd against s: the events to append, the reply once they are durable, or an
// error answered at once. It does not change s. Commands are values (Send, not *Send).
func Decide(s *State, cmd any) ([]proto.Message, any, error) {
	// A member who cannot see the channel learns nothing from it, not even that a message
	// exists or that it lacks some other permission.
	if b, ok := cmd.(interface{ sender() By }); ok && !b.sender().Perms.Has(permissions.ViewChannel) {
		return nil, nil, fmt.Errorf("channel %d: %w", s.ID, ErrNotFound)
	}
	switch c := cmd.(type) {
	case Send:
		return decideSend(s, c)
	case Edit:
		return decideEdit(s, c)
	case Delete:
		return decideDelete(s, c)
	case BulkDelete:
		return decideBulkDelete(s, c)
	case Pin:
		return decidePin(s, c)
	case Unpin:
		return decideUnpin(s, c)
	case React:
		return decideReact(s, c)
	case Unreact:
		return decideUnreact(s, c)
	}
	return nil, nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func (b By) sender() By { return b }

func decideSend(s *State, c Send) ([]proto.Message, any, error) {
	if err := need(c.By, permissions.SendMessages); err != nil {
		return nil, nil, err
	}
	if c.FID == "" {
		return nil, nil, fmt.Errorf("%w: send without an author", ErrInvalid)
	}
	if err := checkNonce(c.Nonce); err != nil {
		return nil, nil, err
	}
	// Before the other checks: a retry must get its stored message even when, say, its signed
	// timestamp has since left the clock-skew window.
	if id, ok := s.recent.lookup(c.FID, c.Nonce); ok {
		return nil, Sent{MessageID: id, Duplicate: true}, nil
	}
	switch {
	case c.GuildID == 0:
		return nil, nil, fmt.Errorf("%w: guild id: zero", ErrInvalid)
	case c.ProposedID == 0:
		return nil, nil, fmt.Errorf("%w: proposed id: zero", ErrInvalid)
	case s.LastID == math.MaxUint64:
		return nil, nil, fmt.Errorf("channel %d: %w: message ids exhausted", s.ID, ErrLimit)
	}
	if err := checkSigned(c.Signed, c.At); err != nil {
		return nil, nil, err
	}
	// Ids follow the stream order, so "after message X" in the read model is "later in the log".
	id := max(c.ProposedID, s.LastID+1)
	return one(&eventsv1.MessageCreated{
		MessageId: id, GuildId: c.GuildID, AuthorFid: c.FID, Content: c.Content,
		Attachments: slices.Clone(c.Attachments), Nonce: c.Nonce, TimestampMs: c.TimestampMS,
		CertSerial: c.CertSerial, Signature: slices.Clone(c.Signature), SessionId: c.SessionID,
	}), Sent{MessageID: id}, nil
}

func decideEdit(s *State, c Edit) ([]proto.Message, any, error) {
	if err := exists(s, c.MessageID, c.Target); err != nil {
		return nil, nil, err
	}
	if c.Target.Author != c.FID {
		return nil, nil, fmt.Errorf("message %d: only its author may edit it: %w", c.MessageID, ErrForbidden)
	}
	if err := need(c.By, permissions.SendMessages); err != nil {
		return nil, nil, err
	}
	if err := checkSigned(c.Signed, c.At); err != nil {
		return nil, nil, err
	}
	return one(&eventsv1.MessageEdited{
		MessageId: c.MessageID, Content: c.Content, Attachments: slices.Clone(c.Attachments),
		TimestampMs: c.TimestampMS, CertSerial: c.CertSerial, Signature: slices.Clone(c.Signature), SessionId: c.SessionID,
	}), nil, nil
}

func decideDelete(s *State, c Delete) ([]proto.Message, any, error) {
	if err := exists(s, c.MessageID, c.Target); err != nil {
		return nil, nil, err
	}
	if c.Target.Author != c.FID {
		if err := need(c.By, permissions.ManageMessages); err != nil {
			return nil, nil, err
		}
	}
	return one(&eventsv1.MessageDeleted{MessageId: c.MessageID}), nil, nil
}

func decideBulkDelete(s *State, c BulkDelete) ([]proto.Message, any, error) {
	if err := need(c.By, permissions.ManageMessages); err != nil {
		return nil, nil, err
	}
	switch n := len(c.MessageIDs); {
	case n < 2 || n > MaxBulkDelete:
		return nil, nil, fmt.Errorf("%w: message ids: %d, want 2-%d", ErrInvalid, n, MaxBulkDelete)
	case len(c.Existing) != n:
		return nil, nil, fmt.Errorf("%w: existing: %d flags for %d message ids", ErrInvalid, len(c.Existing), n)
	}
	seen := make(map[uint64]bool, len(c.MessageIDs))
	var ids []uint64
	for i, id := range c.MessageIDs {
		if id == 0 || seen[id] {
			return nil, nil, fmt.Errorf("%w: message ids: %d is zero or listed twice", ErrInvalid, id)
		}
		seen[id] = true
		if c.Existing[i] && id <= s.LastID {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("channel %d: none of the messages exists: %w", s.ID, ErrNotFound)
	}
	return one(&eventsv1.MessagesBulkDeleted{MessageIds: ids}), nil, nil
}

func decidePin(s *State, c Pin) ([]proto.Message, any, error) {
	if err := need(c.By, permissions.ManageMessages); err != nil {
		return nil, nil, err
	}
	if err := exists(s, c.MessageID, c.Target); err != nil {
		return nil, nil, err
	}
	if s.pinned(c.MessageID) {
		return nil, nil, nil
	}
	if len(s.Pinned) >= MaxPins {
		return nil, nil, fmt.Errorf("channel %d: %d pins: %w", s.ID, MaxPins, ErrLimit)
	}
	return one(&eventsv1.MessagePinned{MessageId: c.MessageID}), nil, nil
}

// decideUnpin trusts the state, not Target: pins are the one message fact the actor keeps.
func decideUnpin(s *State, c Unpin) ([]proto.Message, any, error) {
	if err := need(c.By, permissions.ManageMessages); err != nil {
		return nil, nil, err
	}
	if !s.pinned(c.MessageID) {
		return nil, nil, fmt.Errorf("message %d is not pinned: %w", c.MessageID, ErrNotFound)
	}
	return one(&eventsv1.MessageUnpinned{MessageId: c.MessageID}), nil, nil
}

func decideReact(s *State, c React) ([]proto.Message, any, error) {
	if err := checkEmoji(c.Emoji); err != nil {
		return nil, nil, err
	}
	if err := exists(s, c.MessageID, c.Target); err != nil {
		return nil, nil, err
	}
	if err := need(c.By, permissions.ReadMessageHistory); err != nil {
		return nil, nil, err
	}
	// Joining an emoji already there is like reading; a new kind is adding content.
	if !c.Target.Emoji {
		if err := need(c.By, permissions.AddReactions); err != nil {
			return nil, nil, err
		}
		if c.Target.Distinct >= MaxReactionKinds {
			return nil, nil, fmt.Errorf("message %d: %d distinct reactions: %w", c.MessageID, MaxReactionKinds, ErrLimit)
		}
	}
	if c.Target.Reacted {
		return nil, nil, nil
	}
	return one(&eventsv1.ReactionAdded{MessageId: c.MessageID, Fid: c.FID, Emoji: c.Emoji}), nil, nil
}

func decideUnreact(s *State, c Unreact) ([]proto.Message, any, error) {
	if err := checkEmoji(c.Emoji); err != nil {
		return nil, nil, err
	}
	who := c.FID
	if who == "" {
		who = c.By.FID
	}
	if who != c.By.FID {
		if err := need(c.By, permissions.ManageMessages); err != nil {
			return nil, nil, err
		}
	}
	if err := exists(s, c.MessageID, c.Target); err != nil {
		return nil, nil, err
	}
	if !c.Target.Reacted {
		return nil, nil, nil
	}
	return one(&eventsv1.ReactionRemoved{MessageId: c.MessageID, Fid: who, Emoji: c.Emoji}), nil, nil
}

func one(ev proto.Message) []proto.Message { return []proto.Message{ev} }

func need(b By, p permissions.Set) error {
	if !b.Perms.Has(p) {
		return fmt.Errorf("%s needs %s: %w", b.FID, p, ErrForbidden)
	}
	return nil
}

// exists checks Target against what the actor knows itself: no message has id 0 or an id
// above the last one, whatever a lagging or confused read model says.
func exists(s *State, id uint64, t Target) error {
	if !t.Exists || id == 0 || id > s.LastID {
		return fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	return nil
}

// checkSigned validates the signed part of a Send or Edit. The signature itself was verified
// by the gateway against the author's ID-Cert; here only its shape is checked.
func checkSigned(sg Signed, at time.Time) error {
	if err := checkContent(sg.Content, len(sg.Attachments) > 0); err != nil {
		return err
	}
	if n := len(sg.Attachments); n > MaxAttachments {
		return fmt.Errorf("%w: attachments: %d, limit %d", ErrInvalid, n, MaxAttachments)
	}
	for i, a := range sg.Attachments {
		if err := checkAttachment(a); err != nil {
			return fmt.Errorf("%w: attachment %d: %w", ErrInvalid, i, err)
		}
	}
	if !withinSkew(sg.TimestampMS, at) {
		return fmt.Errorf("%w: timestamp: %d ms is more than %s away from the server's clock", ErrInvalid, sg.TimestampMS, MaxClockSkew)
	}
	if len(sg.Signature) != MaxSignatureBytes {
		return fmt.Errorf("%w: signature: %d bytes, want %d", ErrInvalid, len(sg.Signature), MaxSignatureBytes)
	}
	if sg.CertSerial == 0 {
		return fmt.Errorf("%w: cert serial: zero", ErrInvalid)
	}
	return nil
}

func checkContent(content string, attachments bool) error {
	switch {
	case !utf8.ValidString(content):
		return fmt.Errorf("%w: content: not UTF-8", ErrInvalid)
	case strings.IndexByte(content, 0) >= 0:
		return fmt.Errorf("%w: content: contains NUL", ErrInvalid)
	case utf8.RuneCountInString(content) > MaxContentRunes:
		return fmt.Errorf("%w: content: more than %d characters", ErrInvalid, MaxContentRunes)
	case !attachments && strings.TrimSpace(content) == "":
		return fmt.Errorf("%w: content: empty, and no attachments", ErrInvalid)
	}
	return nil
}

// checkAttachment accepts an absolute http or https URL with a host and no user info (which
// would let "https://bank.test@evil.test/" pass for a link to bank.test).
func checkAttachment(a string) error {
	if len(a) > MaxAttachmentLen || !utf8.ValidString(a) {
		return fmt.Errorf("longer than %d bytes or not UTF-8", MaxAttachmentLen)
	}
	u, err := url.Parse(a)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: scheme must be http or https", a)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%q: not an absolute URL with a host", a)
	case u.User != nil:
		return fmt.Errorf("%q: user info not allowed", a)
	}
	return nil
}

// checkNonce accepts 1-MaxNonceLen printable ASCII characters (0x20-0x7E).
func checkNonce(n string) error {
	if len(n) == 0 || len(n) > MaxNonceLen {
		return fmt.Errorf("%w: nonce: %d bytes, want 1-%d", ErrInvalid, len(n), MaxNonceLen)
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x20 || n[i] > 0x7e {
			return fmt.Errorf("%w: nonce: byte %#x is not printable ASCII", ErrInvalid, n[i])
		}
	}
	return nil
}

// checkEmoji accepts 1-MaxEmojiLen bytes of UTF-8 without spaces or control characters: a
// Unicode emoji (sequences with ZWJ and variation selectors included) or a custom emoji name.
func checkEmoji(e string) error {
	if len(e) == 0 || len(e) > MaxEmojiLen || !utf8.ValidString(e) {
		return fmt.Errorf("%w: emoji: want 1-%d bytes of UTF-8", ErrInvalid, MaxEmojiLen)
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w: emoji: contains space or control character %U", ErrInvalid, r)
		}
	}
	return nil
}

// withinSkew reports whether the author's clock (ms) is within MaxClockSkew of ours. Sub
// saturates, so extreme timestamps cannot overflow into the window.
func withinSkew(ms int64, at time.Time) bool {
	d := time.UnixMilli(ms).Sub(at)
	return d >= -MaxClockSkew && d <= MaxClockSkew
}
