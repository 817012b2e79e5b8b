package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/snowflake"
)

// Messages, pins, reactions, typing and the audit routes (PROTOCOL.md section 6).

// MessageQuery picks a page of history: at most one of Before, After and Around, and Limit
// 1-100 (0: the server's default, 50).
type MessageQuery struct {
	Before, After, Around snowflake.ID
	Limit                 int
}

func (q MessageQuery) values() (url.Values, error) {
	v := url.Values{}
	for _, p := range []struct {
		name string
		id   snowflake.ID
	}{{"before", q.Before}, {"after", q.After}, {"around", q.Around}} {
		if p.id != 0 {
			v.Set(p.name, p.id.String())
		}
	}
	if len(v) > 1 {
		return nil, errors.New("at most one of before, after and around")
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v, nil
}

// Messages reads a page of a channel's history, newest first.
func (ch *Chat) Messages(ctx context.Context, channel snowflake.ID, q MessageQuery) ([]Message, error) {
	query, err := q.values()
	if err == nil {
		err = checkID("channel", channel)
	}
	if err != nil {
		return nil, fmt.Errorf("client: messages: %w", err)
	}
	var out []Message
	if err := ch.get(ctx, "/channels/"+channel.String()+"/messages", query, &out); err != nil {
		return nil, fmt.Errorf("client: messages of channel %s: %w", channel, err)
	}
	return out, nil
}

// Message fetches one message.
func (ch *Chat) Message(ctx context.Context, channel, id snowflake.ID) (Message, error) {
	var out Message
	if err := firstErr(checkID("channel", channel), checkID("message", id)); err != nil {
		return Message{}, fmt.Errorf("client: message: %w", err)
	}
	if err := ch.get(ctx, messagePath(channel, id), nil, &out); err != nil {
		return Message{}, fmt.Errorf("client: message %s of channel %s: %w", id, channel, err)
	}
	return out, nil
}

// SendOptions are the optional parts of a message: Attachments are absolute http(s) URLs.
type SendOptions struct {
	Attachments []string
}

// sendBody is POST /channels/{id}/messages; edits send the same without a nonce.
type sendBody struct {
	Content     string   `json:"content"`
	Attachments []string `json:"attachments,omitempty"`
	Nonce       string   `json:"nonce,omitempty"`
	Timestamp   int64    `json:"timestamp"`
	Signature   string   `json:"signature"`
}

// Send signs and posts a message. It makes a fresh nonce, and when the answer is lost (a
// network error) or the server failed (5xx) it sends the very same request once more: the
// server answers a repeated nonce with the message it stored, so a message is never posted
// twice.
func (ch *Chat) Send(ctx context.Context, channel snowflake.ID, content string, opts SendOptions) (Message, error) {
	if err := checkID("channel", channel); err != nil {
		return Message{}, fmt.Errorf("client: send: %w", err)
	}
	nonce, err := newNonce()
	if err != nil {
		return Message{}, fmt.Errorf("client: send to channel %s: %w", channel, err)
	}
	server, err := ch.ownDomain(ctx)
	if err != nil {
		return Message{}, fmt.Errorf("client: send to channel %s: the server's domain: %w", channel, err)
	}
	body, err := ch.signMessage(server, channel, nonce, content, opts.Attachments, time.Now())
	if err != nil {
		return Message{}, fmt.Errorf("client: send to channel %s: %w", channel, err)
	}
	r := chatRequest{method: http.MethodPost, path: "/channels/" + channel.String() + "/messages", body: body}
	var out Message
	if err := ch.doRetryOnce(ctx, r, &out); err != nil {
		return Message{}, fmt.Errorf("client: send to channel %s: %w", channel, err)
	}
	return out, nil
}

// doRetryOnce is do, resending once after a transport error or a 5xx. The body is encoded once,
// so the retry is byte for byte the same request.
func (ch *Chat) doRetryOnce(ctx context.Context, r chatRequest, out any) error {
	payload, err := encodeBody(r)
	if err != nil {
		return err
	}
	status, data, err := ch.roundTrip(ctx, r, payload)
	if retryable(status, err) && ctx.Err() == nil {
		ch.c.log.DebugContext(ctx, "polyproto chat request retried", "method", r.method, "path", r.path,
			"status", status, "err", err)
		status, data, err = ch.roundTrip(ctx, r, payload)
	}
	if err != nil {
		return err
	}
	return decodeAnswer(r, status, data, out)
}

func retryable(status int, err error) bool {
	if err != nil {
		var te *transportError
		return errors.As(err, &te)
	}
	return status >= 500
}

// newNonce is 16 random bytes in hex: unique per message without any coordination.
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// signMessage builds the body of a new message signed with the session's key, for channel on the
// server whose domain is server.
func (ch *Chat) signMessage(server string, channel snowflake.ID, nonce, content string, attachments []string, now time.Time) (sendBody, error) {
	if err := ch.canSign(); err != nil {
		return sendBody{}, err
	}
	ts := now.UnixMilli()
	b := identity.MessageSig{
		Server: server, ChannelID: uint64(channel), AuthorFID: ch.s.FID.String(), CertSerial: ch.s.Cert.Serial,
		TimestampMS: ts, Nonce: nonce, Content: content, Attachments: attachments,
	}.Bytes()
	sig := identity.SignMessage(ch.s.Key, b)
	if sig == nil {
		return sendBody{}, errors.New("the message cannot be signed (a field too long to encode)")
	}
	return sendBody{Content: content, Attachments: attachments, Nonce: nonce, Timestamp: ts,
		Signature: base64.RawURLEncoding.EncodeToString(sig)}, nil
}

// signEdit builds the body of a new version of message id.
func (ch *Chat) signEdit(server string, channel, id snowflake.ID, content string, attachments []string, now time.Time) (sendBody, error) {
	if err := ch.canSign(); err != nil {
		return sendBody{}, err
	}
	ts := now.UnixMilli()
	b := identity.EditSig{
		Server: server, ChannelID: uint64(channel), MessageID: uint64(id), AuthorFID: ch.s.FID.String(),
		CertSerial: ch.s.Cert.Serial, TimestampMS: ts, Content: content, Attachments: attachments,
	}.Bytes()
	sig := identity.SignMessage(ch.s.Key, b)
	if sig == nil {
		return sendBody{}, errors.New("the edit cannot be signed (a field too long to encode)")
	}
	return sendBody{Content: content, Attachments: attachments, Timestamp: ts,
		Signature: base64.RawURLEncoding.EncodeToString(sig)}, nil
}

// canSign checks that the session can sign: the server verifies with the session's ID-Cert, so
// the serial signed must be that cert's.
func (ch *Chat) canSign() error {
	if ch.s.Cert == nil {
		return fmt.Errorf("session %s/%s has no ID-Cert to sign with", ch.s.FID, ch.s.SessionID)
	}
	return nil
}

// Edit signs and posts a new version of one of the caller's messages. It is not retried: an
// edit carries no nonce, so a resent one would be a further version.
func (ch *Chat) Edit(ctx context.Context, channel, id snowflake.ID, content string, opts SendOptions) (Message, error) {
	if err := firstErr(checkID("channel", channel), checkID("message", id)); err != nil {
		return Message{}, fmt.Errorf("client: edit: %w", err)
	}
	server, err := ch.ownDomain(ctx)
	if err != nil {
		return Message{}, fmt.Errorf("client: edit message %s: the server's domain: %w", id, err)
	}
	body, err := ch.signEdit(server, channel, id, content, opts.Attachments, time.Now())
	if err != nil {
		return Message{}, fmt.Errorf("client: edit message %s: %w", id, err)
	}
	var out Message
	if err := ch.write(ctx, http.MethodPatch, messagePath(channel, id), body, &out); err != nil {
		return Message{}, fmt.Errorf("client: edit message %s of channel %s: %w", id, channel, err)
	}
	return out, nil
}

// DeleteMessage deletes a message (its author, or MANAGE_MESSAGES).
func (ch *Chat) DeleteMessage(ctx context.Context, channel, id snowflake.ID) error {
	if err := firstErr(checkID("channel", channel), checkID("message", id)); err != nil {
		return fmt.Errorf("client: delete message: %w", err)
	}
	return ch.remove(ctx, "delete message "+id.String()+" of channel "+channel.String(), messagePath(channel, id))
}

// BulkDelete deletes 2-100 messages of a channel at once (MANAGE_MESSAGES).
func (ch *Chat) BulkDelete(ctx context.Context, channel snowflake.ID, ids []snowflake.ID) error {
	if err := checkID("channel", channel); err != nil {
		return fmt.Errorf("client: bulk delete: %w", err)
	}
	body := map[string][]snowflake.ID{"messages": ids}
	if err := ch.write(ctx, http.MethodPost, "/channels/"+channel.String()+"/messages/bulk-delete", body, nil); err != nil {
		return fmt.Errorf("client: bulk delete %d messages of channel %s: %w", len(ids), channel, err)
	}
	return nil
}

// Pins lists a channel's pinned messages.
func (ch *Chat) Pins(ctx context.Context, channel snowflake.ID) ([]Message, error) {
	var out []Message
	if err := checkID("channel", channel); err != nil {
		return nil, fmt.Errorf("client: pins: %w", err)
	}
	if err := ch.get(ctx, "/channels/"+channel.String()+"/pins", nil, &out); err != nil {
		return nil, fmt.Errorf("client: pins of channel %s: %w", channel, err)
	}
	return out, nil
}

// Pin pins a message (MANAGE_MESSAGES; at most 50 per channel).
func (ch *Chat) Pin(ctx context.Context, channel, id snowflake.ID) error {
	if err := firstErr(checkID("channel", channel), checkID("message", id)); err != nil {
		return fmt.Errorf("client: pin: %w", err)
	}
	if err := ch.write(ctx, http.MethodPut, pinPath(channel, id), nil, nil); err != nil {
		return fmt.Errorf("client: pin message %s of channel %s: %w", id, channel, err)
	}
	return nil
}

// Unpin unpins a message (MANAGE_MESSAGES).
func (ch *Chat) Unpin(ctx context.Context, channel, id snowflake.ID) error {
	if err := firstErr(checkID("channel", channel), checkID("message", id)); err != nil {
		return fmt.Errorf("client: unpin: %w", err)
	}
	return ch.remove(ctx, "unpin message "+id.String()+" of channel "+channel.String(), pinPath(channel, id))
}

// React adds the caller's reaction emoji to a message.
func (ch *Chat) React(ctx context.Context, channel, id snowflake.ID, emoji string) error {
	if err := checkReaction(channel, id, emoji); err != nil {
		return fmt.Errorf("client: react: %w", err)
	}
	if err := ch.write(ctx, http.MethodPut, reactionPath(channel, id, emoji, "@me"), nil, nil); err != nil {
		return fmt.Errorf("client: react %q to message %s: %w", emoji, id, err)
	}
	return nil
}

// Unreact removes the caller's reaction emoji from a message.
func (ch *Chat) Unreact(ctx context.Context, channel, id snowflake.ID, emoji string) error {
	if err := checkReaction(channel, id, emoji); err != nil {
		return fmt.Errorf("client: unreact: %w", err)
	}
	return ch.remove(ctx, fmt.Sprintf("unreact %q to message %s", emoji, id), reactionPath(channel, id, emoji, "@me"))
}

// RemoveReaction removes someone else's reaction (MANAGE_MESSAGES).
func (ch *Chat) RemoveReaction(ctx context.Context, channel, id snowflake.ID, emoji, fid string) error {
	if err := firstErr(checkReaction(channel, id, emoji), checkFID(fid)); err != nil {
		return fmt.Errorf("client: remove reaction: %w", err)
	}
	return ch.remove(ctx, fmt.Sprintf("remove reaction %q of %s to message %s", emoji, fid, id),
		reactionPath(channel, id, emoji, url.PathEscape(fid)))
}

// Typing tells the channel's viewers that the caller is typing (not stored).
func (ch *Chat) Typing(ctx context.Context, channel snowflake.ID) error {
	if err := checkID("channel", channel); err != nil {
		return fmt.Errorf("client: typing: %w", err)
	}
	if err := ch.write(ctx, http.MethodPost, "/channels/"+channel.String()+"/typing", nil, nil); err != nil {
		return fmt.Errorf("client: typing in channel %s: %w", channel, err)
	}
	return nil
}

// AuditQuery pages through an audit log, newest first: Before an entry's revision (0: from the
// newest), Limit 1-100 (0: the server's default, 50).
type AuditQuery struct {
	Before uint64
	Limit  int
}

// AuditLog reads a guild's audit log (VIEW_AUDIT_LOG).
func (ch *Chat) AuditLog(ctx context.Context, guild snowflake.ID, q AuditQuery) ([]AuditEntry, error) {
	var out []AuditEntry
	if err := checkID("guild", guild); err != nil {
		return nil, fmt.Errorf("client: audit log: %w", err)
	}
	query := url.Values{}
	if q.Before != 0 {
		query.Set("before", strconv.FormatUint(q.Before, 10))
	}
	if q.Limit != 0 {
		query.Set("limit", strconv.Itoa(q.Limit))
	}
	if err := ch.get(ctx, "/guilds/"+guild.String()+"/audit-log", query, &out); err != nil {
		return nil, fmt.Errorf("client: audit log of guild %s: %w", guild, err)
	}
	return out, nil
}

// ChannelEvents replays a channel's stream from revision from, every edit and deletion included
// (VIEW_AUDIT_LOG or MANAGE_MESSAGES). limit 0 takes the server's default.
func (ch *Chat) ChannelEvents(ctx context.Context, channel snowflake.ID, from uint64, limit int) (EventPage, error) {
	var out EventPage
	if err := checkID("channel", channel); err != nil {
		return EventPage{}, fmt.Errorf("client: channel events: %w", err)
	}
	query := url.Values{"from": {strconv.FormatUint(from, 10)}}
	if limit != 0 {
		query.Set("limit", strconv.Itoa(limit))
	}
	if err := ch.get(ctx, "/channels/"+channel.String()+"/events", query, &out); err != nil {
		return EventPage{}, fmt.Errorf("client: events of channel %s: %w", channel, err)
	}
	return out, nil
}

func messagePath(channel, id snowflake.ID) string {
	return "/channels/" + channel.String() + "/messages/" + id.String()
}

func pinPath(channel, id snowflake.ID) string {
	return "/channels/" + channel.String() + "/pins/" + id.String()
}

// reactionPath is the reaction route of emoji by who ("@me" or an escaped FID).
func reactionPath(channel, id snowflake.ID, emoji, who string) string {
	return messagePath(channel, id) + "/reactions/" + url.PathEscape(emoji) + "/" + who
}

func checkReaction(channel, id snowflake.ID, emoji string) error {
	if emoji == "" {
		return errors.New("no emoji")
	}
	return firstErr(checkID("channel", channel), checkID("message", id))
}
