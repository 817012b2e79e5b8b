package identity

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on federation IDs. The polyproto regex has none; 255 bytes keeps an FID usable as a stream
// or database key, and the DNS limits (63-byte labels, 253-byte names) hold for the domain anyway
// because the home server has to be reachable under it.
const (
	maxFIDLen    = 255
	maxDomainLen = 253
	maxLabelLen  = 63
)

// FID is a federation ID, local@domain, always lower case (polyproto core §5).
type FID struct{ Local, Domain string }

// ParseFID parses local@domain. ASCII letters are lower-cased first: FIDs are case-insensitive, but the
// polyproto regex \b([a-z0-9._%+-]+)@([a-z0-9-]+(\.[a-z0-9-]+)*)$ only admits lower case, so lower case
// is the one form we store and compare. polyproto-rs refuses upper case instead of folding it.
func ParseFID(s string) (FID, error) {
	f, err := parseFID(lowerASCII(s))
	if err != nil {
		return FID{}, fmt.Errorf("%w: %.80q: %v", ErrInvalidFID, s, err)
	}
	return f, nil
}

// String returns local@domain, or "" for the zero FID.
func (f FID) String() string {
	if f == (FID{}) {
		return ""
	}
	return f.Local + "@" + f.Domain
}

// DomainLabels returns the labels of the domain in reading order ("polyphony.chat" -> polyphony, chat).
// In a certificate's distinguished name the DC attributes appear in the opposite order (see pdn.go).
func (f FID) DomainLabels() []string {
	if f.Domain == "" {
		return nil
	}
	return strings.Split(f.Domain, ".")
}

// ValidateDomain checks a home server domain against the FID domain rules. It does not lower-case: a
// domain we are configured with or read from a certificate must already be in canonical form.
func ValidateDomain(domain string) error {
	if err := checkDomain(domain); err != nil {
		return fmt.Errorf("%w: domain %.80q: %v", ErrInvalidFID, domain, err)
	}
	return nil
}

// parseFID checks an FID without folding case: certificates and CSRs must carry the canonical
// lower-case spelling, because polyproto-rs compares them byte for byte. It returns plain errors so that
// callers can wrap them with the sentinel that fits (a bad UID in a certificate is ErrInvalidCert).
func parseFID(s string) (FID, error) {
	if len(s) > maxFIDLen {
		return FID{}, fmt.Errorf("longer than %d bytes", maxFIDLen)
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return FID{}, errors.New("missing '@'")
	}
	if err := checkLocal(local); err != nil {
		return FID{}, err
	}
	if err := checkDomain(domain); err != nil {
		return FID{}, err
	}
	return FID{Local: local, Domain: domain}, nil
}

func checkLocal(local string) error {
	if local == "" {
		return errors.New("empty local part")
	}
	for i := 0; i < len(local); i++ {
		if !isLocalByte(local[i]) {
			return fmt.Errorf("local part contains %q; allowed are a-z 0-9 . _ %% + -", local[i])
		}
	}
	return nil
}

func checkDomain(domain string) error {
	if domain == "" {
		return errors.New("empty domain")
	}
	if len(domain) > maxDomainLen {
		return fmt.Errorf("domain longer than %d bytes", maxDomainLen)
	}
	for _, label := range strings.Split(domain, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty domain label")
	case len(label) > maxLabelLen:
		return fmt.Errorf("domain label longer than %d bytes", maxLabelLen)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("domain label %q starts or ends with '-'", label)
	}
	for i := 0; i < len(label); i++ {
		if !isLabelByte(label[i]) {
			return fmt.Errorf("domain label contains %q; allowed are a-z 0-9 -", label[i])
		}
	}
	return nil
}

func isLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
}

func isLocalByte(c byte) bool {
	return isLabelByte(c) || c == '.' || c == '_' || c == '%' || c == '+'
}

// lowerASCII folds only A-Z, byte by byte; anything else outside the FID alphabet is refused later, and
// folding Unicode could turn a look-alike into a valid FID.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
