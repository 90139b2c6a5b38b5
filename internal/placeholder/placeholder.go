// Package placeholder resolves the global placeholders ({env.NAME} and the
// like) in config values that must not silently come out empty, such as
// provider credentials.
package placeholder

import (
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Resolve replaces the placeholders in a config value with their values, as
// Caddy's replacer does. A value that names an environment variable
// ({env.NAME}) that is unset or empty, or that resolves to nothing at all,
// is an error naming the variable: a credential that silently came out ""
// would send the client's own credential, or none. An empty value stays
// empty.
func Resolve(value string) (string, error) {
	if value == "" {
		return "", nil
	}
	for rest := value; ; {
		start := strings.Index(rest, "{env.")
		if start < 0 {
			break
		}
		rest = rest[start+len("{env."):]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			break
		}
		if name := rest[:end]; os.Getenv(name) == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		rest = rest[end:]
	}
	resolved := caddy.NewReplacer().ReplaceAll(value, "")
	if resolved == "" {
		return "", fmt.Errorf("resolves to an empty value")
	}
	return resolved, nil
}
