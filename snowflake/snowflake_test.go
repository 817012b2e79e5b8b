package snowflake

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestNextIsUniqueOrderedAndDecodable(t *testing.T) {
	at := Epoch.Add(1234567 * time.Millisecond)
	clock := at
	g, err := NewGenerator(5, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	var prev ID
	for i := 0; i < 3*4096; i++ { // three milliseconds' worth within one: borrows ahead
		id := g.Next()
		if id <= prev {
			t.Fatalf("id %d not above %d at %d", id, prev, i)
		}
		prev = id
	}
	clock = at.Add(-time.Second) // the clock goes back
	if id := g.Next(); id <= prev {
		t.Fatalf("after the clock went back: %d not above %d", id, prev)
	}
	clock = at.Add(time.Hour)
	first := g.Next()
	if first.Time() != at.Add(time.Hour) || first.Node() != 5 {
		t.Fatalf("time %v node %d", first.Time(), first.Node())
	}
}

func TestConcurrentNextUnique(t *testing.T) {
	g, _ := NewGenerator(1, nil)
	const workers, each = 8, 5000
	var mu sync.Mutex
	seen := map[ID]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]ID, each)
			for i := range local {
				local[i] = g.Next()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range local {
				if seen[id] {
					t.Errorf("duplicate %d", id)
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
}

func TestParseAndJSON(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"1", true}, {"9223372036854775807", true}, {"9223372036854775808", false}, {"0", false},
		{"", false}, {"012", false}, {"-1", false}, {"+1", false}, {"1e3", false}, {" 1", false}, {"18446744073709551616", false},
	} {
		_, err := Parse(c.in)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("Parse(%q) = %v, want ok=%v", c.in, err, c.ok)
		}
	}
	id := ID(1234567890123456789)
	b, _ := json.Marshal(struct{ ID ID }{id})
	if string(b) != `{"ID":"1234567890123456789"}` {
		t.Fatalf("JSON %s", b)
	}
	var back struct{ ID ID }
	for _, in := range []string{`{"ID":"1234567890123456789"}`, `{"ID":1234567890123456789}`} {
		if err := json.Unmarshal([]byte(in), &back); err != nil || back.ID != id {
			t.Fatalf("%s: %v %d", in, err, back.ID)
		}
	}
	for _, in := range []string{`{"ID":"abc"}`, `{"ID":1.5}`, `{"ID":-3}`, `{"ID":null}`, `{"ID":true}`} {
		if err := json.Unmarshal([]byte(in), &back); err == nil {
			t.Fatalf("%s accepted", in)
		}
	}
	if _, err := NewGenerator(MaxNode+1, nil); err == nil {
		t.Fatal("node out of range accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "9223372036854775807", "0", "x", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err == nil && id.String() != s {
			t.Fatalf("Parse(%q) = %d, prints as %s", s, id, id)
		}
	})
}
