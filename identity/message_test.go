package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func goldenMessage() MessageSig {
	return MessageSig{
		Server: "b.test", ChannelID: 1234567890123456789, AuthorFID: "alice@a.test", CertSerial: 42, TimestampMS: 1780000000000,
		Nonce: "n-1", Content: "héllo 👋", Attachments: []string{"https://cdn.a.test/1.png"},
	}
}

func goldenEdit() EditSig {
	return EditSig{
		Server: "b.test", ChannelID: 1234567890123456789, MessageID: 0x0102030405060708, AuthorFID: "alice@a.test", CertSerial: 42,
		TimestampMS: -2, Content: "", Attachments: nil,
	}
}

// TestSignedBytesGolden pins the wire format: changing it breaks every stored signature. The
// expected bytes were computed independently of this package (Python struct.pack).
func TestSignedBytesGolden(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"message", goldenMessage().Bytes(), "" +
			"f0" + hex.EncodeToString([]byte("polyproto-chat message v1")) + "00" + // tag
			"00000006" + hex.EncodeToString([]byte("b.test")) + // server
			"112210f47de98115" + // channel id
			"0000000c" + hex.EncodeToString([]byte("alice@a.test")) + // author
			"000000000000002a" + // cert serial
			"0000019e70448800" + // timestamp 1780000000000
			"00000003" + "6e2d31" + // nonce "n-1"
			"0000000b" + "68c3a96c6c6f20f09f918b" + // content "héllo 👋", 11 bytes
			"00000001" + "00000018" + hex.EncodeToString([]byte("https://cdn.a.test/1.png")), // attachments
		},
		{"edit", goldenEdit().Bytes(), "" +
			"f0" + hex.EncodeToString([]byte("polyproto-chat edit v1")) + "00" +
			"00000006" + hex.EncodeToString([]byte("b.test")) + // server
			"112210f47de98115" + // channel id
			"0102030405060708" + // message id
			"0000000c" + hex.EncodeToString([]byte("alice@a.test")) +
			"000000000000002a" +
			"fffffffffffffffe" + // timestamp -2, two's complement
			"00000000" + // empty content
			"00000000", // no attachments
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := hex.EncodeToString(c.got); got != c.want {
				t.Fatalf("bytes\n got %s\nwant %s", got, c.want)
			}
			if len(c.got) != cap(c.got) {
				t.Errorf("len %d, cap %d: the preallocation is not exact", len(c.got), cap(c.got))
			}
		})
	}
	// The same bytes, written out whole, so a change to the helpers above cannot hide a change.
	const wholeMessage = "f0706f6c7970726f746f2d63686174206d6573736167652076310000000006622e74657374112210f47de98115" +
		"0000000c616c69636540612e74657374000000000000002a0000019e70448800000000036e2d310000000b68c3a96c6c6f20f09f918b" +
		"000000010000001868747470733a2f2f63646e2e612e746573742f312e706e67"
	const wholeEdit = "f0706f6c7970726f746f2d6368617420656469742076310000000006622e74657374112210f47de981150102030405060708" +
		"0000000c616c69636540612e74657374000000000000002afffffffffffffffe0000000000000000"
	if got := hex.EncodeToString(goldenMessage().Bytes()); got != wholeMessage {
		t.Errorf("message bytes drifted: %s", got)
	}
	if got := hex.EncodeToString(goldenEdit().Bytes()); got != wholeEdit {
		t.Errorf("edit bytes drifted: %s", got)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	for name, b := range map[string][]byte{"message": goldenMessage().Bytes(), "edit": goldenEdit().Bytes()} {
		sig := SignMessage(key, b)
		if len(sig) != ed25519.SignatureSize {
			t.Fatalf("%s: signature of %d bytes", name, len(sig))
		}
		if err := VerifyMessage(pub, b, sig); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := VerifyMessage(newKey(t).Public().(ed25519.PublicKey), b, sig); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: another key: err = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestVerifyMessageRefuses(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	b := goldenMessage().Bytes()
	sig := SignMessage(key, b)
	cases := map[string]struct {
		pub    ed25519.PublicKey
		b, sig []byte
	}{
		"short signature":     {pub, b, sig[:63]},
		"long signature":      {pub, b, append(bytes.Clone(sig), 0)},
		"nil signature":       {pub, b, nil},
		"flipped bit":         {pub, b, flip(sig, 10)},
		"empty message":       {pub, nil, sig},
		"small-order key":     {make(ed25519.PublicKey, 32), b, sig}, // all zeros encodes a point of order 4
		"short key":           {pub[:31], b, sig},
		"signature of prefix": {pub, b[:len(b)-1], sig},
	}
	for name, c := range cases {
		if err := VerifyMessage(c.pub, c.b, c.sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
	if SignMessage(key[:10], b) != nil || SignMessage(key, nil) != nil {
		t.Error("SignMessage accepted a bad key or empty bytes")
	}
}

// TestEveryFieldIsSigned: changing any one field breaks verification.
func TestEveryFieldIsSigned(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)

	msgSig := SignMessage(key, goldenMessage().Bytes())
	msgCases := map[string]func(*MessageSig){
		"server":                func(m *MessageSig) { m.Server = "evil.test" },
		"channel":               func(m *MessageSig) { m.ChannelID++ },
		"author":                func(m *MessageSig) { m.AuthorFID = "mallory@a.test" },
		"cert serial":           func(m *MessageSig) { m.CertSerial++ },
		"timestamp":             func(m *MessageSig) { m.TimestampMS++ },
		"nonce":                 func(m *MessageSig) { m.Nonce = "n-2" },
		"content":               func(m *MessageSig) { m.Content += "!" },
		"attachment":            func(m *MessageSig) { m.Attachments = []string{"https://cdn.a.test/2.png"} },
		"attachment added":      func(m *MessageSig) { m.Attachments = append(m.Attachments, "https://x.test") },
		"attachments removed":   func(m *MessageSig) { m.Attachments = nil },
		"nonce/content shifted": func(m *MessageSig) { m.Nonce, m.Content = m.Nonce+m.Content[:1], m.Content[1:] },
		"content into attachment": func(m *MessageSig) {
			m.Attachments = []string{m.Content, m.Attachments[0]}
			m.Content = ""
		},
	}
	for name, change := range msgCases {
		m := goldenMessage()
		change(&m)
		if err := VerifyMessage(pub, m.Bytes(), msgSig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("message, %s changed: err = %v, want ErrBadSignature", name, err)
		}
	}

	editSig := SignMessage(key, goldenEdit().Bytes())
	editCases := map[string]func(*EditSig){
		"server":      func(e *EditSig) { e.Server = "evil.test" },
		"channel":     func(e *EditSig) { e.ChannelID++ },
		"message id":  func(e *EditSig) { e.MessageID++ },
		"author":      func(e *EditSig) { e.AuthorFID = "mallory@a.test" },
		"cert serial": func(e *EditSig) { e.CertSerial++ },
		"timestamp":   func(e *EditSig) { e.TimestampMS++ },
		"content":     func(e *EditSig) { e.Content = "x" },
		"attachments": func(e *EditSig) { e.Attachments = []string{""} },
	}
	for name, change := range editCases {
		e := goldenEdit()
		change(&e)
		if err := VerifyMessage(pub, e.Bytes(), editSig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("edit, %s changed: err = %v, want ErrBadSignature", name, err)
		}
	}
}

// TestFormsDoNotCross: a signature over an edit never verifies as a message with the same fields,
// nor the other way round.
func TestFormsDoNotCross(t *testing.T) {
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	e := EditSig{ChannelID: 7, MessageID: 9, AuthorFID: "alice@a.test", CertSerial: 1, TimestampMS: 5, Content: "hi"}
	m := MessageSig{ChannelID: 7, AuthorFID: "alice@a.test", CertSerial: 1, TimestampMS: 5, Content: "hi"}
	if err := VerifyMessage(pub, m.Bytes(), SignMessage(key, e.Bytes())); !errors.Is(err, ErrBadSignature) {
		t.Errorf("edit signature verified as a message: %v", err)
	}
	if err := VerifyMessage(pub, e.Bytes(), SignMessage(key, m.Bytes())); !errors.Is(err, ErrBadSignature) {
		t.Errorf("message signature verified as an edit: %v", err)
	}
	if strings.HasPrefix(messageTag, editTag) || strings.HasPrefix(editTag, messageTag) {
		t.Error("one domain tag is a prefix of the other")
	}
}

// TestNotAChallenge: key-trial challenges are UTF-8 strings the same key signs; no message
// encoding may ever equal one, or begin like one.
func TestNotAChallenge(t *testing.T) {
	encodings := [][]byte{goldenMessage().Bytes(), goldenEdit().Bytes(), MessageSig{}.Bytes(), EditSig{}.Bytes()}
	for _, b := range encodings {
		if utf8.Valid(b) {
			t.Errorf("encoding %x is valid UTF-8, so it could be a challenge string", b[:8])
		}
		if b[0] < 0x80 {
			t.Errorf("encoding starts with ASCII byte %#x", b[0])
		}
	}
	challenges := []string{NewChallenge(), NewChallenge(), strings.Repeat("A", 32),
		"polyproto-chat message v1" + strings.Repeat("a", 16), // the tag's text without its first byte
		"\u00F0polyproto-chat message v1",                     // ð as UTF-8 is C3 B0, not F0
	}
	for _, c := range challenges {
		for _, b := range encodings {
			if bytes.HasPrefix([]byte(c), b[:8]) || bytes.HasPrefix(b, []byte(c)) {
				t.Errorf("challenge %q and a message encoding share a prefix", c)
			}
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}
