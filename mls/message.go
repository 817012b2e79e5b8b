package mls

import (
	"bytes"
	"fmt"
	"time"

	"github.com/thomas-vilte/mls-go/framing"
	"github.com/thomas-vilte/mls-go/group"
)

// ContentType is RFC 9420's content type of a group message.
type ContentType uint8

const (
	ContentApplication ContentType = 1
	ContentProposal    ContentType = 2
	ContentCommit      ContentType = 3
)

// Message is what the delivery service reads from a group message, with no group secret: enough to
// route it, to order handshakes (one commit per epoch) and to apply the group's rules (who may add
// or remove whom) to a commit, which we require to be a PublicMessage. It proves nothing about the
// sender's key: the signature of a member's message covers the group context, which only members
// know, so members check it; the server checks that the sender leaf belongs to the session that
// posted it.
type Message struct {
	Private    bool // a PrivateMessage (content hidden); else a PublicMessage
	GroupID    []byte
	Epoch      uint64
	Content    ContentType
	SenderLeaf uint32      // PublicMessage from a member only: a PrivateMessage encrypts its sender
	Commit     *CommitInfo // PublicMessage commits only
}

// CommitInfo is a commit's effect on membership, read from its proposals.
type CommitInfo struct {
	Adds    []*KeyPackage // each validated as ParseKeyPackage does
	Removes []uint32      // leaf indices
	// Proposals other than Add and Remove by value (by reference, Update, PSK, ReInit, external
	// init, group context extensions): we refuse such commits, so their count is enough.
	Other   int
	HasPath bool
}

// ParseMessage reads an MLSMessage holding a PublicMessage or a PrivateMessage. Commits have their
// added KeyPackages validated against now.
func ParseMessage(b []byte, now time.Time) (_ *Message, err error) {
	defer recovered(&err)
	if !bytes.HasPrefix(b, mlsMessageHeader(wirePublic)) && !bytes.HasPrefix(b, mlsMessageHeader(wirePrivate)) {
		return nil, fmt.Errorf("%w: not an MLSMessage holding a PublicMessage or PrivateMessage", ErrMalformed)
	}
	m, err := framing.UnmarshalMLSMessage(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(m.Marshal(), b) {
		return nil, fmt.Errorf("%w: message is not canonically encoded or has trailing bytes", ErrMalformed)
	}
	if pm, ok := m.AsPrivate(); ok {
		ct := ContentType(pm.ContentType)
		if ct < ContentApplication || ct > ContentCommit {
			return nil, fmt.Errorf("%w: content type %d", ErrMalformed, ct)
		}
		return &Message{Private: true, GroupID: bytes.Clone(pm.GroupID), Epoch: pm.Epoch, Content: ct}, nil
	}
	pm := m.PublicMessage
	if pm.Content.Sender.Type != framing.SenderTypeMember {
		return nil, fmt.Errorf("%w: public message from a non-member sender (type %d)", ErrMalformed, pm.Content.Sender.Type)
	}
	out := &Message{GroupID: bytes.Clone(pm.Content.GroupID), Epoch: pm.Content.Epoch, Content: ContentType(pm.Content.ContentType()), SenderLeaf: pm.Content.Sender.LeafIndex}
	if out.Content != ContentCommit {
		return out, nil
	}
	body, _ := pm.Content.CommitData()
	c, err := group.UnmarshalCommit(body)
	if err != nil {
		return nil, fmt.Errorf("%w: commit: %v", ErrMalformed, err)
	}
	info := &CommitInfo{HasPath: c.Path != nil}
	for _, p := range c.Proposals {
		switch {
		case p.Proposal == nil:
			info.Other++
		case p.Proposal.Type == group.ProposalTypeAdd:
			add := p.Proposal.Add
			if add == nil || add.KeyPackage == nil || add.KeyPackage.LeafNode == nil || add.KeyPackage.LeafNode.Credential == nil {
				// The library decodes an unknown credential type as nil; see unmarshalKeyPackage.
				return nil, fmt.Errorf("%w: an Add without a readable KeyPackage", ErrMalformed)
			}
			kp, err := ParseKeyPackage(append(mlsMessageHeader(wireKeyPackage), add.KeyPackage.Marshal()...), now)
			if err != nil {
				return nil, fmt.Errorf("added KeyPackage: %w", err)
			}
			info.Adds = append(info.Adds, kp)
		case p.Proposal.Type == group.ProposalTypeRemove && p.Proposal.Remove != nil:
			info.Removes = append(info.Removes, uint32(p.Proposal.Remove.Removed))
		default:
			info.Other++
		}
	}
	out.Commit = info
	return out, nil
}

// WelcomeRefs lists the KeyPackageRefs a Welcome (an MLSMessage) has secrets for: the delivery
// service checks they are exactly the KeyPackages the commit beside it adds.
func WelcomeRefs(b []byte) (_ [][]byte, err error) {
	defer recovered(&err)
	w, err := parseWelcome(b)
	if err != nil {
		return nil, err
	}
	if err := Suite(w.CipherSuite).Check(); err != nil {
		return nil, err
	}
	if !bytes.Equal(append(mlsMessageHeader(wireWelcome), w.Marshal()...), b) {
		return nil, fmt.Errorf("%w: Welcome is not canonically encoded or has trailing bytes", ErrMalformed)
	}
	refs := make([][]byte, len(w.Secrets))
	for i, s := range w.Secrets {
		refs[i] = bytes.Clone(s.NewMember)
	}
	return refs, nil
}
