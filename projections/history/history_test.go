package history_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/projections/history"
)

const ch = 1000 // the channel under test; its neighbours 999 and 1001 get messages too

func decodePage(t *testing.T, page []byte) []history.Message {
	t.Helper()
	var ms []history.Message
	if err := json.Unmarshal(page, &ms); err != nil {
		t.Fatalf("page %q: %v", page, err)
	}
	if ms == nil {
		t.Fatalf("page %q is not an array", page)
	}
	return ms
}

func idsOf(ms []history.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = uint64(m.ID)
	}
	return out
}

func pageIDs(t *testing.T, r *history.Reader, channel uint64, q history.Query) []uint64 {
	t.Helper()
	page, err := r.Page(channel, q)
	if err != nil {
		t.Fatal(err)
	}
	return idsOf(decodePage(t, page))
}

func mustMessage(t *testing.T, r *history.Reader, id uint64) history.Message {
	t.Helper()
	m, ok, err := r.Message(ch, id)
	if err != nil || !ok {
		t.Fatalf("message %d: found %v, %v", id, ok, err)
	}
	return m
}

func TestCreateStoresTheServedJSON(t *testing.T) {
	e := newEnv(t, nil)
	c := created(5, "alice@a.example", "hello <world>")
	c.Attachments = []string{"https://files.example/1"}
	e.append(ch, c)
	e.sync()

	raw, ok, err := e.reader.Raw(ch, 5)
	if err != nil || !ok {
		t.Fatalf("Raw: %v %v", ok, err)
	}
	want, _ := json.Marshal(history.FromCreated(ch, c))
	if !bytes.Equal(raw, want) {
		t.Fatalf("stored\n%s\nwant\n%s", raw, want)
	}
	m := mustMessage(t, e.reader, 5)
	if m.ChannelID != ch || m.GuildID != 7 || m.Author != "alice@a.example" || m.Version != 0 ||
		m.EditedAt != nil || m.Pinned || m.Reactions == nil || len(m.Reactions) != 0 || m.CertSerial != "42" {
		t.Fatalf("message: %+v", m)
	}
	page, err := e.reader.Page(ch, history.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(page); got != "["+string(want)+"]" {
		t.Fatalf("page %s", got)
	}
	if _, ok, err := e.reader.Raw(ch, 6); ok || err != nil {
		t.Fatalf("Raw of a missing message: %v %v", ok, err)
	}
	if _, ok, err := e.reader.Raw(ch+1, 5); ok || err != nil {
		t.Fatalf("Raw in another channel: %v %v", ok, err)
	}
}

func TestEdit(t *testing.T) {
	e := newEnv(t, nil)
	e.append(ch, created(1, "alice@a.example", "v0"), created(2, "bob@b.example", "other"))
	e.append(ch, edited(1, "v1"))
	at1 := e.clock.Last()
	e.append(ch, edited(1, "v2"))
	at2 := e.clock.Last()
	e.sync()

	m := mustMessage(t, e.reader, 1)
	if m.Content != "v2" || m.Version != 2 || m.EditedAt == nil || !m.EditedAt.Equal(at2) ||
		!slices.Equal(m.Attachments, []string{"https://files.example/v2"}) ||
		m.Timestamp != 1_748_779_300_000 || m.CertSerial != "43" || m.SessionID != "s2" || m.Signature != "CQk" {
		t.Fatalf("after two edits: %+v (edited at %v, want %v; first edit at %v)", m, m.EditedAt, at2, at1)
	}
	if m.Nonce != "n1" || m.Author != "alice@a.example" {
		t.Fatalf("an edit changed what it must not: %+v", m)
	}
	if m := mustMessage(t, e.reader, 2); m.Version != 0 || m.Content != "other" {
		t.Fatalf("the other message changed: %+v", m)
	}

	// An edit of a message deleted in the meantime is dropped, not resurrected.
	e.append(ch, deleted(2), edited(2, "ghost"), edited(99, "never existed"))
	e.sync()
	for _, id := range []uint64{2, 99} {
		if _, ok, err := e.reader.Message(ch, id); ok || err != nil {
			t.Fatalf("message %d after delete+edit: %v %v", id, ok, err)
		}
	}
}

func TestDeleteAndBulkDelete(t *testing.T) {
	e := newEnv(t, nil)
	for id := uint64(1); id <= 6; id++ {
		e.append(ch, created(id, "alice@a.example", "m"))
	}
	e.append(ch, pinned(3))
	e.append(ch, deleted(2), deleted(2), deleted(77))   // twice, and unknown: no error
	e.append(ch, bulkDeleted(3, 5, 88), bulkDeleted(5)) // 3 was pinned
	e.sync()
	if got := pageIDs(t, e.reader, ch, history.Query{}); !slices.Equal(got, []uint64{6, 4, 1}) {
		t.Fatalf("left: %v", got)
	}
	if pins, err := e.reader.Pins(ch); err != nil || string(pins) != "[]" {
		t.Fatalf("a deleted message is still pinned: %s %v", pins, err)
	}
	got, err := e.reader.Exist(ch, []uint64{1, 2, 3, 4, 5, 6, 7, 0})
	if err != nil || !slices.Equal(got, []bool{true, false, false, true, false, true, false, false}) {
		t.Fatalf("Exist: %v %v", got, err)
	}
	if got, err := e.reader.Exist(ch+1, []uint64{1, 4}); err != nil || !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("Exist in another channel: %v %v", got, err)
	}
}

