package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/channel"
	"github.com/polyproto-chat/server/actors/group"
	"github.com/polyproto-chat/server/actors/guild"
	"github.com/polyproto-chat/server/actors/keypackages"
	"github.com/polyproto-chat/server/federation"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
)

// Errors of the edge itself; the rest come from the packages below it.
var (
	errBadRequest        = errors.New("bad request")
	errTooLarge          = errors.New("request too large")
	errBadCredentials    = errors.New("wrong name or password")
	errSensitive         = errors.New("this action needs X-P2-Sensitive-Solution with the actor's password")
	errNoToken           = errors.New("missing or malformed bearer token")
	errChallenge         = errors.New("challenge unknown, expired or already used")
	errForbidden         = errors.New("forbidden")
	errNotFound          = errors.New("not found")
	errNotLocal          = errors.New("not an actor of this home server")
	errMismatch          = errors.New("the CSR is for another actor")
	errMethodNotAllowed  = errors.New("method not allowed")
	errForeignLocalActor = errors.New("actors of this server log in with their password")
	errRateLimited       = errors.New("too many password checks from this address; wait a minute")
	errEncrypted         = errors.New("the channel is encrypted")
)

// errorCodes is the one table from errors to HTTP status and polyproto error code. The first
// entry that matches (errors.Is) wins, so specific errors come before general ones.
// A chat code, when set, replaces code on the routes under /.p2/chat/, and the same code with
// P2_MLS_ for P2_CHAT_ on those under /.p2/mls/.
var errorCodes = []struct {
	err    error
	status int
	code   string
	chat   string
}{
	{errTooLarge, http.StatusRequestEntityTooLarge, "P2_CORE_TOO_LARGE", "P2_CHAT_TOO_LARGE"},
	{errBadSignature, http.StatusBadRequest, "P2_CHAT_BAD_SIGNATURE", ""},
	{errBadRequest, http.StatusBadRequest, "P2_CORE_BAD_REQUEST", "P2_CHAT_BAD_REQUEST"},
	{errEncrypted, http.StatusBadRequest, "P2_CHAT_ENCRYPTED_CHANNEL", ""},
	{guild.ErrInvalid, http.StatusBadRequest, "P2_CHAT_BAD_REQUEST", ""},
	{group.ErrInvalid, http.StatusBadRequest, "P2_CHAT_BAD_REQUEST", ""},
	{group.ErrLimit, http.StatusBadRequest, "P2_CHAT_LIMIT", ""},
	{group.ErrForbidden, http.StatusForbidden, "P2_CHAT_FORBIDDEN", ""},
	{group.ErrNotFound, http.StatusNotFound, "P2_CHAT_NOT_FOUND", ""},
	{group.ErrEpoch, http.StatusConflict, "P2_CHAT_EPOCH_CONFLICT", ""},
	{channel.ErrInvalid, http.StatusBadRequest, "P2_CHAT_BAD_REQUEST", ""},
	{guild.ErrLimit, http.StatusBadRequest, "P2_CHAT_LIMIT", ""},
	{channel.ErrLimit, http.StatusBadRequest, "P2_CHAT_LIMIT", ""},
	{guild.ErrOwner, http.StatusBadRequest, "P2_CHAT_OWNER", ""},
	{guild.ErrForbidden, http.StatusForbidden, "P2_CHAT_FORBIDDEN", ""},
	{channel.ErrForbidden, http.StatusForbidden, "P2_CHAT_FORBIDDEN", ""},
	{guild.ErrBanned, http.StatusForbidden, "P2_CHAT_BANNED", ""},
	{guild.ErrNotFound, http.StatusNotFound, "P2_CHAT_NOT_FOUND", ""},
	{channel.ErrNotFound, http.StatusNotFound, "P2_CHAT_NOT_FOUND", ""},
	{guild.ErrInvite, http.StatusNotFound, "P2_CHAT_INVITE_INVALID", ""},
	{mls.ErrMalformed, http.StatusBadRequest, "P2_MLS_MALFORMED", ""},
	{mls.ErrSuite, http.StatusBadRequest, "P2_MLS_UNSUPPORTED_SUITE", ""},
	{mls.ErrSignature, http.StatusBadRequest, "P2_MLS_BAD_SIGNATURE", ""},
	{mls.ErrLifetime, http.StatusBadRequest, "P2_MLS_BAD_LIFETIME", ""},
	{mls.ErrBinding, http.StatusBadRequest, "P2_MLS_NOT_BOUND", ""},
	{keypackages.ErrInvalid, http.StatusBadRequest, "P2_MLS_BAD_REQUEST", ""},
	{keypackages.ErrStockFull, http.StatusConflict, "P2_MLS_STOCK_FULL", ""},
	{keypackages.ErrDuplicate, http.StatusConflict, "P2_MLS_DUPLICATE", ""},
	{errNoKeyPackages, http.StatusNotFound, "P2_MLS_NO_KEY_PACKAGES", ""},
	{identity.ErrInvalidFID, http.StatusBadRequest, "P2_CORE_INVALID_FID", ""},
	{identity.ErrInvalidCSR, http.StatusBadRequest, "P2_CORE_INVALID_CSR", ""},
	{identity.ErrWeakKey, http.StatusBadRequest, "P2_CORE_INVALID_CSR", ""},
	{identity.ErrWeakPassword, http.StatusBadRequest, "P2_CORE_WEAK_PASSWORD", ""},
	{identity.ErrInvalidAnswer, http.StatusBadRequest, "P2_CORE_INVALID_CHALLENGE_ANSWER", ""},
	{errMismatch, http.StatusBadRequest, "P2_CORE_CSR_MISMATCH", ""},
	{errForeignLocalActor, http.StatusBadRequest, "P2_CORE_LOCAL_ACTOR", ""},
	{account.ErrInvalid, http.StatusBadRequest, "P2_CORE_BAD_REQUEST", ""},
	{errNoToken, http.StatusUnauthorized, "P2_CORE_UNAUTHORIZED", ""},
	{account.ErrUnauthorized, http.StatusUnauthorized, "P2_CORE_UNAUTHORIZED", ""},
	{errBadCredentials, http.StatusUnauthorized, "P2_CORE_BAD_CREDENTIALS", ""},
	{errChallenge, http.StatusUnauthorized, "P2_CORE_CHALLENGE_INVALID", ""},
	{federation.ErrRevoked, http.StatusUnauthorized, "P2_CORE_CERT_REVOKED", ""},
	{identity.ErrExpired, http.StatusUnauthorized, "P2_CORE_CERT_EXPIRED", ""},
	{federation.ErrUntrusted, http.StatusUnauthorized, "P2_CORE_CERT_UNTRUSTED", ""},
	{identity.ErrInvalidCert, http.StatusUnauthorized, "P2_CORE_CERT_UNTRUSTED", ""},
	{identity.ErrCacheExpired, http.StatusUnauthorized, "P2_CORE_CERT_UNTRUSTED", ""},
	{errSensitive, http.StatusForbidden, "P2_CORE_SENSITIVE_SOLUTION_REQUIRED", ""},
	{errForbidden, http.StatusForbidden, "P2_CORE_FORBIDDEN", ""},
	{errNotLocal, http.StatusNotFound, "P2_CORE_ACTOR_NOT_FOUND", ""},
	{account.ErrNotRegistered, http.StatusNotFound, "P2_CORE_ACTOR_NOT_FOUND", ""},
	{account.ErrNoSuchSession, http.StatusNotFound, "P2_CORE_SESSION_NOT_FOUND", ""},
	{account.ErrNoSuchService, http.StatusNotFound, "P2_CORE_SERVICE_NOT_FOUND", ""},
	{errNotFound, http.StatusNotFound, "P2_CORE_NOT_FOUND", "P2_CHAT_NOT_FOUND"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "P2_CORE_METHOD_NOT_ALLOWED", ""},
	{account.ErrAlreadyRegistered, http.StatusConflict, "P2_CORE_FEDERATION_ID_TAKEN", ""},
	{account.ErrSessionInUse, http.StatusConflict, "P2_CORE_SESSION_ID_IN_USE", ""},
	{account.ErrServiceExists, http.StatusConflict, "P2_CORE_SERVICE_EXISTS", ""},
	{errRateLimited, http.StatusTooManyRequests, "P2_CORE_RATE_LIMITED", ""},
	{federation.ErrPeerUnavailable, http.StatusBadGateway, "P2_CORE_HOME_SERVER_UNAVAILABLE", ""},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "P2_CORE_UNAVAILABLE", ""},
}

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Context any    `json:"context,omitempty"`
}

// writeError answers with the status and code of err's table entry and err's text. An error
// in no entry is a bug or an outage: it is logged, and the client learns nothing of its text.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ns := ""
	switch {
	case strings.HasPrefix(r.URL.Path, "/.p2/chat/"):
		ns = "P2_CHAT_"
	case strings.HasPrefix(r.URL.Path, "/.p2/mls/"):
		ns = "P2_MLS_"
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			code := e.code
			if ns != "" && e.chat != "" {
				// The extension's own name for a general error: P2_CHAT_X becomes P2_MLS_X on
				// the MLS routes.
				code = ns + strings.TrimPrefix(e.chat, "P2_CHAT_")
			}
			writeJSON(w, e.status, ErrorBody{Code: code, Message: err.Error()})
			return
		}
	}
	log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, ErrorBody{Code: "P2_CORE_INTERNAL", Message: "internal error; the server logged it"})
}
