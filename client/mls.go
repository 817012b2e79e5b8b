package client

// The MLS side of the SDK (docs/PROTOCOL.md section 7): KeyPackages, whose secrets never leave
// the client. A KeyPackage's leaf is signed with the session's own ID-Cert key, so that other
// clients can check it against the session's cert at the actor's home server.

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/polyproto-chat/server/identity"
	"github.com/polyproto-chat/server/mls"
	"github.com/polyproto-chat/server/snowflake"
)

// mlsPrefix is where the KeyPackage directory lives.
const mlsPrefix = "/.p2/mls/v1"

// KeyPackageLifetime is how long the KeyPackages the SDK makes are valid: under the server's
// limit (mls.MaxKeyPackageLifetime) and under the 30 days of an ID-Cert, whose key signs them.
const KeyPackageLifetime = 28 * 24 * time.Hour

// MLS is one session's MLS state: the secrets of the KeyPackages it uploaded, kept on disk under
// the session's keystore directory (mls/keypackages/) when the Client has a Dir, else in memory.
// It is safe for concurrent use.
type MLS struct {
	// AutoAcceptDevices: Handle adds a new device of an actor already in a group as soon as it
	// asks (polyproto-chat 3.4: accepted by default; every member still gets NEW_DEVICE). On by
	// default; an app that wants its user to confirm turns it off and calls AcceptJoin.
	AutoAcceptDevices bool

	ch     *Chat
	signer mls.Signer
	dir    string // "" in memory

	mu      sync.Mutex
	secrets map[string]mls.KeyPackageSecrets // by KeyPackageRef, hex
	groups  map[snowflake.ID]*memberGroup    // loaded so far (groups.go)
	bound   map[string]bool                  // leaves checked against their session's ID-Certs
	backlog []GroupEvent                     // read by a Send or commit's catch-up, not returned yet
}

// MLS returns the MLS state of the Chat's session, loading what an earlier run kept.
func (ch *Chat) MLS() (*MLS, error) {
	m := &MLS{AutoAcceptDevices: true, ch: ch, signer: mls.Signer{Credential: mls.Credential{FID: ch.s.FID.String(), Session: ch.s.SessionID}, Key: ch.s.Key},
		secrets: map[string]mls.KeyPackageSecrets{}, groups: map[snowflake.ID]*memberGroup{}, bound: map[string]bool{}}
	if ch.c.keys != nil {
		dir, err := ch.c.keys.sessionDir(ch.s.FID, ch.s.Server, ch.s.SessionID)
		if err != nil {
			return nil, err
		}
		m.dir = filepath.Join(dir, "mls")
		if err := m.load(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *MLS) kpDir() string { return filepath.Join(m.dir, "keypackages") }

func (m *MLS) load() error {
	entries, err := os.ReadDir(m.kpDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mls keystore: %w", err)
	}
	for _, e := range entries {
		ref, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue // a temporary file of an interrupted write
		}
		b, err := os.ReadFile(filepath.Join(m.kpDir(), e.Name()))
		if err != nil {
			return fmt.Errorf("mls keystore: %w", err)
		}
		var s mls.KeyPackageSecrets
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("mls keystore: %s: %w", e.Name(), err)
		}
		m.secrets[ref] = s
	}
	return nil
}

// keep stores the secrets of a KeyPackage before it is uploaded, so that a crash between the
// upload and the write cannot leave a KeyPackage out there whose Welcome nobody can open.
func (m *MLS) keep(ref []byte, s mls.KeyPackageSecrets) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir != "" {
		if err := os.MkdirAll(m.kpDir(), 0o700); err != nil {
			return fmt.Errorf("mls keystore: %w", err)
		}
		b, _ := json.Marshal(s)
		if err := writeFileAtomic(filepath.Join(m.kpDir(), hex.EncodeToString(ref)+".json"), b, 0o600); err != nil {
			return fmt.Errorf("mls keystore: %w", err)
		}
	}
	m.secrets[hex.EncodeToString(ref)] = s
	return nil
}

// KeyPackageSecrets lists the secrets of every KeyPackage this session uploaded and has not used.
func (m *MLS) KeyPackageSecrets() []mls.KeyPackageSecrets {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, out := m.secretList()
	return out
}

// secretList is every kept KeyPackage's ref (hex) and secrets; the caller holds m.mu.
func (m *MLS) secretList() ([]string, []mls.KeyPackageSecrets) {
	refs := make([]string, 0, len(m.secrets))
	out := make([]mls.KeyPackageSecrets, 0, len(m.secrets))
	for ref, s := range m.secrets {
		refs = append(refs, ref)
		out = append(out, s)
	}
	return refs, out
}

