package llmapi

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Requests are translated in one pass each way. A turnReader walks the
// client's request with the validating scanner, keeping only what the
// neutral form holds; each API's encoder appends the model's request to
// one buffer. Neither uses reflection or allocates per value, so that a
// 32 KB agent turn translates in tens of microseconds
// (BenchmarkTranslateRequest).

// turnReader reads a request body into a Turn. The turn's strings and raw
// JSON values alias the body where they can (see DecodeTurn), and its
// parts, tool calls and tool results share a few slices, so that a turn
// costs a few allocations however many messages it has.
type turnReader struct {
	scanner
	t Turn
	// arena holds the decoded values of the string literals that have
	// escapes; every other string of the turn aliases the body. Bytes
	// written to the arena are never written again (a full arena is left
	// for a new one), which is what makes the strings that alias it safe.
	arena []byte
	// parts holds the parts of every message, each message's parts
	// contiguous; the message being read starts at msgStart.
	parts    []Part
	msgOpen  bool
	msgRole  Role
	msgStart int
	// results holds the content of every tool result.
	results []Part
	// scratch holds the content of the message being read until its role
	// says where it goes.
	scratch []Part
	calls   []ToolCall
	outputs []ToolResult
	images  []Image
}

func newTurnReader(body []byte) *turnReader { return &turnReader{scanner: scanner{b: body}} }

// minArena is the size of an arena: decoded strings share one until it is
// full.
const minArena = 8 << 10

// finish ends the read: the last message is closed and nothing but space
// may follow the request object.
func (r *turnReader) finish() (*Turn, error) {
	if r.peek() != 0 {
		return nil, invalid("request body has data after the JSON object")
	}
	r.closeMessage()
	return &r.t, nil
}

// beginMessage starts a message of role, or continues the message being
// read when it has the same role: Messages requires the roles to
// alternate, and a run of Chat tool messages is one user turn.
func (r *turnReader) beginMessage(role Role) {
	if r.msgOpen && r.msgRole == role {
		return
	}
	r.closeMessage()
	r.msgOpen, r.msgRole, r.msgStart = true, role, len(r.parts)
}

// closeMessage adds the message being read, if any, to the turn.
func (r *turnReader) closeMessage() {
	if !r.msgOpen {
		return
	}
	end := len(r.parts)
	var parts []Part
	if end > r.msgStart {
		parts = r.parts[r.msgStart:end:end]
	}
	r.t.Messages = append(r.t.Messages, Message{Role: r.msgRole, Parts: parts})
	r.msgOpen = false
}

// part adds a part to the message being read.
func (r *turnReader) part(p Part) { r.parts = append(r.parts, p) }

// text adds a text part to the message being read.
func (r *turnReader) text(s string) { r.part(Part{Kind: PartText, Text: s}) }

// toolCallPart is a part of call c, kept with the turn's other calls.
func (r *turnReader) toolCallPart(c ToolCall) Part {
	r.calls = append(r.calls, c)
	return Part{Kind: PartToolCall, ToolCall: &r.calls[len(r.calls)-1]}
}

// toolResultPart is a part of a tool result, kept with the turn's others,
// its content the results read since resultStart.
func (r *turnReader) toolResultPart(callID string, resultStart int, isError bool) Part {
	var content []Part
	if end := len(r.results); end > resultStart {
		content = r.results[resultStart:end:end]
	}
	r.outputs = append(r.outputs, ToolResult{CallID: callID, Content: content, IsError: isError})
	return Part{Kind: PartToolResult, ToolResult: &r.outputs[len(r.outputs)-1]}
}

// image is img, kept with the turn's other images. Pointers into calls,
// outputs and images stay valid when the slices grow: they then point into
// the old array, which holds the same values.
func (r *turnReader) image(img Image) *Image {
	r.images = append(r.images, img)
	return &r.images[len(r.images)-1]
}

