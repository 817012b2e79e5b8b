package permissions

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
)

// Set is a bitset of permissions.
type Set uint64

// The bit order is part of the stored format: sets are written into events
// and read back years later, so append new bits at the end, never reorder.
const (
	ViewChannel Set = 1 << iota
	SendMessages
	ReadMessageHistory
	AddReactions
	ManageMessages
	ManageChannel
	ManageRoles
	ManageGuild
	KickMembers
	BanMembers
	CreateInvite
	ViewAuditLog
	Administrator
)

// All holds every defined bit; the owner and administrators get it.
const All Set = Administrator<<1 - 1

// names is indexed by bit number; it doubles as the list of defined bits.
var names = [...]string{
	"VIEW_CHANNEL",
	"SEND_MESSAGES",
	"READ_MESSAGE_HISTORY",
	"ADD_REACTIONS",
	"MANAGE_MESSAGES",
	"MANAGE_CHANNEL", // the spec's name, not Discord's MANAGE_CHANNELS
	"MANAGE_ROLES",
	"MANAGE_GUILD",
	"KICK_MEMBERS",
	"BAN_MEMBERS",
	"CREATE_INVITE",
	"VIEW_AUDIT_LOG",
	"ADMINISTRATOR",
}

// Compile-time check that names and the constants stay the same length.
var _ = [1]struct{}{}[len(names)-bits.Len64(uint64(All))]

// Has reports whether s contains every bit of p.
func (s Set) Has(p Set) bool { return s&p == p }

// Names lists the defined bits of s in bit order; undefined bits are dropped.
func (s Set) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(s&All)))
	for i, n := range names {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String joins Names for logs and test failures.
func (s Set) String() string { return fmt.Sprint(s.Names()) }

// Parse turns names (as returned by Names) into a Set. Unknown names are an
// error rather than ignored, so a typo in a role edit fails loudly.
func Parse(list []string) (Set, error) {
	var s Set
next:
	for _, want := range list {
		for i, n := range names {
			if n == want {
				s |= 1 << i
				continue next
			}
		}
		return 0, fmt.Errorf("permissions: unknown permission %q", want)
	}
	return s, nil
}

// MarshalJSON writes a decimal string: JSON numbers lose precision above
// 2^53 in most clients, and IDs use the same convention.
func (s Set) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatUint(uint64(s), 10))
}

// UnmarshalJSON reads a decimal string. Bits outside All are refused, as
// Parse refuses unknown names, so a set never carries meaning we cannot name.
func (s *Set) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("permissions: want a decimal string: %w", err)
	}
	v, err := strconv.ParseUint(str, 10, 64)
	if err != nil {
		return fmt.Errorf("permissions: %w", err)
	}
	if extra := Set(v) &^ All; extra != 0 {
		return fmt.Errorf("permissions: unknown bits %#x", uint64(extra))
	}
	*s = Set(v)
	return nil
}
