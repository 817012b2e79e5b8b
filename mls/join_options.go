package mls

import (
	"fmt"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/extensions"
	"github.com/thomas-vilte/mls-go/group"
)

// JoinOptions is what a Welcome may need beyond our own KeyPackages.
//
// There is no out-of-band ratchet tree: mls-go v1.6.0 cannot take one (JoinFromWelcome reads the
// tree only from the GroupInfo's ratchet_tree extension), so a Welcome without that extension is
// refused rather than joined with a tree nobody checked.
type JoinOptions struct {
	// PSKs are external pre-shared keys by psk_id (RFC 9420 section 8.4), for a Welcome whose
	// GroupSecrets name some. polyproto never sends PSK proposals; other implementations may.
	PSKs map[string][]byte
}

// JoinWith is Join with options. It also enforces what Join documents: the Welcome's GroupInfo
// must carry the ratchet_tree extension.
func JoinWith(s Signer, welcome []byte, secrets []KeyPackageSecrets, opts JoinOptions) (_ *Group, _ int, err error) {
	defer recovered(&err)
	w, err := parseWelcome(welcome)
	if err != nil {
		return nil, -1, err
	}
	g, i, err := joinWelcome(s, w, secrets, opts.PSKs)
	if err != nil {
		return nil, -1, err
	}
	// Without the extension the library joins with a placeholder one-leaf tree and skips the tree
	// hash, parent hash, leaf and GroupInfo signature checks of RFC 9420 section 12.4.3.1: the
	// "group" would be whatever the sender of the Welcome says, unauthenticated.
	if !hasRatchetTree(w.GroupInfo) {
		return nil, -1, fmt.Errorf("%w: the Welcome's GroupInfo has no ratchet_tree extension (an out-of-band tree is not supported)", ErrGroup)
	}
	return g, i, nil
}

// joinWelcome finds the KeyPackage the Welcome is for and joins with it. On success the library
// has set w.GroupInfo to the decrypted GroupInfo.
func joinWelcome(s Signer, w *group.Welcome, secrets []KeyPackageSecrets, psks map[string][]byte) (*Group, int, error) {
	for i, k := range secrets {
		kp, priv, err := k.lib(s)
		if err != nil {
			return nil, -1, err
		}
		if ref := ciphersuite.MakeKeyPackageRef(kp.Marshal(), w.CipherSuite.HashFunction()).AsSlice(); !welcomeFor(w, ref) {
			continue
		}
		g, err := group.JoinFromWelcome(w, kp, priv, psks)
		if err != nil {
			return nil, -1, fmt.Errorf("%w: joining from Welcome: %v", ErrGroup, err)
		}
		return &Group{g: g, signer: s}, i, nil
	}
	return nil, -1, fmt.Errorf("%w: the Welcome is for none of our KeyPackages", ErrGroup)
}

func hasRatchetTree(gi *group.Info) bool {
	if gi == nil {
		return false
	}
	for _, e := range gi.Extensions {
		if e.Type == extensions.ExtensionTypeRatchetTree {
			return true
		}
	}
	return false
}
