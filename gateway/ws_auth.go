package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/session"
)

// tokenAuth is the REST edge's token check as the sessions see it (session.Authenticator), so
// a token means the same on the gateway as in an Authorization header.
type tokenAuth struct{ edge *Server }

// Authenticate marks as session.ErrInvalidToken (close 4004) exactly what the REST routes answer
// with a 400 or 401; anything else (a home server or the store unreachable) is an outage.
func (a tokenAuth) Authenticate(ctx context.Context, token string) (account.Principal, error) {
	p, err := a.edge.authenticateToken(ctx, token)
	if err != nil && refused(err) {
		return p, fmt.Errorf("%w: %w", session.ErrInvalidToken, err)
	}
	return p, err
}

func refused(err error) bool {
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return e.status == http.StatusUnauthorized || e.status == http.StatusBadRequest
		}
	}
	return false
}
