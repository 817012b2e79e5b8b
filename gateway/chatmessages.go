package gateway

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/channel"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/permissions"
	"github.com/polyproto-chat/server/projections/history"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
	"github.com/polyproto-chat/server/snowflake"
)

// errBadSignature: a message signature that does not verify with the session's ID-Cert.
var errBadSignature = errors.New("message signature does not verify with the session's ID-Cert")

func (s *Server) messageRoutes(h func(string, func(http.ResponseWriter, *http.Request, account.Principal) error)) {
	const p = "/.p2/chat/v1/channels/{channel}"
	h("GET "+p+"/messages", s.listMessages)
	h("GET "+p+"/messages/{message}", s.getMessage)
	h("POST "+p+"/messages", s.sendMessage)
	h("PATCH "+p+"/messages/{message}", s.editMessage)
	h("DELETE "+p+"/messages/{message}", s.deleteMessage)
	h("POST "+p+"/messages/bulk-delete", s.bulkDelete)
	h("GET "+p+"/pins", s.listPins)
	h("PUT "+p+"/pins/{message}", s.pin)
	h("DELETE "+p+"/pins/{message}", s.unpin)
	h("PUT "+p+"/messages/{message}/reactions/{emoji}/{fid}", s.react)
	h("DELETE "+p+"/messages/{message}/reactions/{emoji}/{fid}", s.unreact)
	h("POST "+p+"/typing", s.typing)
}

// channelBy is by plus the caller's permissions in channel ch: the By of channel commands.
func (s *Server) channelBy(r *http.Request, p account.Principal, ch uint64) (channel.By, guild.Access, error) {
	by, err := s.by(r, p)
	if err != nil {
		return channel.By{}, guild.Access{}, err
	}
	a, err := s.access(r.Context(), by, ch)
	if err != nil {
		return channel.By{}, guild.Access{}, err
	}
	if a.Channel.Type != eventsv1.ChannelType_CHANNEL_TYPE_TEXT {
		return channel.By{}, guild.Access{}, fmt.Errorf("%w: channel %d is a category, which holds no messages", errBadRequest, ch)
	}
	return channel.By{FID: by.FID, SessionID: by.SessionID, Reason: by.Reason, At: by.At, Perms: a.Permissions}, a, nil
}

// askChannel sends cmd to channel ch.
func (s *Server) askChannel(ctx context.Context, ch uint64, cmd any) (any, *actors.Result, error) {
	res, err := s.cfg.Chat.Channels.Request(ctx, strconv.FormatUint(ch, 10), cmd)
	if err != nil {
		return nil, nil, err
	}
	r := res.(*actors.Result)
	return r.Reply, r, nil
}

// waitHistory waits until the history read model holds every event of channel ch stored so far
// (bounded by readWait; after that it answers from what it has).
func (s *Server) waitHistory(ctx context.Context, ch uint64) {
	recs, err := s.cfg.Chat.Store.ReadStream(ctx, channel.Stream(ch), events.Backwards, events.End, 1)
	if err != nil || len(recs) == 0 {
		return // no messages yet (ErrStreamNotFound) or an outage the read below reports
	}
	s.waitHistoryAt(ctx, recs[0].Position)
}

func (s *Server) waitHistoryAt(ctx context.Context, pos events.Position) {
	ctx, cancel := context.WithTimeout(ctx, readWait)
	defer cancel()
	if err := s.cfg.Chat.ReadModels.WaitFor(ctx, history.Name, pos); err != nil {
		s.log.Warn("history read model lags; answering from what it has", "position", pos, "err", err)
	}
}

