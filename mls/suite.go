package mls

import (
	"fmt"

	"github.com/thomas-vilte/mls-go/ciphersuite"
)

// Suite is an MLS cipher suite number.
type Suite uint16

// The suites we accept: both sign with Ed25519, the algorithm of polyproto ID-Certs, which is what
// lets a leaf's signature key be the session's own ID-Cert key.
const (
	// SuiteX25519AES128 is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, RFC 9420's mandatory suite
	// and our default.
	SuiteX25519AES128 Suite = 0x0001
	// SuiteX25519ChaCha is MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
	SuiteX25519ChaCha Suite = 0x0003
)

// DefaultSuite is what new groups and KeyPackages use unless told otherwise.
const DefaultSuite = SuiteX25519AES128

// Check refuses the suites we do not accept (wrapping ErrSuite).
func (s Suite) Check() error {
	switch s {
	case SuiteX25519AES128, SuiteX25519ChaCha:
		return nil
	}
	return fmt.Errorf("%w: cipher suite 0x%04x (accepted: 0x0001, 0x0003)", ErrSuite, uint16(s))
}

func (s Suite) lib() ciphersuite.CipherSuite { return ciphersuite.CipherSuite(s) }