func TestPins(t *testing.T) {
	e := newEnv(t, nil)
	for id := uint64(1); id <= 5; id++ {
		e.append(ch, created(id, "alice@a.example", "m"))
		e.append(ch-1, created(id, "alice@a.example", "elsewhere"), pinned(id))
		e.append(ch+1, created(id, "alice@a.example", "elsewhere"), pinned(id))
	}
	e.append(ch, pinned(2), pinned(4), pinned(1), pinned(4), pinned(9)) // 4 twice; 9 does not exist
	e.append(ch, unpinned(1), unpinned(3))                              // 3 was never pinned
	e.sync()

	pins, err := e.reader.Pins(ch)
	if err != nil {
		t.Fatal(err)
	}
	ms := decodePage(t, pins)
	if got := idsOf(ms); !slices.Equal(got, []uint64{4, 2}) {
		t.Fatalf("pins: %v", got)
	}
	for _, m := range ms {
		if !m.Pinned || m.ChannelID != ch {
			t.Fatalf("pinned message %+v", m)
		}
	}
	if m := mustMessage(t, e.reader, 1); m.Pinned {
		t.Fatal("message 1 still pinned after Unpinned")
	}
	f, err := e.reader.Facts(ch, 4, "", "")
	if err != nil || !f.Exists || !f.Pinned {
		t.Fatalf("facts of a pinned message: %+v %v", f, err)
	}
	if pins, err := e.reader.Pins(12345); err != nil || string(pins) != "[]" {
		t.Fatalf("pins of an empty channel: %s %v", pins, err)
	}
}

func TestReactions(t *testing.T) {
	e := newEnv(t, nil)
	const a, b, c = "a@x.example", "b@x.example", "c@x.example"
	e.append(ch, created(1, a, "m"))
	e.append(ch,
		reacted(1, a, "👍"), reacted(1, b, "👍"), reacted(1, a, "❤"),
		reacted(1, a, "👍"),   // twice: no-op
		unreacted(1, c, "👍"), // c never reacted: no-op
		unreacted(1, a, "🎉"), // no such emoji: no-op
		reacted(2, a, "👍"),   // no such message: ignored
	)
	e.sync()
	want := []history.Reaction{{Emoji: "👍", Count: 2, FIDs: []string{a, b}}, {Emoji: "❤", Count: 1, FIDs: []string{a}}}
	if got := mustMessage(t, e.reader, 1).Reactions; !reflect.DeepEqual(got, want) {
		t.Fatalf("reactions %+v, want %+v", got, want)
	}
	f, err := e.reader.Facts(ch, 1, b, "👍")
	if err != nil || f != (history.Facts{Exists: true, Author: a, Reacted: true, Emoji: true, Distinct: 2}) {
		t.Fatalf("facts for b 👍: %+v %v", f, err)
	}
	f, err = e.reader.Facts(ch, 1, b, "❤")
	if err != nil || f != (history.Facts{Exists: true, Author: a, Reacted: false, Emoji: true, Distinct: 2}) {
		t.Fatalf("facts for b ❤: %+v %v", f, err)
	}
	f, err = e.reader.Facts(ch, 1, b, "🎉")
	if err != nil || f != (history.Facts{Exists: true, Author: a, Distinct: 2}) {
		t.Fatalf("facts for b 🎉: %+v %v", f, err)
	}
	if f, err := e.reader.Facts(ch, 2, a, "👍"); err != nil || f != (history.Facts{}) {
		t.Fatalf("facts of a missing message: %+v %v", f, err)
	}

	// Removing the last FID drops the emoji; adding it again puts it after the others.
	e.append(ch, unreacted(1, a, "👍"), unreacted(1, b, "👍"), reacted(1, c, "👍"))
	e.sync()
	want = []history.Reaction{{Emoji: "❤", Count: 1, FIDs: []string{a}}, {Emoji: "👍", Count: 1, FIDs: []string{c}}}
	if got := mustMessage(t, e.reader, 1).Reactions; !reflect.DeepEqual(got, want) {
		t.Fatalf("reactions %+v, want %+v", got, want)
	}
	e.append(ch, unreacted(1, a, "❤"), unreacted(1, c, "👍"))
	e.sync()
	raw, _, _ := e.reader.Raw(ch, 1)
	if !bytes.Contains(raw, []byte(`"reactions":[]`)) {
		t.Fatalf("no reactions left must be [], not null: %s", raw)
	}
}

