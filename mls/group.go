package mls

import (
	"bytes"
	"cmp"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/thomas-vilte/mls-go/ciphersuite"
	"github.com/thomas-vilte/mls-go/credentials"
	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
	"github.com/thomas-vilte/mls-go/keypackages"
)

// Signer is a member's identity in MLS: a polyproto session and the private key of its ID-Cert.
// The leaf's signature key is that ID-Cert key itself, so any client can check a leaf against the
// session's cert from the actor's home server without trusting the server that relays it.
type Signer struct {
	Credential Credential
	Key        ed25519.PrivateKey
}

func (s Signer) credential() *credentials.CredentialWithKey {
	return &credentials.CredentialWithKey{
		Credential:        credentials.NewBasicCredential([]byte(s.Credential.String())),
		Ed25519PrivateKey: s.Key,
		SignatureKeyBytes: bytes.Clone(s.Key.Public().(ed25519.PublicKey)),
	}
}

func (s Signer) lib() *ciphersuite.SignaturePrivateKey {
	return ciphersuite.NewEd25519SignaturePrivateKey(s.Key)
}

// KeyPackageSecrets are the private halves of one KeyPackage: kept by the client (on disk, by the
// SDK) until a Welcome for it arrives or it expires. The signature key is not here: it is the
// session's.
type KeyPackageSecrets struct {
	KeyPackage    []byte `json:"key_package"`    // the MLSMessage that was uploaded
	InitKey       []byte `json:"init_key"`       // X25519 private key the Welcome is encrypted to
	EncryptionKey []byte `json:"encryption_key"` // X25519 private key of the leaf, for TreeKEM
}

// NewKeyPackage makes a KeyPackage for the signer's session, valid from an hour ago (clock skew)
// for lifetime, and returns it as an MLSMessage with its secrets.
func NewKeyPackage(s Signer, suite Suite, lifetime time.Duration) ([]byte, KeyPackageSecrets, error) {
	if err := suite.Check(); err != nil {
		return nil, KeyPackageSecrets{}, err
	}
	now := time.Now()
	kp, priv, err := keypackages.Generate(s.credential(), suite.lib(),
		keypackages.WithLifetime(uint64(now.Add(-time.Hour).Unix()), uint64(now.Add(lifetime).Unix())))
	if err != nil {
		return nil, KeyPackageSecrets{}, fmt.Errorf("%w: generating KeyPackage: %v", ErrGroup, err)
	}
	msg := append(mlsMessageHeader(wireKeyPackage), kp.Marshal()...)
	return msg, KeyPackageSecrets{KeyPackage: msg, InitKey: priv.InitKey.Bytes(), EncryptionKey: priv.EncryptionKey.Bytes()}, nil
}

func (k KeyPackageSecrets) lib(s Signer) (*keypackages.KeyPackage, *keypackages.KeyPackagePrivateKeys, error) {
	if !bytes.HasPrefix(k.KeyPackage, mlsMessageHeader(wireKeyPackage)) {
		return nil, nil, fmt.Errorf("%w: stored KeyPackage is not an MLSMessage", ErrMalformed)
	}
	kp, err := unmarshalKeyPackage(k.KeyPackage[4:])
	if err != nil {
		return nil, nil, err
	}
	initKey, err1 := ecdh.X25519().NewPrivateKey(k.InitKey)
	encKey, err2 := ecdh.X25519().NewPrivateKey(k.EncryptionKey)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("%w: stored KeyPackage secrets are not X25519 keys", ErrMalformed)
	}
	return kp, &keypackages.KeyPackagePrivateKeys{InitKey: initKey, EncryptionKey: encKey, Ed25519SignatureKey: s.Key}, nil
}

// Group is one member's view of an MLS group. It is not safe for concurrent use.
type Group struct {
	g      *group.Group
	signer Signer
	// before is the state before an own commit that the delivery service has not accepted yet:
	// Discard returns to it if another commit won the epoch.
	before []byte
}

// Create starts a group with the signer as its only member, at epoch 0.
func Create(s Signer, suite Suite, groupID []byte) (*Group, error) {
	if err := suite.Check(); err != nil {
		return nil, err
	}
	if len(groupID) == 0 || len(groupID) > 255 {
		return nil, fmt.Errorf("%w: group id of %d bytes", ErrMalformed, len(groupID))
	}
	kp, priv, err := keypackages.Generate(s.credential(), suite.lib())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGroup, err)
	}
	g, err := group.NewGroup(group.NewGroupID(bytes.Clone(groupID)), suite.lib(), kp, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: creating group: %v", ErrGroup, err)
	}
	return &Group{g: g, signer: s}, nil
}

