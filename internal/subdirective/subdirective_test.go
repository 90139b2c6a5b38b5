package subdirective

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// block parses "b { <lines> }" with Each, reading ttl, n and size with One.
func block(lines string) (ttl caddy.Duration, n int, size int64, err error) {
	d := caddyfile.NewTestDispenser("b {\n" + lines + "\n}")
	d.Next()
	err = Each(d, "b: ", func(name string) error {
		switch name {
		case "ttl":
			return One(d, "b: ", name, ttl != 0, PositiveDuration(&ttl), "must be a positive duration")
		case "n":
			return One(d, "", name, n != 0, Int(&n, 1, 10), "")
		case "size":
			return One(d, "", name, size != 0, Size(&size, 1<<20), "must be a size")
		case "fail":
			return errors.New("parse failed")
		}
		return ErrUnrecognized
	})
	return ttl, n, size, err
}

func TestEachAndOne(t *testing.T) {
	ttl, n, size, err := block("ttl 90s\nn 10\nsize 2KiB")
	if err != nil || ttl != caddy.Duration(90*time.Second) || n != 10 || size != 2048 {
		t.Fatalf("got ttl %v, n %d, size %d, err %v", ttl, n, size, err)
	}
	tests := []struct{ lines, want string }{
		{"ttl 1m\nttl 2m", "b: ttl already specified, at Testfile:3"},
		{"ttl", "wrong argument count"},
		{"ttl 1m 2m", "wrong argument count"},
		{"ttl 0s", "b: invalid ttl '0s': must be a positive duration, at Testfile:2"},
		{"ttl -1s", "b: invalid ttl '-1s'"},
		{"n 11", "invalid n '11', at Testfile:2"},
		{"n 0", "invalid n '0'"},
		{"n x", "invalid n 'x'"},
		{"size 0", "invalid size '0': must be a size"},
		{"size 2MiB", "invalid size '2MiB'"},
		{"n 1\ncolour red", "b: unrecognized subdirective 'colour', at Testfile:3"},
		{"fail", "parse failed"},
	}
	for _, tt := range tests {
		_, _, _, err := block(tt.lines)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.lines, err, tt.want)
		}
	}
}

func TestDecimal(t *testing.T) {
	for arg, want := range map[string]float64{"0": 0, "10": 10, "2.50": 2.5, "0.075": 0.075, ".5": 0.5, "3.": 3, "007": 7} {
		got := -1.0
		if !Decimal(&got)(arg) || got != want {
			t.Errorf("Decimal(%q) = %v, want %v", arg, got, want)
		}
	}
	huge := "1" + strings.Repeat("0", 400)
	for _, arg := range []string{"", ".", "-1", "-0", "+1", "1e3", "1E-3", "0x1p4", "Inf", "inf", "+Inf", "NaN", "nan", "1_000", "1,5", "2.5.0", "$2", "2.50usd", " 1", huge} {
		got := -1.0
		if Decimal(&got)(arg) || got != -1 {
			t.Errorf("Decimal(%q) accepted %v", arg, got)
		}
	}
}