// Events of other types on a channel stream (a later version's, say) are skipped, not fatal.
func TestUnknownEventTypeIsSkipped(t *testing.T) {
	e := newEnv(t, nil)
	e.append(ch, created(1, "a@x.example", "m"))
	if _, err := e.store.Append(t.Context(), "channel-1000", events.Any{},
		events.Event{Type: "polyproto.chat.events.v1.SomethingNew", Data: []byte{0xff, 0xff}}); err != nil {
		t.Fatal(err)
	}
	e.append(ch, created(2, "a@x.example", "m"))
	e.sync()
	if got := pageIDs(t, e.reader, ch, history.Query{}); !slices.Equal(got, []uint64{2, 1}) {
		t.Fatalf("page: %v", got)
	}
	if st := e.runner.Status()[0]; st.Failures != 0 || st.LastError != nil {
		t.Fatalf("status: %+v", st)
	}
}

// randomHistory is a random mix of every event type over ids 1..n of channel ch and its
// neighbours, as proto messages per channel, in order.
func randomHistory(rng *rand.Rand, n int) map[uint64][]proto.Message {
	fids := []string{"a@x.example", "b@x.example", "c@x.example"}
	emoji := []string{"👍", "❤", "🎉"}
	out := map[uint64][]proto.Message{}
	for id := uint64(1); id <= uint64(n); id++ {
		c := ch - 1 + uint64(rng.IntN(3))
		out[c] = append(out[c], created(id, fids[rng.IntN(3)], "m"))
		for range rng.IntN(4) {
			c := ch - 1 + uint64(rng.IntN(3))
			target := 1 + rng.Uint64N(id)
			var m proto.Message
			switch rng.IntN(8) {
			case 0:
				m = edited(target, "e")
			case 1:
				m = deleted(target)
			case 2:
				m = bulkDeleted(target, 1+rng.Uint64N(id))
			case 3:
				m = pinned(target)
			case 4:
				m = unpinned(target)
			case 5, 6:
				m = reacted(target, fids[rng.IntN(3)], emoji[rng.IntN(3)])
			default:
				m = unreacted(target, fids[rng.IntN(3)], emoji[rng.IntN(3)])
			}
			out[c] = append(out[c], m)
		}
	}
	return out
}

// Applying an event again after its batch was discarded, or a whole batch again, must leave
// the same read model as applying everything once. The store's clock is the same in both runs,
// so even edited_at must agree byte for byte.
func TestReapplyAfterDiscardedBatchGivesTheSameReadModel(t *testing.T) {
	hist := randomHistory(rand.New(rand.NewPCG(7, 11)), 400)
	once := newEnv(t, nil)
	f := &flaky{every: 13, seen: map[events.Position]bool{}}
	twice := newEnv(t, f)
	for _, e := range []*env{once, twice} {
		for c := uint64(ch - 1); c <= ch+1; c++ {
			// Appends of a few events each, so that batches hold several channels' events.
			for ms := hist[c]; len(ms) > 0; ms = ms[min(5, len(ms)):] {
				e.append(c, ms[:min(5, len(ms))]...)
			}
		}
		e.sync()
	}
	if st := twice.runner.Status()[0]; st.Failures != 0 || st.LastError == nil {
		t.Fatalf("the flaky run did not fail and recover: %+v", st)
	}
	if len(f.seen) < 50 {
		t.Fatalf("only %d injected failures", len(f.seen))
	}
	for c := uint64(ch - 1); c <= ch+1; c++ {
		for _, q := range []history.Query{{Limit: 100}, {Before: 300, Limit: 100}, {Before: 200, Limit: 100}, {Before: 100, Limit: 100}} {
			a, err1 := once.reader.Page(c, q)
			b, err2 := twice.reader.Page(c, q)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Fatalf("channel %d, %+v: pages differ (%v, %v):\n%s\n%s", c, q, err1, err2, a, b)
			}
		}
		a, err1 := once.reader.Pins(c)
		b, err2 := twice.reader.Pins(c)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("channel %d: pins differ (%v, %v):\n%s\n%s", c, err1, err2, a, b)
		}
	}
}

