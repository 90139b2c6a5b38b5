package llmaffinity_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	_ "github.com/llmaffinity/caddy-llm-affinity" // the llm_affinity directive
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

// errBase is the valid Caddyfile that each error case edits. Its
// llm_affinity block opens on line 2, model a on line 4, route r on line 7.
const errBase = `:8080 {
	llm_affinity {
		default a
		model a {
			to 127.0.0.1:9
		}
		route r {
			models a
		}
	}
	reverse_proxy {
		dynamic llm_affinity
	}
}
`

// A cfEdit replaces the lines old of errBase (compared without indentation;
// they must occur exactly once) with the lines new, or with keep puts new
// after them. Lines are separated by "\n" and written without indentation.
type cfEdit struct {
	old, new string
	keep     bool
}

func replace(old, new string) cfEdit { return cfEdit{old: old, new: new} }
func after(old, new string) cfEdit   { return cfEdit{old: old, new: new, keep: true} }

// Edits that add lines to the llm_affinity block (from line 3), to model a
// (from line 6), to route r (from line 9), after route r (from line 10) and
// to reverse_proxy (from line 13).
func inHandler(lines string) cfEdit  { return after("llm_affinity {", lines) }
func inModel(lines string) cfEdit    { return after("to 127.0.0.1:9", lines) }
func inRoute(lines string) cfEdit    { return after("models a", lines) }
func afterRoute(lines string) cfEdit { return after("models a\n}", lines) }
func inProxy(lines string) cfEdit    { return after("dynamic llm_affinity", lines) }

// apply returns errBase edited, indented by nesting.
func (e cfEdit) apply(t *testing.T) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(errBase), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	old := strings.Split(e.old, "\n")
	at := -1
	for i := 0; i+len(old) <= len(lines); i++ {
		if slices.Equal(lines[i:i+len(old)], old) {
			if at >= 0 {
				t.Fatalf("%q occurs more than once in errBase", e.old)
			}
			at = i
		}
	}
	if at < 0 {
		t.Fatalf("%q is not in errBase", e.old)
	}
	end := at + len(old)
	if e.keep {
		at = end
	}
	var out []string
	out = append(out, lines[:at]...)
	if e.new != "" {
		out = append(out, strings.Split(e.new, "\n")...)
	}
	out = append(out, lines[end:]...)
	depth := 0
	for i, l := range out {
		if strings.HasPrefix(l, "}") {
			depth--
		}
		out[i] = strings.Repeat("\t", max(depth, 0)) + l
		if strings.HasSuffix(l, "{") {
			depth++
		}
	}
	return strings.Join(out, "\n") + "\n"
}

