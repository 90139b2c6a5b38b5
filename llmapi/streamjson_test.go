package llmapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// jsonStringCases are JSON string literals: escapes of every kind,
// surrogate pairs, lone surrogates (U+FFFD, as encoding/json decodes
// them), and UTF-8.
var jsonStringCases = []string{
	`""`, `"plain"`, `"a\"b\\c\/d"`, `"\b\f\n\r\t"`, `"\u00e9\u4e16"`, `"\ud83d\ude00"`,
	`"\ud83d"`, `"\ude00x"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"世界 😀"`, `"\u0000"`, `"end\\"`,
}

// TestJSONString decodes string literals as encoding/json does.
func TestJSONString(t *testing.T) {
	for _, lit := range jsonStringCases {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatal(err)
		}
		var got string
		err := jsonObject([]byte(`{"k":`+lit+`}`), func(_, v []byte) (err error) {
			got, err = jsonString(v)
			return err
		})
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", lit, got, err, want)
		}
	}
	if s, err := jsonString([]byte("null")); s != "" || err != nil {
		t.Errorf("null: %q, %v", s, err)
	}
	if _, err := jsonString([]byte("12")); err != errJSONType {
		t.Errorf("a number as a string: %v", err)
	}
}

// TestJSONWalk reads objects and arrays, null as empty, and fails on
// malformed JSON, trailing bytes and the wrong types.
func TestJSONWalk(t *testing.T) {
	var keys []string
	err := jsonObject([]byte(` {"a": [1, {"b": 2}], "c" : null} `), func(key, v []byte) error {
		keys = append(keys, string(key)+"="+string(v))
		return nil
	})
	if err != nil || strings.Join(keys, " ") != `"a"=[1, {"b": 2}] "c"=null` {
		t.Errorf("members %q, %v", keys, err)
	}
	for _, bad := range []string{`{"a":1`, `{"a":1}x`, `[1]`, `{"a":"\x01"}`, `{"a":"\xff"}`, `{"a" 1}`, `"s"`, ``} {
		if err := jsonObject([]byte(bad), func(_, _ []byte) error { return nil }); err == nil {
			t.Errorf("jsonObject(%q) passed", bad)
		}
	}
	for _, ok := range []string{`null`, `{}`, ` { } `} {
		if err := jsonObject([]byte(ok), func(_, _ []byte) error { t.Errorf("%s has members", ok); return nil }); err != nil {
			t.Errorf("jsonObject(%q): %v", ok, err)
		}
	}
	n := 0
	if err := jsonArray([]byte(`[1,"x",[2],{}]`), func([]byte) error { n++; return nil }); err != nil || n != 4 {
		t.Errorf("jsonArray: %d elements, %v", n, err)
	}
	if err := jsonArray([]byte(`{}`), func([]byte) error { return nil }); err != errJSONType {
		t.Errorf("jsonArray of an object: %v", err)
	}
	for v, want := range map[string]int{"0": 0, "17": 17, "null": 0, "1099511627776": 1 << 40, "-1": -1, "1.5": -1, "1e3": -1,
		"1099511627777": -1, "99999999999999999999999": -1, `"3"`: -1, "07": -1, "+7": -1, "": -1} {
		got, err := jsonCount([]byte(v))
		if want < 0 && err == nil || want >= 0 && (err != nil || got != want) {
			t.Errorf("jsonCount(%s) = %d, %v", v, got, err)
		}
	}
}

// validUTF8 is s with each byte that is not UTF-8 replaced by U+FFFD.
func validUTF8(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// TestAppendJSONString writes strings encoding/json reads back, with <, >
// and & literal and invalid UTF-8 replaced.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "<a href=\"x\">&amp;</a>", "\x00\x01\x1f\x7f", "tab\tnl\ncr\r\\", "世界 😀", "bad \xff\xfe utf8 \xe4\xb8", "\u2028\u2029"} {
		lit := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(lit, &back); err != nil || back != validUTF8(s) {
			t.Errorf("%q: wrote %s, read back %q, %v", s, lit, back, err)
		}
		if strings.ContainsAny(s, "<>&") && !strings.Contains(string(lit), "<a href") {
			t.Errorf("%q: escaped HTML: %s", s, lit)
		}
	}
}

// FuzzJSONString: any string written by appendJSONString reads back (as
// valid UTF-8) with encoding/json and with jsonString.
func FuzzJSONString(f *testing.F) {
	for _, lit := range jsonStringCases {
		var s string
		_ = json.Unmarshal([]byte(lit), &s)
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(lit, &back); err != nil || back != validUTF8(s) {
			t.Fatalf("%q: wrote %s, read back %q, %v", s, lit, back, err)
		}
		var got string
		err := jsonObject(append(append([]byte(`{"k":`), lit...), '}'), func(_, v []byte) (err error) {
			got, err = jsonString(v)
			return err
		})
		if err != nil || got != back {
			t.Fatalf("%q: jsonString %q, %v", s, got, err)
		}
	})
}

// FuzzSkimFields: the skims never panic, and on any JSON object find the
// members the validating walk finds: skimFields and skimLastField the last
// one of each name, skimFirstField the first, and skimFields says how long
// the object is.
func FuzzSkimFields(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m","usage":{"prompt_tokens":1}}`,
		`{"a":"x\"usage\":1","usage":null , "model" : "q\\"}`,
		`{"choices":[{"message":{"content":"{\"usage\":2}"}}],"usage":{"input_tokens":3},"metadata":{"usage":9}}`,
		`{"x\"usage":1,"usage" :2, "usage": 3} `, `{"usage":{"usage":{"usage":1}},"model":"a","model":"b"}`,
		`{"model":`, `[1]`, `{}`, `{"usage":[}`, `null`, ` `,
		`{"usage":1,"t":"` + strings.Repeat(`\"usage\":`, lastFieldWindow/9) + `","x":{"usage":2},"usage" :3}`,
	} {
		f.Add([]byte(seed))
	}
	keys := []string{`"model"`, `"usage"`}
	rawValue := func(v []byte) ([]byte, int) {
		size := skipValue(v, 0)
		if size < 0 {
			return nil, -1
		}
		return v[:size], size
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var skim, walk [2][]byte
		size := skimFields(b, keys, skim[:])
		last, found := skimLastField(b, `"usage"`, rawValue)
		first := skimFirstField(b, `"model"`)
		if jsonFields(b, keys, walk[:]) != nil || !json.Valid(b) || len(bytes.TrimSpace(b)) == 0 || bytes.TrimSpace(b)[0] != '{' {
			return
		}
		if size != len(bytes.TrimRight(b, " \t\r\n")) || !bytes.Equal(skim[0], walk[0]) || !bytes.Equal(skim[1], walk[1]) {
			t.Fatalf("skimFields(%q) = %d %q, jsonFields %q", b, size, skim, walk)
		}
		if found != (walk[1] != nil) || !bytes.Equal(last, walk[1]) {
			t.Fatalf("skimLastField(%q) = %q %v, jsonFields %q", b, last, found, walk[1])
		}
		var firstModel []byte
		_ = jsonObject(b, func(key, v []byte) error {
			if firstModel == nil && string(key) == `"model"` {
				firstModel = v
			}
			return nil
		})
		if !bytes.Equal(first, firstModel) {
			t.Fatalf("skimFirstField(%q) = %q, the walk's first %q", b, first, firstModel)
		}
	})
}
