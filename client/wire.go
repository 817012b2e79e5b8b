package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The core routes send serials as JSON numbers and timestamps as UNIX seconds, but the specs
// disagree about string forms elsewhere (PROTOCOL.md section 3 accepts decimal strings on input),
// so the SDK is as lenient on input as the server: numbers or decimal strings, and RFC 3339 for
// timestamps.

// UnmarshalJSON decodes one entry of GET /session.
func (s *SessionInfo) UnmarshalJSON(data []byte) error {
	var w struct {
		SessionID string      `json:"session_id"`
		Serial    json.Number `json:"serial"`
		NotBefore flexTime    `json:"not_before"`
		NotAfter  flexTime    `json:"not_after"`
		Current   bool        `json:"current"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	serial, err := strconv.ParseUint(w.Serial.String(), 10, 64)
	if err != nil {
		return fmt.Errorf("session serial %q: %w", w.Serial, err)
	}
	*s = SessionInfo{SessionID: w.SessionID, Serial: serial, NotBefore: w.NotBefore.Time, NotAfter: w.NotAfter.Time, Current: w.Current}
	return nil
}

// flexTime is a timestamp sent as UNIX seconds (number or decimal string) or RFC 3339 string.
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	var s string
	if data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if ts, err := time.Parse(time.RFC3339, s); err == nil {
			t.Time = ts
			return nil
		}
	} else {
		s = string(data)
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: want UNIX seconds or RFC 3339", data)
	}
	t.Time = time.Unix(sec, 0)
	return nil
}
