package llmapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
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
	n := 0
	for i, c := range v {
		if c < '0' || c > '9' || i == 1 && v[0] == '0' || n > maxTokenCount/10 {
			return 0, errJSONType
		}
		n = n*10 + int(c-'0')
	}
	if len(v) == 0 || n > maxTokenCount {
		return 0, errJSONType
	}
	return n, nil
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
// the members of the object that starts b are found without validating
// the values between them (a value of the wrong shape is for its reader to
// refuse). It returns how many bytes of b the object takes, or -1 when b
// does not start with an object it can walk; null, and nil for an absent
// value, count as an empty object.
func skimFields(b []byte, keys []string, vals [][]byte) int {
	i := skipSpace(b, 0)
	if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
		return i + 4
	}
	if b == nil {
		return 0
	}
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		if b[i] != '"' {
			return -1
		}
		end := skipString(b, i)
		if end < 0 {
			return -1
		}
		key := b[i:end]
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return -1
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return -1
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
	if i >= len(b) {
		return -1
	}
	return i + 1
}

// skimFirstField returns the raw value of the first top-level member of
// the object b named key (a string literal, quotes included); nil when b
// has none or cannot be walked. It searches for the key's literal and
// walks b's brackets and strings only as far as the first occurrence that
// is a top-level key: a response names its model near its start.
func skimFirstField(b []byte, key string) []byte {
	literal := []byte(key)
	i, depth := 0, 0 // the walk: how far it has read, in how many containers
	for k := 0; ; k += len(literal) {
		found := indexKey(b[k:], literal)
		if found < 0 {
			return nil
		}
		k += found
		for i < k {
			switch b[i] {
			case '"':
				if i = skipString(b, i); i < 0 {
					return nil
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			i++
		}
		if colon := skipSpace(b, k+len(literal)); i == k && depth == 1 && colon < len(b) && b[colon] == ':' {
			start := skipSpace(b, colon+1)
			if end := skipValue(b, start); end > 0 {
				return b[start:end]
			}
			return nil
		}
	}
}

// indexKey is bytes.Index(b, literal) for a key's literal, which it
// searches for from its second byte on: the letter is rarer in JSON than
// the quote that starts every string.
func indexKey(b, literal []byte) int {
	for from := 1; from < len(b); {
		i := bytes.Index(b[from:], literal[1:])
		if i < 0 {
			break
		}
		if b[from+i-1] == literal[0] {
			return from + i - 1
		}
		from += i + 1
	}
	return -1
}

// maxKeyMatches bounds the occurrences of a key's literal skimLastField
// looks at before it walks the object member by member instead.
const maxKeyMatches = 8

// lastFieldWindow is the length of the end of a body that skimLastField
// searches first; each window before it is twice as long as the one after.
const lastFieldWindow = 512

// skimLastField reads with read the value of the last top-level member of
// the object b named key (a string literal, quotes included), the member
// skimFields finds, and reports whether there is one that read accepts.
// It reads only the occurrences of the key's literal, which it searches
// for from b's end, and what follows them: a response puts its usage near
// its end, so the text before it is not read at all.
//
// read is given b from a value's first byte on, and returns what it read
// and how many bytes the value takes, or -1 when it does not accept it.
// It may be given the values of nested members named key too, whose
// results are dropped: in JSON an occurrence of the key's literal whose
// first quote is not escaped is a whole string token, one followed by ':'
// is a member, and a member is the top-level object's when what follows
// its value first closes a container at b's final '}'.
func skimLastField[T any](b []byte, key string, read func(v []byte) (T, int)) (value T, found bool) {
	end := len(b) - 1
	for end >= 0 && isSpace(b[end]) {
		end--
	}
	if end < 0 || b[end] != '}' {
		return skimOneField(b, key, read)
	}
	literal := []byte(key)
	matches := 0
	// each window holds the occurrences that start in b[lo:hi], found in
	// order; the last top-level one in the last window that has one wins
	for hi, size := end, lastFieldWindow; hi > 0 && !found; hi, size = max(0, hi-size), 2*size {
		limit := min(hi+len(literal)-1, end)
		for k := max(0, hi-size); k < limit; matches++ {
			i := indexKey(b[k:limit], literal)
			if i < 0 {
				break
			}
			if matches == maxKeyMatches {
				return skimOneField(b, key, read)
			}
			k += i
			next := k + len(literal)
			if colon := skipSpace(b, next); !escaped(b, k) && b[colon] == ':' {
				start := skipSpace(b, colon+1)
				if v, n := read(b[start:end]); n > 0 {
					if closing(b[:end+1], start+n) == end {
						value, found = v, true
					}
					next = start + n
				}
			}
			k = next
		}
	}
	return value, found
}

// skimOneField is skimLastField by a walk of b's members.
func skimOneField[T any](b []byte, key string, read func(v []byte) (T, int)) (value T, found bool) {
	var f [1][]byte
	if skimFields(b, []string{key}, f[:]) < 0 || f[0] == nil {
		return value, false
	}
	value, size := read(f[0])
	return value, size > 0
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
// b[i] ('"'), or -1 when b ends first. It reads eight bytes at a time,
// going straight to the first quote or backslash among them.
func skipString(b []byte, i int) int {
	for i++; ; {
		if i+8 <= len(b) {
			marks := quoteOrBackslash(binary.LittleEndian.Uint64(b[i:]))
			if marks == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(marks) / 8
		} else if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i += 2
		default: // one of the last seven bytes, read one by one
			i++
		}
	}
}

// quoteOrBackslash marks (in their high bits) the bytes of w that are
// quotes or backslashes, and perhaps bytes after the first one that is:
// its lowest mark is exact.
func quoteOrBackslash(w uint64) uint64 {
	return (hasZeroByte(w^quotes) | hasZeroByte(w^backslash)) & highBits
}

// endsScalar marks the bytes that end a number or a literal: what may
// follow a value, and space.
var endsScalar = [256]bool{',': true, '}': true, ']': true, ' ': true, '\t': true, '\n': true, '\r': true}

// escaped reports whether b[i] follows an odd number of backslashes: a
// quote inside a string.
func escaped(b []byte, i int) bool {
	n := 0
	for i--; i >= 0 && b[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
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
		if end := closing(b, i+1); end >= 0 {
			return end + 1
		}
		return -1
	}
	start := i
	for i < len(b) && !endsScalar[b[i]] {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// closing returns the offset of the bracket that closes the container
// b[i] is in, read only as far as brackets and strings, or -1 when b ends
// first.
func closing(b []byte, i int) int {
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
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}
