package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters for a 2-core server: RFC 9106's second recommended setting (t=3, 64 MiB) with
// p=2 to match the cores. One hash takes about 130 ms on the 2-core development machine
// (BenchmarkHashPassword; about 170 ms for the first one in a process, 40 ms at t=1) and holds 64 MiB
// while it runs, so callers should bound concurrent hashing (login, registration) to
// about the number of cores.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 2
	argonSaltLen = 16
	argonKeyLen  = 32

	minPasswordLen = 8
	maxPasswordLen = 256
)

// Bounds on parameters read back from a stored hash, so a corrupted or hostile record cannot make a
// login allocate gigabytes or spin for minutes.
const (
	maxArgonMemory  = 1 << 20 // KiB, 1 GiB
	maxArgonTime    = 16
	maxArgonThreads = 16
)

// HashPassword hashes a password of 8-256 bytes of UTF-8 with argon2id and returns the PHC string
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>. Other passwords get ErrWeakPassword.
func HashPassword(password string) (string, error) {
	if len(password) < minPasswordLen || len(password) > maxPasswordLen || !utf8.ValidString(password) {
		return "", ErrWeakPassword
	}
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never returns an error (Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$%s$%s$%s", argon2.Version,
		formatArgonParams(argonMemory, argonTime, argonThreads), base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC string, comparing in constant time. It
// honours the parameters stored in the string, so hashes keep working if the defaults change. A
// malformed PHC string is an error; a password longer than any we hash is simply wrong.
func CheckPassword(phc, password string) (bool, error) {
	p, err := parsePHC(phc)
	if err != nil {
		return false, fmt.Errorf("identity: malformed argon2id hash: %w", err)
	}
	if len(password) > maxPasswordLen {
		return false, nil
	}
	got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

type phcHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parsePHC(phc string) (phcHash, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phcHash{}, errors.New("not $argon2id$v=..$m=..,t=..,p=..$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phcHash{}, fmt.Errorf("version %q, want v=%d", parts[2], argon2.Version)
	}
	var m, t, p uint64
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil ||
		parts[3] != formatArgonParams(m, t, p) {
		return phcHash{}, fmt.Errorf("parameters %q", parts[3])
	}
	if t < 1 || t > maxArgonTime || p < 1 || p > maxArgonThreads || m < 8*p || m > maxArgonMemory {
		return phcHash{}, fmt.Errorf("parameters %q out of range", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return phcHash{}, errors.New("salt is not 8-64 bytes of unpadded base64")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return phcHash{}, errors.New("hash is not 16-64 bytes of unpadded base64")
	}
	return phcHash{memory: uint32(m), time: uint32(t), threads: uint8(p), salt: salt, key: key}, nil
}

func formatArgonParams[T uint32 | uint64 | int](m, t, p T) string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", m, t, p)
}