// The paging fixture: channel ch holds the ids 1..250 except multiples of 7 (never created)
// and those ending in 5 (deleted); its neighbours hold 1..300 so that a page running over the
// channel's ends would show.
func pagingEnv(t *testing.T) (*env, []uint64) {
	e := newEnv(t, nil)
	var live []uint64
	var msgs []proto.Message
	for id := uint64(1); id <= 250; id++ {
		if id%7 == 0 {
			continue
		}
		msgs = append(msgs, created(id, "a@x.example", "m"))
		if id%10 == 5 {
			msgs = append(msgs, deleted(id))
			continue
		}
		live = append(live, id)
	}
	e.append(ch, msgs...)
	for _, c := range []uint64{ch - 1, ch + 1} {
		msgs = msgs[:0]
		for id := uint64(1); id <= 300; id++ {
			msgs = append(msgs, created(id, "b@x.example", "n"))
		}
		e.append(c, msgs...)
	}
	e.sync()
	return e, live
}

// below is the live ids under x, newest first; above those over x, oldest first.
func below(live []uint64, x uint64) []uint64 {
	var out []uint64
	for i := len(live) - 1; i >= 0; i-- {
		if live[i] < x {
			out = append(out, live[i])
		}
	}
	return out
}

func above(live []uint64, x uint64) []uint64 {
	var out []uint64
	for _, id := range live {
		if id > x {
			out = append(out, id)
		}
	}
	return out
}

func take(ids []uint64, n int) []uint64 { return append([]uint64{}, ids[:min(n, len(ids))]...) }

func reversed(ids []uint64) []uint64 {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func TestPage(t *testing.T) {
	e, live := pagingEnv(t)
	if len(live) != 194 {
		t.Fatalf("fixture: %d live messages", len(live))
	}
	cases := []struct {
		name string
		q    history.Query
		want []uint64
	}{
		{"default", history.Query{}, take(below(live, 251), 50)},
		{"default limit 1", history.Query{Limit: 1}, []uint64{250}},
		{"default limit 100", history.Query{Limit: 100}, take(below(live, 251), 100)},
		{"limit above 100 is 100", history.Query{Limit: 1000}, take(below(live, 251), 100)},
		{"negative limit is 50", history.Query{Limit: -3}, take(below(live, 251), 50)},
		{"before the newest", history.Query{Before: 250, Limit: 3}, []uint64{249, 248, 247}},
		{"before a gap", history.Query{Before: 10, Limit: 5}, []uint64{9, 8, 6, 4, 3}},
		{"before a deleted id", history.Query{Before: 95, Limit: 3}, []uint64{94, 93, 92}},
		{"before past the end", history.Query{Before: 1 << 40, Limit: 2}, []uint64{250, 249}},
		{"before, short of the start", history.Query{Before: 3, Limit: 100}, []uint64{2, 1}},
		{"before the first", history.Query{Before: 1}, []uint64{}},
		{"before limit 100", history.Query{Before: 200, Limit: 100}, take(below(live, 200), 100)},
		{"after", history.Query{After: 245, Limit: 3}, []uint64{248, 247, 246}},
		{"after a gap", history.Query{After: 6, Limit: 4}, []uint64{11, 10, 9, 8}},
		{"after, short of the end", history.Query{After: 247}, []uint64{250, 249, 248}},
		{"after the last", history.Query{After: 250}, []uint64{}},
		{"after the largest id", history.Query{After: ^uint64(0)}, []uint64{}},
		{"after limit 1", history.Query{After: 1, Limit: 1}, []uint64{2}},
		{"after limit 100", history.Query{After: 1, Limit: 100}, reversed(take(above(live, 1), 100))},
		{"around", history.Query{Around: 100, Limit: 5}, []uint64{102, 101, 100, 99, 97}},
		{"around a missing id", history.Query{Around: 105, Limit: 4}, []uint64{107, 106, 104, 103}},
		{"around a missing id, odd limit", history.Query{Around: 105, Limit: 5}, []uint64{108, 107, 106, 104, 103}},
		{"around the first", history.Query{Around: 1, Limit: 5}, []uint64{6, 4, 3, 2, 1}},
		{"around near the start", history.Query{Around: 2, Limit: 6}, []uint64{8, 6, 4, 3, 2, 1}},
		{"around the last", history.Query{Around: 250, Limit: 5}, []uint64{250, 249, 248, 247, 246}},
		{"around past the end", history.Query{Around: 300, Limit: 3}, []uint64{250, 249, 248}},
		{"around limit 1, existing", history.Query{Around: 100, Limit: 1}, []uint64{100}},
		{"around limit 1, missing", history.Query{Around: 105, Limit: 1}, []uint64{106}},
		{"around limit 1, past the end", history.Query{Around: 251, Limit: 1}, []uint64{250}},
		{"around limit 100", history.Query{Around: 3, Limit: 100}, append(reversed(take(above(live, 3), 97)), 3, 2, 1)},
		{"around, default limit", history.Query{Around: 120}, append(append(reversed(take(above(live, 120), 24)), 120), take(below(live, 120), 25)...)},
		{"around wins over before", history.Query{Around: 100, Before: 50, Limit: 1}, []uint64{100}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pageIDs(t, e.reader, ch, c.q); !slices.Equal(got, c.want) {
				t.Fatalf("%+v: got %v\nwant %v", c.q, got, c.want)
			}
		})
	}
	for _, c := range []uint64{4242, 0, ^uint64(0)} {
		if got := pageIDs(t, e.reader, c, history.Query{Around: 5}); len(got) != 0 {
			t.Fatalf("empty channel %d: %v", c, got)
		}
	}
}