// forget deletes the secrets of a KeyPackage a Welcome used: a KeyPackage serves once. The
// caller holds m.mu.
func (m *MLS) forget(ref string) error {
	delete(m.secrets, ref)
	if m.dir == "" {
		return nil
	}
	if err := os.Remove(filepath.Join(m.kpDir(), ref+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mls keystore: %w", err)
	}
	return nil
}

// KeyPackageStock is what the server holds for a session.
type KeyPackageStock struct {
	OneTime        int  `json:"one_time"`
	LastResort     bool `json:"last_resort"`
	LastResortUsed bool `json:"last_resort_used"`
	Low            bool `json:"low"` // upload more: few one-time left, or no unused last-resort one
}

// UploadKeyPackages makes n one-time KeyPackages, and a last-resort one if lastResort, keeps
// their secrets, and uploads them.
func (m *MLS) UploadKeyPackages(ctx context.Context, n int, lastResort bool) (KeyPackageStock, error) {
	in := struct {
		KeyPackages []string `json:"key_packages"`
		LastResort  string   `json:"last_resort,omitempty"`
	}{KeyPackages: []string{}}
	make1 := func() (string, error) {
		msg, sec, err := mls.NewKeyPackage(m.signer, mls.DefaultSuite, KeyPackageLifetime)
		if err != nil {
			return "", err
		}
		kp, err := mls.ParseKeyPackage(msg, time.Now())
		if err != nil {
			return "", err
		}
		if err := m.keep(kp.Ref, sec); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(msg), nil
	}
	for range n {
		s, err := make1()
		if err != nil {
			return KeyPackageStock{}, err
		}
		in.KeyPackages = append(in.KeyPackages, s)
	}
	if lastResort {
		s, err := make1()
		if err != nil {
			return KeyPackageStock{}, err
		}
		in.LastResort = s
	}
	var out KeyPackageStock
	err := m.ch.write(ctx, http.MethodPost, mlsPrefix+"/key-packages", in, &out)
	return out, err
}

// Stock asks the server what it holds for this session.
func (m *MLS) Stock(ctx context.Context) (KeyPackageStock, error) {
	var out KeyPackageStock
	err := m.ch.get(ctx, mlsPrefix+"/key-packages", nil, &out)
	return out, err
}

// ClaimedKeyPackage is one KeyPackage of one session of another actor.
type ClaimedKeyPackage struct {
	SessionID  string
	KeyPackage []byte // MLSMessage
	LastResort bool
}

// ClaimKeyPackages takes one KeyPackage for each session of fid (an actor of the server this
// session talks to), checked here as the server checked it on upload.
func (m *MLS) ClaimKeyPackages(ctx context.Context, fid identity.FID) ([]ClaimedKeyPackage, error) {
	var out struct {
		KeyPackages []struct {
			SessionID  string `json:"session_id"`
			KeyPackage string `json:"key_package"`
			LastResort bool   `json:"last_resort"`
		} `json:"key_packages"`
	}
	if err := m.ch.write(ctx, http.MethodPost, mlsPrefix+"/actors/"+fid.String()+"/key-packages/claim", nil, &out); err != nil {
		return nil, err
	}
	claimed := make([]ClaimedKeyPackage, 0, len(out.KeyPackages))
	for _, k := range out.KeyPackages {
		raw, err := base64.RawURLEncoding.DecodeString(k.KeyPackage)
		if err != nil {
			return nil, fmt.Errorf("claimed KeyPackage of %s/%s: %w", fid, k.SessionID, err)
		}
		kp, err := mls.ParseKeyPackage(raw, time.Now())
		if err != nil {
			return nil, fmt.Errorf("claimed KeyPackage of %s/%s: %w", fid, k.SessionID, err)
		}
		if kp.Credential != (mls.Credential{FID: fid.String(), Session: k.SessionID}) {
			return nil, fmt.Errorf("claimed KeyPackage of %s/%s names %s", fid, k.SessionID, kp.Credential)
		}
		claimed = append(claimed, ClaimedKeyPackage{SessionID: k.SessionID, KeyPackage: raw, LastResort: k.LastResort})
	}
	return claimed, nil
}

// EventLowKeyPackages is the dispatch that tells an actor's sessions that one of them (SessionID)
// should upload KeyPackages.
const EventLowKeyPackages = "LOW_KEY_PACKAGES"

// LowKeyPackages is the payload of LOW_KEY_PACKAGES.
type LowKeyPackages struct {
	SessionID      string `json:"session_id"`
	OneTime        int    `json:"one_time"`         // one-time KeyPackages left
	LastResortUsed bool   `json:"last_resort_used"` // the last-resort one was handed out: replace it
}
