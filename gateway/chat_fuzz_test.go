package gateway

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/polyproto-chat/server/actors/account"
)

// FuzzHistoryQuery: any query string gives either a clean 400 error or a query the read model
// can serve: at most one anchor, limit 1-100.
func FuzzHistoryQuery(f *testing.F) {
	for _, s := range []string{"", "limit=50", "before=123&limit=1", "after=9223372036854775807", "around=1&before=2",
		"limit=0", "limit=101", "before=0", "before=-1", "before=01", "limit=1e2", "before=%00", "around=1&around=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := historyQuery(v)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		anchors := 0
		for _, a := range []uint64{q.Before, q.After, q.Around} {
			if a != 0 {
				anchors++
			}
			if a >= 1<<63 {
				t.Fatalf("anchor %d has the top bit set", a)
			}
		}
		if anchors > 1 || q.Limit < 1 || q.Limit > 100 {
			t.Fatalf("%q gave %+v", raw, q)
		}
	})
}

// FuzzMessageBody: any POST body for a message is refused as a bad request or too large, or
// gives a signed message whose signature has the size Ed25519 needs.
func FuzzMessageBody(f *testing.F) {
	for _, s := range []string{
		`{"content":"hi","nonce":"n1","timestamp":1764158400000,"signature":"` + strings.Repeat("A", 86) + `"}`,
		`{"content":"hi","nonce":"n1","timestamp":"1","signature":""}`,
		`{"content":"hi","attachments":["https://x.test/a.png"],"nonce":"n","timestamp":-1,"signature":"AA"}`,
		`{"content":"hi"} {"content":"again"}`, `{"content":1}`, `{"unknown":true}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/.p2/chat/v1/channels/1/messages", strings.NewReader(string(body)))
		var in messageIn
		if err := decodeJSON(httptest.NewRecorder(), r, &in); err != nil {
			if !errors.Is(err, errBadRequest) && !errors.Is(err, errTooLarge) {
				t.Fatalf("decode error %v is neither a bad request nor too large", err)
			}
			return
		}
		signed, err := in.signed(account.Principal{FID: "a@a.test", Serial: 7})
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("error %v is not a bad request", err)
			}
			return
		}
		if len(signed.Signature) != ed25519.SignatureSize || signed.CertSerial != 7 {
			t.Fatalf("accepted %q as %+v", body, signed)
		}
	})
}
