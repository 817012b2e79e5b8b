package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestNewNormalizesBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "https://example.com", want: "https://example.com"},
		{in: "https://example.com/", want: "https://example.com"},
		{in: " http://127.0.0.1:8080// ", want: "http://127.0.0.1:8080"},
		{in: "https://example.com/chat/", want: "https://example.com/chat"},
		{in: "example.com", wantErr: true},
		{in: "ftp://example.com", wantErr: true},
		{in: "https://", wantErr: true},
		{in: "https://u:p@example.com", wantErr: true},
		{in: "https://example.com/?x=1", wantErr: true},
	}
	for _, tt := range tests {
		c, err := New(tt.in, Options{})
		if tt.wantErr {
			if err == nil {
				t.Errorf("New(%q) = %q, want an error", tt.in, c.BaseURL())
			}
			continue
		}
		if err != nil || c.BaseURL() != tt.want {
			t.Errorf("New(%q) = %v, %v; want %q", tt.in, c, err, tt.want)
		}
	}
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        Error
		wantString  string
	}{
		{
			name: "our body with context", status: 401, contentType: "application/json",
			body:       `{"code":"P2_CORE_UNAUTHORIZED","message":"token expired","context":{"session_id":"a"}}`,
			want:       Error{Status: 401, Code: "P2_CORE_UNAUTHORIZED", Message: "token expired", Context: []byte(`{"session_id":"a"}`)},
			wantString: "polyproto: 401 P2_CORE_UNAUTHORIZED: token expired",
		},
		{
			name: "our body without context or message", status: 409, contentType: "application/json",
			body: `{"code":"P2_CORE_SESSION_ID_TAKEN"}`,
			want: Error{Status: 409, Code: "P2_CORE_SESSION_ID_TAKEN", Message: "Conflict"},
		},
		{
			name: "null context", status: 404, contentType: "application/json",
			body: `{"code":"NOT_FOUND","message":"no route","context":null}`,
			want: Error{Status: 404, Code: "NOT_FOUND", Message: "no route"},
		},
		{
			name: "proxy HTML page", status: 502, contentType: "text/html",
			body: "<html><body>Bad Gateway</body></html>",
			want: Error{Status: 502, Message: "Bad Gateway"}, wantString: "polyproto: 502: Bad Gateway",
		},
		{
			name: "JSON that is not ours", status: 500, contentType: "application/json",
			body: `{"error":"boom"}`,
			want: Error{Status: 500, Message: "Internal Server Error"},
		},
		{name: "empty body", status: 503, want: Error{Status: 503, Message: "Service Unavailable"}},
		{name: "unknown status", status: 599, body: "x", want: Error{Status: 599, Message: "unexpected status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/.p2/core/v1/challenge", func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			srv := newServer(t, mux)
			c := newClient(t, srv.URL, "")

			_, err := c.do(context.Background(), request{method: http.MethodGet, path: "/challenge"}, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Status != tt.want.Status || e.Code != tt.want.Code || e.Message != tt.want.Message ||
				string(e.Context) != string(tt.want.Context) {
				t.Errorf("got %+v (context %s), want %+v (context %s)", *e, e.Context, tt.want, tt.want.Context)
			}
			if tt.wantString != "" && e.Error() != tt.wantString {
				t.Errorf("Error() = %q, want %q", e.Error(), tt.wantString)
			}
		})
	}
}

// A flow's error wraps the server's *Error, so callers can branch on the code.
func TestFlowErrorsWrapServerError(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /.p2/core/v1/register", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(t, w, http.StatusConflict, map[string]string{"code": "P2_CORE_FEDERATION_ID_TAKEN", "message": "taken"})
	})
	c := newClient(t, newServer(t, mux).URL, "")
	_, err := c.Register(context.Background(), "alice", "password123")
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusConflict || e.Code != "P2_CORE_FEDERATION_ID_TAKEN" {
		t.Fatalf("Register error = %v, want a wrapped 409 P2_CORE_FEDERATION_ID_TAKEN", err)
	}
	if !strings.Contains(err.Error(), "register") {
		t.Errorf("error %q does not say which step failed", err)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"exactly 1 MiB", maxResponse, false},
		{"one byte more", maxResponse + 1, true},
		{"much more", 4 * maxResponse, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/.p2/core/v1/challenge", func(w http.ResponseWriter, r *http.Request) {
				// A JSON string padded with spaces to the exact size.
				body := `"x"` + strings.Repeat(" ", tt.size-3)
				_, _ = w.Write([]byte(body))
			})
			c := newClient(t, newServer(t, mux).URL, "")
			var out string
			_, err := c.do(context.Background(), request{method: http.MethodGet, path: "/challenge"}, &out)
			if tt.wantErr && (err == nil || !strings.Contains(err.Error(), "larger than")) {
				t.Errorf("err = %v, want a size error", err)
			}
			if !tt.wantErr && (err != nil || out != "x") {
				t.Errorf("got %q, %v; want \"x\"", out, err)
			}
		})
	}
}

func TestRequestHonoursContext(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/.p2/core/v1/challenge", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	c := newClient(t, newServer(t, mux).URL, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/challenge"}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
