package client

import (
	"encoding/json"
	"testing"
)

func TestDecodeFrame(t *testing.T) {
	tests := []struct {
		in      string
		want    string // frame.String()
		wantErr bool
	}{
		{in: `{"n":"core","op":1,"d":{"heartbeat_interval":30000},"s":0}`, want: "core/1 s=0"},
		{in: `{"op":"11","d":{},"s":"42"}`, want: "core/11 s=42"}, // polyproto-rs style strings, n missing
		{in: `{"n":"chat","op":0,"d":{"t":"READY"}}`, want: "chat/0"},
		{in: `{"n":"chat","op":0,"d":{},"s":18446744073709551615}`, want: "chat/0 s=18446744073709551615"},
		{in: `{"n":"core","d":{}}`, wantErr: true},
		{in: `{"op":70000}`, wantErr: true},
		{in: `{"op":-1}`, wantErr: true},
		{in: `{"op":1,"s":"x"}`, wantErr: true},
		{in: `{"op":1,"s":1.5}`, wantErr: true},
		{in: `[]`, wantErr: true},
		{in: ``, wantErr: true},
	}
	for _, tt := range tests {
		f, err := decodeFrame([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("decodeFrame(%s): err %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && f.String() != tt.want {
			t.Errorf("decodeFrame(%s) = %s, want %s", tt.in, f, tt.want)
		}
	}
}

func TestHelloInterval(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{`{"heartbeat_interval":30000,"heartbeatInterval":"30000"}`, 30000},
		{`{"heartbeatInterval":"45000"}`, 45000},
		{`{"heartbeat_interval":"100"}`, 100},
		{`{}`, 0},
		{`{"heartbeat_interval":0}`, 0},
		{`{"heartbeat_interval":-5}`, 0},
	}
	for _, tt := range tests {
		got, err := helloInterval(json.RawMessage(tt.in))
		if tt.want == 0 {
			if err == nil {
				t.Errorf("helloInterval(%s) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("helloInterval(%s) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestDecodeDispatch(t *testing.T) {
	tests := []struct {
		in      string
		want    string // describe of the event
		wantErr bool
	}{
		{in: `{"t":"READY","c":"7","d":{"session_id":"s1","fid":"Alice@A.test","guilds":[],"channels":[],"groups":[]}}`, want: "ready 7"},
		{in: `{"t":"MESSAGE_CREATE","c":"8","d":{}}`, want: "MESSAGE_CREATE 8"},
		{in: `{"t":"RESYNC_REQUIRED","d":{"reason":"too many"}}`, want: "resync too many"},
		// Malformed READY or RESYNC still reach the application, as plain dispatches.
		{in: `{"t":"READY","c":"7","d":{"fid":"no at sign"}}`, want: "READY 7", wantErr: true},
		{in: `{"t":"RESYNC_REQUIRED","d":[]}`, want: "RESYNC_REQUIRED ", wantErr: true},
	}
	for _, tt := range tests {
		ev, _, err := decodeDispatch(json.RawMessage(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("decodeDispatch(%s): err %v, want error %v", tt.in, err, tt.wantErr)
		}
		if got := describe(ev); got != tt.want {
			t.Errorf("decodeDispatch(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	ev, _, _ := decodeDispatch(json.RawMessage(tests[0].in))
	if r := ev.Ready; r.FID.String() != "alice@a.test" || r.SessionID != "s1" || r.Guilds == nil {
		t.Errorf("READY decoded as %+v", r)
	}
}

// TestHeartbeatEncoding: the numbers go out as JSON numbers, and an empty heartbeat as {}.
func TestHeartbeatEncoding(t *testing.T) {
	from, to := uint64(3), uint64(9)
	for _, tt := range []struct {
		hb   heartbeatRange
		want string
	}{
		{heartbeatRange{}, `{"n":"core","op":0,"d":{}}`},
		{heartbeatRange{From: &from, To: &to}, `{"n":"core","op":0,"d":{"from":3,"to":9}}`},
		{heartbeatRange{From: &from, To: &to, Except: []uint64{4, 7}}, `{"n":"core","op":0,"d":{"from":3,"to":9,"except":[4,7]}}`},
	} {
		b, err := encodeFrame(nsCore, opHeartbeat, tt.hb)
		if err != nil || string(b) != tt.want {
			t.Errorf("heartbeat %s, %v; want %s", b, err, tt.want)
		}
	}
}

// FuzzDecodeFrame: no input panics the decoders the reader runs on server bytes.
func FuzzDecodeFrame(f *testing.F) {
	for _, seed := range []string{
		`{"n":"core","op":1,"d":{"heartbeat_interval":30000,"heartbeatInterval":"30000"},"s":0}`,
		`{"n":"core","op":7,"d":[{"n":"chat","op":0,"d":{"t":"MESSAGE_CREATE","c":"3","d":{}},"s":3}],"s":9}`,
		`{"n":"core","op":10,"d":[],"s":"1"}`,
		`{"n":"chat","op":0,"d":{"t":"READY","c":"1","d":{"session_id":"a","fid":"a@b.c"}},"s":2}`,
		`{"n":"core","op":4,"d":{"idCertPem":"x","cacheNotValidBefore":1,"cacheNotValidAfter":2,"cacheSignature":""},"s":5}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeFrame(data)
		if err != nil {
			return
		}
		_, _ = decodeFrameList(fr.d)
		_, _ = helloInterval(fr.d)
		_, _, _ = decodeDispatch(fr.d)
		_, _ = decodeNewSession(fr.d)
		_, _ = decodeCertInvalidation(fr.d)
	})
}