// readHistory checks that the caller may read channel ch's history, then waits until the read
// model holds everything stored there so far: the start of every history read.
func (s *Server) readHistory(r *http.Request, p account.Principal, ch uint64) error {
	_, a, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	if !a.Permissions.Has(permissions.ReadMessageHistory) {
		return fmt.Errorf("%w: READ_MESSAGE_HISTORY", guild.ErrForbidden)
	}
	s.waitHistory(r.Context(), ch)
	return nil
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write([]byte{'\n'})
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	q, err := historyQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.readHistory(r, p, ch); err != nil {
		return err
	}
	page, err := s.cfg.Chat.History.Page(ch, q)
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, page)
	return nil
}

// historyQuery reads before/after/around/limit strictly.
func historyQuery(v url.Values) (history.Query, error) {
	var q history.Query
	set := 0
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{"before", &q.Before}, {"after", &q.After}, {"around", &q.Around}} {
		if s := v.Get(f.name); s != "" {
			id, err := snowflake.Parse(s)
			if err != nil {
				return q, fmt.Errorf("%w: %s: %w", errBadRequest, f.name, err)
			}
			*f.dst, set = uint64(id), set+1
		}
	}
	if set > 1 {
		return q, fmt.Errorf("%w: give at most one of before, after and around", errBadRequest)
	}
	var err error
	q.Limit, err = intParam(v, "limit", 50, 1, 100)
	return q, err
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, id, err := channelMessage(r)
	if err != nil {
		return err
	}
	if err := s.readHistory(r, p, ch); err != nil {
		return err
	}
	return s.writeStored(w, http.StatusOK, ch, id)
}

func (s *Server) writeStored(w http.ResponseWriter, status int, ch, id uint64) error {
	raw, ok, err := s.cfg.Chat.History.Raw(ch, id)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("message %d: %w", id, channel.ErrNotFound)
	}
	writeRaw(w, status, raw)
	return nil
}

func channelMessage(r *http.Request) (ch, id uint64, err error) {
	if ch, err = pathID(r, "channel"); err != nil {
		return 0, 0, err
	}
	id, err = pathID(r, "message")
	return ch, id, err
}

type messageIn struct {
	Content     string   `json:"content"`
	Attachments []string `json:"attachments"`
	Nonce       string   `json:"nonce"`
	Timestamp   *int64   `json:"timestamp"`
	Signature   string   `json:"signature"`
}

func (in messageIn) signed(p account.Principal) (channel.Signed, error) {
	if in.Timestamp == nil {
		return channel.Signed{}, fmt.Errorf("%w: timestamp is required (Unix milliseconds, signed)", errBadRequest)
	}
	sig, err := base64.RawURLEncoding.DecodeString(in.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return channel.Signed{}, fmt.Errorf("%w: signature must be %d bytes, base64url without padding", errBadRequest, ed25519.SignatureSize)
	}
	return channel.Signed{Content: in.Content, Attachments: in.Attachments, TimestampMS: *in.Timestamp, CertSerial: p.Serial, Signature: sig}, nil
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	var in messageIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	signed, err := in.signed(p)
	if err != nil {
		return err
	}
	by, a, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	if a.Channel.GroupID != 0 {
		return fmt.Errorf("%w: channel %d takes MLS messages only, through group %d", errEncrypted, ch, a.Channel.GroupID)
	}
	// Cheap checks first: a signature is verified only for a message the sender may send.
	if !by.Perms.Has(permissions.SendMessages) {
		return fmt.Errorf("%w: SEND_MESSAGES", channel.ErrForbidden)
	}
	sig := identity.MessageSig{Server: s.cfg.Domain, ChannelID: ch, AuthorFID: p.FID, CertSerial: p.Serial, TimestampMS: signed.TimestampMS,
		Nonce: in.Nonce, Content: in.Content, Attachments: in.Attachments}
	if err := s.verifySigned(r.Context(), p, sig.Bytes(), signed.Signature); err != nil {
		return err
	}
	cmd := channel.Send{By: by, Signed: signed, GuildID: a.GuildID, ProposedID: uint64(s.cfg.Chat.IDs.Next()), Nonce: in.Nonce}
	rep, _, err := s.askChannel(r.Context(), ch, cmd)
	if err != nil {
		return err
	}
	sent := rep.(channel.Sent)
	if sent.Duplicate {
		s.waitHistory(r.Context(), ch)
		return s.writeStored(w, http.StatusOK, ch, sent.MessageID)
	}
	writeJSON(w, http.StatusCreated, history.FromCreated(ch, &eventsv1.MessageCreated{
		MessageId: sent.MessageID, GuildId: a.GuildID, AuthorFid: p.FID, Content: in.Content, Attachments: in.Attachments,
		Nonce: in.Nonce, TimestampMs: signed.TimestampMS, CertSerial: p.Serial, Signature: signed.Signature, SessionId: p.SessionID,
	}))
	return nil
}