func TestCaddyfileAdaptErrors(t *testing.T) {
	if _, err := cfAdapt(t, errBase); err != nil {
		t.Fatalf("errBase does not adapt: %v", err)
	}
	const router = "router llm {\nendpoint http://127.0.0.1:1/v1/chat/completions\nmodel arch\n}"
	tests := []struct {
		name string
		edit cfEdit
		line int // the line the error must name
		want string
	}{
		// syntax
		{"directive arguments", replace("llm_affinity {", "llm_affinity foo {"), 2, "wrong argument count"},
		{"unknown subdirective", inHandler("bogus 1"), 3, "unrecognized subdirective 'bogus'"},
		{"unknown subdirective in model", inModel("colour 3"), 6, "model 'a': unrecognized subdirective 'colour'"},
		{"unknown subdirective in route", inRoute("model a"), 9, "route 'r': unrecognized subdirective 'model'"},
		{"unknown subdirective in router llm", afterRoute("router llm {\nurl http://127.0.0.1:1/v1/chat/completions\nmodel arch\n}"), 11, "router llm: unrecognized subdirective 'url'"},

		// duplicates
		{"duplicate header", inHandler("header X-A\nheader X-B"), 4, "header already specified"},
		{"duplicate ttl", inHandler("ttl 1m\nttl 2m"), 4, "ttl already specified"},
		{"duplicate max_entries", replace("default a", "max_entries 10\ndefault a\nmax_entries 10"), 5, "max_entries already specified"},
		{"duplicate max_body", inHandler("max_body 1MiB\nmax_body 2MiB"), 4, "max_body already specified"},
		{"duplicate max_buffered", inHandler("max_buffered 64MiB\nmax_buffered 128MiB"), 4, "max_buffered already specified"},
		{"duplicate client_model", inHandler("client_model off\nclient_model on"), 4, "client_model already specified"},
		{"forward_client_credentials bare", inHandler("forward_client_credentials"), 3, "forward_client_credentials takes on or off"},
		{"max_buffered xyz", inHandler("max_buffered xyz"), 3, "invalid max_buffered 'xyz'"},
		{"max_buffered under twice max_body", inHandler("max_body 1MiB\nmax_buffered 1MiB"), 2, "max_buffered must be at least twice max_body (1048576 bytes)"},
		{"duplicate default", afterRoute("default a"), 10, "default already specified"},
		{"duplicate router", afterRoute(router + "\nrouter llm {\nendpoint http://127.0.0.1:2/v1/chat/completions\nmodel arch\n}"), 14, "router already specified"},
		{"duplicate upstream_model", inModel("upstream_model x\nupstream_model y"), 7, "upstream_model already specified"},
		{"duplicate api_key", replace("to 127.0.0.1:9", "api_key k1\nto 127.0.0.1:9\napi_key k2"), 7, "api_key already specified"},
		{"duplicate provider", inModel("provider openai\nprovider openai"), 7, "provider already specified"},
		{"duplicate description", replace("models a", "description one\nmodels a\ndescription two"), 10, "route 'r': description already specified"},
		{"duplicate models", inRoute("models a"), 9, "route 'r': models already specified"},
		{"duplicate router endpoint", afterRoute("router llm {\nendpoint http://127.0.0.1:1/v1/chat/completions\nendpoint http://127.0.0.1:2/v1/chat/completions\n}"), 12, "router llm: endpoint already specified"},

		// missing arguments
		{"header without value", inHandler("header"), 3, "wrong argument count"},
		{"ttl without value", inHandler("ttl"), 3, "wrong argument count"},
		{"max_entries without value", inHandler("max_entries"), 3, "wrong argument count"},
		{"max_body without value", inHandler("max_body"), 3, "wrong argument count"},
		{"default without value", replace("default a", "default"), 3, "wrong argument count"},
		{"to without address", replace("to 127.0.0.1:9", "to"), 5, "wrong argument count"},
		{"upstream_model without value", inModel("upstream_model"), 6, "wrong argument count"},
		{"api_key without value", inModel("api_key"), 6, "wrong argument count"},
		{"provider without value", inModel("provider"), 6, "wrong argument count"},
		{"description without text", replace("models a", "description\nmodels a"), 8, "wrong argument count"},
		{"models without names", replace("models a", "models"), 8, "wrong argument count"},
		{"model without name", replace("model a {", "model {"), 4, "model takes exactly one name"},
		{"route without name", replace("route r {", "route {"), 7, "route takes exactly one name"},
		{"router without type", afterRoute("router {\nendpoint http://127.0.0.1:1/v1/chat/completions\n}"), 10, "router needs a type"},

		// extra arguments
		{"header with two values", inHandler("header X-A X-B"), 3, "wrong argument count"},
		{"ttl with two values", inHandler("ttl 1m 2m"), 3, "wrong argument count"},
		{"max_entries with two values", inHandler("max_entries 1 2"), 3, "wrong argument count"},
		{"max_body with two values", inHandler("max_body 10 MiB"), 3, "wrong argument count"},
		{"default with two values", replace("default a", "default a b"), 3, "wrong argument count"},
		{"model with two names", replace("model a {", "model a b {"), 4, "model takes exactly one name"},
		{"route with two names", replace("route r {", "route r s {"), 7, "route takes exactly one name"},
		{"upstream_model with two values", inModel("upstream_model x y"), 6, "wrong argument count"},
		{"api_key with two values", inModel("api_key Bearer k"), 6, "wrong argument count"},
		{"provider with two values", inModel("provider openai anthropic"), 6, "wrong argument count"},
		{"router llm with an argument", afterRoute(strings.Replace(router, "llm", "llm fast", 1)), 10, "wrong argument count"},

		// bad values
		{"ttl 0", inHandler("ttl 0"), 3, "invalid ttl '0'"},
		{"ttl -1s", inHandler("ttl -1s"), 3, "invalid ttl '-1s'"},
		{"ttl abc", inHandler("ttl abc"), 3, "invalid ttl 'abc'"},
		{"max_entries 0", inHandler("max_entries 0"), 3, "invalid max_entries '0'"},
		{"max_entries -5", inHandler("max_entries -5"), 3, "invalid max_entries '-5'"},
		{"max_entries x", inHandler("max_entries x"), 3, "invalid max_entries 'x'"},
		{"max_entries over the limit", inHandler("max_entries 1073741825"), 3, "invalid max_entries '1073741825'"},
		{"max_body 0", inHandler("max_body 0"), 3, "invalid max_body '0'"},
		{"max_body xyz", inHandler("max_body xyz"), 3, "invalid max_body 'xyz'"},
		{"router timeout 0", afterRoute("router llm {\nendpoint http://127.0.0.1:1/v1/chat/completions\ntimeout 0\n}"), 12, "router llm: invalid timeout '0'"},
		{"unknown router type", afterRoute("router magic {\nendpoint http://127.0.0.1:1/v1/chat/completions\n}"), 10, "http.handlers.llm_affinity.routers.magic"},
		{"router module that is not a router", afterRoute("router not_a_router"), 10, "module 'http.handlers.llm_affinity.routers.not_a_router' is not a router"},

		// config errors, found after the whole block is read
		{"no models", replace("model a {\nto 127.0.0.1:9\n}\nroute r {\nmodels a\n}", ""), 2, "at least one model is required"},
		{"empty directive", replace("llm_affinity {\ndefault a\nmodel a {\nto 127.0.0.1:9\n}\nroute r {\nmodels a\n}\n}", "llm_affinity"), 2, "at least one model is required"},
		{"model without to", afterRoute("model b {\nupstream_model gpt-4o\n}"), 10, "model 'b': 'to' is required"},
		{"model with an empty block", replace("to 127.0.0.1:9", ""), 4, "model 'a': 'to' is required"},
		{"to is a URL", afterRoute("model openai {\nto https://api.openai.com\napi_key {env.OPENAI_API_KEY}\n}"), 10, "model 'openai': to https://api.openai.com: want host:port, not a URL"},
		{"to without port", replace("to 127.0.0.1:9", "to 127.0.0.1:1\nto 127.0.0.1"), 4, "model 'a': to 127.0.0.1: want host:port"},
		{"unknown provider", inModel("provider azure"), 4, "model 'a': unknown provider 'azure'"},
		{"unknown api", inModel("api completions"), 4, "model 'a': unknown api 'completions' (want chat, messages or responses)"},
		{"api in upper case", inModel("api Chat"), 4, "model 'a': unknown api 'Chat'"},
		{"duplicate api", inModel("api chat\napi messages"), 7, "api already specified"},
		{"api without value", inModel("api"), 6, "wrong argument count"},
		{"path without a leading slash", inModel("path v1/chat/completions"), 4, "model 'a': path 'v1/chat/completions' must start with /"},
		{"duplicate path", inModel("path /a\npath /b"), 7, "path already specified"},
		{"duplicate model names", afterRoute("model b {\nto 127.0.0.1:2\n}\nmodel a {\nto 127.0.0.1:3\n}"), 13, "model 'a' is defined more than once"},
		{"route names an unknown model", afterRoute("route code {\ndescription code\nmodels a gpt-5\n}"), 10, "route 'code' names unknown model 'gpt-5'"},
		{"route named other", replace("route r {", "route other {"), 7, "route name 'other' is reserved"},
		{"duplicate route", afterRoute("route s {\nmodels a\n}\nroute r {\nmodels a\n}"), 13, "route 'r' is defined more than once"},
		{"route without models", replace("models a", "description no models here"), 7, "route 'r': models is required"},
		{"missing default", replace("default a", ""), 2, "default is required"},
		{"default names an unknown model", replace("default a", "default b"), 3, "default names unknown model 'b'"},
		{"router with no routes", replace("route r {\nmodels a\n}", router), 7, "a router needs at least one route"},
		{"invalid header name", inHandler("header X:Y"), 3, `header: "X:Y" is not a valid HTTP header name`},

		// routing: on|off switches, implicit keys
		{"route_on_user_only bad value", inHandler("route_on_user_only yes"), 3, "route_on_user_only takes on or off"},
		{"route_on_user_only two values", inHandler("route_on_user_only on off"), 3, "route_on_user_only takes on or off"},
		{"route_on_user_only in upper case", inHandler("route_on_user_only ON"), 3, "route_on_user_only takes on or off"},
		{"implicit bare", inHandler("implicit"), 3, "implicit takes on or off"},
		{"implicit bad value", afterRoute("implicit true"), 10, "implicit takes on or off"},
		{"duplicate implicit_salt", replace("default a", "implicit on\nimplicit_salt one\ndefault a\nimplicit_salt two"), 6, "implicit_salt already specified"},
		{"implicit_salt without value", inHandler("implicit_salt"), 3, "wrong argument count"},
		{"implicit_salt with two values", inHandler("implicit_salt a b"), 3, "wrong argument count"},

		// model weight
		{"weight -1", inModel("weight -1"), 6, "model 'a': invalid weight '-1': must be a whole number, 0 or more"},
		{"weight x", inModel("weight x"), 6, "model 'a': invalid weight 'x'"},
		{"weight 1.5", replace("to 127.0.0.1:9", "weight 1.5\nto 127.0.0.1:9"), 5, "model 'a': invalid weight '1.5'"},
		{"duplicate weight", replace("to 127.0.0.1:9", "weight 0\nto 127.0.0.1:9\nweight 0"), 7, "model 'a': weight already specified"},
		{"weight without value", inModel("weight"), 6, "wrong argument count"},
		{"weight with two values", inModel("weight 1 2"), 6, "wrong argument count"},

		// model price
		{"price unknown kind", inModel("price input 1 cached 0.5"), 6, "model 'a': price: unknown kind 'cached' (want input, output, cache_read or cache_write, each followed by its price)"},
		{"price kind in upper case", inModel("price Input 1"), 6, "model 'a': price: unknown kind 'Input'"},
		{"price number without a kind", inModel("price 2.50"), 6, "model 'a': price: unknown kind '2.50'"},
		{"price kind without a number", inModel("price input 2.50 output"), 6, "model 'a': price output needs a number after it: US dollars per million tokens"},
		{"price kind alone", inModel("price cache_read"), 6, "model 'a': price cache_read needs a number after it"},
		{"price with a word for a number", inModel("price input output 10"), 6, "model 'a': invalid price input 'output': must be a decimal number of US dollars per million tokens, 0 or more, such as 2.50"},
		{"price with a currency sign", inModel("price input $2.50"), 6, "model 'a': invalid price input '$2.50'"},
		{"price with a decimal comma", inModel("price output 10,5"), 6, "model 'a': invalid price output '10,5'"},
		{"price with an exponent", inModel("price input 2.5e0"), 6, "model 'a': invalid price input '2.5e0'"},
		{"price negative", inModel("price input 1 output -10"), 6, "model 'a': invalid price output '-10': must be a decimal number of US dollars per million tokens, 0 or more"},
		{"price NaN", inModel("price cache_write NaN"), 6, "model 'a': invalid price cache_write 'NaN'"},
		{"price Inf", inModel("price cache_read Inf"), 6, "model 'a': invalid price cache_read 'Inf'"},
		{"price out of range", inModel("price input 1" + strings.Repeat("0", 400)), 6, "model 'a': invalid price input '1000"},
		{"price repeats a kind", inModel("price input 1 output 2 input 3"), 6, "model 'a': price input already specified"},
		{"duplicate price", replace("to 127.0.0.1:9", "price input 1\nto 127.0.0.1:9\nprice output 2"), 7, "model 'a': price already specified"},
		{"price without pairs", inModel("price"), 6, "model 'a': price needs at least one kind and its price: price input <usd> output <usd> cache_read <usd> cache_write <usd>"},
		{"price as a block", inModel("price {\ninput 1\n}"), 6, "model 'a': price takes its pairs on its line, not in a block"},
		{"price as a block after pairs", inModel("price input 1 {\noutput 2\n}"), 6, "model 'a': price takes its pairs on its line, not in a block"},

		// route policy
		{"unknown policy", replace("route r {", "route q {\nmodels a\n}\nroute r {\npolicy sticky"), 10, "route 'r': unknown policy 'sticky' (want first, random or weighted)"},
		{"policy in upper case", replace("models a", "policy Random\nmodels a"), 7, "route 'r': unknown policy 'Random'"},
		{"weighted policy with all weights 0", replace("to 127.0.0.1:9\n}\nroute r {\nmodels a", "to 127.0.0.1:1\nweight 0\n}\nmodel b {\nto 127.0.0.1:2\nweight 0\n}\nroute r {\nmodels a b\npolicy weighted"), 12, "route 'r': the weighted policy needs a model with a positive weight"},
		{"duplicate policy", replace("models a", "policy first\nmodels a\npolicy random"), 10, "policy already specified"},
		{"policy without value", inRoute("policy"), 9, "wrong argument count"},
		{"policy with two values", inRoute("policy first random"), 9, "wrong argument count"},

		// route when
		{"when without condition", inRoute("when"), 9, "when needs a condition: tools, last_role, regex, tokens_over or header"},
		{"unknown when condition", inRoute("when model gpt-4o"), 9, "unknown when condition 'model' (want tools, last_role, regex, tokens_over or header)"},
		{"when tools with an argument", inRoute("when tools yes"), 9, "when tools takes 0 argument(s), got 1"},
		{"when last_role without role", inRoute("when last_role"), 9, "when last_role takes 1 argument(s), got 0"},
		{"when last_role with two roles", inRoute("when last_role user tool"), 9, "when last_role takes 1 argument(s), got 2"},
		{"when last_role unknown role", replace("models a", "when last_role bot\nmodels a"), 8, "when last_role: last_role 'bot' is not one of user, assistant, system, developer, tool"},
		{"when regex without expression", inRoute("when regex"), 9, "when regex takes 1 argument(s), got 0"},
		{"when regex unquoted with a space", inRoute("when regex fix this"), 9, "when regex takes 1 argument(s), got 2"},
		{"when regex bad expression", inRoute(`when regex "fix("`), 9, "when regex: regex: error parsing regexp"},
		{"when tokens_over without number", inRoute("when tokens_over"), 9, "when tokens_over takes 1 argument(s), got 0"},
		{"when tokens_over 0", inRoute("when tokens_over 0"), 9, "when tokens_over: '0' is not a positive whole number"},
		{"when tokens_over -5", inRoute("when tokens_over -5"), 9, "when tokens_over: '-5' is not a positive whole number"},
		{"when tokens_over x", inRoute("when tokens_over x"), 9, "when tokens_over: 'x' is not a positive whole number"},
		{"when tokens_over 8k", inRoute("when tokens_over 8k"), 9, "when tokens_over: '8k' is not a positive whole number"},
		{"when header without value", inRoute("when header X-Tier"), 9, "when header takes 2 argument(s), got 1"},
		{"when header with three arguments", inRoute("when header X-Tier premium gold"), 9, "when header takes 2 argument(s), got 3"},
		{"when header with an empty name", inRoute(`when header "" premium`), 9, "when header: header condition needs a header name"},
		{"router with only rule routes", replace("models a\n}", "models a\nwhen tools\n}\n"+router), 11, "a router needs at least one route to choose from"},

		// name, scope, strip_header
		{"duplicate name", replace("default a", "name a\ndefault a\nname b"), 5, "name already specified"},
		{"name without value", inHandler("name"), 3, "wrong argument count"},
		{"name with two values", inHandler("name site a"), 3, "wrong argument count"},
		{"duplicate scope", inHandler("scope {http.auth.user.id}\nscope {http.request.header.Authorization}"), 4, "scope already specified"},
		{"scope without value", inHandler("scope"), 3, "wrong argument count"},
		{"scope with two values", inHandler("scope {http.auth.user.id} {http.request.host}"), 3, "wrong argument count"},
		{"strip_header bare", inHandler("strip_header"), 3, "strip_header takes on or off"},
		{"strip_header bad value", inHandler("strip_header yes"), 3, "strip_header takes on or off"},
		{"strip_header two values", inHandler("strip_header on off"), 3, "strip_header takes on or off"},
		{"duplicate strip_header", inHandler("strip_header on\nstrip_header off"), 4, "strip_header already specified"},
		{"duplicate strip_header off then off", inHandler("strip_header off\nstrip_header off"), 4, "strip_header already specified"},
		{"session_headers without value", inHandler("session_headers"), 3, "wrong argument count"},
		{"duplicate session_headers", inHandler("session_headers X-A\nsession_headers off"), 4, "session_headers already specified"},
		{"session_headers with an invalid name", inHandler("session_headers X-Ok X:Bad"), 3, `session_headers: "X:Bad" is not a valid HTTP header name`},

		// store
		{"store without type", inHandler("store {\naddress 127.0.0.1:6379\n}"), 3, "store takes a type: 'store redis { ... }'"},
		{"store without type or block", inHandler("store"), 3, "store takes a type"},
		{"store of another type", afterRoute("store memcached {\naddress 127.0.0.1:11211\n}"), 10, "store takes a type: 'store redis { ... }'"},
		{"store redis with an extra argument", inHandler("store redis main {\naddress 127.0.0.1:6379\n}"), 3, "store takes a type"},
		{"store type in upper case", inHandler("store Redis {\naddress 127.0.0.1:6379\n}"), 3, "store takes a type"},
		{"store redis unknown subdirective", inHandler("store redis {\naddress 127.0.0.1:6379\nhost 127.0.0.1\n}"), 5, "store redis: unrecognized subdirective 'host'"},
		{"store redis subdirective of the handler", inHandler("store redis {\nttl 1m\naddress 127.0.0.1:6379\n}"), 4, "store redis: unrecognized subdirective 'ttl'"},
		{"store redis address without value", inHandler("store redis {\naddress\n}"), 4, "wrong argument count"},
		{"store redis db -1", inHandler("store redis {\naddress 127.0.0.1:6379\ndb -1\n}"), 5, "store redis: invalid db '-1'"},
		{"store redis db x", inHandler("store redis {\ndb x\naddress 127.0.0.1:6379\n}"), 4, "store redis: invalid db 'x'"},
		{"store redis db 1.5", inHandler("store redis {\naddress 127.0.0.1:6379\ndb 1.5\n}"), 5, "store redis: invalid db '1.5'"},
		{"store redis db without value", inHandler("store redis {\naddress 127.0.0.1:6379\ndb\n}"), 5, "wrong argument count"},
		{"store redis timeout 0", inHandler("store redis {\naddress 127.0.0.1:6379\ntimeout 0\n}"), 5, "store redis: invalid timeout '0': must be a positive duration"},
		{"store redis timeout -1s", inHandler("store redis {\naddress 127.0.0.1:6379\ntimeout -1s\n}"), 5, "store redis: invalid timeout '-1s'"},
		{"store redis timeout abc", inHandler("store redis {\ntimeout abc\naddress 127.0.0.1:6379\n}"), 4, "store redis: invalid timeout 'abc'"},
		{"store redis timeout with two values", inHandler("store redis {\naddress 127.0.0.1:6379\ntimeout 1s 2s\n}"), 5, "wrong argument count"},
		{"store redis duplicate password", inHandler("store redis {\naddress 127.0.0.1:6379\npassword one\npassword two\n}"), 6, "password already specified"},
		{"store redis duplicate prefix", inHandler("store redis {\nprefix a:\naddress 127.0.0.1:6379\nprefix b:\n}"), 6, "prefix already specified"},
		{"store redis duplicate db", inHandler("store redis {\naddress 127.0.0.1:6379\ndb 1\ndb 2\n}"), 6, "db already specified"},
		{"store redis duplicate timeout", inHandler("store redis {\ntimeout 1s\naddress 127.0.0.1:6379\ntimeout 2s\n}"), 6, "timeout already specified"},
		{"duplicate store", inHandler("store redis {\naddress 127.0.0.1:6379\n}\nstore redis {\naddress 127.0.0.1:6380\n}"), 6, "store already specified"},
		{"store redis without address", afterRoute("store redis {\ndb 1\nprefix p:\n}"), 10, "store redis: address is required (one or more host:port)"},
		{"store redis with an empty block", inHandler("store redis {\n}"), 3, "store redis: address is required"},
		{"store redis address is a URL", inHandler("store redis {\naddress 127.0.0.1:6380\naddress redis://127.0.0.1:6379\n}"), 3, "store redis: address redis://127.0.0.1:6379: want host:port, not a URL"},
		{"store redis address is a TLS URL", inHandler("store redis {\naddress rediss://cache.internal:6380\n}"), 3, "store redis: address rediss://cache.internal:6380: want host:port"},
		{"store redis address without port", afterRoute("store redis {\naddress 127.0.0.1:6379 127.0.0.1\n}"), 10, "store redis: address 127.0.0.1: want host:port"},
		{"store error reported before a model error", replace("default a\nmodel a {\nto 127.0.0.1:9", "default a\nstore redis {\ndb 2\n}\nmodel a {"), 4, "store redis: address is required"},

		// lb_policy llm_affinity
		{"lb_policy llm_affinity with an argument", inProxy("lb_policy llm_affinity X-Model-Affinity"), 13, "wrong argument count"},
		{"lb_policy llm_affinity unknown subdirective", inProxy("lb_policy llm_affinity {\nfield X-Model-Affinity\n}"), 14, "lb_policy llm_affinity: unrecognized subdirective 'field'"},
		{"lb_policy llm_affinity fallback without policy", inProxy("lb_policy llm_affinity {\nfallback\n}"), 14, "wrong argument count"},
		{"lb_policy llm_affinity duplicate fallback", inProxy("lb_policy llm_affinity {\nfallback random\nfallback least_conn\n}"), 15, "lb_policy llm_affinity: fallback already specified"},
		{"lb_policy llm_affinity fallback itself", inProxy("lb_policy llm_affinity {\nfallback llm_affinity\n}"), 14, "lb_policy llm_affinity: fallback llm_affinity would never have a pin key to hash"},
		{"lb_policy llm_affinity unknown fallback", inProxy("lb_policy llm_affinity {\nfallback sticky\n}"), 14, "getting module named 'http.reverse_proxy.selection_policies.sticky'"},
		{"lb_policy llm_affinity fallback's own error", inProxy("lb_policy llm_affinity {\nfallback header\n}"), 14, "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.edit.apply(t)
			_, err := cfAdapt(t, text)
			if err == nil {
				t.Fatalf("adapting succeeded, want an error containing %q; the Caddyfile:\n%s", tt.want, text)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
			if at := fmt.Sprintf(", at Caddyfile:%d", tt.line); !strings.HasSuffix(msg, at) {
				t.Errorf("error = %q, want it to end with %q; the Caddyfile:\n%s", msg, at, text)
			}
			if n := strings.Count(msg, ", at Caddyfile:"); n != 1 {
				t.Errorf("error = %q names a position %d times, want once", msg, n)
			}
		})
	}
}

func init() {
	caddy.RegisterModule(notARouter{})
}

// notARouter is a module in the routers' namespace that is not a router, as
// a third-party module registered there by mistake would be.
type notARouter struct{}

// CaddyModule registers it among the routers.
func (notARouter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.llm_affinity.routers.not_a_router",
		New: func() caddy.Module { return new(notARouter) },
	}
}

// UnmarshalCaddyfile accepts the bare "router not_a_router".
func (*notARouter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	return nil
}
