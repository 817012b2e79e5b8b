package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"

	"github.com/polyproto-chat/server/actors"
	"github.com/polyproto-chat/server/actors/account"
	"github.com/polyproto-chat/server/actors/keypackages"
	"github.com/polyproto-chat/server/actors/session"
	"github.com/polyproto-chat/server/events"
	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
	eventsv1 "github.com/polyproto-chat/server/proto/polyproto/chat/events/v1"
)

// MLSConfig serves /.p2/mls/v1/: the KeyPackage directory (docs/PROTOCOL.md section 7).
type MLSConfig struct {
	KeyPackages *actors.Kind // actors/keypackages, by FID
}

var errNoKeyPackages = errors.New("the actor has no usable KeyPackage: none of its sessions uploaded one, or all are used and expired")

// maxKeyPackage bounds one KeyPackage; ours are about 320 bytes, and a Basic credential naming a
// polyproto session leaves no reason for kilobytes.
const maxKeyPackage = 4 << 10

func (s *Server) mlsRoutes(mux *http.ServeMux) {
	const p = "/.p2/mls/v1"
	h := s.authed(mux)
	h("POST "+p+"/key-packages", s.uploadKeyPackages)
	h("GET "+p+"/key-packages", s.keyPackageStock)
	h("POST "+p+"/actors/{fid}/key-packages/claim", s.claimKeyPackages)
	s.noRoute(mux, p)
}

func (s *Server) askKeyPackages(ctx context.Context, fid string, cmd any) (any, error) {
	res, err := s.cfg.MLS.KeyPackages.Request(ctx, fid, cmd)
	if err != nil {
		return nil, err
	}
	return res.(*actors.Result).Reply, nil
}

type keyPackagesIn struct {
	KeyPackages []string `json:"key_packages"`
	LastResort  string   `json:"last_resort"`
}

type stockJSON struct {
	OneTime        int  `json:"one_time"`
	LastResort     bool `json:"last_resort"`
	LastResortUsed bool `json:"last_resort_used"`
	Low            bool `json:"low"`
}

func stockView(st keypackages.Stock) stockJSON {
	return stockJSON{OneTime: st.OneTime, LastResort: st.LastResort, LastResortUsed: st.LastResortUsed,
		Low: st.OneTime < keypackages.LowStock || !st.LastResort || st.LastResortUsed}
}

// uploadKeyPackages stores KeyPackages of the caller's session, each validated and bound to it:
// its credential names the session, and its signature key is the session's ID-Cert key.
// Foreign actors keep their KeyPackages on their home server (polyproto-mls 1.1).
func (s *Server) uploadKeyPackages(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	if p.Foreign {
		return fmt.Errorf("%w: KeyPackages of %s live on its home server", errForbidden, p.FID)
	}
	var in keyPackagesIn
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if len(in.KeyPackages) > keypackages.MaxStock {
		return fmt.Errorf("%w: %d KeyPackages in one upload; at most %d", errBadRequest, len(in.KeyPackages), keypackages.MaxStock)
	}
	if len(in.KeyPackages) == 0 && in.LastResort == "" {
		return fmt.Errorf("%w: no key_packages and no last_resort", errBadRequest)
	}
	key, err := s.sessionKey(r.Context(), p)
	if err != nil {
		return err
	}
	now := s.now()
	check := func(field, text string) (keypackages.Package, error) {
		raw, err := base64.RawURLEncoding.DecodeString(text)
		if err != nil || len(raw) > maxKeyPackage {
			return keypackages.Package{}, fmt.Errorf("%w: %s: want unpadded base64url of at most %d bytes", errBadRequest, field, maxKeyPackage)
		}
		kp, err := mls.ParseKeyPackage(raw, now)
		if err != nil {
			return keypackages.Package{}, fmt.Errorf("%s: %w", field, err)
		}
		if kp.Credential != (mls.Credential{FID: p.FID, Session: p.SessionID}) {
			return keypackages.Package{}, fmt.Errorf("%s: %w: credential %s, but the uploading session is %s/%s", field, mls.ErrBinding, kp.Credential, p.FID, p.SessionID)
		}
		if !bytes.Equal(kp.SignatureKey, key.PublicKey()) {
			return keypackages.Package{}, fmt.Errorf("%s: %w: its signature key is not the key of the session's ID-Cert (serial %d)", field, mls.ErrBinding, p.Serial)
		}
		return keypackages.Package{Ref: kp.Ref, Raw: kp.Raw, InitKey: kp.InitKey, NotAfter: kp.NotAfter}, nil
	}
	up := keypackages.Upload{Session: p.SessionID, At: now}
	for i, text := range in.KeyPackages {
		pkg, err := check(fmt.Sprintf("key_packages[%d]", i), text)
		if err != nil {
			return err
		}
		up.OneTime = append(up.OneTime, pkg)
	}
	if in.LastResort != "" {
		pkg, err := check("last_resort", in.LastResort)
		if err != nil {
			return err
		}
		up.LastResort = &pkg
	}
	rep, err := s.askKeyPackages(r.Context(), p.FID, up)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, stockView(rep.(keypackages.Stock)))
	return nil
}