// verifySigned checks sig over b with the key of the caller's session's ID-Cert.
func (s *Server) verifySigned(ctx context.Context, p account.Principal, b, sig []byte) error {
	v, err := s.sessionKey(ctx, p)
	if err != nil {
		return err
	}
	if err := identity.VerifyMessageWith(v, b, sig); err != nil {
		return fmt.Errorf("%w (cert serial %d)", errBadSignature, p.Serial)
	}
	return nil
}

// sessionKeys caches the verifiers of session certs' keys by FID and serial: a cert never
// changes, and a revoked one no longer authenticates, so an entry can only be stale for a token
// that is refused anyway. A Verifier has the key checked and decoded once, which saves a fifth
// of each verification. Bounded: cleared when full.
type sessionKeys struct {
	mu   sync.Mutex
	keys map[string]*identity.Verifier
}

const maxSessionKeys = 100_000

func (s *Server) sessionKey(ctx context.Context, p account.Principal) (*identity.Verifier, error) {
	k := p.FID + "\x00" + strconv.FormatUint(p.Serial, 10)
	s.keys.mu.Lock()
	v, ok := s.keys.keys[k]
	s.keys.mu.Unlock()
	if ok {
		return v, nil
	}
	rep, err := s.ask(ctx, p.FID, account.CertBySerial{Serial: p.Serial})
	if err != nil {
		return nil, err
	}
	cert, err := identity.ParseIDCert(rep.([]byte))
	if err != nil {
		return nil, fmt.Errorf("the stored cert of %s serial %d: %w", p.FID, p.Serial, err)
	}
	if v, err = identity.NewVerifier(cert.PublicKey); err != nil {
		return nil, fmt.Errorf("the stored cert of %s serial %d: %w", p.FID, p.Serial, err)
	}
	s.keys.mu.Lock()
	if s.keys.keys == nil || len(s.keys.keys) >= maxSessionKeys {
		s.keys.keys = map[string]*identity.Verifier{}
	}
	s.keys.keys[k] = v
	s.keys.mu.Unlock()
	return v, nil
}

// target looks up what the history knows of message id for a command about it.
func (s *Server) target(ctx context.Context, ch, id uint64, fid, emoji string) (channel.Target, error) {
	s.waitHistory(ctx, ch)
	f, err := s.cfg.Chat.History.Facts(ch, id, fid, emoji)
	if err != nil {
		return channel.Target{}, err
	}
	return channel.Target{Exists: f.Exists, Author: f.Author, Pinned: f.Pinned, Reacted: f.Reacted, Emoji: f.Emoji, Distinct: f.Distinct}, nil
}

