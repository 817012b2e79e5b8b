package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/polyproto-chat/server/snowflake"
)

// memberConn is one member's gateway connection, subscribed to chat. It is a lean client of the
// protocol (docs/PROTOCOL.md section 4), not the SDK's Gateway: with thousands of connections
// sharing the server's cores, the tool must not spend a JSON decoding per delivery. A
// MESSAGE_CREATE is recognised by the prefix the server writes and its nonce and "s" are read in
// place; every other frame goes through encoding/json. It does not reconnect: a dropped
// connection is a finding, reported with its close code.
type memberConn struct {
	b     *chatBench
	actor int
	guild snowflake.ID
	token string

	ws        *websocket.Conn
	interval  time.Duration
	lastS     atomic.Int64 // last s received; frames come in order, so heartbeats cover (acked, lastS]
	beatNow   chan struct{}
	closing   atomic.Bool
	readDone  chan struct{}
	writeDone chan struct{}

	// Owned by the reader goroutine until readDone.
	deliveries int64 // MESSAGE_CREATE of this run's messages
	foreign    int64 // MESSAGE_CREATE of other runs' messages, or with a nonce the tool did not issue
	other      int64 // any other dispatch after READY
	acks       int64 // heartbeat ACKs
	dropped    bool
	closeCode  int // 0: no close frame (network error)
	closeText  string
}

var (
	msgCreatePrefix = []byte(`{"n":"chat","op":0,"d":{"t":"MESSAGE_CREATE"`)
	nonceKey        = []byte(`"nonce":"`)
	sKey            = []byte(`"s":`)
)

// anyFrame is a frame decoded the slow way.
type anyFrame struct {
	N  string          `json:"n"`
	Op json.Number     `json:"op"`
	S  json.Number     `json:"s"`
	D  json.RawMessage `json:"d"`
}

// open dials, Identifies, subscribes to chat and waits for READY, which must list the member's
// guild. It leaves the connection ready for serve.
func (m *memberConn) open(ctx context.Context, dialer *websocket.Dialer, url string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ws, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	m.ws = ws
	ws.SetReadLimit(16 << 20)
	dl, _ := ctx.Deadline()
	_ = ws.SetReadDeadline(dl)
	m.lastS.Store(-1)
	var buf []byte
	f, err := m.readAny(&buf)
	if err != nil {
		ws.Close()
		return fmt.Errorf("hello: %w", err)
	}
	var hello struct {
		Interval json.Number `json:"heartbeat_interval"`
	}
	if op, _ := f.Op.Int64(); op != 1 || json.Unmarshal(f.D, &hello) != nil {
		ws.Close()
		return fmt.Errorf("want Hello, got op %s", f.Op)
	}
	ms, _ := hello.Interval.Int64()
	m.interval = time.Duration(max(ms, 100)) * time.Millisecond
	_ = ws.SetWriteDeadline(dl)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"n":"core","op":2,"d":{"token":`+strconv.Quote(m.token)+`}}`)); err != nil {
		ws.Close()
		return fmt.Errorf("identify: %w", err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"n":"core","op":8,"d":{"action":"subscribe","service":"chat"}}`)); err != nil {
		ws.Close()
		return fmt.Errorf("subscribe: %w", err)
	}
	want := []byte(`"id":"` + m.guild.String() + `"`)
	for {
		f, err := m.readAny(&buf)
		if err != nil {
			ws.Close()
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == 4004 {
				return fmt.Errorf("the server refused the token (close 4004 %s): a --state file from another server or data dir?", ce.Text)
			}
			return fmt.Errorf("waiting for READY: %w", err)
		}
		op, _ := f.Op.Int64()
		switch {
		case f.N == "core" && op == 9:
			var ack struct {
				Success bool   `json:"success"`
				Error   string `json:"error"`
			}
			if json.Unmarshal(f.D, &ack) != nil || !ack.Success {
				ws.Close()
				return fmt.Errorf("subscribing to chat refused: %s", ack.Error)
			}
		case f.N == "chat" && op == 0:
			var d struct {
				T string          `json:"t"`
				D json.RawMessage `json:"d"`
			}
			if json.Unmarshal(f.D, &d) == nil && d.T == "READY" {
				if !bytes.Contains(d.D, want) {
					ws.Close()
					return fmt.Errorf("READY does not list guild %s", m.guild)
				}
				_ = ws.SetReadDeadline(time.Time{})
				_ = ws.SetWriteDeadline(time.Time{})
				return nil
			}
		}
	}
}

// readFrame reads the next message into *buf, reusing its storage.
func (m *memberConn) readFrame(buf *[]byte) error {
	_, r, err := m.ws.NextReader()
	if err != nil {
		return err
	}
	b := (*buf)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*buf = b
			return err
		}
	}
	*buf = b
	return nil
}