// Join enters a group from a Welcome (an MLSMessage) addressed to one of the given KeyPackages, and
// returns the group and the index of the KeyPackage used (the caller deletes its secrets: a
// KeyPackage is single-use). The Welcome must carry the ratchet_tree extension.
func Join(s Signer, welcome []byte, secrets []KeyPackageSecrets) (*Group, int, error) {
	return JoinWith(s, welcome, secrets, JoinOptions{})
}

func parseWelcome(msg []byte) (*group.Welcome, error) {
	if !bytes.HasPrefix(msg, mlsMessageHeader(wireWelcome)) {
		return nil, fmt.Errorf("%w: not an MLSMessage of wire format mls_welcome", ErrMalformed)
	}
	w, err := group.UnmarshalWelcome(msg[4:])
	if err != nil {
		return nil, fmt.Errorf("%w: Welcome: %v", ErrMalformed, err)
	}
	return w, nil
}

func welcomeFor(w *group.Welcome, ref []byte) bool {
	for _, s := range w.Secrets {
		if bytes.Equal(s.NewMember, ref) {
			return true
		}
	}
	return false
}

// Load restores a group saved with State.
func Load(s Signer, state []byte) (_ *Group, err error) {
	defer recovered(&err)
	g, err := group.UnmarshalGroupState(state)
	if err != nil {
		return nil, fmt.Errorf("%w: group state: %v", ErrMalformed, err)
	}
	return &Group{g: g, signer: s}, nil
}

// State is the group's secret state, to keep across restarts (encrypted at rest by the caller if
// the disk is not trusted). It fails while an own commit awaits Confirm or Discard.
func (g *Group) State() ([]byte, error) {
	if g.before != nil {
		return nil, fmt.Errorf("%w: a commit is pending", ErrGroup)
	}
	b, err := g.g.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGroup, err)
	}
	return b, nil
}

// ID is the MLS group id.
func (g *Group) ID() []byte { return bytes.Clone(g.g.ID().AsSlice()) }

// Epoch is the current epoch.
func (g *Group) Epoch() uint64 { return g.g.Epoch().AsUint64() }

// Suite is the group's cipher suite.
func (g *Group) Suite() Suite { return Suite(g.g.CipherSuite()) }

// OwnLeaf is this member's leaf index.
func (g *Group) OwnLeaf() uint32 { return uint32(g.g.OwnLeafIndex()) }

// EpochAuthenticator is RFC 9420 section 8.7's value: equal for all members in the same epoch
// with the same secrets, so two clients can compare it out of band.
func (g *Group) EpochAuthenticator() []byte { return bytes.Clone(g.g.EpochAuthenticator()) }

// Export is the MLS exporter (RFC 9420 section 8.5).
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	b, err := g.g.Export(label, context, length)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGroup, err)
	}
	return b, nil
}

// Member is one leaf of the group.
type Member struct {
	Leaf         uint32
	Credential   Credential
	SignatureKey ed25519.PublicKey
}

// Members lists the occupied leaves in leaf order. A leaf whose credential is not a polyproto
// session (a peer outside polyproto, in interop tests) has its raw identity as FID.
func (g *Group) Members() []Member {
	var out []Member
	for _, m := range g.g.GetMembers() {
		if m != nil && m.Active {
			out = append(out, g.member(m))
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Leaf, b.Leaf) }) // the library keeps them in a map
	return out
}

// Commit is an own commit, made but not yet merged.
type Commit struct {
	Message []byte // MLSMessage (PublicMessage, so that the delivery service can order it)
	Welcome []byte // MLSMessage for the added members, nil if none
	Epoch   uint64 // the epoch the commit was made in; merging it makes Epoch+1
}

