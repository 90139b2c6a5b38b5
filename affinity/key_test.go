package affinity

import (
	"fmt"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name    string
		key     string
		wantErr string // "" means valid
	}{
		{name: "empty", key: "", wantErr: "empty"},
		{name: "one byte", key: "a"},
		{name: "256 bytes", key: strings.Repeat("k", MaxKeyLen)},
		{name: "257 bytes", key: strings.Repeat("k", MaxKeyLen+1), wantErr: "257 bytes"},
		{name: "uuid", key: "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c"},
		{name: "space", key: "agent session 1"},
		{name: "leading and trailing space", key: " a "},
		{name: "printable punctuation", key: "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"},
		{name: "lowest printable", key: "\x20"},
		{name: "highest printable", key: "\x7e"},
		{name: "tab", key: "a\tb", wantErr: "offset 1"},
		{name: "newline", key: "ab\n", wantErr: "offset 2"},
		{name: "carriage return", key: "\rab", wantErr: "offset 0"},
		{name: "NUL", key: "a\x00b", wantErr: "offset 1"},
		{name: "unit separator 0x1f", key: "a\x1f", wantErr: "offset 1"},
		{name: "DEL 0x7f", key: "ab\x7f", wantErr: "offset 2"},
		{name: "0x80", key: "\x80", wantErr: "offset 0"},
		{name: "non-ASCII UTF-8", key: "caf\u00e9", wantErr: "offset 3"},
		{name: "emoji", key: "sess-\U0001F600", wantErr: "offset 5"},
		{name: "invalid UTF-8", key: "ab\xff", wantErr: "offset 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateKey(%q) = %v, want nil", tt.key, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateKey(%q) = nil, want an error containing %q", tt.key, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ValidateKey(%q) = %q, want it to contain %q", tt.key, err, tt.wantErr)
			}
		})
	}
}

// The error of ValidateKey goes back to clients and into logs; it must not
// quote the key.
func TestValidateKeyErrorDoesNotQuoteKey(t *testing.T) {
	keys := []string{
		"secret-session-token\t",
		"secret-session-token\x7f",
		"secret-session-token-\u00e9",
		"secret-session-token\x00",
		strings.Repeat("secret-session-token", 20),
	}
	for _, key := range keys {
		err := ValidateKey(key)
		if err == nil {
			t.Fatalf("ValidateKey(%q) = nil, want an error", key)
		}
		msg := err.Error()
		if strings.Contains(msg, "secret") || strings.Contains(msg, "token") {
			t.Errorf("ValidateKey(%q) error %q quotes the key", key, msg)
		}
		// not quoted in any Go-escaped form either
		if q := fmt.Sprintf("%q", key); strings.Contains(msg, q[1:len(q)-1]) {
			t.Errorf("ValidateKey(%q) error %q quotes the key", key, msg)
		}
	}
}

func TestPinKey(t *testing.T) {
	pairs := [][2]string{
		{"a", "b"},
		{"a", "bc"},
		{"ab", "c"},
		{"abc", ""},
		{"a", ""},
		{"a", "b\x00c"}, // a requested model may hold any byte; a valid key cannot
		{"a", "b\x00"},
		{"a b", "c"},
		{"a", " bc"},
		{"session-1", "gpt-4o"},
		{"session-1", "gpt-4o-mini"},
		{"session-2", "gpt-4o"},
		{"session-1", ""},
		{"gpt-4o", "session-1"},
	}
	seen := make(map[string][2]string, len(pairs))
	for _, p := range pairs {
		if err := ValidateKey(p[0]); err != nil {
			t.Fatalf("test pair %q uses an invalid key: %v", p, err)
		}
		k := PinKey("", p[0], p[1])
		if k != PinKey("", p[0], p[1]) {
			t.Errorf("PinKey%q is not deterministic", p)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("PinKey%q == PinKey%q == %q", p, prev, k)
		}
		seen[k] = p
		for _, scope := range []string{"", "0123456789abcdef0123456789abcdef"} {
			gotScope, gotKey, gotModel, ok := SplitPinKey(PinKey(scope, p[0], p[1]))
			if !ok || gotScope != scope || gotKey != p[0] || gotModel != p[1] {
				t.Errorf("SplitPinKey(PinKey(%q, %q, %q)) = %q, %q, %q, %v", scope, p[0], p[1], gotScope, gotKey, gotModel, ok)
			}
		}
	}
	for _, notPinKey := range []string{"", "session-1", "scope\x00session-1"} {
		if _, _, _, ok := SplitPinKey(notPinKey); ok {
			t.Errorf("SplitPinKey(%q) succeeded", notPinKey)
		}
	}
}