// readAny reads and decodes the next frame, noting its s.
func (m *memberConn) readAny(buf *[]byte) (anyFrame, error) {
	if err := m.readFrame(buf); err != nil {
		return anyFrame{}, err
	}
	var f anyFrame
	if err := json.Unmarshal(*buf, &f); err != nil {
		return f, fmt.Errorf("bad frame %q: %w", *buf, err)
	}
	if f.N == "" {
		f.N = "core"
	}
	if s, err := f.S.Int64(); err == nil {
		m.lastS.Store(s)
	}
	return f, nil
}

// serve runs the reader and the heartbeat writer until ctx ends or the server closes.
func (m *memberConn) serve(ctx context.Context) {
	m.beatNow = make(chan struct{}, 1)
	m.readDone, m.writeDone = make(chan struct{}), make(chan struct{})
	go m.write(ctx)
	go m.read()
}

func (m *memberConn) read() {
	defer close(m.readDone)
	runPrefix := []byte(m.b.runID + ".")
	var buf []byte
	for {
		if err := m.readFrame(&buf); err != nil {
			if !m.closing.Load() {
				m.dropped = true
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					m.closeCode, m.closeText = ce.Code, ce.Text
				} else {
					m.closeText = err.Error()
				}
			}
			return
		}
		now := m.b.since()
		if bytes.HasPrefix(buf, msgCreatePrefix) {
			if s, ok := trailingS(buf); ok {
				m.lastS.Store(s)
				if seq, ok := nonceSeq(buf, runPrefix); ok && m.b.delivered(seq, now) {
					m.deliveries++
				} else {
					m.foreign++
				}
				continue
			}
		}
		var f anyFrame
		if err := json.Unmarshal(buf, &f); err != nil {
			m.other++
			continue
		}
		if s, err := f.S.Int64(); err == nil {
			m.lastS.Store(s)
		}
		op, _ := f.Op.Int64()
		switch {
		case (f.N == "" || f.N == "core") && op == 7:
			m.acks++
		case (f.N == "" || f.N == "core") && op == 11:
			select {
			case m.beatNow <- struct{}{}:
			default:
			}
		default:
			m.other++
		}
	}
}

// write sends a heartbeat every interval (and at once on op 11) acknowledging the frames
// received since the last one, and closes with 1000 when ctx ends.
func (m *memberConn) write(ctx context.Context) {
	defer close(m.writeDone)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	acked := int64(-1)
	for {
		select {
		case <-ctx.Done():
			m.closing.Store(true)
			_ = m.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench over"), time.Now().Add(time.Second))
			select {
			case <-m.readDone:
			case <-time.After(2 * time.Second):
			}
			m.ws.Close()
			return
		case <-m.readDone:
			m.ws.Close()
			return
		case <-t.C:
		case <-m.beatNow:
		}
		last := m.lastS.Load()
		d := `{}`
		if last > acked {
			d = `{"from":` + strconv.FormatInt(acked+1, 10) + `,"to":` + strconv.FormatInt(last, 10) + `}`
			acked = last
		}
		_ = m.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := m.ws.WriteMessage(websocket.TextMessage, []byte(`{"n":"core","op":0,"d":`+d+`}`)); err != nil {
			m.ws.Close() // fails the reader, which reports the drop
			<-m.readDone
			return
		}
	}
}

// wait is for the reader and writer to end (after ctx was cancelled).
func (m *memberConn) wait() {
	<-m.writeDone
	<-m.readDone
}

// trailingS reads the "s" the server writes last: `...,"s":123}`.
func trailingS(b []byte) (int64, bool) {
	i := bytes.LastIndex(b, sKey)
	if i < 0 || len(b) == 0 || b[len(b)-1] != '}' {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b[i+len(sKey):len(b)-1]), 10, 64)
	return v, err == nil
}

// nonceSeq reads the sequence number from a nonce "<run id>.<seq>" of this run. The nonce is
// the first "nonce" member: message content is escaped JSON and cannot contain `"nonce":"`.
func nonceSeq(b, runPrefix []byte) (uint64, bool) {
	i := bytes.Index(b, nonceKey)
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(nonceKey):]
	if !bytes.HasPrefix(rest, runPrefix) {
		return 0, false
	}
	rest = rest[len(runPrefix):]
	var seq uint64
	n := 0
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '9' && n < 19; n++ {
		seq = seq*10 + uint64(rest[n]-'0')
	}
	if n == 0 || n >= len(rest) || rest[n] != '"' {
		return 0, false
	}
	return seq, true
}

// connectAll opens every member's connection, 64 at a time, and starts serving each as soon as it
// has READY (so that it heartbeats while the others open); they run until connCtx ends.
func (b *chatBench) connectAll(ctx, connCtx context.Context, url string, log io.Writer) error {
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	var mu sync.Mutex
	return forEach(ctx, len(b.conns), 64, log, "gateway connections ready", func(ctx context.Context, i int) error {
		m := b.conns[i]
		if err := m.open(ctx, dialer, url); err != nil {
			return fmt.Errorf("gateway connection of %s: %w", b.w.Actors[m.actor].FID, err)
		}
		m.serve(connCtx)
		mu.Lock()
		b.opened = append(b.opened, m)
		mu.Unlock()
		return nil
	})
}