// Commit adds the members of the given KeyPackages (MLSMessages) and removes the given leaves in
// one commit, with an UpdatePath; with neither it is the empty commit we use for key updates. The
// group moves to the new epoch at once, but keeps the old state until Confirm (the delivery service
// accepted the commit) or Discard (another commit won the epoch).
func (g *Group) Commit(adds [][]byte, removes []uint32) (_ *Commit, err error) {
	if g.before != nil {
		return nil, fmt.Errorf("%w: a commit is already pending", ErrGroup)
	}
	before, err := g.g.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGroup, err)
	}
	defer func() {
		if r := recover(); r != nil { // as recovered, and back to the state before
			g.restore(before)
			g.before = nil
			err = fmt.Errorf("%w: the MLS library failed on this commit: %v", ErrMalformed, r)
		}
	}()
	epoch := g.Epoch()
	fail := func(err error) (*Commit, error) {
		g.restore(before)
		return nil, err
	}
	var kps []*keypackages.KeyPackage
	for _, a := range adds {
		if !bytes.HasPrefix(a, mlsMessageHeader(wireKeyPackage)) {
			return fail(fmt.Errorf("%w: an added KeyPackage is not an MLSMessage", ErrMalformed))
		}
		kp, err := unmarshalKeyPackage(a[4:])
		if err != nil {
			return fail(err)
		}
		if _, err := g.g.AddMember(kp); err != nil {
			return fail(fmt.Errorf("%w: add: %v", ErrGroup, err))
		}
		kps = append(kps, kp)
	}
	for _, leaf := range removes {
		if _, err := g.g.RemoveMember(group.LeafNodeIndex(leaf)); err != nil {
			return fail(fmt.Errorf("%w: remove leaf %d: %v", ErrGroup, leaf, err))
		}
	}
	sig := g.signer.lib()
	staged, err := g.g.Commit(sig, sig.PublicKey(), nil)
	if err != nil {
		return fail(fmt.Errorf("%w: commit: %v", ErrGroup, err))
	}
	joiner := staged.JoinerSecret()
	if err := g.g.MergeCommit(staged); err != nil {
		return fail(fmt.Errorf("%w: merging own commit: %v", ErrGroup, err))
	}
	ac := staged.AuthenticatedContent()
	out := &Commit{
		Message: framing.NewMLSMessagePublic(&framing.PublicMessage{Content: ac.Content, Auth: ac.Auth, MembershipTag: staged.MembershipTag()}).Marshal(),
		Epoch:   epoch,
	}
	if len(kps) > 0 {
		w, err := g.g.CreateWelcomeWithOpts(kps, sig, group.WithJoinerSecret(joiner), group.WithPSKIDs(staged.PskIDs()),
			group.WithPSKSecret(staged.RawPskSecret()), group.WithStagedCommit(staged))
		if err != nil {
			return fail(fmt.Errorf("%w: Welcome: %v", ErrGroup, err))
		}
		out.Welcome = append(mlsMessageHeader(wireWelcome), w.Marshal()...)
	}
	g.before = before
	return out, nil
}

// Confirm keeps the pending commit: the delivery service accepted it.
func (g *Group) Confirm() { g.before = nil }

// Discard drops the pending commit and returns to the epoch before it, so that the commit that won
// can be processed instead.
func (g *Group) Discard() error {
	if g.before == nil {
		return fmt.Errorf("%w: no commit is pending", ErrGroup)
	}
	g.restore(g.before)
	g.before = nil
	return nil
}

func (g *Group) restore(state []byte) {
	if old, err := group.UnmarshalGroupState(state); err == nil {
		g.g = old
	}
}

// Encrypt makes an application message (an MLSMessage holding a PrivateMessage) of plaintext.
func (g *Group) Encrypt(plaintext []byte) (_ []byte, err error) {
	defer recovered(&err)
	if g.before != nil {
		return nil, fmt.Errorf("%w: a commit is pending", ErrGroup)
	}
	pm, err := g.g.SendMessage(plaintext, g.signer.lib())
	if err != nil {
		return nil, fmt.Errorf("%w: encrypt: %v", ErrGroup, err)
	}
	return framing.NewMLSMessagePrivate(pm).Marshal(), nil
}

// Kind is what a processed message was.
type Kind int

const (
	KindApplication Kind = iota + 1
	KindCommit
	KindProposal
)

// Received is the outcome of Process.
type Received struct {
	Kind       Kind
	Plaintext  []byte     // KindApplication
	SenderLeaf uint32     // the member that sent it
	Sender     Credential // its credential (from the tree)
	Removed    bool       // KindCommit: the commit removed this member; the group is dead to it
}

