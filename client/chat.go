package client

// The guild chat part of the SDK: the REST routes of docs/PROTOCOL.md section 6 under
// /.p2/chat/v1/, bound to one Session.
//
// Files: chat.go holds the Chat type and its HTTP plumbing, chat_types.go the objects,
// chat_guilds.go guilds, channels, roles, members, bans and invites, chat_messages.go messages
// (signed sends and edits), pins, reactions, typing and the audit routes, chat_verify.go the
// verification of message signatures against the author's ID-Cert, chat_events.go the typed
// decoding of the chat gateway dispatches.
//
// Send is the one exception to "the SDK never retries on its own" (doc.go): a message carries a
// nonce the server deduplicates, so resending it after a lost answer is safe and is what the
// protocol intends; every other write would risk doing the thing twice.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/polyproto-chat/server/snowflake"
)

// chatPrefix is where every guild chat route lives (PROTOCOL.md section 6).
const chatPrefix = "/.p2/chat/v1"

// maxChatResponse bounds a chat answer. A page of 100 messages of 4,000 characters and ten
// 2 KiB attachments each is about 4 MiB, far above the core routes' 1 MiB.
const maxChatResponse = 16 << 20

// maxReason is the longest audit reason the server stores (bytes of UTF-8, before encoding).
const maxReason = 512

// APIError is the error every failed chat request returns: the same type as the core routes'
// Error, `{"code", "message"}` with the HTTP status. Branch on it with errors.As.
type APIError = Error

// ChatOptions configure a Chat. The zero value is usable.
type ChatOptions struct {
	// Resolve maps an actor's home domain to the base URL of its server, where VerifyMessage
	// fetches the author's ID-Cert. It may answer "" to fall back to the default: the server
	// the Chat talks to for actors of its own domain, https://<domain> for the others.
	Resolve func(ctx context.Context, domain string) (string, error)
}

// Chat is a Session's view of guild chat at the server that issued its token. It is safe for
// concurrent use; WithReason returns a copy that shares its certificate cache.
type Chat struct {
	c       *Client
	s       *Session
	base    string // s.Server + chatPrefix
	reason  string // X-P2-Audit-Reason of writes; "" sends none
	resolve func(ctx context.Context, domain string) (string, error)
	certs   *certCache
}

// Chat returns the guild chat client of s, which must be a complete session (token, key,
// server); sending and editing messages also needs its ID-Cert.
func (c *Client) Chat(s *Session, opts ChatOptions) (*Chat, error) {
	if err := checkSession(s); err != nil {
		return nil, fmt.Errorf("client: chat: %w", err)
	}
	server, err := normalizeBase(s.Server)
	if err != nil {
		return nil, fmt.Errorf("client: chat of %s: %w", s.FID, err)
	}
	return &Chat{c: c, s: s, base: server + chatPrefix, resolve: opts.Resolve, certs: newCertCache()}, nil
}

// Session is the session the Chat acts as.
func (ch *Chat) Session() *Session { return ch.s }

// WithReason returns a Chat whose writes carry reason as X-P2-Audit-Reason, for the audit log.
// Reasons over 512 bytes are refused by the request, not cut, so nothing is silently lost.
func (ch *Chat) WithReason(reason string) *Chat {
	cp := *ch
	cp.reason = reason
	return &cp
}

// chatRequest is one call to a chat route.
type chatRequest struct {
	method string
	path   string // below /.p2/chat/v1, segments already escaped
	query  url.Values
	body   any // JSON body, or nil
}

// get, post... are the short forms the route methods use.
func (ch *Chat) get(ctx context.Context, path string, query url.Values, out any) error {
	_, err := ch.do(ctx, chatRequest{method: http.MethodGet, path: path, query: query}, out)
	return err
}

func (ch *Chat) write(ctx context.Context, method, path string, body, out any) error {
	_, err := ch.do(ctx, chatRequest{method: method, path: path, body: body}, out)
	return err
}

// do sends r and decodes a 2xx JSON body into out (when out is non-nil and there is a body).
// Non-2xx answers come back as *APIError.
func (ch *Chat) do(ctx context.Context, r chatRequest, out any) (int, error) {
	payload, err := encodeBody(r)
	if err != nil {
		return 0, err
	}
	status, data, err := ch.roundTrip(ctx, r, payload)
	if err != nil {
		return status, err
	}
	return status, decodeAnswer(r, status, data, out)
}

func encodeBody(r chatRequest) ([]byte, error) {
	if r.body == nil {
		return nil, nil
	}
	b, err := json.Marshal(r.body)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
	}
	return b, nil
}

// decodeAnswer turns a response into out or an *APIError.
func decodeAnswer(r chatRequest, status int, data []byte, out any) error {
	if status < 200 || status > 299 {
		return decodeError(status, data)
	}
	if out == nil || status == http.StatusNoContent || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", r.method, r.path, err)
	}
	return nil
}

// transportError is a request that got no complete answer: the one kind of failure (besides a
// 5xx) after which Send may resend.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// roundTrip sends one request and reads the whole answer, whatever its status. Errors are
// transportErrors, or plain errors for requests that could not even be built.
func (ch *Chat) roundTrip(ctx context.Context, r chatRequest, payload []byte) (int, []byte, error) {
	target := ch.base + r.path
	if strings.HasPrefix(r.path, mlsPrefix) { // the MLS routes share the plumbing, not the prefix
		target = strings.TrimSuffix(ch.base, chatPrefix) + r.path
	}
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+ch.s.Token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ch.reason != "" && r.method != http.MethodGet {
		v, err := encodeReason(ch.reason)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		req.Header.Set("X-P2-Audit-Reason", v)
	}

	start := time.Now()
	resp, err := ch.c.http.Do(req)
	if err != nil {
		return 0, nil, &transportError{fmt.Errorf("%s %s: %w", r.method, target, err)}
	}
	defer resp.Body.Close()
	// One byte past the limit tells "exactly the limit" from "more".
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxChatResponse+1))
	ch.c.log.DebugContext(ctx, "polyproto chat request", "method", r.method, "url", target,
		"status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return resp.StatusCode, nil, &transportError{fmt.Errorf("%s %s: read response: %w", r.method, target, err)}
	}
	if len(data) > maxChatResponse {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: response larger than %d bytes", r.method, target, maxChatResponse)
	}
	return resp.StatusCode, data, nil
}

// encodeReason percent-encodes what a header cannot carry as is (controls, non-ASCII, and '%'
// itself, so that the server's decoding gives back the text exactly).
func encodeReason(reason string) (string, error) {
	if len(reason) > maxReason {
		return "", fmt.Errorf("audit reason of %d bytes, at most %d", len(reason), maxReason)
	}
	var b strings.Builder
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c < 0x20 || c >= 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// checkID refuses the zero id before any request: it means "none" and is never issued, so a
// caller passing it has a bug the server would only report as a 400 or 404.
func checkID(what string, id snowflake.ID) error {
	if id == 0 {
		return fmt.Errorf("no %s id", what)
	}
	return nil
}

// checkFID refuses an empty FID, which would turn a route about one member into another route
// (DELETE /guilds/{id}/members/ is not a kick).
func checkFID(fid string) error {
	if fid == "" {
		return errors.New("no FID")
	}
	return nil
}
