package router

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// maxNesting bounds how deeply a request body may nest arrays and objects.
// Real chat requests (tool schemas included) stay far below it; deeper
// documents are rejected before anything recurses on them.
const maxNesting = 128

// API names the wire format of a chat request.
type API uint8

// The wire formats the gateway understands.
const (
	// OpenAI is POST .../chat/completions.
	OpenAI API = iota
	// Anthropic is POST .../messages.
	Anthropic
)

// String returns the API's short name, as used in logs.
func (a API) String() string {
	if a == Anthropic {
		return "anthropic"
	}
	return "openai"
}

// InvalidRequestError is a client error in a request body. Its message names
// the offending field and never quotes body content.
type InvalidRequestError struct{ Msg string }

func (e *InvalidRequestError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidRequestError{Msg: fmt.Sprintf(format, args...)}
}

// Envelope is what the gateway needs from the top level of a chat request
// body, found in one validating pass without decoding the whole document.
type Envelope struct {
	// Model is the decoded "model" value; empty when the field is absent.
	Model string
	// Messages is the raw JSON array of "messages".
	Messages []byte
	// LastMessage is the raw JSON object of the last message.
	LastMessage []byte
	// Preferences is the raw "routing_preferences" value, nil when absent.
	// Segments strips the field: it is for the gateway, not the upstream.
	Preferences []byte
	// Tools is the raw "tools" value, nil when absent.
	Tools []byte

	modelStart, modelEnd int // byte span of the "model" value; modelStart < 0 when absent
	prefsStart, prefsEnd int // byte span of the whole "routing_preferences" member
	objectStart          int // offset of the body's opening '{'
}

// ParseEnvelope validates body as a chat request (OpenAI chat completions or
// Anthropic messages: both share this top level) and locates its "model" and
// "messages" fields. The whole body must be well-formed JSON in UTF-8;
// "model" must be a string when present; "messages" must be a non-empty array
// of objects, each with a string "role" and a "content" that is a string, an
// array or null. The keys the gateway interprets (topLevelFields, and
// messageFields in each message) must each appear at most once and be spelled
// exactly: a case variant, which a decoder that folds case would read as the
// field, is refused. A failure is an *InvalidRequestError.
func ParseEnvelope(body []byte) (Envelope, error) {
	env := Envelope{modelStart: -1}
	s := scanner{b: body}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		if s.i >= len(s.b) {
			return env, invalid("request body is empty; expected a JSON object")
		}
		if err := s.value(0); err != nil {
			return env, err
		}
		return env, invalid("request body must be a JSON object")
	}
	env.objectStart = s.i
	var seen fieldsSeen
	err := s.object(0, func(key []byte, memberStart, start int) error {
		field, err := topLevelFields.lookup(key, &seen)
		if err != nil {
			return err
		}
		switch field {
		case "model":
			if err := s.expect(1, '"', "\"model\" must be a string"); err != nil {
				return err
			}
			env.modelStart, env.modelEnd = start, s.i
			model, err := unquote(s.b[start:s.i])
			if err != nil {
				return err
			}
			env.Model = model
		case "messages":
			last, err := s.messages()
			if err != nil {
				return err
			}
			env.Messages, env.LastMessage = s.b[start:s.i], last
		case "tools":
			if err := s.value(1); err != nil {
				return err
			}
			env.Tools = s.b[start:s.i]
		case "routing_preferences":
			if err := s.expect(1, '[', "\"routing_preferences\" must be an array"); err != nil {
				return err
			}
			env.Preferences = s.b[start:s.i]
			env.prefsStart, env.prefsEnd = memberStart, s.i
		default:
			return s.value(1)
		}
		return nil
	})
	if err != nil {
		return env, err
	}
	s.space()
	if s.i != len(s.b) {
		return env, invalid("request body has data after the JSON object")
	}
	if env.Messages == nil {
		return env, invalid("\"messages\" is required")
	}
	return env, nil
}

// maxSegments is the most slices Segments returns.
const maxSegments = 8

var (
	modelMember = []byte(`"model":`)
	comma       = []byte(",")
)

// Segments returns body as it goes upstream, without copying it: its
// "model" value replaced by quotedModel (a JSON string literal), inserted
// when the body had none, and "routing_preferences" removed, every other
// byte kept. It appends to dst the slices (of body, quotedModel and
// constants) whose concatenation is that body, at most maxSegments of them;
// just body when nothing changes.
func (e *Envelope) Segments(dst [][]byte, body, quotedModel []byte) [][]byte {
	replaceModel := e.modelStart >= 0 && !bytes.Equal(body[e.modelStart:e.modelEnd], quotedModel)
	insertModel := e.modelStart < 0
	dropFrom, dropTo := e.memberWithComma(body)
	if !replaceModel && !insertModel && dropFrom < 0 {
		return append(dst, body)
	}
	at := 0
	if insertModel {
		// right after '{'; "messages" is required, so another member follows
		at = e.objectStart + 1
		dst = append(dst, body[:at], modelMember, quotedModel, comma)
	}
	// the remaining edits, in body order
	if replaceModel && (dropFrom < 0 || e.modelStart < dropFrom) {
		dst = append(dst, body[at:e.modelStart], quotedModel)
		at, replaceModel = e.modelEnd, false
	}
	if dropFrom >= 0 {
		dst = append(dst, body[at:dropFrom])
		at = dropTo
	}
	if replaceModel {
		dst = append(dst, body[at:e.modelStart], quotedModel)
		at = e.modelEnd
	}
	return append(dst, body[at:])
}