// Process handles a message of another member: an application message (decrypted), a commit
// (the group moves to the next epoch) or a proposal (kept for a later commit).
func (g *Group) Process(msg []byte) (_ *Received, err error) {
	defer recovered(&err)
	if g.before != nil {
		return nil, fmt.Errorf("%w: a commit is pending", ErrGroup)
	}
	m, err := framing.UnmarshalMLSMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if pm, ok := m.AsPrivate(); ok && pm.ContentType == framing.ContentTypeApplication {
		pt, _, leaf, err := g.g.ReceiveApplicationMessage(pm)
		if err != nil {
			return nil, fmt.Errorf("%w: decrypt: %v", ErrGroup, err)
		}
		return &Received{Kind: KindApplication, Plaintext: pt, SenderLeaf: uint32(leaf), Sender: g.credentialOf(uint32(leaf))}, nil
	}
	var ct framing.ContentType
	var sender uint32
	switch {
	case m.PublicMessage != nil:
		pm := m.PublicMessage
		ct, sender = pm.Content.ContentType(), pm.Content.Sender.LeafIndex
		if ct == framing.ContentTypeCommit && commitRemoves(pm, g.OwnLeaf()) {
			// A removed member cannot process the commit (the path secrets are not encrypted to
			// it); it only needs to know the removal is authentic.
			if err := g.g.VerifyPublicMessage(pm); err != nil {
				return nil, fmt.Errorf("%w: commit removing us: %v", ErrGroup, err)
			}
			return &Received{Kind: KindCommit, SenderLeaf: sender, Sender: g.credentialOf(sender), Removed: true}, nil
		}
		err = g.g.ProcessPublicMessage(pm)
	case m.PrivateMessage != nil:
		ct = m.PrivateMessage.ContentType
		if sender, err = g.privateSender(m.PrivateMessage); err != nil {
			return nil, err
		}
		err = g.g.ProcessPrivateMessage(m.PrivateMessage)
	default:
		return nil, fmt.Errorf("%w: wire format %d is not a group message", ErrMalformed, m.WireFormat())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGroup, err)
	}
	r := &Received{Kind: KindProposal, SenderLeaf: sender, Sender: g.credentialOf(sender)}
	if ct == framing.ContentTypeCommit {
		r.Kind = KindCommit
		r.Removed = !g.isMember()
	}
	return r, nil
}

// privateSender reads the sender's leaf from a PrivateMessage's encrypted sender data (RFC 9420
// section 6.3.2), which the library decrypts inside ProcessPrivateMessage without telling. It
// uses only the epoch's sender_data_secret, not the secret tree, so no ratchet moves.
func (g *Group) privateSender(pm *framing.PrivateMessage) (uint32, error) {
	es := g.g.EpochSecrets()
	if es == nil || es.SenderDataSecret == nil || pm.Epoch != g.Epoch() {
		return 0, fmt.Errorf("%w: a handshake for epoch %d at epoch %d", ErrGroup, pm.Epoch, g.Epoch())
	}
	cs := g.g.CipherSuite()
	sample := pm.Ciphertext[:min(len(pm.Ciphertext), cs.HashLength())]
	key, err1 := es.SenderDataSecret.KdfExpandLabel("key", sample, cs.AEADKeyLength())
	nonce, err2 := es.SenderDataSecret.KdfExpandLabel("nonce", sample, cs.AEADNonceLength())
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: sender data keys", ErrGroup)
	}
	aad := append(varint(uint32(len(pm.GroupID))), pm.GroupID...)
	aad = binary.BigEndian.AppendUint64(aad, pm.Epoch)
	aad = append(aad, byte(pm.ContentType))
	plain, err := ciphersuite.DecryptWithCipherSuite(key.AsSlice(), nonce.AsSlice(), pm.EncryptedSenderData, aad, cs)
	if err != nil {
		return 0, fmt.Errorf("%w: sender data: %v", ErrGroup, err)
	}
	sd, err := framing.UnmarshalSenderData(plain)
	if err != nil {
		return 0, fmt.Errorf("%w: sender data: %v", ErrMalformed, err)
	}
	return sd.LeafIndex, nil
}

// commitRemoves tells whether a commit removes leaf by a proposal it carries by value (we never
// send proposals by reference).
func commitRemoves(pm *framing.PublicMessage, leaf uint32) bool {
	body, ok := pm.Content.CommitData()
	if !ok {
		return false
	}
	c, err := group.UnmarshalCommit(body)
	if err != nil {
		return false
	}
	for _, p := range c.Proposals {
		if p.Proposal != nil && p.Proposal.Remove != nil && uint32(p.Proposal.Remove.Removed) == leaf {
			return true
		}
	}
	return false
}

func (g *Group) member(m *group.Member) Member {
	c, err := parseCredential(m.Credential)
	if err != nil && m.Credential != nil {
		c = Credential{FID: string(m.Credential.Identity)}
	}
	return Member{Leaf: uint32(m.LeafIndex), Credential: c, SignatureKey: ed25519.PublicKey(g.g.MemberSigningKey(m.LeafIndex))}
}

// leaf is the member at a leaf, if one is there: one lookup, not the whole list, as every
// decrypted message names its sender.
func (g *Group) leaf(n uint32) (Member, bool) {
	m, ok := g.g.GetMember(group.LeafNodeIndex(n))
	if !ok || m == nil || !m.Active {
		return Member{}, false
	}
	return g.member(m), true
}

func (g *Group) credentialOf(leaf uint32) Credential {
	m, _ := g.leaf(leaf)
	return m.Credential
}

func (g *Group) isMember() bool {
	m, ok := g.leaf(g.OwnLeaf())
	return ok && bytes.Equal(m.SignatureKey, g.signer.Key.Public().(ed25519.PublicKey))
}