// keep returns b, a run of validated body bytes, as a string that aliases
// the body. When decode is set, b is a string literal and the string is
// its value: one with escapes is decoded into the arena.
func (r *turnReader) keep(b []byte, decode bool) string {
	if decode {
		b = b[1 : len(b)-1]
		if bytes.IndexByte(b, '\\') >= 0 {
			if cap(r.arena)-len(r.arena) < len(b) {
				r.arena = make([]byte, 0, max(len(b), minArena))
			}
			start := len(r.arena)
			r.arena = appendUnescaped(r.arena, b)
			b = r.arena[start:]
		}
	}
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// wrongType is the error for a value of the wrong JSON type; the value is
// consumed first, so that a malformed body is reported as such.
func (r *turnReader) wrongType(what, want string) error {
	if err := r.value(3); err != nil {
		return err
	}
	return invalid("%s must be %s", what, want)
}

// string reads a string value, null being "".
func (r *turnReader) string(what string) (string, error) {
	switch r.peek() {
	case '"':
		start := r.i
		if err := r.str(); err != nil {
			return "", err
		}
		return r.keep(r.b[start:r.i], true), nil
	case 'n':
		return "", r.literal("null")
	}
	return "", r.wrongType(what, "a string")
}

// word reads a string value that the reader compares with an API's words
// (a type, a role) without keeping it: escapes are decoded, in a new
// slice, only where there are any. null is nil.
func (r *turnReader) word(what string) ([]byte, error) {
	switch r.peek() {
	case '"':
		start := r.i
		if err := r.str(); err != nil {
			return nil, err
		}
		return jsonWord(r.b[start:r.i])
	case 'n':
		return nil, r.literal("null")
	}
	return nil, r.wrongType(what, "a string")
}

// number reads a number value; null is nil.
func (r *turnReader) number(what string) (*float64, error) {
	switch c := r.peek(); {
	case c == 'n':
		return nil, r.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		start := r.i
		if err := r.scanner.number(); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(string(r.b[start:r.i]), 64)
		if err != nil {
			return nil, invalid("%s is out of range", what)
		}
		return &f, nil
	}
	return nil, r.wrongType(what, "a number")
}

// integer reads a whole number value; null is 0.
func (r *turnReader) integer(what string) (int, error) {
	f, err := r.number(what)
	switch {
	case err != nil || f == nil:
		return 0, err
	case *f != math.Trunc(*f) || math.Abs(*f) > maxTokenCount:
		return 0, invalid("%s must be a whole number", what)
	}
	return int(*f), nil
}

// boolean reads a true or false value; null is nil.
func (r *turnReader) boolean(what string) (*bool, error) {
	var v bool
	switch r.peek() {
	case 't':
		v = true
		if err := r.literal("true"); err != nil {
			return nil, err
		}
	case 'f':
		if err := r.literal("false"); err != nil {
			return nil, err
		}
	case 'n':
		return nil, r.literal("null")
	default:
		return nil, r.wrongType(what, "true or false")
	}
	return &v, nil
}

// raw reads any value and returns its bytes in the body, which the turn
// may keep (see DecodeTurn); nil for null.
func (r *turnReader) raw(depth int) ([]byte, error) {
	start := r.i
	if err := r.value(depth); err != nil {
		return nil, err
	}
	if v := r.b[start:r.i:r.i]; string(v) != "null" {
		return v, nil
	}
	return nil, nil
}

// outputFormat reads a structured output format: Chat's response_format,
// whose json_schema details are in the member named nested, or Responses'
// text.format (nested ""), where they sit beside its type. A text format
// is nil.
func (r *turnReader) outputFormat(depth int, what, nested string) (*OutputFormat, error) {
	var f OutputFormat
	details := func(name []byte) error {
		var schema Tool
		ok, err := r.functionMember(depth+2, name, "schema", &schema)
		if !ok {
			return r.value(depth + 2)
		}
		if err != nil {
			return within(err, "%s", what)
		}
		switch string(name) {
		case "name":
			f.Name = schema.Name
		case "description":
			f.Description = schema.Description
		case "schema":
			f.Schema = schema.Parameters
		default:
			f.Strict = schema.Strict
		}
		return nil
	}
	err := r.members(depth, what, func(name []byte) error {
		switch {
		case string(name) == "type":
			typ, err := r.string(what + ".type")
			f.Type = typ
			return err
		case nested != "" && string(name) == nested:
			return r.members(depth+1, what+"."+nested, details)
		case nested == "":
			return details(name)
		}
		return r.value(depth + 1)
	})
	switch {
	case err != nil:
		return nil, err
	case f.Type == "" || f.Type == "text":
		return nil, nil
	case f.Type != "json_schema" && f.Type != "json_object":
		return nil, unsupported(what + " of a type other than text, json_object or json_schema")
	}
	return &f, nil
}

// appendOutputSchema appends the members that describe a json_schema
// format.
func appendOutputSchema(w []byte, f *OutputFormat) []byte {
	return appendFunction(w, f.Name, f.Description, "schema", f.Schema, f.Strict)
}

// members walks an object value, calling member with each key's name;
// member must consume the value. null counts as an empty object. A key
// given twice is refused: the reader and the upstream might each take a
// different one.
func (r *turnReader) members(depth int, what string, member func(name []byte) error) error {
	switch r.peek() {
	case 'n':
		return r.literal("null")
	case '{':
	default:
		return r.wrongType(what, "an object")
	}
	var seenBuf [16][]byte
	seen := seenBuf[:0]
	return r.object(depth, func(key []byte, _, _ int) error {
		name, err := jsonWord(key)
		if err != nil {
			return err
		}
		for _, k := range seen {
			if bytes.Equal(k, name) {
				return invalid("%s has a duplicate %q field", what, name)
			}
		}
		seen = append(seen, name)
		return member(name)
	})
}

// elements walks an array value, calling elem with each element's index;
// elem must consume the element. null counts as an empty array.
func (r *turnReader) elements(depth int, what string, elem func(i int) error) error {
	switch r.peek() {
	case 'n':
		return r.literal("null")
	case '[':
	default:
		return r.wrongType(what, "an array")
	}
	i := 0
	return r.array(depth, func(int) error {
		err := elem(i)
		i++
		return err
	})
}

// readOnlyBytes is s as a byte slice without a copy, for reading only: the
// bytes of a string must never be written.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// isJSONObject reports whether b is a JSON object and nothing else.
func isJSONObject(b []byte) bool {
	s := scanner{b: b}
	return s.peek() == '{' && s.value(0) == nil && s.peek() == 0
}

// each walks an array value whose elements read reads, placing an error
// from inside an element at the element (within): key is the array's
// member name, quoted.
func (r *turnReader) each(depth int, key string, read func() error) error {
	return r.elements(depth, key, func(i int) error {
		if err := read(); err != nil {
			return within(err, "%s[%d]", strings.Trim(key, `"`), i)
		}
		return nil
	})
}

// only walks an object value, reading its member named key with read and
// skipping the others.
func (r *turnReader) only(depth int, what, key string, read func() error) error {
	return r.members(depth, what, func(name []byte) error {
		if string(name) != key {
			return r.value(depth + 1)
		}
		return read()
	})
}

// functionMember reads a member of a function tool's definition (name,
// description, the schema of its arguments, strict) into tool, its value at
// depth; false for a member of another name. Errors are relative to the
// definition.
func (r *turnReader) functionMember(depth int, name []byte, schemaKey string, tool *Tool) (ok bool, err error) {
	switch string(name) {
	case "name":
		tool.Name, err = r.string(".name")
	case "description":
		tool.Description, err = r.string(".description")
	case schemaKey:
		tool.Parameters, err = r.raw(depth)
	case "strict":
		tool.Strict, err = r.boolean(".strict")
	default:
		return false, nil
	}
	return true, err
}

// flatTool reads one of "tools" whose definition sits beside its type (as
// in Messages and Responses), its schema under schemaKey.
func (r *turnReader) flatTool(schemaKey string) (tool Tool, kind []byte, err error) {
	err = r.members(2, "", func(name []byte) (err error) {
		if string(name) == "type" {
			kind, err = r.word(".type")
			return err
		}
		ok, err := r.functionMember(3, name, schemaKey, &tool)
		if !ok {
			return r.value(3)
		}
		return err
	})
	return tool, kind, err
}

// usage reads the usage object of a Chat or Responses response; nil for
// none.
func (r *turnReader) usage(keys openAIUsageKeys) (*Usage, error) {
	raw, err := r.raw(1)
	if raw == nil || err != nil {
		return nil, err
	}
	u, err := openAIUsage(raw, keys)
	return &u, err
}

// appendStrings appends `"key":[...]`, the strings of list, as
// appendJSONKey places it.
func appendStrings(w []byte, key string, list []string) []byte {
	w = append(appendJSONKey(w, key), '[')
	for _, s := range list {
		w = appendJSONString(appendElem(w), s)
	}
	return append(w, ']')
}

// appendFunction appends the members of a function's definition (of a
// tool, or a structured output's schema): name, and description, schema
// (under schemaKey) and strict where set.
func appendFunction(w []byte, name, description, schemaKey string, schema []byte, strict *bool) []byte {
	w = appendJSONMember(w, "name", name)
	if description != "" {
		w = appendJSONMember(w, "description", description)
	}
	if len(schema) > 0 {
		w = appendJSONRaw(w, schemaKey, schema)
	}
	if strict != nil {
		w = appendJSONBool(w, "strict", *strict)
	}
	return w
}

// within places an error found inside a value: one whose message is
// relative (starts with ".", ",", ":" or " ", as ".role must be a string")
// gets where the value is, e.g. "messages[3]", put before it. Errors about
// the body as a whole (malformed JSON) are left as they are.
func within(err error, format string, args ...any) error {
	relative := func(msg string) bool { return msg != "" && strings.IndexByte(".,: ", msg[0]) >= 0 }
	switch e := err.(type) {
	case *InvalidRequestError:
		if relative(e.Msg) {
			return &InvalidRequestError{Msg: fmt.Sprintf(format, args...) + e.Msg}
		}
	case *UnsupportedError:
		if relative(e.Feature) {
			return &UnsupportedError{Feature: fmt.Sprintf(format, args...) + e.Feature}
		}
	}
	return err
}

// appendUnescaped appends the decoded value of inner, the inside of a
// validated string literal.
func appendUnescaped(dst, inner []byte) []byte {
	for {
		esc := bytes.IndexByte(inner, '\\')
		if esc < 0 {
			return append(dst, inner...)
		}
		dst = append(dst, inner[:esc]...)
		c := inner[esc+1]
		inner = inner[esc+2:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			var rn rune
			rn, inner = unicodeEscape(inner)
			dst = utf8.AppendRune(dst, rn)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
}

// appendJSONFloat appends `"key":f` as appendJSONKey places it, formatted
// as encoding/json formats a float64.
func appendJSONFloat(dst []byte, key string, f float64) []byte {
	dst = appendJSONKey(dst, key)
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 as e-7, as encoding/json writes it
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONBool appends `"key":v` as appendJSONKey places it.
func appendJSONBool(dst []byte, key string, v bool) []byte {
	return strconv.AppendBool(appendJSONKey(dst, key), v)
}

// appendJSONRaw appends `"key":` and raw, a JSON value, as appendJSONKey
// places it.
func appendJSONRaw(dst []byte, key string, raw []byte) []byte {
	return append(appendJSONKey(dst, key), raw...)
}

// appendElem opens an array element: a comma unless it is the first.
func appendElem(dst []byte) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '[' {
		dst = append(dst, ',')
	}
	return dst
}

// sizeHint is about how many bytes the turn takes as a request of any API,
// so that an encoder allocates its buffer once.
func (t *Turn) sizeHint() int {
	n := 512 + len(t.System)
	for _, tool := range t.Tools {
		n += 64 + len(tool.Name) + len(tool.Description) + len(tool.Parameters)
	}
	for _, m := range t.Messages {
		n += 32
		for _, p := range m.Parts {
			n += 64 + partSize(p)
		}
	}
	return n + n/8 // escapes
}

func partSize(p Part) int {
	switch p.Kind {
	case PartImage:
		return len(p.Image.MediaType) + len(p.Image.Data) + len(p.Image.URL)
	case PartToolCall:
		return len(p.ToolCall.ID) + len(p.ToolCall.Name) + len(p.ToolCall.Arguments)*5/4
	case PartToolResult:
		n := len(p.ToolResult.CallID)
		for _, c := range p.ToolResult.Content {
			n += 32 + partSize(c)
		}
		return n
	}
	return len(p.Text) + len(p.Signature)
}
