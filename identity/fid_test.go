package identity

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

type federationIDCases struct {
	Valid   []string `json:"valid"`
	Invalid []string `json:"invalid"`
}

func loadFederationIDCases(t testing.TB) federationIDCases {
	t.Helper()
	data, err := os.ReadFile("../testdata/polyproto/federation-ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var c federationIDCases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Valid) == 0 || len(c.Invalid) == 0 {
		t.Fatal("federation-ids.json has no cases")
	}
	return c
}

func TestParseFIDSharedCases(t *testing.T) {
	c := loadFederationIDCases(t)
	for _, s := range c.Valid {
		f, err := ParseFID(s)
		if err != nil {
			t.Errorf("ParseFID(%q) = %v, want valid", s, err)
			continue
		}
		if f.String() != s {
			t.Errorf("ParseFID(%q).String() = %q", s, f.String())
		}
	}
	for _, s := range c.Invalid {
		if f, err := ParseFID(s); !errors.Is(err, ErrInvalidFID) {
			t.Errorf("ParseFID(%q) = %+v, %v; want ErrInvalidFID", s, f, err)
		}
	}
}

func TestParseFID(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	// 255 bytes: 1 + "@" + 253-byte domain of four 63-byte labels minus one byte.
	domain253 := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	tests := []struct {
		in      string
		want    FID // zero: invalid
		wantErr string
	}{
		{in: "Flori@Polyphony.CHAT", want: FID{"flori", "polyphony.chat"}},
		{in: "XENIA@EXAMPLE", want: FID{"xenia", "example"}},
		{in: "a.b_c%d+e-f@sub.example.com", want: FID{"a.b_c%d+e-f", "sub.example.com"}},
		{in: "x@" + domain253, want: FID{"x", domain253}},
		{in: "xy@" + domain253, wantErr: "longer than 255"},
		{in: "x@" + label63 + "a.com", wantErr: "longer than 63"},
		{in: "x@" + label63 + ".com", want: FID{"x", label63 + ".com"}},
		{in: "", wantErr: "missing '@'"},
		{in: "@", wantErr: "empty local part"},
		{in: "a@", wantErr: "empty domain"},
		{in: "@b", wantErr: "empty local part"},
		{in: "a@b..c", wantErr: "empty domain label"},
		{in: "a@.b", wantErr: "empty domain label"},
		{in: "a@b.", wantErr: "empty domain label"},
		{in: "a@-b.c", wantErr: "starts or ends with '-'"},
		{in: "a@b-.c", wantErr: "starts or ends with '-'"},
		{in: "a@b@c", wantErr: "'@'"},
		{in: "a b@c", wantErr: "local part contains"},
		{in: "a@b_c", wantErr: "domain label contains"},
		{in: "ä@b.c", wantErr: "local part contains"},
		{in: "a@\xff", wantErr: "domain label contains"},
		{in: "K\u212a@b.c", wantErr: "local part contains"}, // Kelvin sign must not fold to k
	}
	for _, tt := range tests {
		got, err := ParseFID(tt.in)
		if tt.wantErr != "" {
			if !errors.Is(err, ErrInvalidFID) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseFID(%.40q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFID(%.40q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestFIDMethods(t *testing.T) {
	f := FID{"flori", "polyphony.chat"}
	if f.String() != "flori@polyphony.chat" {
		t.Errorf("String() = %q", f.String())
	}
	if got := f.DomainLabels(); !slices.Equal(got, []string{"polyphony", "chat"}) {
		t.Errorf("DomainLabels() = %q", got)
	}
	if (FID{}).String() != "" || (FID{}).DomainLabels() != nil {
		t.Error("zero FID should print as \"\" with no labels")
	}
}

func TestValidateDomain(t *testing.T) {
	for _, d := range []string{"polyphony.chat", "localhost", "xn--grn-ioaaa.de", "a-b.c0"} {
		if err := ValidateDomain(d); err != nil {
			t.Errorf("ValidateDomain(%q) = %v", d, err)
		}
	}
	for _, d := range []string{"", "Polyphony.chat", "a..b", "-a.b", "a_b.c", "a.b.", "a@b"} {
		if err := ValidateDomain(d); !errors.Is(err, ErrInvalidFID) {
			t.Errorf("ValidateDomain(%q) = %v, want ErrInvalidFID", d, err)
		}
	}
}

func TestValidSessionID(t *testing.T) {
	for _, id := range []string{"a", "client1", strings.Repeat("x", 32), "!~", "a-b_c.d:e/f"} {
		if err := ValidSessionID(id); err != nil {
			t.Errorf("ValidSessionID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 33), "a b", "a\tb", "a\x00", "é", "\x7f"} {
		if err := ValidSessionID(id); !errors.Is(err, ErrInvalidCSR) {
			t.Errorf("ValidSessionID(%q) = %v, want ErrInvalidCSR", id, err)
		}
	}
}
