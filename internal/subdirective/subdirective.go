// Package subdirective reads the values of Caddyfile subdirectives the same
// way for every config block: given once, one argument, parsed and
// range-checked where it is read, so the error names its line.
package subdirective

import (
	"errors"
	"math"
	"regexp"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// ErrUnrecognized is what a block's parse function returns for a
// subdirective it does not know.
var ErrUnrecognized = errors.New("unrecognized subdirective")

// Each calls parse with the name of each subdirective in the block that
// follows the token d is on, d on that name; it stops at the first error,
// and reports ErrUnrecognized as "<prefix>unrecognized subdirective '<name>'".
func Each(d *caddyfile.Dispenser, prefix string, parse func(name string) error) error {
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		err := parse(name)
		if errors.Is(err, ErrUnrecognized) {
			return d.Errf("%sunrecognized subdirective '%s'", prefix, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// One reads the single argument of the subdirective d is on, named name in
// a block whose errors start with prefix (e.g. "model 'a': "). It fails when
// isSet (the subdirective was given before), when the line does not have
// exactly one argument, and when parse rejects the argument; want, if not
// empty, says what a valid value is.
func One(d *caddyfile.Dispenser, prefix, name string, isSet bool, parse func(arg string) bool, want string) error {
	if isSet {
		return d.Errf("%s%s already specified", prefix, name)
	}
	var arg string
	if !d.AllArgs(&arg) {
		return d.ArgErr()
	}
	if parse(arg) {
		return nil
	}
	if want == "" {
		return d.Errf("%sinvalid %s '%s'", prefix, name, arg)
	}
	return d.Errf("%sinvalid %s '%s': %s", prefix, name, arg, want)
}

// String stores any argument in *dst.
func String(dst *string) func(string) bool {
	return func(arg string) bool {
		*dst = arg
		return true
	}
}

// PositiveDuration parses a duration such as 10m, accepting only positive
// ones (zero would read as "the default").
func PositiveDuration(dst *caddy.Duration) func(string) bool {
	return func(arg string) bool {
		d, err := caddy.ParseDuration(arg)
		if err != nil || d <= 0 {
			return false
		}
		*dst = caddy.Duration(d)
		return true
	}
}

// Int parses a whole number from low to high.
func Int(dst *int, low, high int) func(string) bool {
	return func(arg string) bool {
		n, err := strconv.Atoi(arg)
		if err != nil || n < low || n > high {
			return false
		}
		*dst = n
		return true
	}
}

// decimal is a number written in decimal digits with an optional fraction:
// 10, 2.50, .5; no sign, exponent, hexadecimal, Inf or NaN.
var decimal = regexp.MustCompile(`^([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)

// Decimal parses a number written in decimal, such as 2.50 or 10: 0 or
// more and finite (a sign, an exponent, hexadecimal, Inf and NaN are
// refused).
func Decimal(dst *float64) func(string) bool {
	return func(arg string) bool {
		if !decimal.MatchString(arg) {
			return false
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || math.IsInf(f, 0) {
			return false
		}
		*dst = f
		return true
	}
}

// Size parses a size such as 10MiB, from 1 byte to high.
func Size(dst *int64, high uint64) func(string) bool {
	return func(arg string) bool {
		size, err := humanize.ParseBytes(arg)
		if err != nil || size == 0 || size > high {
			return false
		}
		*dst = int64(size)
		return true
	}
}