func (s *Server) keyPackageStock(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	if p.Foreign {
		return fmt.Errorf("%w: KeyPackages of %s live on its home server", errForbidden, p.FID)
	}
	rep, err := s.askKeyPackages(r.Context(), p.FID, keypackages.GetStock{Session: p.SessionID, At: s.now()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stockView(rep.(keypackages.Stock)))
	return nil
}

type claimedJSON struct {
	SessionID  string `json:"session_id"`
	KeyPackage string `json:"key_package"`
	LastResort bool   `json:"last_resort"`
}

// claimKeyPackages hands out one KeyPackage for each live session of a local actor: what a
// client needs to add every device of that actor to a group.
func (s *Server) claimKeyPackages(w http.ResponseWriter, r *http.Request, p account.Principal) error {
	fid, err := identity.ParseFID(r.PathValue("fid"))
	if err != nil {
		return err
	}
	if fid.Domain != s.cfg.Domain {
		return fmt.Errorf("%w: %s; ask its home server for its KeyPackages", errNotLocal, fid)
	}
	rep, err := s.ask(r.Context(), fid.String(), account.ListSessions{At: s.now()})
	if err != nil {
		return err
	}
	var live []string
	for _, ss := range rep.([]account.Session) {
		if !ss.Foreign {
			live = append(live, ss.SessionID)
		}
	}
	rep, err = s.askKeyPackages(r.Context(), fid.String(), keypackages.Claim{Sessions: live, By: p.FID, At: s.now()})
	if err != nil {
		return err
	}
	claimed := rep.([]keypackages.Claimed)
	if len(claimed) == 0 {
		return fmt.Errorf("%w: %s", errNoKeyPackages, fid)
	}
	out := make([]claimedJSON, len(claimed))
	for i, c := range claimed {
		out[i] = claimedJSON{SessionID: c.Session, KeyPackage: b64(c.KeyPackage), LastResort: c.LastResort}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key_packages": out})
	return nil
}

// keyPackageDispatch is LOW_KEY_PACKAGES for a claim that left the session short (fewer than
// keypackages.LowStock one-time KeyPackages, or its last-resort one used): sent to the actor's
// sessions, naming the one that should upload. It rides the chat namespace with the rest of
// the actor's dispatches, so a resume replays it.
func keyPackageDispatch(rec *events.RecordedEvent, msg any) (session.Dispatch, bool) {
	c, ok := msg.(*eventsv1.KeyPackageClaimed)
	if !ok || (!c.GetLastResort() && c.GetRemaining() >= keypackages.LowStock) {
		return session.Dispatch{}, false
	}
	return chatDispatch(rec, "LOW_KEY_PACKAGES", map[string]any{
		"session_id": c.GetSessionId(), "one_time": c.GetRemaining(), "last_resort_used": c.GetLastResort(),
	}), true
}