func (s *Server) editMessage(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, id, err := channelMessage(r)
	if err != nil {
		return err
	}
	var in messageIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Nonce != "" {
		return fmt.Errorf("%w: an edit has no nonce", errBadRequest)
	}
	signed, err := in.signed(p)
	if err != nil {
		return err
	}
	by, a, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	if a.Channel.GroupID != 0 {
		return fmt.Errorf("%w: channel %d is encrypted; its plaintext messages stay as they were", errEncrypted, ch)
	}
	t, err := s.target(r.Context(), ch, id, "", "")
	if err != nil {
		return err
	}
	if !t.Exists {
		return fmt.Errorf("message %d: %w", id, channel.ErrNotFound)
	}
	if t.Author != p.FID {
		return fmt.Errorf("%w: only the author edits a message", channel.ErrForbidden)
	}
	sig := identity.EditSig{Server: s.cfg.Domain, ChannelID: ch, MessageID: id, AuthorFID: p.FID, CertSerial: p.Serial, TimestampMS: signed.TimestampMS,
		Content: in.Content, Attachments: in.Attachments}
	if err := s.verifySigned(r.Context(), p, sig.Bytes(), signed.Signature); err != nil {
		return err
	}
	_, res, err := s.askChannel(r.Context(), ch, channel.Edit{By: by, Signed: signed, MessageID: id, Target: t})
	if err != nil {
		return err
	}
	s.waitHistoryAt(r.Context(), res.Position)
	return s.writeStored(w, http.StatusOK, ch, id)
}