// reference pages a sorted id list the slow, obvious way.
func reference(live []uint64, q history.Query) []uint64 {
	limit := q.Limit
	if limit < 1 {
		limit = 50
	}
	limit = min(limit, 100)
	switch {
	case q.Around != 0:
		older, newer := below(live, q.Around), above(live, q.Around)
		hit := 0
		if slices.Contains(live, q.Around) {
			hit = 1
		}
		o := min(limit/2, len(older))
		n := min(limit-hit-o, len(newer))
		o = min(limit-hit-n, len(older))
		out := reversed(newer[:n])
		if hit == 1 {
			out = append(out, q.Around)
		}
		return append(out, older[:o]...)
	case q.Before != 0:
		return take(below(live, q.Before), limit)
	case q.After != 0:
		return reversed(take(above(live, q.After), limit))
	}
	return take(reversed(live), limit)
}

func TestPageMatchesReference(t *testing.T) {
	e, live := pagingEnv(t)
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 1500 {
		var q history.Query
		x := rng.Uint64N(262) // a little past both ends
		switch rng.IntN(4) {
		case 0:
			q.Before = x
		case 1:
			q.After = x
		case 2:
			q.Around = x
		}
		q.Limit = rng.IntN(110) - 3
		page, err := e.reader.Page(ch, q)
		if err != nil {
			t.Fatal(err)
		}
		ms := decodePage(t, page)
		if got, want := idsOf(ms), reference(live, q); !slices.Equal(got, want) {
			t.Fatalf("query %d %+v:\ngot  %v\nwant %v", i, q, got, want)
		}
		if i%10 != 0 {
			continue
		}
		// The page is the stored rows joined, byte for byte.
		var join []byte
		for _, m := range ms {
			raw, ok, err := e.reader.Raw(ch, uint64(m.ID))
			if !ok || err != nil {
				t.Fatalf("Raw %d: %v %v", m.ID, ok, err)
			}
			if len(join) > 0 {
				join = append(join, ',')
			}
			join = append(join, raw...)
		}
		if want := "[" + string(join) + "]"; string(page) != want {
			t.Fatalf("query %+v: page is not the stored rows joined", q)
		}
	}
}

// Readers run while the runner writes; under -race this checks the read path shares nothing.
func TestConcurrentReadsWhileWriting(t *testing.T) {
	e := newEnv(t, nil)
	stop := make(chan struct{})
	done := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					done <- nil
					return
				default:
				}
				page, err := e.reader.Page(ch, history.Query{Limit: 20})
				if err == nil && !json.Valid(page) {
					err = &json.SyntaxError{}
				}
				if err != nil {
					done <- err
					return
				}
			}
		}()
	}
	for id := uint64(1); id <= 300; id++ {
		e.append(ch, created(id, "a@x.example", "m"), reacted(id, "b@x.example", "👍"))
	}
	e.sync()
	close(stop)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := pageIDs(t, e.reader, ch, history.Query{Limit: 3}); !slices.Equal(got, []uint64{300, 299, 298}) {
		t.Fatalf("page: %v", got)
	}
}
