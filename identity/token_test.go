package identity

import (
	"encoding/base64"
	"testing"
)

func TestNewToken(t *testing.T) {
	token, hash := NewToken()
	if HashToken(token) != hash {
		t.Fatal("HashToken(token) differs from the hash NewToken returned")
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 || len(token) != 43 {
		t.Fatalf("token %q is not 32 bytes of unpadded base64url: %v", token, err)
	}
	other, otherHash := NewToken()
	if other == token || otherHash == hash {
		t.Error("two tokens are equal")
	}
	if HashToken(token+"x") == hash || HashToken("") == hash {
		t.Error("different tokens hash alike")
	}
}
