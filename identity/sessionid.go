package identity

import (
	"errors"
	"fmt"
)

const maxSessionIDLen = 32

// ValidSessionID checks a session ID: 1-32 characters (polyproto §6.1.1.3), each printable ASCII
// without space (0x21-0x7e). The spec allows any IA5String character; we leave out control characters
// and spaces because session IDs are shown to users (NEW_SESSION) and end up in logs and URLs.
// Errors wrap ErrInvalidCSR, since a session ID reaches us in an ID-CSR.
func ValidSessionID(id string) error {
	if err := checkSessionID(id); err != nil {
		return fmt.Errorf("%w: session ID %.40q: %v", ErrInvalidCSR, id, err)
	}
	return nil
}

func checkSessionID(id string) error {
	if id == "" {
		return errors.New("empty session ID")
	}
	if len(id) > maxSessionIDLen {
		return fmt.Errorf("session ID longer than %d characters", maxSessionIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("session ID contains %q; allowed is printable ASCII without space", id[i])
		}
	}
	return nil
}
