package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPasswordHashAndCheck(t *testing.T) {
	start := time.Now()
	phc, err := HashPassword("correct horse battery staple")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HashPassword (argon2id m=%d KiB, t=%d, p=%d) took %s", argonMemory, argonTime, argonThreads, elapsed)
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=65536,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(phc) {
		t.Errorf("PHC string %q", phc)
	}
	if ok, err := CheckPassword(phc, "correct horse battery staple"); !ok || err != nil {
		t.Errorf("right password: %v, %v", ok, err)
	}
	if ok, err := CheckPassword(phc, "correct horse battery stapler"); ok || err != nil {
		t.Errorf("wrong password: %v, %v", ok, err)
	}
	if ok, err := CheckPassword(phc, strings.Repeat("x", 257)); ok || err != nil {
		t.Errorf("over-long password: %v, %v", ok, err)
	}
	again, err := HashPassword("correct horse battery staple")
	if err != nil || again == phc {
		t.Errorf("two hashes of one password share a salt: %v", err)
	}
}

func TestPasswordLimits(t *testing.T) {
	for _, pw := range []string{"", "1234567", strings.Repeat("x", 257), "abcdefg\xff"} {
		if _, err := HashPassword(pw); !errors.Is(err, ErrWeakPassword) {
			t.Errorf("HashPassword(%d bytes) = %v, want ErrWeakPassword", len(pw), err)
		}
	}
	for _, pw := range []string{"12345678", strings.Repeat("é", 128)} { // 8 and 256 bytes
		phc, err := HashPassword(pw)
		if err != nil {
			t.Errorf("%d-byte password refused: %v", len(pw), err)
			continue
		}
		if ok, err := CheckPassword(phc, pw); !ok || err != nil {
			t.Errorf("%d-byte password does not check: %v, %v", len(pw), ok, err)
		}
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	// m=8,t=1,p=1 keeps the valid-looking cases cheap.
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "Lbgb8fy9Ur1lrEHDX4SKnLQEEmsuE8x8KqkmP8x3eXU"
	valid := "$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key
	if _, err := CheckPassword(valid, "password"); err != nil {
		t.Fatalf("well-formed PHC refused: %v", err)
	}
	for _, phc := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=8,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=8,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=08,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=0,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=100,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$c2FsdA$" + key,
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$AAAA",
		"$argon2id$v=19$m=8,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=19$m=8,t=1,p=1$" + salt,
	} {
		if ok, err := CheckPassword(phc, "password"); err == nil || ok {
			t.Errorf("CheckPassword(%q) = %v, %v; want an error", phc, ok, err)
		}
	}
}

func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
