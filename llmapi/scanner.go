package llmapi

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// maxNesting bounds how deeply a request body may nest arrays and objects.
// Real chat requests (tool schemas included) stay far below it; deeper
// documents are rejected before anything recurses on them.
const maxNesting = 128

// scanner validates JSON while walking it, without building values.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end of input.
func (s *scanner) peek() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) malformed() error {
	if s.i >= len(s.b) {
		return invalid("malformed JSON: unexpected end of body")
	}
	return invalid("malformed JSON at byte %d", s.i)
}

// value validates one JSON value at depth and moves past it.
func (s *scanner) value(depth int) error {
	switch s.peek() {
	case '{':
		return s.object(depth, func([]byte, int, int) error { return s.value(depth + 1) })
	case '[':
		return s.array(depth, func(int) error { return s.value(depth + 1) })
	case '"':
		return s.str()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

// expect validates one value at depth, failing with msg when it does not
// start with first (a JSON type check by its first byte).
func (s *scanner) expect(depth int, first byte, msg string) error {
	ok := s.peek() == first
	if err := s.value(depth); err != nil {
		return err
	}
	if !ok {
		return &InvalidRequestError{Msg: msg}
	}
	return nil
}

// open moves past the opening bracket of a container at depth, and past
// its closing one too when it is empty, which it reports.
func (s *scanner) open(depth int, closing byte) (empty bool, err error) {
	if depth >= maxNesting {
		return false, invalid("request body nests deeper than %d levels", maxNesting)
	}
	s.i++ // '{' or '['
	if s.peek() == closing {
		s.i++
		return true, nil
	}
	return false, nil
}

// object validates an object, calling member with each key (the raw string
// literal, quotes included), the offset of the member (its key's opening
// quote) and the offset where its value starts; member must consume the value.
func (s *scanner) object(depth int, member func(key []byte, memberStart, valueStart int) error) error {
	if empty, err := s.open(depth, '}'); empty || err != nil {
		return err
	}
	for {
		if s.peek() != '"' {
			return s.malformed()
		}
		memberStart := s.i
		if err := s.str(); err != nil {
			return err
		}
		key := s.b[memberStart:s.i]
		if s.peek() != ':' {
			return s.malformed()
		}
		s.i++
		s.space()
		if err := member(key, memberStart, s.i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.malformed()
		}
	}
}

// array validates an array, calling elem with each element's start offset;
// elem must consume the element.
func (s *scanner) array(depth int, elem func(start int) error) error {
	if empty, err := s.open(depth, ']'); empty || err != nil {
		return err
	}
	for {
		s.space()
		if err := elem(s.i); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.malformed()
		}
	}
}

// str validates a string literal starting at '"' and moves past it.
func (s *scanner) str() error {
	start := s.i
	s.i++ // opening quote
	// the bytes passed (and some past them), ORed together: a high bit set
	// means the string may have non-ASCII bytes, to be checked as UTF-8
	// once it is closed
	var seen uint64
	for s.i < len(s.b) {
		var read uint64
		s.i, read = skipPlain(s.b, s.i)
		seen |= read
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if seen&highBits != 0 {
				return checkUTF8(s.b[start:s.i], start)
			}
			return nil
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return s.malformed()
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(s.b) {
					s.i = len(s.b)
					return s.malformed()
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return s.malformed()
					}
				}
				s.i += 5
			default:
				return s.malformed()
			}
		case c < 0x20:
			return s.malformed()
		default:
			seen |= uint64(c)
			s.i++
		}
	}
	return s.malformed()
}

// checkUTF8 fails unless lit, a string literal found at offset at of the
// body, is UTF-8 (no overlong forms, no encoded surrogates), naming the
// offset of the first byte that is not.
func checkUTF8(lit []byte, at int) error {
	if utf8.Valid(lit) {
		return nil
	}
	for { // utf8.Valid failed, so this meets a byte that is not UTF-8
		r, size := utf8.DecodeRune(lit)
		if r == utf8.RuneError && size == 1 {
			return invalid("malformed JSON: invalid UTF-8 at byte %d", at)
		}
		lit, at = lit[size:], at+size
	}
}

// Word-at-a-time constants for skipPlain: every byte of the word set to 0x01,
// 0x80, 0x20 (the first byte a string may hold unescaped), '"' and '\\'.
const (
	ones      = 0x0101010101010101
	highBits  = 0x8080808080808080
	spaces    = 0x20 * ones
	quotes    = '"' * ones
	backslash = '\\' * ones
)

// skipPlain returns the offset of the first byte from i on that needs
// attention inside a string (a '"', a '\\' or a control byte), going eight
// bytes at a time, and the words it read ORed together: no high bit set
// means that all it passed was ASCII (bytes past where it stopped are
// included, which can only make a string be checked as UTF-8 in vain).
// Chat bodies are mostly string content, so this loop is most of the
// envelope pass; it is kept small enough to be inlined into str (see
// go build -gcflags=-m).
func skipPlain(b []byte, i int) (next int, read uint64) {
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		read |= w
		if special := specialBytes(w) & highBits; special != 0 {
			return i + bits.TrailingZeros64(special)/8, read
		}
	}
	return i, read
}

// specialBytes marks (in its high bit) the first byte of w that is a quote,
// a backslash or below 0x20; bytes after it may be marked falsely.
func specialBytes(w uint64) uint64 {
	return (w-spaces)&^w | hasZeroByte(w^quotes) | hasZeroByte(w^backslash)
}

// hasZeroByte marks (in its high bit) the first zero byte of w.
func hasZeroByte(w uint64) uint64 { return (w - ones) &^ w }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.malformed()
	}
	s.i += len(word)
	return nil
}

// number validates a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		s.i = start
		return s.malformed()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return s.malformed()
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return s.malformed()
		}
	}
	return nil
}

// digits consumes a run of digits and reports whether there was at least one.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
