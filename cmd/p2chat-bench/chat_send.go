package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// sender is one member sending into one channel: the first --senders members of each channel.
// It posts signed messages the way the SDK's Chat.Send does (same canonical bytes, same
// signature), but without its JSON round trips, and it never resends: a failure is counted.
type sender struct {
	b       *chatBench
	url     string
	auth    string
	key     ed25519.PrivateKey
	fid     string
	server  string // the server's domain, signed with every message: the actors are its own
	serial  uint64
	channel uint64
}

type job struct {
	seq      uint64
	rec      *msgRec
	intended int64
}

// lateAfter is how far behind its intended time a send may start before it counts as late.
const lateAfter = 5 * time.Millisecond

func newSender(b *chatBench, actor int, channel snowflake.ID) *sender {
	a := &b.w.Actors[actor]
	_, domain, _ := strings.Cut(a.FID, "@")
	return &sender{b: b, url: b.w.Server + "/.p2/chat/v1/channels/" + channel.String() + "/messages",
		auth: "Bearer " + a.Token, key: a.Key, fid: a.FID, server: domain, serial: a.serial, channel: uint64(channel)}
}

// send posts message seq, meant to leave at intended (ns since the tool's start).
func (s *sender) send(ctx context.Context, j job) {
	b := s.b
	if lag := b.since() - j.intended; lag > int64(lateAfter) {
		b.late.Add(1)
		for {
			m := b.maxLag.Load()
			if lag <= m || b.maxLag.CompareAndSwap(m, lag) {
				break
			}
		}
	}
	inWindow := b.inWindow(j.intended)
	nonce := b.runID + "." + strconv.FormatUint(j.seq, 10)
	content := "p2chat-bench message " + strconv.FormatUint(j.seq, 10)
	ts := time.Now().UnixMilli()
	sig := identity.SignMessage(s.key, identity.MessageSig{Server: s.server, ChannelID: s.channel, AuthorFID: s.fid, CertSerial: s.serial,
		TimestampMS: ts, Nonce: nonce, Content: content}.Bytes())
	// Every string here is plain ASCII without quotes or backslashes, so it needs no escaping.
	body := make([]byte, 0, 160+len(content))
	body = append(body, `{"content":"`...)
	body = append(body, content...)
	body = append(body, `","nonce":"`...)
	body = append(body, nonce...)
	body = append(body, `","timestamp":`...)
	body = strconv.AppendInt(body, ts, 10)
	body = append(body, `,"signature":"`...)
	body = base64.RawURLEncoding.AppendEncode(body, sig)
	body = append(body, `"}`...)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		b.fail(j, inWindow, "request", err.Error())
		return
	}
	req.Header["Authorization"] = []string{s.auth}
	req.Header["Content-Type"] = []string{"application/json"}
	resp, err := b.httpc.Do(req)
	if err != nil {
		b.fail(j, inWindow, transportKind(err), err.Error())
		return
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done := b.since()
		j.rec.state.Store(msgAccepted)
		b.acked.Add(1)
		if inWindow {
			b.winAcked.Add(1)
			b.ackHist.add(time.Duration(done - j.intended))
		}
		return
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	code := "HTTP " + strconv.Itoa(resp.StatusCode)
	if json.Unmarshal(data, &e) == nil && e.Code != "" {
		code = strconv.Itoa(resp.StatusCode) + " " + e.Code
	}
	b.fail(j, inWindow, code, e.Message)
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &ne) && ne.Timeout():
		return "transport timeout"
	}
	return "transport error"
}

// fail counts a message that was not accepted.
func (b *chatBench) fail(j job, inWindow bool, code, example string) {
	j.rec.state.Store(msgFailed)
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if b.errs[code] == 0 {
		b.errExample[code] = example
	}
	b.errs[code]++
	if inWindow {
		b.winErrs++
	}
}

// drive sends the run's messages (sendClock.drive) through the senders.
func (b *chatBench) drive(ctx context.Context) {
	b.sendClock.drive(ctx, b.cfg.Rate, b.cfg.Inflight, len(b.senders), func(ctx context.Context, i int, j job) { b.senders[i].send(ctx, j) })
}

// delivered records that a member connection received message seq at now; false if seq is not
// one of this run's messages.
func (b *chatBench) delivered(seq uint64, now int64) bool {
	r := b.msgs.get(seq)
	if r == nil {
		return false
	}
	r.delivered.Add(1)
	if it := r.intended.Load(); b.inWindow(it) {
		b.deliverHist.add(time.Duration(now - it))
	}
	return true
}
