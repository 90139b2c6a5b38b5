package llmapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Envelope is what the gateway needs from the top level of a chat request
// body, found in one validating pass without decoding the whole document.
type Envelope struct {
	// Model is the decoded "model" value; empty when the field is absent.
	Model string
	// messages is the raw JSON array of "messages".
	messages []byte
	// LastMessage is the raw JSON object of the last message.
	LastMessage []byte
	// Preferences is the raw "routing_preferences" value, nil when absent.
	// Segments strips the field: it is for the gateway, not the upstream.
	Preferences []byte
	// Tools is the raw "tools" value, nil when absent.
	Tools []byte
	// Stream is set when the request asks for a stream ("stream": true);
	// StreamUsage when it asks for a Chat stream's usage chunk
	// (stream_options.include_usage true).
	Stream, StreamUsage bool

	modelStart, modelEnd int // byte span of the "model" value; modelStart < 0 when absent
	prefsStart, prefsEnd int // byte span of the whole "routing_preferences" member
	objectStart          int // offset of the body's opening '{'
	// the "stream_options" value's span (optionsStart < 0 when absent), and
	// its include_usage value's (usageStart < 0 when absent)
	optionsStart, optionsEnd int
	usageStart, usageEnd     int
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
	return ParseEnvelopeFor(Chat, body)
}

// ParseEnvelopeFor is ParseEnvelope for a request of api. A Responses
// request has "input" where the others have "messages": a string, or a
// non-empty array of item objects; its LastMessage is the last item, or
// for a string the user message it stands for.
func ParseEnvelopeFor(api API, body []byte) (Envelope, error) {
	env := Envelope{modelStart: -1, optionsStart: -1, usageStart: -1}
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
			if api == Responses {
				return s.value(1)
			}
			last, err := s.messages()
			if err != nil {
				return err
			}
			env.messages, env.LastMessage = s.b[start:s.i], last
		case "input":
			if api != Responses {
				return s.value(1)
			}
			last, err := s.input()
			if err != nil {
				return err
			}
			env.messages, env.LastMessage = s.b[start:s.i], last
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
		case "stream":
			env.Stream = s.peek() == 't'
			return s.value(1)
		case "stream_options":
			return s.streamOptions(&env)
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
	if env.messages == nil {
		if api == Responses {
			return env, invalid("\"input\" is required")
		}
		return env, invalid("\"messages\" is required")
	}
	return env, nil
}

// input validates a Responses "input": a string, or a non-empty array of
// objects; it returns the last object, or for a string the user message
// it stands for.
func (s *scanner) input() (last []byte, err error) {
	start := s.i
	switch s.peek() {
	case '"':
		if err := s.str(); err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, `{"role":"user","content":%s}`, s.b[start:s.i]), nil
	case '[':
	default:
		if err := s.value(1); err != nil {
			return nil, err
		}
		return nil, invalid("\"input\" must be a string or an array")
	}
	n := 0
	err = s.array(1, func(start int) error {
		if s.peek() != '{' {
			if err := s.value(2); err != nil {
				return err
			}
			return invalid("input[%d] must be an object", n)
		}
		n++
		if err := s.value(2); err != nil {
			return err
		}
		last = s.b[start:s.i]
		return nil
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, invalid("\"input\" must not be empty")
	}
	return last, nil
}

// streamOptions validates "stream_options" and locates it and its
// include_usage, which a Chat request may not have and the gateway adds.
func (s *scanner) streamOptions(env *Envelope) error {
	env.optionsStart = s.i
	if s.peek() != '{' {
		err := s.value(1)
		env.optionsEnd = s.i
		return err
	}
	err := s.object(1, func(key []byte, _, start int) error {
		if name, err := jsonWord(key); err != nil || string(name) != "include_usage" {
			return s.value(2)
		}
		env.StreamUsage = s.peek() == 't'
		err := s.value(2)
		env.usageStart, env.usageEnd = start, s.i
		return err
	})
	env.optionsEnd = s.i
	return err
}

// maxSegments is the most slices Segments returns.
const maxSegments = 8

var (
	modelMember  = []byte(`"model":`)
	comma        = []byte(",")
	jsonTrue     = []byte("true")
	usageOption  = []byte(`"include_usage":true`)
	usageOptions = []byte(`{"include_usage":true}`)
	usageMember  = []byte(`"stream_options":{"include_usage":true},`)
)

// Segments returns body as it goes upstream, without copying it: its
// "model" value replaced by quotedModel (a JSON string literal), inserted
// when the body had none, and "routing_preferences" removed, every other
// byte kept. With askUsage, a streamed request also asks for the usage
// chunk (stream_options.include_usage true). It appends to dst the slices
// (of body, quotedModel and constants) whose concatenation is that body, at
// most maxSegments of them; just body when nothing changes.
func (e *Envelope) Segments(dst [][]byte, body, quotedModel []byte, askUsage bool) [][]byte {
	var edits [3]edit
	n := 0
	add := func(from, to int, insert ...[]byte) {
		ed := &edits[n]
		ed.from, ed.to, ed.inserts = from, to, copy(ed.insert[:], insert)
		n++
	}
	switch {
	case e.modelStart < 0:
		// right after '{'; "messages" is required, so another member follows
		add(e.objectStart+1, e.objectStart+1, modelMember, quotedModel, comma)
	case !bytes.Equal(body[e.modelStart:e.modelEnd], quotedModel):
		add(e.modelStart, e.modelEnd, quotedModel)
	}
	if from, to := e.memberWithComma(body); from >= 0 {
		add(from, to)
	}
	if askUsage && e.Stream && !e.StreamUsage {
		switch {
		case e.optionsStart < 0:
			add(e.objectStart+1, e.objectStart+1, usageMember)
		case e.usageStart >= 0:
			add(e.usageStart, e.usageEnd, jsonTrue)
		case body[e.optionsStart] == '{' && bytes.IndexByte(body[e.optionsStart+1:e.optionsEnd], '"') >= 0:
			add(e.optionsStart+1, e.optionsStart+1, usageOption, comma)
		default: // null, {} or another value
			add(e.optionsStart, e.optionsEnd, usageOptions)
		}
	}
	if n == 0 {
		return append(dst, body)
	}
	// in body order, an insert before a cut at its offset (the first
	// member may be routing_preferences); inserts at one offset keep the
	// order they were added in
	slices.SortStableFunc(edits[:n], func(a, b edit) int {
		return cmp.Or(a.from-b.from, (a.to-a.from)-(b.to-b.from))
	})
	at := 0
	for _, ed := range edits[:n] {
		dst = append(dst, body[at:ed.from])
		dst = append(dst, ed.insert[:ed.inserts]...)
		at = ed.to
	}
	return append(dst, body[at:])
}

// edit is one change Segments makes: body[from:to] replaced by insert.
type edit struct {
	from, to int
	insert   [3][]byte
	inserts  int // how many of insert there are
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
	"input", "instructions",
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
