package identity

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrBadSignature: a chat message or edit signature that does not verify under strict Ed25519 rules, or
// is not 64 bytes.
var ErrBadSignature = errors.New("identity: bad message signature")

// Canonical bytes of signed chat messages (docs/PROTOCOL.md, "Signed messages").
//
// An actor signs every message and every edit with the Ed25519 key of the session's ID-Cert. The signed
// bytes are:
//
//	message := "\xF0polyproto-chat message v1\x00"
//	           str(server) u64(channel_id) str(author_fid) u64(cert_serial) i64(timestamp_ms)
//	           str(nonce) str(content) list(attachments)
//	edit    := "\xF0polyproto-chat edit v1\x00"
//	           str(server) u64(channel_id) u64(message_id) str(author_fid) u64(cert_serial)
//	           i64(timestamp_ms) str(content) list(attachments)
//
// server is the domain of the server that hosts the channel (the guild's server). Channel ids are
// unique only on their server, so without it a server could replay another server's signed message
// as its own channel's.
//
//	u64(x)  = x as 8 bytes, big-endian
//	i64(x)  = the two's complement of x as a u64 (8 bytes, big-endian)
//	str(s)  = u32(byte length of s) followed by the bytes of s (UTF-8, not normalized)
//	list(l) = u32(number of strings) followed by str(each string), in order
//	u32(x)  = x as 4 bytes, big-endian
//
// The domain tags (the quoted strings, written as Go escapes: 0xF0, the ASCII text, 0x00) are part of
// the signed bytes. Every field is length-prefixed or fixed-size, so the encoding is injective: two
// different field tuples never give the same bytes. The tag's first byte, 0xF0, is not ASCII and the
// byte after it (0x70, 'p') is not a UTF-8 continuation byte, so no encoding is valid UTF-8: a signed
// message can never be mistaken for a core key-trial challenge (a UTF-8 string) or a DER structure
// (which starts with 0x30), the other things the same key signs. The two tags differ, and neither is a
// prefix of the other, so a signature over one form never verifies as the other. The message form
// covers the nonce and not the message id, which the server assigns after the signature is made; the
// edit form names the message it replaces and has no nonce.
//
// A string or list longer than 2^32-1 cannot be encoded: Bytes then returns nil, which SignMessage and
// VerifyMessage refuse. The channel limits keep every field far below that.

// Domain tags of the two forms.
const (
	messageTag = "\xF0polyproto-chat message v1\x00"
	editTag    = "\xF0polyproto-chat edit v1\x00"
)

// MessageSig is what an author signs for a new message.
type MessageSig struct {
	Server      string // domain of the server hosting the channel
	ChannelID   uint64
	AuthorFID   string
	CertSerial  uint64
	TimestampMS int64 // the author's clock, Unix milliseconds
	Nonce       string
	Content     string
	Attachments []string
}

// EditSig is what an author signs for a new version of message MessageID.
type EditSig struct {
	Server      string // domain of the server hosting the channel
	ChannelID   uint64
	MessageID   uint64
	AuthorFID   string
	CertSerial  uint64
	TimestampMS int64
	Content     string
	Attachments []string
}

// Bytes is the canonical encoding of m (see "Canonical bytes of signed chat messages"), or nil if a
// field is too long to encode.
func (m MessageSig) Bytes() []byte {
	strs := []string{m.Server, m.AuthorFID, m.Nonce, m.Content}
	if !encodable(strs, m.Attachments) {
		return nil
	}
	b := make([]byte, 0, len(messageTag)+3*8+strsLen(strs)+listLen(m.Attachments))
	b = append(b, messageTag...)
	b = appendStr(b, m.Server)
	b = binary.BigEndian.AppendUint64(b, m.ChannelID)
	b = appendStr(b, m.AuthorFID)
	b = binary.BigEndian.AppendUint64(b, m.CertSerial)
	b = binary.BigEndian.AppendUint64(b, uint64(m.TimestampMS))
	b = appendStr(b, m.Nonce)
	b = appendStr(b, m.Content)
	return appendList(b, m.Attachments)
}

// Bytes is the canonical encoding of e (see "Canonical bytes of signed chat messages"), or nil if a
// field is too long to encode.
func (e EditSig) Bytes() []byte {
	strs := []string{e.Server, e.AuthorFID, e.Content}
	if !encodable(strs, e.Attachments) {
		return nil
	}
	b := make([]byte, 0, len(editTag)+4*8+strsLen(strs)+listLen(e.Attachments))
	b = append(b, editTag...)
	b = appendStr(b, e.Server)
	b = binary.BigEndian.AppendUint64(b, e.ChannelID)
	b = binary.BigEndian.AppendUint64(b, e.MessageID)
	b = appendStr(b, e.AuthorFID)
	b = binary.BigEndian.AppendUint64(b, e.CertSerial)
	b = binary.BigEndian.AppendUint64(b, uint64(e.TimestampMS))
	b = appendStr(b, e.Content)
	return appendList(b, e.Attachments)
}

// SignMessage signs the canonical bytes b (MessageSig.Bytes or EditSig.Bytes) with key. It returns nil
// for a key that is not an Ed25519 private key or for empty b (an encoding that failed), rather than
// panic as ed25519.Sign would on a bad key.
func SignMessage(key ed25519.PrivateKey, b []byte) []byte {
	if len(key) != ed25519.PrivateKeySize || len(b) == 0 {
		return nil
	}
	return ed25519.Sign(key, b)
}

// VerifyMessage checks sig over the canonical bytes b with pub under strict rules (VerifyStrict).
// Errors wrap ErrBadSignature.
func VerifyMessage(pub ed25519.PublicKey, b, sig []byte) error {
	switch {
	case len(sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadSignature, len(sig), ed25519.SignatureSize)
	case len(b) == 0:
		return fmt.Errorf("%w: nothing to verify (the message could not be encoded)", ErrBadSignature)
	case !VerifyStrict(pub, b, sig):
		return fmt.Errorf("%w: does not verify with the ID-Cert's key", ErrBadSignature)
	}
	return nil
}

// encodable reports whether every string and the list fit a u32 length prefix.
func encodable(strs, list []string) bool {
	if uint64(len(list)) > math.MaxUint32 {
		return false
	}
	for _, s := range strs {
		if uint64(len(s)) > math.MaxUint32 {
			return false
		}
	}
	for _, s := range list {
		if uint64(len(s)) > math.MaxUint32 {
			return false
		}
	}
	return true
}

// strsLen is the encoded size of strs as separate str fields.
func strsLen(strs []string) int {
	n := 0
	for _, s := range strs {
		n += 4 + len(s)
	}
	return n
}

// listLen is the encoded size of list as a list field.
func listLen(list []string) int { return 4 + strsLen(list) }

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendList(b []byte, list []string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(list)))
	for _, s := range list {
		b = appendStr(b, s)
	}
	return b
}
