package events

import (
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// Limits every store enforces, so that an event accepted by one store is accepted by all.
const (
	MaxDataSize     = 1 << 20 // payload bytes
	MaxTypeLength   = 256
	MaxStreamLength = 256
	maxMetaField    = 256 // bytes of each string in the envelope
	MaxReasonLength = 512 // bytes of Event.Reason
)

// Event is what a writer appends: a protobuf payload plus who caused it.
// The store adds the rest of the envelope (time, prev_hash, and an id if ID is zero).
type Event struct {
	ID            uuid.UUID // the writer's id for the event; zero: the store picks one
	Type          string    // protobuf full name of Data's message
	Data          []byte    // the serialized protobuf message
	ActorFID      string    // who caused it, empty for the server itself
	SessionID     string
	CorrelationID string
	CausationID   string
	Reason        string // why, for the audit log; at most MaxReasonLength bytes
}

// NewEvent serializes msg deterministically and names the event after its full protobuf name.
func NewEvent(msg proto.Message) (Event, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return Event{}, fmt.Errorf("marshal %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	return Event{Type: string(msg.ProtoReflect().Descriptor().FullName()), Data: data}, nil
}

// Validate checks what every store refuses alike.
func (e *Event) Validate() error {
	switch {
	case e.Type == "" || len(e.Type) > MaxTypeLength || !printableASCII(e.Type):
		return fmt.Errorf("%w: type %q must be 1-%d printable ASCII characters", ErrInvalidEvent, e.Type, MaxTypeLength)
	case e.Type[0] == '$':
		return fmt.Errorf("%w: type %q: names starting with $ are reserved", ErrInvalidEvent, e.Type)
	case len(e.Data) > MaxDataSize:
		return fmt.Errorf("%w: data is %d bytes, limit %d", ErrInvalidEvent, len(e.Data), MaxDataSize)
	}
	for _, f := range []string{e.ActorFID, e.SessionID, e.CorrelationID, e.CausationID} {
		if len(f) > maxMetaField || !utf8.ValidString(f) {
			return fmt.Errorf("%w: envelope field longer than %d bytes or not UTF-8", ErrInvalidEvent, maxMetaField)
		}
	}
	if len(e.Reason) > MaxReasonLength || !utf8.ValidString(e.Reason) {
		return fmt.Errorf("%w: reason longer than %d bytes or not UTF-8", ErrInvalidEvent, MaxReasonLength)
	}
	return nil
}

// RecordedEvent is an event as the store holds it.
type RecordedEvent struct {
	Stream   string
	Revision uint64
	Position Position
	Type     string
	Data     []byte
	Metadata []byte // the serialized eventsv1.Metadata, exactly as stored (the hash covers these bytes)
}

// Meta decodes the envelope.
func (e *RecordedEvent) Meta() (*eventsv1.Metadata, error) {
	m := new(eventsv1.Metadata)
	if err := proto.Unmarshal(e.Metadata, m); err != nil {
		return nil, fmt.Errorf("decode metadata of %s@%d: %w", e.Stream, e.Revision, err)
	}
	return m, nil
}

// ValidateStream accepts "<category>-<id>": a category of lower-case letters, digits and '_'
// starting with a letter, then '-', then an id of printable ASCII without spaces or '/'.
// Names starting with '$' belong to KurrentDB's system streams and are refused.
func ValidateStream(name string) error {
	if len(name) < 3 || len(name) > MaxStreamLength {
		return fmt.Errorf("%w: %q: length must be 3-%d", ErrInvalidStream, name, MaxStreamLength)
	}
	dash := -1
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' && dash < 0 {
			dash = i
			continue
		}
		if dash < 0 {
			if !(c >= 'a' && c <= 'z' || c == '_' || (i > 0 && c >= '0' && c <= '9')) {
				return fmt.Errorf("%w: %q: category must match [a-z][a-z0-9_]*", ErrInvalidStream, name)
			}
			continue
		}
		if c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("%w: %q: id must be printable ASCII without spaces or '/'", ErrInvalidStream, name)
		}
	}
	if dash < 1 || dash == len(name)-1 {
		return fmt.Errorf("%w: %q: want <category>-<id>", ErrInvalidStream, name)
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Decode unmarshals the payload into a new message of the type the event names. The type must be
// linked into the binary (every generated eventsv1 message is).
func Decode(e *RecordedEvent) (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(e.Type))
	if err != nil {
		return nil, fmt.Errorf("decode %s@%d: unknown event type %q: %w", e.Stream, e.Revision, e.Type, err)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(e.Data, m); err != nil {
		return nil, fmt.Errorf("decode %s@%d (%s): %w", e.Stream, e.Revision, e.Type, err)
	}
	return m, nil
}

// ValidateAppend checks an append's arguments the way every store must.
func ValidateAppend(stream string, evs []Event) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("%w: append of no events to %s", ErrInvalidEvent, stream)
	}
	for i := range evs {
		if err := evs[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRead checks a stream read's arguments the way every store must.
func ValidateRead(stream string, limit int) error {
	if err := ValidateStream(stream); err != nil {
		return err
	}
	if limit < 1 || limit > MaxReadLimit {
		return fmt.Errorf("read %s: limit %d out of range 1-%d", stream, limit, MaxReadLimit)
	}
	return nil
}