// messageCommand runs a channel command about the message of the path that answers 204.
func (s *Server) messageCommand(w http.ResponseWriter, r *http.Request, p account.Principal, emoji, fid string, cmd func(by channel.By, id uint64, t channel.Target) any) error {
	ch, id, err := channelMessage(r)
	if err != nil {
		return err
	}
	by, _, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	if fid == "" {
		fid = p.FID
	}
	t, err := s.target(r.Context(), ch, id, fid, emoji)
	if err != nil {
		return err
	}
	if _, _, err := s.askChannel(r.Context(), ch, cmd(by, id, t)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.messageCommand(w, r, p, "", "", func(by channel.By, id uint64, t channel.Target) any {
		return channel.Delete{By: by, MessageID: id, Target: t}
	})
}

func (s *Server) pin(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.messageCommand(w, r, p, "", "", func(by channel.By, id uint64, t channel.Target) any {
		return channel.Pin{By: by, MessageID: id, Target: t}
	})
}

func (s *Server) unpin(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	return s.messageCommand(w, r, p, "", "", func(by channel.By, id uint64, t channel.Target) any {
		return channel.Unpin{By: by, MessageID: id, Target: t}
	})
}

// reaction reads {emoji} and {fid} (@me or a FID) of the path.
func reaction(r *http.Request, p account.Principal) (emoji, fid string, err error) {
	emoji = r.PathValue("emoji")
	if emoji == "" || len(emoji) > channel.MaxEmojiLen {
		return "", "", fmt.Errorf("%w: emoji must be 1-%d bytes", errBadRequest, channel.MaxEmojiLen)
	}
	if r.PathValue("fid") == "@me" {
		return emoji, p.FID, nil
	}
	fid, err = pathFID(r, "fid")
	return emoji, fid, err
}

func (s *Server) react(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	emoji, fid, err := reaction(r, p)
	if err != nil {
		return err
	}
	if fid != p.FID {
		return fmt.Errorf("%w: one reacts only as oneself (@me)", errBadRequest)
	}
	return s.messageCommand(w, r, p, emoji, fid, func(by channel.By, id uint64, t channel.Target) any {
		return channel.React{By: by, MessageID: id, Emoji: emoji, Target: t}
	})
}

func (s *Server) unreact(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	emoji, fid, err := reaction(r, p)
	if err != nil {
		return err
	}
	return s.messageCommand(w, r, p, emoji, fid, func(by channel.By, id uint64, t channel.Target) any {
		return channel.Unreact{By: by, MessageID: id, Emoji: emoji, FID: fid, Target: t}
	})
}

func (s *Server) bulkDelete(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	var in struct {
		Messages []snowflake.ID `json:"messages"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if len(in.Messages) < 2 || len(in.Messages) > channel.MaxBulkDelete {
		return fmt.Errorf("%w: messages must list 2-%d ids", errBadRequest, channel.MaxBulkDelete)
	}
	by, _, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	ids := make([]uint64, len(in.Messages))
	for i, id := range in.Messages {
		ids[i] = uint64(id)
	}
	s.waitHistory(r.Context(), ch)
	exist, err := s.cfg.Chat.History.Exist(ch, ids)
	if err != nil {
		return err
	}
	if _, _, err := s.askChannel(r.Context(), ch, channel.BulkDelete{By: by, MessageIDs: ids, Existing: exist}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listPins(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	if err := s.readHistory(r, p, ch); err != nil {
		return err
	}
	page, err := s.cfg.Chat.History.Pins(ch)
	if err != nil {
		return err
	}
	writeRaw(w, http.StatusOK, page)
	return nil
}

func (s *Server) typing(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	by, a, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	if !by.Perms.Has(permissions.SendMessages) {
		return fmt.Errorf("%w: SEND_MESSAGES", channel.ErrForbidden)
	}
	s.cfg.Chat.Events.Typing(a.GuildID, ch, p.FID, by.At)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Audit log and channel replay: events as stored.

type auditEntry struct {
	Revision  uint64          `json:"revision"`
	Position  string          `json:"position"`
	Type      string          `json:"type"`
	Actor     string          `json:"actor"`
	SessionID string          `json:"session_id"`
	At        string          `json:"at"`
	Reason    string          `json:"reason"`
	Data      json.RawMessage `json:"data"`
}

func entry(rec *events.RecordedEvent) (auditEntry, error) {
	meta, err := rec.Meta()
	if err != nil {
		return auditEntry{}, err
	}
	msg, err := events.Decode(rec)
	if err != nil {
		return auditEntry{}, err
	}
	data, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(msg)
	if err != nil {
		return auditEntry{}, err
	}
	t := rec.Type
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	return auditEntry{Revision: rec.Revision, Position: strconv.FormatUint(uint64(rec.Position), 10), Type: t,
		Actor: meta.GetActorFid(), SessionID: meta.GetSessionId(), At: meta.GetRecordedAt().AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Reason: meta.GetReason(), Data: data}, nil
}

func entries(recs []events.RecordedEvent) ([]auditEntry, error) {
	out := make([]auditEntry, 0, len(recs))
	for i := range recs {
		e, err := entry(&recs[i])
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func intParam(v url.Values, name string, def, lo, hi int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s must be %d-%d", errBadRequest, name, lo, hi)
	}
	return n, nil
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	id, err := pathID(r, "guild")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 50, 1, 100)
	if err != nil {
		return err
	}
	from := events.End
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("%w: before must be a revision above 0", errBadRequest)
		}
		from = n - 1
	}
	by, _ := s.by(r, p)
	if _, _, err := s.askGuild(r.Context(), id, guild.AuditAccess{By: by}); err != nil {
		return err
	}
	recs, err := s.cfg.Chat.Store.ReadStream(r.Context(), guild.Stream(id), events.Backwards, from, limit)
	if err != nil {
		return err
	}
	out, err := entries(recs)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) channelEvents(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	ch, err := pathID(r, "channel")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := intParam(q, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	var from uint64
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("%w: from must be a stream revision", errBadRequest)
		}
	}
	_, a, err := s.channelBy(r, p, ch)
	if err != nil {
		return err
	}
	if !a.Permissions.Has(permissions.ViewAuditLog) && !a.Permissions.Has(permissions.ManageMessages) {
		return fmt.Errorf("%w: VIEW_AUDIT_LOG or MANAGE_MESSAGES", guild.ErrForbidden)
	}
	recs, err := s.cfg.Chat.Store.ReadStream(r.Context(), channel.Stream(ch), events.Forwards, from, limit)
	if err != nil && !errors.Is(err, events.ErrStreamNotFound) {
		return err
	}
	out, err := entries(recs)
	if err != nil {
		return err
	}
	next := from
	if len(recs) > 0 {
		next = recs[len(recs)-1].Revision + 1
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next": next})
	return nil
}
