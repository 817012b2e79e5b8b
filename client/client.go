package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// corePrefix is where every polyproto core route lives (PROTOCOL.md section 3).
const corePrefix = "/.p2/core/v1"

// maxResponse bounds what the SDK reads from any response: the largest legitimate answer (a list of
// cacheable certs or sessions) is far smaller, and a misbehaving server must not exhaust memory.
const maxResponse = 1 << 20

// defaultTimeout is the safety net of the default HTTP client for callers whose context has no
// deadline; callers who pass their own http.Client decide for themselves.
const defaultTimeout = 30 * time.Second

// Options configure a Client. The zero value is usable: default HTTP client, no persistence, no logs.
type Options struct {
	// HTTP is the client every request goes through; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Dir is the keystore directory (see keystore.go); "" keeps sessions in memory only.
	Dir string
	// Logger receives one debug line per request (never tokens or passwords); nil discards.
	Logger *slog.Logger
}

// Client talks to one home server (the base URL given to New) and, for foreign logins, to other
// servers by base URL. It holds no session state of its own, so it is safe for concurrent use.
type Client struct {
	base string
	http *http.Client
	log  *slog.Logger
	keys *keystore // nil when Options.Dir is ""
}

// New returns a Client for the home server at baseURL (http or https, optionally with a path
// prefix when the server sits behind a reverse proxy).
func New(baseURL string, opts Options) (*Client, error) {
	base, err := normalizeBase(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{base: base, http: opts.HTTP, log: opts.Logger}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.Dir != "" {
		c.keys = &keystore{dir: opts.Dir}
	}
	return c, nil
}

// BaseURL is the home server's base URL as normalised by New.
func (c *Client) BaseURL() string { return c.base }

// normalizeBase checks a server base URL and drops a trailing slash, so that routes can be
// appended by plain concatenation and the same server always has the same spelling.
func normalizeBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("server URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q: no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("server URL %q: must not carry user info, query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// Error is a server's error body, `{"code", "message", "context"}` (PROTOCOL.md section 2), with
// the HTTP status it came with. When a response is not that JSON (a proxy's HTML page, say), Code
// is empty and Message is the status text.
type Error struct {
	Status  int             `json:"-"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Context json.RawMessage `json:"context,omitempty"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("polyproto: %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("polyproto: %d %s: %s", e.Status, e.Code, e.Message)
}

// decodeError turns a non-2xx response body into an *Error.
func decodeError(status int, body []byte) *Error {
	e := &Error{}
	if err := json.Unmarshal(body, e); err != nil || e.Code == "" {
		return &Error{Status: status, Message: statusText(status)}
	}
	e.Status = status
	if e.Message == "" {
		e.Message = statusText(status)
	}
	if string(e.Context) == "null" {
		e.Context = nil
	}
	return e
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "unexpected status"
}

// request is one call to a core route.
type request struct {
	method    string
	server    string // base URL; "" is the home server
	path      string // below /.p2/core/v1, segments already escaped
	query     url.Values
	token     string // sent as Authorization: Bearer
	sensitive string // sent as X-P2-Sensitive-Solution
	json      any    // JSON body, or
	text      string // a text/plain body when json is nil and text is not ""
}

// do sends r and decodes a 2xx JSON body into out (when out is non-nil and the body is not empty).
// It returns the status so that callers can tell 200 from 204; non-2xx answers come back as *Error.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	server := r.server
	if server == "" {
		server = c.base
	}
	target := server + corePrefix + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}

	var body io.Reader
	contentType := ""
	switch {
	case r.json != nil:
		b, err := json.Marshal(r.json)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case r.text != "":
		body, contentType = strings.NewReader(r.text), "text/plain; charset=utf-8"
	}

	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.sensitive != "" {
		req.Header.Set("X-P2-Sensitive-Solution", r.sensitive)
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", r.method, target, err)
	}
	defer resp.Body.Close()
	// Read one byte past the limit to tell "exactly 1 MiB" from "more".
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	c.log.DebugContext(ctx, "polyproto request", "method", r.method, "url", target,
		"status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read response: %w", r.method, target, err)
	}
	if len(data) > maxResponse {
		return resp.StatusCode, fmt.Errorf("%s %s: response larger than %d bytes", r.method, target, maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, decodeError(resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(data)) == 0 {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: decode response: %w", r.method, target, err)
	}
	return resp.StatusCode, nil
}
