package federation

import (
	"maps"
	"testing"
)

func TestParsePeers(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Peers
		wantErr bool
	}{
		{in: "", want: Peers{}},
		{in: "  ", want: Peers{}},
		{in: "a.test=http://127.0.0.1:1", want: Peers{"a.test": "http://127.0.0.1:1"}},
		{
			in:   "a.test=http://127.0.0.1:1,b.test=https://b.example",
			want: Peers{"a.test": "http://127.0.0.1:1", "b.test": "https://b.example"},
		},
		{in: " A.Test = HTTPS://B.Example:8443/ , b.test=http://[::1]:80", want: Peers{"a.test": "https://b.example:8443", "b.test": "http://[::1]:80"}},
		{in: "a.test=https://proxy.example/p2/a/", want: Peers{"a.test": "https://proxy.example/p2/a"}},
		{in: "a.test", wantErr: true},
		{in: "a.test=", wantErr: true},
		{in: "=http://x", wantErr: true},
		{in: "a.test=http://x,", wantErr: true},
		{in: "a.test=http://x,,b.test=http://y", wantErr: true},
		{in: "a.test=http://x,A.TEST=http://y", wantErr: true},
		{in: "a_b.test=http://x", wantErr: true},
		{in: "a.test/x=http://x", wantErr: true},
		{in: "a@b.test=http://x", wantErr: true},
		{in: "a.test=ftp://x", wantErr: true},
		{in: "a.test=127.0.0.1:1", wantErr: true},
		{in: "a.test=//x", wantErr: true},
		{in: "a.test=http://", wantErr: true},
		{in: "a.test=http://:80", wantErr: true},
		{in: "a.test=http://u:p@x", wantErr: true},
		{in: "a.test=http://x/?q=1", wantErr: true},
		{in: "a.test=http://x/?", wantErr: true},
		{in: "a.test=http://x/#f", wantErr: true},
		{in: "a.test=http://x:port", wantErr: true},
		{in: "a.test=http://x y", wantErr: true},
	} {
		got, err := ParsePeers(tc.in)
		if tc.wantErr {
			if err == nil {
				t.Errorf("ParsePeers(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("ParsePeers(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPeersBaseURL(t *testing.T) {
	p := Peers{"a.test": "http://127.0.0.1:1"}
	for domain, want := range map[string]string{
		"a.test":      "http://127.0.0.1:1",
		"A.TEST":      "http://127.0.0.1:1",
		"b.test":      "https://b.test",
		"example.com": "https://example.com",
	} {
		if got := p.BaseURL(domain); got != want {
			t.Errorf("BaseURL(%q) = %q, want %q", domain, got, want)
		}
	}
	if got := Peers(nil).BaseURL("a.test"); got != "https://a.test" {
		t.Errorf("nil Peers: BaseURL = %q", got)
	}
}