// memberWithComma returns the span to cut to remove routing_preferences: the
// member and the comma before it, or after it when it is the first member.
// It returns -1, -1 when there is nothing to remove.
func (e *Envelope) memberWithComma(body []byte) (from, to int) {
	if e.Preferences == nil {
		return -1, -1
	}
	from, to = e.prefsStart, e.prefsEnd
	i := from - 1
	for i >= 0 && isSpace(body[i]) {
		i--
	}
	if i >= 0 && body[i] == ',' {
		return i, to
	}
	j := to
	for j < len(body) && isSpace(body[j]) {
		j++
	}
	if j < len(body) && body[j] == ',' {
		return from, j + 1
	}
	return from, to
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// topLevelFields are the top-level keys the gateway interprets: the ones
// ParseEnvelope, Decode and the request translation read. A field the
// gateway starts to read belongs here, so that its duplicates and case
// variants are refused.
var topLevelFields = fieldSet{
	"model", "messages", "routing_preferences", "tools", "system",
	"stream", "stream_options", "tool_choice", "max_tokens",
}

// messageFields are the keys of a message that the gateway interprets.
var messageFields = fieldSet{"role", "content"}

// fieldSet is a list of the keys of an object that the gateway interprets,
// in lower-case ASCII, at most 64 of them.
type fieldSet []string

// fieldsSeen records which fields of a fieldSet an object has had so far,
// one bit for each.
type fieldsSeen uint64

// lookup returns the field of fs that lit, a validated key literal (quotes
// included), names, or "" when it names none. It fails when the key names a
// field already in seen (and adds the field to seen), and when it differs
// from a field only in case: encoding/json, and many providers' servers with
// it, match keys case-insensitively (Unicode simple folding, as
// bytes.EqualFold), so the upstream might read the variant as the field.
func (fs fieldSet) lookup(lit []byte, seen *fieldsSeen) (string, error) {
	key := lit[1 : len(lit)-1]
	if bytes.IndexByte(key, '\\') >= 0 {
		decoded, err := unquote(lit)
		if err != nil {
			return "", err
		}
		key = []byte(decoded)
	}
	for i, field := range fs {
		if string(key) != field {
			continue
		}
		if *seen&(1<<i) != 0 {
			return "", invalid("duplicate %q field", field)
		}
		*seen |= 1 << i
		return field, nil
	}
	if field := fs.caseVariant(key); field != "" {
		return "", invalid("a case variant of %q is not accepted; spell it exactly %q", field, field)
	}
	return "", nil
}

// caseVariant returns the field of fs that key, not a field itself, equals
// when case is folded, or "" for none. The fields are lower-case ASCII,
// whose only non-ASCII case partners (U+017F for s, U+212A for k) are longer
// in UTF-8, so a key of ASCII bytes can only fold to a field of its length;
// this keeps bytes.EqualFold off the path of almost every key.
func (fs fieldSet) caseVariant(key []byte) string {
	ascii := true
	for _, c := range key {
		ascii = ascii && c < utf8.RuneSelf
	}
	for _, field := range fs {
		if (len(key) == len(field) || !ascii) && bytes.EqualFold(key, []byte(field)) {
			return field
		}
	}
	return ""
}

// unquote decodes a validated JSON string literal (str has checked its
// UTF-8).
func unquote(lit []byte) (string, error) {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", invalid("malformed string")
	}
	return s, nil
}

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

// object validates an object, calling member with each key (the raw string
// literal, quotes included), the offset of the member (its key's opening
// quote) and the offset where its value starts; member must consume the value.
func (s *scanner) object(depth int, member func(key []byte, memberStart, valueStart int) error) error {
	if depth >= maxNesting {
		return invalid("request body nests deeper than %d levels", maxNesting)
	}
	s.i++ // '{'
	if s.peek() == '}' {
		s.i++
		return nil
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
	if depth >= maxNesting {
		return invalid("request body nests deeper than %d levels", maxNesting)
	}
	s.i++ // '['
	if s.peek() == ']' {
		s.i++
		return nil
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

// messages validates the "messages" array and the shape of each message,
// and returns the last message.
func (s *scanner) messages() (last []byte, err error) {
	if s.peek() != '[' {
		if err := s.value(1); err != nil {
			return nil, err
		}
		return nil, invalid("\"messages\" must be an array")
	}
	n := 0
	err = s.array(1, func(start int) error {
		idx := n
		n++
		if s.peek() != '{' {
			if err := s.value(2); err != nil {
				return err
			}
			return invalid("messages[%d] must be an object", idx)
		}
		hasRole := false
		var seen fieldsSeen
		err := s.object(2, func(key []byte, _, _ int) error {
			field, err := messageFields.lookup(key, &seen)
			if err != nil {
				return invalid("messages[%d]: %v", idx, err)
			}
			switch field {
			case "role":
				if s.peek() != '"' {
					if err := s.value(3); err != nil {
						return err
					}
					return invalid("messages[%d].role must be a string", idx)
				}
				hasRole = true
			case "content":
				return s.content(idx)
			}
			return s.value(3)
		})
		if err != nil {
			return err
		}
		if !hasRole {
			return invalid("messages[%d].role is required", idx)
		}
		last = s.b[start:s.i]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, invalid("\"messages\" must not be empty")
	}
	return last, nil
}

// content validates a message's content: a string, null, or an array of
// content part objects.
func (s *scanner) content(idx int) error {
	switch s.peek() {
	case '"', 'n':
		return s.value(3)
	case '[':
		return s.array(3, func(int) error {
			if s.peek() != '{' {
				if err := s.value(4); err != nil {
					return err
				}
				return invalid("messages[%d].content parts must be objects", idx)
			}
			return s.value(4)
		})
	}
	if err := s.value(3); err != nil {
		return err
	}
	return invalid("messages[%d].content must be a string, an array or null", idx)
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
