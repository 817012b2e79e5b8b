package permissions

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAllCoversEveryName(t *testing.T) {
	if got := len(All.Names()); got != len(names) {
		t.Fatalf("All has %d names, want %d", got, len(names))
	}
	if All.Has(All + 1) {
		t.Fatal("All should not contain the next undefined bit")
	}
}

func TestHas(t *testing.T) {
	tests := []struct {
		name string
		s, p Set
		want bool
	}{
		{"empty query", 0, 0, true},
		{"one bit present", ViewChannel | SendMessages, SendMessages, true},
		{"all bits present", ViewChannel | SendMessages, ViewChannel | SendMessages, true},
		{"one bit missing", ViewChannel, ViewChannel | SendMessages, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Has(tt.p); got != tt.want {
				t.Fatalf("Has = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNamesParse(t *testing.T) {
	tests := []struct {
		name  string
		given Set
		want  []string
	}{
		{"empty", 0, []string{}},
		{"bit order", SendMessages | ViewChannel | ManageChannel, []string{"VIEW_CHANNEL", "SEND_MESSAGES", "MANAGE_CHANNEL"}},
		{"all", All, names[:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.given.Names()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Names (-want +got):\n%s", diff)
			}
			back, err := Parse(got)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if back != tt.given {
				t.Fatalf("round trip = %v, want %v", back, tt.given)
			}
		})
	}
}

func TestParseUnknownName(t *testing.T) {
	for _, in := range [][]string{{"MANAGE_CHANNELS"}, {"VIEW_CHANNEL", "view_channel"}, {""}} {
		if s, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want error", in, s)
		}
	}
}

func TestJSON(t *testing.T) {
	given := struct {
		P Set `json:"p"`
	}{Administrator | ViewChannel}
	b, err := json.Marshal(given)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"p":"4097"}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var got struct {
		P Set `json:"p"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != given {
		t.Fatalf("round trip = %v, want %v", got.P, given.P)
	}
}

func TestUnmarshalJSONRejects(t *testing.T) {
	for _, in := range []string{`4097`, `"-1"`, `"x"`, `"18446744073709551615"`, `"8192"`} {
		var s Set
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want error", in, s)
		}
	}
}
