package affinity

import (
	"errors"
	"fmt"
	"strings"
)

// MaxKeyLen is the longest affinity key accepted, in bytes.
const MaxKeyLen = 256

// ValidateKey checks an affinity key: 1 to MaxKeyLen bytes of printable
// ASCII (0x20-0x7E). The error never quotes the key.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("affinity key is empty")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("affinity key is %d bytes; the limit is %d", len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("affinity key has a non-printable or non-ASCII byte at offset %d", i)
		}
	}
	return nil
}

// pinKeySep separates the parts of a pin key; it cannot occur in a valid
// affinity key or a scope hash.
const pinKeySep = "\x00"

// PinKey is the cache key of a pin: the tenant scope (a hash, or ""), the
// affinity key and the model the client asked for, so a side call on another
// model with the same affinity key has a pin of its own, and tenants cannot
// reach each other's pins.
func PinKey(scope, key, requestedModel string) string {
	return scope + pinKeySep + key + pinKeySep + requestedModel
}

// SplitPinKey returns the parts of a pin key made by PinKey; false when
// pinKey is not one.
func SplitPinKey(pinKey string) (scope, key, requestedModel string, ok bool) {
	scope, rest, ok := strings.Cut(pinKey, pinKeySep)
	if !ok {
		return "", "", "", false
	}
	key, requestedModel, ok = strings.Cut(rest, pinKeySep)
	return scope, key, requestedModel, ok
}
