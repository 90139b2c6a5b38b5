package llmapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// JSON reading and writing for the stream decoders and encoders: an event
// is walked member by member with the validating scanner, keeping only the
// fields a decoder reads, and written by appending to a reused buffer.
// Neither builds a map or uses reflection, so that a delta costs little
// more than its text.

// errJSONType fails a stream event whose field has the wrong JSON type.
var errJSONType = errors.New("llmapi: stream event field of the wrong JSON type")

// jsonObject calls member with the key (its string literal, quotes
// included) and raw value of each member of the object b, which it
// validates; null, and nil for a member that is absent, count as an empty
// object.
func jsonObject(b []byte, member func(key, value []byte) error) error {
	s := scanner{b: b}
	if ok, err := s.container('{'); !ok {
		return err
	}
	return s.whole(s.object(0, func(key []byte, _, start int) error {
		if err := s.value(1); err != nil {
			return err
		}
		return member(key, b[start:s.i])
	}))
}

// jsonArray calls elem with each element of the array b, which it
// validates; null and nil (absent) count as an empty array.
func jsonArray(b []byte, elem func(value []byte) error) error {
	s := scanner{b: b}
	if ok, err := s.container('['); !ok {
		return err
	}
	return s.whole(s.array(0, func(start int) error {
		if err := s.value(1); err != nil {
			return err
		}
		return elem(b[start:s.i])
	}))
}

// jsonFields sets vals[i] to the raw value of the member of the object b
// named keys[i] (a string literal, quotes included); nil for one absent.
func jsonFields(b []byte, keys []string, vals [][]byte) error {
	return jsonObject(b, func(key, v []byte) error {
		for i, k := range keys {
			if string(key) == k {
				vals[i] = v
				break
			}
		}
		return nil
	})
}

// container reports whether the value is a container that opens with
// open; null, and nothing at all for an absent value, are none, without
// an error.
func (s *scanner) container(open byte) (bool, error) {
	switch s.peek() {
	case open:
		return true, nil
	case 'n':
		return false, s.whole(s.literal("null"))
	case 0:
		if s.b == nil {
			return false, nil
		}
	}
	return false, errJSONType
}

// whole returns err, or an error if anything but space follows the value.
func (s *scanner) whole(err error) error {
	if err == nil && s.peek() != 0 {
		return s.malformed()
	}
	return err
}

// jsonString decodes the string value v, which a jsonObject or jsonArray
// walk has validated; null and nil (absent) are "".
func jsonString(v []byte) (string, error) {
	if len(v) == 0 || v[0] != '"' {
		if v == nil || string(v) == "null" {
			return "", nil
		}
		return "", errJSONType
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	b := appendUnescaped(make([]byte, 0, len(inner)), inner)
	// b is not written again: the string may alias it
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// unicodeEscape decodes the \u escape whose four hex digits start h (the
// scanner checked them), with the low half of a surrogate pair that
// follows it, and returns the rest of h; a lone surrogate is U+FFFD.
func unicodeEscape(h []byte) (rune, []byte) {
	r := hex4(h)
	h = h[4:]
	if utf16.IsSurrogate(r) {
		r2 := rune(-1)
		if len(h) >= 6 && h[0] == '\\' && h[1] == 'u' {
			r2 = hex4(h[2:])
		}
		if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
			h = h[6:]
		}
	}
	return r, h
}

// jsonWord is the string value v as bytes, for a switch on the words an
// API uses (a type, a reason): undecoded, and so not allocated, when it has
// no escapes; null and nil (absent) are nil.
func jsonWord(v []byte) ([]byte, error) {
	if len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
		return v[1 : len(v)-1], nil
	}
	s, err := jsonString(v)
	if s == "" {
		return nil, err
	}
	return []byte(s), err
}

