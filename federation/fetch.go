package federation

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

const (
	// maxBody caps what is read from a peer. A cacheable cert is about 1 KiB, so this holds
	// a long history of an actor's certs while bounding what a hostile peer costs us.
	maxBody = 256 << 10
	// maxErrorBody caps what is read of a non-200 answer, only to name its error code.
	maxErrorBody = 4 << 10
	// maxRedirects bounds same-host redirects (for example a trailing-slash redirect).
	maxRedirects = 3
)

// newHTTPClient is the client used when the config has none. Every phase of a request has its own
// timeout as well as the per-request context, headers are size-limited, and redirects may not leave
// the host: a peer must not be able to point our fetch at another server (or at our own network).
func newHTTPClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            dialer.DialContext,
			ForceAttemptHTTP2:      true,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			ExpectContinueTimeout:  time.Second,
			MaxIdleConns:           100,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: sameHostRedirect,
	}
}

func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || !strings.EqualFold(req.URL.Host, from.Host) {
		return fmt.Errorf("refused redirect from %s://%s to %s://%s: another host", from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// statusError is a peer's answer with a status other than 200. Callers that give a status its own
// meaning (404 on the actor route) find it with errors.As.
type statusError struct {
	status int
	code   string // the P2_CORE_... code of the error body, if it had a well-formed one
}

func (e *statusError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("status %d (%s)", e.status, e.code)
	}
	return fmt.Sprintf("status %d", e.status)
}

// errorCode accepts only what an error code looks like, so that peer-chosen text never reaches
// our logs and error messages.
var errorCode = regexp.MustCompile(`^[A-Z0-9_]{1,64}$`)

// getJSON GETs target (path and query, appended to domain's base URL) and decodes a 200 answer
// into v strictly: at most maxBody bytes, one JSON value, no unknown fields, nothing after it.
// route names the endpoint without parameters, for logs and errors. Every failure wraps
// ErrPeerUnavailable.
func (c *Certs) getJSON(ctx context.Context, domain, route, target string, v any) (err error) {
	start := time.Now()
	status := 0
	defer func() {
		attrs := []any{"peer", domain, "route", route, "status", status, "duration", time.Since(start)}
		if err != nil {
			attrs = append(attrs, "error", err)
			err = fmt.Errorf("%w: peer %s: GET %s: %w", ErrPeerUnavailable, domain, route, err)
		}
		c.log.DebugContext(ctx, "federation fetch", attrs...)
	}()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.peers.BaseURL(domain)+target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		return readStatusError(resp)
	}
	if resp.ContentLength > maxBody {
		return fmt.Errorf("body of %d bytes is over the %d byte limit", resp.ContentLength, maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("body is over the %d byte limit", maxBody)
	}
	return decodeStrict(body, v)
}

func readStatusError(resp *http.Response) error {
	e := &statusError{status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(body, &p) == nil && errorCode.MatchString(p.Code) {
		e.code = p.Code
	}
	return e
}

func decodeStrict(body []byte, v any) error {
	if bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
		return errors.New("decode body: null")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("decode body: data after the JSON value")
	}
	return nil
}
