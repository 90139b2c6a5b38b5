package llmaffinity

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

var updateGolden = flag.Bool("update", false, "rewrite the JSON of testdata/caddyfile/*.caddyfiletest from the adapter's output")

// cfAdapt adapts a whole Caddyfile to JSON, as `caddy adapt` does, and logs
// the adapter's warnings.
func cfAdapt(t *testing.T, text string) ([]byte, error) {
	t.Helper()
	adapter := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}
	out, warnings, err := adapter.Adapt([]byte(text), nil)
	for _, w := range warnings {
		t.Logf("warning: %s", w)
	}
	return out, err
}

// cfCanonJSON re-encodes JSON indented, with sorted keys and exact numbers,
// so that comparisons ignore formatting and key order.
func cfCanonJSON(t *testing.T, data []byte) string {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("invalid JSON:\n%s", data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestCaddyfileAdapt adapts each testdata/caddyfile/*.caddyfiletest, a
// Caddyfile, a line "----------" and the JSON it must adapt to, in the format
// of Caddy's caddytest/integration/caddyfile_adapt. With -update it rewrites
// the JSON instead.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "caddyfile", "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files in testdata/caddyfile")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			text, want, ok := strings.Cut(string(data), "\n----------\n")
			if !ok {
				t.Fatal("no line ---------- between the Caddyfile and its JSON")
			}
			out, err := cfAdapt(t, strings.TrimSpace(text)+"\n")
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			if *updateGolden {
				var buf bytes.Buffer
				if err := json.Indent(&buf, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(text+"\n----------\n"+buf.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			gotLines := strings.Split(cfCanonJSON(t, out), "\n")
			wantLines := strings.Split(cfCanonJSON(t, []byte(want)), "\n")
			for i := 0; i < max(len(gotLines), len(wantLines)); i++ {
				if i >= len(gotLines) || i >= len(wantLines) || gotLines[i] != wantLines[i] {
					from := max(i-4, 0)
					t.Fatalf("adapted JSON differs from the file's (keys sorted), from line %d:\nwant:\n%s\ngot:\n%s\n(go test -run TestCaddyfileAdapt -update rewrites it)",
						i+1, strings.Join(wantLines[from:min(i+5, len(wantLines))], "\n"), strings.Join(gotLines[from:min(i+5, len(gotLines))], "\n"))
				}
			}
		})
	}
}

// cfParse unmarshals a llm_affinity directive given as Caddyfile text.
func cfParse(input string) (*Handler, error) {
	h := new(Handler)
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return h, err
}

// cfMarkedLine returns the 1-based line of input that holds the marker
// comment "#<-", which the tests put on the line an error must point at.
func cfMarkedLine(t *testing.T, input string) int {
	t.Helper()
	line := 0
	for i, l := range strings.Split(input, "\n") {
		if strings.Contains(l, "#<-") {
			if line != 0 {
				t.Fatalf("test input has more than one #<- marker:\n%s", input)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("test input has no #<- marker:\n%s", input)
	}
	return line
}

func TestCaddyfileUnmarshalErrors(t *testing.T) {
	// Every input marks with "#<-" the line the error must name.
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		// syntax
		{name: "directive arguments", wantErr: "wrong argument count", input: `llm_affinity foo { #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "unknown subdirective", wantErr: "unrecognized subdirective 'bogus'", input: `llm_affinity {
	default a
	bogus 1 #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "unknown subdirective in model", wantErr: "model 'a': unrecognized subdirective 'colour'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		colour 3 #<-
	}
}`},
		{name: "unknown subdirective in route", wantErr: "route 'r': unrecognized subdirective 'model'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		model a #<-
	}
}`},
		{name: "unknown subdirective in router llm", wantErr: "router llm: unrecognized subdirective 'url'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router llm {
		url http://127.0.0.1:1/v1/chat/completions #<-
		model arch
	}
}`},

		// duplicates
		{name: "duplicate header", wantErr: "header already specified", input: `llm_affinity {
	header X-A
	header X-B #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate ttl", wantErr: "ttl already specified", input: `llm_affinity {
	ttl 1m
	ttl 2m #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate max_entries", wantErr: "max_entries already specified", input: `llm_affinity {
	max_entries 10
	default a
	max_entries 10 #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate max_body", wantErr: "max_body already specified", input: `llm_affinity {
	max_body 1MiB
	max_body 2MiB #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate max_buffered", wantErr: "max_buffered already specified", input: `llm_affinity {
	max_buffered 64MiB
	max_buffered 128MiB #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate client_model", wantErr: "client_model already specified", input: `llm_affinity {
	client_model off
	client_model on #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "forward_client_credentials bare", wantErr: "forward_client_credentials takes on or off", input: `llm_affinity {
	forward_client_credentials #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_buffered xyz", wantErr: "invalid max_buffered 'xyz'", input: `llm_affinity {
	max_buffered xyz #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_buffered under twice max_body", wantErr: "max_buffered must be at least twice max_body (1048576 bytes)", input: `llm_affinity { #<-
	max_body 1MiB
	max_buffered 1MiB
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate default", wantErr: "default already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	default a #<-
}`},
		{name: "duplicate router", wantErr: "router already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router llm {
		endpoint http://127.0.0.1:1/v1/chat/completions
		model arch
	}
	router llm { #<-
		endpoint http://127.0.0.1:2/v1/chat/completions
		model arch
	}
}`},
		{name: "duplicate upstream_model", wantErr: "upstream_model already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		upstream_model x
		upstream_model y #<-
	}
}`},
		{name: "duplicate api_key", wantErr: "api_key already specified", input: `llm_affinity {
	default a
	model a {
		api_key k1
		to 127.0.0.1:9
		api_key k2 #<-
	}
}`},
		{name: "duplicate provider", wantErr: "provider already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		provider openai
		provider openai #<-
	}
}`},
		{name: "duplicate description", wantErr: "route 'r': description already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		description one
		models a
		description two #<-
	}
}`},
		{name: "duplicate models", wantErr: "route 'r': models already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		models a #<-
	}
}`},
		{name: "duplicate router endpoint", wantErr: "router llm: endpoint already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router llm {
		endpoint http://127.0.0.1:1/v1/chat/completions
		endpoint http://127.0.0.1:2/v1/chat/completions #<-
	}
}`},

		// missing arguments
		{name: "header without value", wantErr: "wrong argument count", input: `llm_affinity {
	header #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "ttl without value", wantErr: "wrong argument count", input: `llm_affinity {
	ttl #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_entries without value", wantErr: "wrong argument count", input: `llm_affinity {
	max_entries #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_body without value", wantErr: "wrong argument count", input: `llm_affinity {
	max_body #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "default without value", wantErr: "wrong argument count", input: `llm_affinity {
	default #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "to without address", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to #<-
	}
}`},
		{name: "upstream_model without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		upstream_model #<-
	}
}`},
		{name: "api_key without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		api_key #<-
	}
}`},
		{name: "provider without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		provider #<-
	}
}`},
		{name: "description without text", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		description #<-
		models a
	}
}`},
		{name: "models without names", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models #<-
	}
}`},
		{name: "model without name", wantErr: "model takes exactly one name", input: `llm_affinity {
	default a
	model { #<-
		to 127.0.0.1:9
	}
}`},
		{name: "route without name", wantErr: "route takes exactly one name", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route { #<-
		models a
	}
}`},
		{name: "router without type", wantErr: "router needs a type", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router { #<-
		endpoint http://127.0.0.1:1/v1/chat/completions
	}
}`},

		// extra arguments
		{name: "header with two values", wantErr: "wrong argument count", input: `llm_affinity {
	header X-A X-B #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "ttl with two values", wantErr: "wrong argument count", input: `llm_affinity {
	ttl 1m 2m #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_entries with two values", wantErr: "wrong argument count", input: `llm_affinity {
	max_entries 1 2 #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_body with two values", wantErr: "wrong argument count", input: `llm_affinity {
	max_body 10 MiB #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "default with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a b #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "model with two names", wantErr: "model takes exactly one name", input: `llm_affinity {
	default a
	model a b { #<-
		to 127.0.0.1:9
	}
}`},
		{name: "route with two names", wantErr: "route takes exactly one name", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r s { #<-
		models a
	}
}`},
		{name: "upstream_model with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		upstream_model x y #<-
	}
}`},
		{name: "api_key with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		api_key Bearer k #<-
	}
}`},
		{name: "provider with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		provider openai anthropic #<-
	}
}`},
		{name: "router llm with an argument", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router llm fast { #<-
		endpoint http://127.0.0.1:1/v1/chat/completions
		model arch
	}
}`},

		// bad values
		{name: "ttl 0", wantErr: "invalid ttl '0'", input: `llm_affinity {
	ttl 0 #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "ttl -1s", wantErr: "invalid ttl '-1s'", input: `llm_affinity {
	ttl -1s #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "ttl abc", wantErr: "invalid ttl 'abc'", input: `llm_affinity {
	ttl abc #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_entries 0", wantErr: "invalid max_entries '0'", input: `llm_affinity {
	max_entries 0 #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_entries -5", wantErr: "invalid max_entries '-5'", input: `llm_affinity {
	max_entries -5 #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_entries x", wantErr: "invalid max_entries 'x'", input: `llm_affinity {
	max_entries x #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_entries over the limit", wantErr: "invalid max_entries '1073741825'", input: `llm_affinity {
	max_entries 1073741825 #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_body 0", wantErr: "invalid max_body '0'", input: `llm_affinity {
	max_body 0 #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "max_body xyz", wantErr: "invalid max_body 'xyz'", input: `llm_affinity {
	max_body xyz #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "router timeout 0", wantErr: "router llm: invalid timeout '0'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router llm {
		endpoint http://127.0.0.1:1/v1/chat/completions
		timeout 0 #<-
	}
}`},
		{name: "unknown router type", wantErr: "http.handlers.llm_affinity.routers.magic", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	router magic { #<-
		endpoint http://127.0.0.1:1/v1/chat/completions
	}
}`},

		// config errors, found after the whole block is read
		{name: "no models", wantErr: "at least one model is required", input: `llm_affinity { #<-
	default a
}`},
		{name: "empty directive", wantErr: "at least one model is required", input: `llm_affinity #<-`},
		{name: "model without to", wantErr: "model 'b': 'to' is required", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	model b { #<-
		upstream_model gpt-4o
	}
}`},
		{name: "model with an empty block", wantErr: "model 'a': 'to' is required", input: `llm_affinity {
	default a
	model a { } #<-
}`},
		{name: "to is a URL", wantErr: "model 'openai': to https://api.openai.com: want host:port, not a URL", input: `llm_affinity {
	default openai
	model openai { #<-
		to https://api.openai.com
		api_key {env.OPENAI_API_KEY}
	}
}`},
		{name: "to without port", wantErr: "model 'a': to 127.0.0.1: want host:port", input: `llm_affinity {
	default a
	model a { #<-
		to 127.0.0.1:1
		to 127.0.0.1
	}
}`},
		{name: "unknown provider", wantErr: "model 'a': unknown provider 'azure'", input: `llm_affinity {
	default a
	model a { #<-
		to 127.0.0.1:9
		provider azure
	}
}`},
		{name: "duplicate model names", wantErr: "model 'a' is defined more than once", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:1
	}
	model b {
		to 127.0.0.1:2
	}
	model a { #<-
		to 127.0.0.1:3
	}
}`},
		{name: "route names an unknown model", wantErr: "route 'code' names unknown model 'gpt-5'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route chat {
		models a
	}
	route code { #<-
		description code
		models a gpt-5
	}
}`},
		{name: "route named other", wantErr: "route name 'other' is reserved", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route other { #<-
		models a
	}
}`},
		{name: "duplicate route", wantErr: "route 'r' is defined more than once", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
	}
	route s {
		models a
	}
	route r { #<-
		models a
	}
}`},
		{name: "route without models", wantErr: "route 'r': models is required", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r { #<-
		description no models here
	}
}`},
		{name: "missing default", wantErr: "default is required", input: `llm_affinity { #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "default names an unknown model", wantErr: "default names unknown model 'b'", input: `llm_affinity {
	model a {
		to 127.0.0.1:9
	}
	default b #<-
}`},
		{name: "router with no routes", wantErr: "a router needs at least one route", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	router llm { #<-
		endpoint http://127.0.0.1:1/v1/chat/completions
		model arch
	}
}`},
		{name: "invalid header name", wantErr: `header: "X:Y" is not a valid HTTP header name`, input: `llm_affinity {
	header X:Y #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},

		// routing: on|off switches, implicit keys
		{name: "route_on_user_only bad value", wantErr: "route_on_user_only takes on or off", input: `llm_affinity {
	default a
	route_on_user_only yes #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "route_on_user_only two values", wantErr: "route_on_user_only takes on or off", input: `llm_affinity {
	route_on_user_only on off #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "route_on_user_only in upper case", wantErr: "route_on_user_only takes on or off", input: `llm_affinity {
	route_on_user_only ON #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "implicit bare", wantErr: "implicit takes on or off", input: `llm_affinity {
	default a
	implicit #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "implicit bad value", wantErr: "implicit takes on or off", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	implicit true #<-
}`},
		{name: "duplicate implicit_salt", wantErr: "implicit_salt already specified", input: `llm_affinity {
	implicit on
	implicit_salt one
	default a
	implicit_salt two #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "implicit_salt without value", wantErr: "wrong argument count", input: `llm_affinity {
	implicit_salt #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "implicit_salt with two values", wantErr: "wrong argument count", input: `llm_affinity {
	implicit_salt a b #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},

		// model weight
		{name: "weight -1", wantErr: "model 'a': invalid weight '-1': must be a whole number, 0 or more", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		weight -1 #<-
	}
}`},
		{name: "weight x", wantErr: "model 'a': invalid weight 'x'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		weight x #<-
	}
}`},
		{name: "weight 1.5", wantErr: "model 'a': invalid weight '1.5'", input: `llm_affinity {
	default a
	model a {
		weight 1.5 #<-
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate weight", wantErr: "model 'a': weight already specified", input: `llm_affinity {
	default a
	model a {
		weight 0
		to 127.0.0.1:9
		weight 0 #<-
	}
}`},
		{name: "weight without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		weight #<-
	}
}`},
		{name: "weight with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
		weight 1 2 #<-
	}
}`},

		// route policy
		{name: "unknown policy", wantErr: "route 'r': unknown policy 'sticky' (want first, random or weighted)", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route q {
		models a
	}
	route r { #<-
		models a
		policy sticky
	}
}`},
		{name: "policy in upper case", wantErr: "route 'r': unknown policy 'Random'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r { #<-
		policy Random
		models a
	}
}`},
		{name: "weighted policy with all weights 0", wantErr: "route 'r': the weighted policy needs a model with a positive weight", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:1
		weight 0
	}
	model b {
		to 127.0.0.1:2
		weight 0
	}
	route r { #<-
		models a b
		policy weighted
	}
}`},
		{name: "duplicate policy", wantErr: "policy already specified", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		policy first
		models a
		policy random #<-
	}
}`},
		{name: "policy without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		policy #<-
	}
}`},
		{name: "policy with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		policy first random #<-
	}
}`},

		// route when
		{name: "when without condition", wantErr: "when needs a condition: tools, last_role, regex, tokens_over or header", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when #<-
	}
}`},
		{name: "unknown when condition", wantErr: "unknown when condition 'model' (want tools, last_role, regex, tokens_over or header)", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when model gpt-4o #<-
	}
}`},
		{name: "when tools with an argument", wantErr: "when tools takes 0 argument(s), got 1", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tools yes #<-
	}
}`},
		{name: "when last_role without role", wantErr: "when last_role takes 1 argument(s), got 0", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when last_role #<-
	}
}`},
		{name: "when last_role with two roles", wantErr: "when last_role takes 1 argument(s), got 2", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when last_role user tool #<-
	}
}`},
		{name: "when last_role unknown role", wantErr: "when last_role: last_role 'bot' is not one of user, assistant, system, developer, tool", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		when last_role bot #<-
		models a
	}
}`},
		{name: "when regex without expression", wantErr: "when regex takes 1 argument(s), got 0", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when regex #<-
	}
}`},
		{name: "when regex unquoted with a space", wantErr: "when regex takes 1 argument(s), got 2", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when regex fix this #<-
	}
}`},
		{name: "when regex bad expression", wantErr: "when regex: regex: error parsing regexp", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when regex "fix(" #<-
	}
}`},
		{name: "when tokens_over without number", wantErr: "when tokens_over takes 1 argument(s), got 0", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tokens_over #<-
	}
}`},
		{name: "when tokens_over 0", wantErr: "when tokens_over: '0' is not a positive whole number", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tokens_over 0 #<-
	}
}`},
		{name: "when tokens_over -5", wantErr: "when tokens_over: '-5' is not a positive whole number", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tokens_over -5 #<-
	}
}`},
		{name: "when tokens_over x", wantErr: "when tokens_over: 'x' is not a positive whole number", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tokens_over x #<-
	}
}`},
		{name: "when tokens_over 8k", wantErr: "when tokens_over: '8k' is not a positive whole number", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tokens_over 8k #<-
	}
}`},
		{name: "when header without value", wantErr: "when header takes 2 argument(s), got 1", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when header X-Tier #<-
	}
}`},
		{name: "when header with three arguments", wantErr: "when header takes 2 argument(s), got 3", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when header X-Tier premium gold #<-
	}
}`},
		{name: "when header with an empty name", wantErr: "when header: header condition needs a header name", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when header "" premium #<-
	}
}`},
		{name: "router with only rule routes", wantErr: "a router needs at least one route to choose from", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	route r {
		models a
		when tools
	}
	router llm { #<-
		endpoint http://127.0.0.1:1/v1/chat/completions
		model arch
	}
}`},

		// name, scope, strip_header
		{name: "duplicate name", wantErr: "name already specified", input: `llm_affinity {
	name a
	default a
	name b #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "name without value", wantErr: "wrong argument count", input: `llm_affinity {
	name #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "name with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	name site a #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate scope", wantErr: "scope already specified", input: `llm_affinity {
	scope {http.auth.user.id}
	default a
	model a {
		to 127.0.0.1:9
	}
	scope {http.request.header.Authorization} #<-
}`},
		{name: "scope without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	scope #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "scope with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	scope {http.auth.user.id} {http.request.host} #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "strip_header bare", wantErr: "strip_header takes on or off", input: `llm_affinity {
	default a
	strip_header #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "strip_header bad value", wantErr: "strip_header takes on or off", input: `llm_affinity {
	strip_header yes #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "strip_header two values", wantErr: "strip_header takes on or off", input: `llm_affinity {
	strip_header on off #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate strip_header", wantErr: "strip_header already specified", input: `llm_affinity {
	strip_header on
	default a
	strip_header off #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate strip_header off then off", wantErr: "strip_header already specified", input: `llm_affinity {
	strip_header off
	strip_header off #<-
	default a
	model a {
		to 127.0.0.1:9
	}
}`},

		// store
		{name: "store without type", wantErr: "store takes a type: 'store redis { ... }'", input: `llm_affinity {
	default a
	store { #<-
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store without type or block", wantErr: "store takes a type", input: `llm_affinity {
	default a
	store #<-
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store of another type", wantErr: "store takes a type: 'store redis { ... }'", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	store memcached { #<-
		address 127.0.0.1:11211
	}
}`},
		{name: "store redis with an extra argument", wantErr: "store takes a type", input: `llm_affinity {
	default a
	store redis main { #<-
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store type in upper case", wantErr: "store takes a type", input: `llm_affinity {
	default a
	store Redis { #<-
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis unknown subdirective", wantErr: "store redis: unrecognized subdirective 'host'", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		host 127.0.0.1 #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis subdirective of the handler", wantErr: "store redis: unrecognized subdirective 'ttl'", input: `llm_affinity {
	default a
	store redis {
		ttl 1m #<-
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis address without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	store redis {
		address #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis db -1", wantErr: "store redis: invalid db '-1'", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		db -1 #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis db x", wantErr: "store redis: invalid db 'x'", input: `llm_affinity {
	default a
	store redis {
		db x #<-
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis db 1.5", wantErr: "store redis: invalid db '1.5'", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		db 1.5 #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis db without value", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		db #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis timeout 0", wantErr: "store redis: invalid timeout '0': must be a positive duration", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		timeout 0 #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis timeout -1s", wantErr: "store redis: invalid timeout '-1s'", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		timeout -1s #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis timeout abc", wantErr: "store redis: invalid timeout 'abc'", input: `llm_affinity {
	default a
	store redis {
		timeout abc #<-
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis timeout with two values", wantErr: "wrong argument count", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		timeout 1s 2s #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis duplicate password", wantErr: "password already specified", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		password one
		password two #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis duplicate prefix", wantErr: "prefix already specified", input: `llm_affinity {
	default a
	store redis {
		prefix a:
		address 127.0.0.1:6379
		prefix b: #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis duplicate db", wantErr: "db already specified", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
		db 1
		db 2 #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis duplicate timeout", wantErr: "timeout already specified", input: `llm_affinity {
	default a
	store redis {
		timeout 1s
		address 127.0.0.1:6379
		timeout 2s #<-
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "duplicate store", wantErr: "store already specified", input: `llm_affinity {
	default a
	store redis {
		address 127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
	store redis { #<-
		address 127.0.0.1:6380
	}
}`},
		{name: "store redis without address", wantErr: "store redis: address is required (one or more host:port)", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	store redis { #<-
		db 1
		prefix p:
	}
}`},
		{name: "store redis with an empty block", wantErr: "store redis: address is required", input: `llm_affinity {
	store redis { #<-
	}
	default a
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis address is a URL", wantErr: "store redis: address redis://127.0.0.1:6379: want host:port, not a URL", input: `llm_affinity {
	default a
	store redis { #<-
		address 127.0.0.1:6380
		address redis://127.0.0.1:6379
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis address is a TLS URL", wantErr: "store redis: address rediss://cache.internal:6380: want host:port", input: `llm_affinity {
	default a
	store redis { #<-
		address rediss://cache.internal:6380
	}
	model a {
		to 127.0.0.1:9
	}
}`},
		{name: "store redis address without port", wantErr: "store redis: address 127.0.0.1: want host:port", input: `llm_affinity {
	default a
	model a {
		to 127.0.0.1:9
	}
	store redis { #<-
		address 127.0.0.1:6379 127.0.0.1
	}
}`},
		{name: "store error reported before a model error", wantErr: "store redis: address is required", input: `llm_affinity {
	default a
	store redis { #<-
		db 2
	}
	model a {
	}
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := cfMarkedLine(t, tt.input)
			_, err := cfParse(tt.input)
			if err == nil {
				t.Fatalf("UnmarshalCaddyfile succeeded, want an error containing %q", tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.wantErr)
			}
			if at := fmt.Sprintf(", at Testfile:%d", line); !strings.HasSuffix(msg, at) {
				t.Errorf("error = %q, want it to end with %q", msg, at)
			}
			if n := strings.Count(msg, ", at Testfile:"); n != 1 {
				t.Errorf("error = %q names a position %d times, want once", msg, n)
			}
		})
	}
}

func TestCaddyfileAdaptErrorNamesLine(t *testing.T) {
	text := `{
	admin off
}
:8080 {
	llm_affinity {
		default a
		model a {
			to 127.0.0.1:9
		}
		route r {
			models a b
		}
	}
	reverse_proxy {
		dynamic llm_affinity
	}
}
`
	_, err := cfAdapt(t, text)
	if err == nil {
		t.Fatal("adapting a route with an unknown model succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "route 'r' names unknown model 'b'") || !strings.Contains(msg, "Caddyfile:10") {
		t.Errorf("error = %q, want it to name the route and Caddyfile:10", msg)
	}
}