// hex4 decodes the four hex digits that start h (the scanner checked them).
func hex4(h []byte) rune {
	var r rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// maxTokenCount bounds a token count read from a stream, so that sums of
// counts cannot overflow.
const maxTokenCount = 1 << 40

// jsonCount decodes a count or an index: a whole number from 0 to
// maxTokenCount; null and nil (absent) are 0.
func jsonCount(v []byte) (int, error) {
	if v == nil || string(v) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 || n > maxTokenCount {
		return 0, errJSONType
	}
	return int(n), nil
}

// appendJSONString appends s as a JSON string literal. Quotes, backslashes
// and control characters are escaped and invalid UTF-8 becomes U+FFFD;
// everything else, <, > and & included, stays literal, as the APIs send it.
func appendJSONString(dst []byte, s string) []byte {
	return append(appendJSONStringBody(append(dst, '"'), s), '"')
}

// appendJSONStringBody appends s escaped as in a JSON string literal,
// without the quotes. Valid UTF-8, almost always the case, is copied eight
// bytes at a time between the bytes that need escaping.
func appendJSONStringBody(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		return appendInvalidUTF8Body(dst, s)
	}
	b := readOnlyBytes(s)
	start := 0
	for i := 0; ; i++ {
		for i+8 <= len(b) && specialBytes(binary.LittleEndian.Uint64(b[i:]))&highBits == 0 {
			i += 8
		}
		for i < len(b) && jsonPlain(b[i]) {
			i++
		}
		if i >= len(b) {
			return append(dst, b[start:]...)
		}
		dst = appendEscaped(append(dst, b[start:i]...), b[i])
		start = i + 1
	}
}

// jsonPlain reports whether c stands for itself in a JSON string.
func jsonPlain(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' }

// appendEscaped appends the escape of c, a byte jsonPlain refuses.
func appendEscaped(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}

// appendInvalidUTF8Body is appendJSONStringBody for a string that is not
// UTF-8: each byte that does not start a character becomes U+FFFD.
func appendInvalidUTF8Body(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if !jsonPlain(c) {
				dst = appendEscaped(append(dst, s[start:i-1]...), c)
				start = i
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + 1
		}
		i += size
	}
	return append(dst, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONMember appends `"key":` and the string value, after a comma
// unless it opens the object (dst ends with '{').
func appendJSONMember(dst []byte, key, value string) []byte {
	dst = appendJSONKey(dst, key)
	return appendJSONString(dst, value)
}

// appendJSONKey appends `"key":`, after a comma unless dst ends with '{'
// or '['.
// key needs no escaping.
func appendJSONKey(dst []byte, key string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' && dst[n-1] != '[' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendJSONInt appends `"key":n` as appendJSONKey places it.
func appendJSONInt(dst []byte, key string, n int) []byte {
	return strconv.AppendInt(appendJSONKey(dst, key), int64(n), 10)
}

// skimFields is jsonFields for a body the gateway only meters, read fast:
// the members of the top-level object are found without validating the
// values between them (a value of the wrong shape is for its reader to
// refuse). It reports false when b is not an object it can walk.
func skimFields(b []byte, keys []string, vals [][]byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		if b[i] != '"' {
			return false
		}
		end := skipString(b, i)
		if end < 0 {
			return false
		}
		key := b[i:end]
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return false
		}
		for k, name := range keys {
			if string(key) == name {
				vals[k] = b[i:vend]
			}
		}
		if i = skipSpace(b, vend); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return i < len(b)
}

// skipSpace returns the offset of the first byte from i on that is not
// JSON space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the offset after the string literal that starts at
// b[i] ('"'), or -1 when b ends first.
func skipString(b []byte, i int) int {
	for i++; ; {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		quote := i + j
		escapes := 0
		for k := quote - 1; k >= i && b[k] == '\\'; k-- {
			escapes++
		}
		i = quote + 1
		if escapes%2 == 0 {
			return i
		}
	}
}

// skipValue returns the offset after the value that starts at b[i], read
// only as far as its brackets and strings, or -1 when b ends first.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		for depth := 0; i < len(b); i++ {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return -1
				}
				i-- // the loop's i++ moves past the string
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	start := i
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !isSpace(b[i]) {
		i++
	}
	if i == start {
		return -1
	}
	return i
}
