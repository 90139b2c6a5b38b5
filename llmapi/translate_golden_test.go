package llmapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden files of translation, testdata/translate/<kind>/<case>.txt,
// one mapping rule or one refusal each. A file is free text (what the case
// pins), then sections, each a line "-- <name> --" and its content:
//
//	-- request <api> --   a request body of api (chat, messages, responses), verbatim
//	-- reply <api> --     or an upstream's response body of api, verbatim
//	-- neutral --         what of the neutral form no encoder shows
//	-- <api> --           the body encoded for api, indented JSON
//	-- <api> error --     or the encoder's error, "<kind>: <message>"
//	-- error --           or the decoder's error, for a refused input
//
// The kinds are request/ and reply/ (the input decodes) and reject/ (it is
// refused). Bodies compare after json.Compact: only whitespace between
// tokens may differ; key order, escapes and values must be the same bytes.
// `go test ./llmapi -run Golden -update` rewrites every section after the
// input from what the code does now; read the diff before committing it.

var updateGoldens = flag.Bool("update", false, "rewrite testdata/translate/*/*.txt from what the translation code does")

// The model names of the goldens: the client asks for clientModel, the
// gateway sends upstreamModel.
const (
	goldenClientModel   = "client-model"
	goldenUpstreamModel = "upstream-model"
)

var goldenAPIs = []struct {
	name string
	api  API
}{{"chat", Chat}, {"messages", Messages}, {"responses", Responses}}

func goldenAPI(name string) (API, bool) {
	for _, a := range goldenAPIs {
		if a.name == name {
			return a.api, true
		}
	}
	return 0, false
}

type goldenSection struct{ name, body string }

// goldenFile is a parsed golden file.
type goldenFile struct {
	comment  string
	sections []goldenSection
}

func parseGolden(data string) (goldenFile, error) {
	var g goldenFile
	lines := strings.SplitAfter(data, "\n")
	i := 0
	var comment strings.Builder
	for ; i < len(lines) && !isGoldenHeader(lines[i]); i++ {
		comment.WriteString(lines[i])
	}
	g.comment = comment.String()
	for i < len(lines) {
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimRight(lines[i], "\n"), "-- "), " --")
		i++
		var body strings.Builder
		for ; i < len(lines) && !isGoldenHeader(lines[i]); i++ {
			body.WriteString(lines[i])
		}
		for _, s := range g.sections {
			if s.name == name {
				return g, fmt.Errorf("section %q twice", name)
			}
		}
		g.sections = append(g.sections, goldenSection{name, strings.TrimSuffix(body.String(), "\n")})
	}
	if len(g.sections) == 0 {
		return g, errors.New("no sections")
	}
	return g, nil
}

func isGoldenHeader(line string) bool {
	line = strings.TrimRight(line, "\n")
	return len(line) > 6 && strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --")
}

func (g goldenFile) section(name string) (string, bool) {
	for _, s := range g.sections {
		if s.name == name {
			return s.body, true
		}
	}
	return "", false
}

func (g goldenFile) String() string {
	var b strings.Builder
	b.WriteString(g.comment)
	for _, s := range g.sections {
		fmt.Fprintf(&b, "-- %s --\n%s\n", s.name, s.body)
	}
	return b.String()
}

// goldenOutput is one section the code computes: JSON, or an error's text.
type goldenOutput struct {
	name string
	json []byte // nil for an error
	text string
}

// goldenErrorText is an error as a golden file holds it: its kind and
// message.
func goldenErrorText(err error) string {
	var unsup *UnsupportedError
	var inv *InvalidRequestError
	switch {
	case errors.As(err, &unsup):
		return "unsupported: " + err.Error()
	case errors.As(err, &inv):
		return "invalid: " + err.Error()
	case errors.Is(err, errUpstreamReply):
		return "upstream: " + err.Error()
	}
	return fmt.Sprintf("unexpected %T: %v", err, err)
}

// goldenNeutralTurn is what of a decoded turn no encoder writes.
type goldenNeutralTurn struct {
	Model              string `json:"model"`
	StreamUsage        bool   `json:"stream_usage"`
	PreviousResponseID string `json:"previous_response_id"`
	NoStore            bool   `json:"no_store"`
}

// goldenNeutralReply is what of a decoded reply no encoder writes as is.
type goldenNeutralReply struct {
	ID    string `json:"id"`
	Model string `json:"model"`
}

// runGolden computes the sections after the input: decode once, then
// encode for each API, in the order the gateway's failover would.
func runGolden(t *testing.T, kind, input string, body []byte) (outs []goldenOutput, decodeErr error) {
	t.Helper()
	mode, apiName, _ := strings.Cut(input, " ")
	api, ok := goldenAPI(apiName)
	if !ok {
		t.Fatalf("input section %q: unknown API %q", input, apiName)
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	switch mode {
	case "request":
		turn, err := DecodeTurn(api, body)
		if err != nil {
			return []goldenOutput{{name: "error", text: goldenErrorText(err)}}, err
		}
		outs = append(outs, goldenOutput{name: "neutral", json: mustJSON(goldenNeutralTurn{
			turn.Model, turn.StreamUsage, turn.PreviousResponseID, turn.NoStore})})
		for _, to := range goldenAPIs {
			out, err := EncodeTurn(to.api, turn, goldenUpstreamModel)
			if err != nil {
				outs = append(outs, goldenOutput{name: to.name + " error", text: goldenErrorText(err)})
				continue
			}
			again, _ := EncodeTurn(to.api, turn, goldenUpstreamModel)
			if !bytes.Equal(again, out) {
				t.Errorf("encoding the turn for %s twice gives two bodies:\n%s\n%s", to.name, out, again)
			}
			outs = append(outs, goldenOutput{name: to.name, json: out})
		}
	case "reply":
		reply, err := DecodeReply(api, body)
		if err != nil {
			return []goldenOutput{{name: "error", text: goldenErrorText(err)}}, err
		}
		outs = append(outs, goldenOutput{name: "neutral", json: mustJSON(goldenNeutralReply{reply.ID, reply.Model})})
		for _, to := range goldenAPIs {
			out := EncodeReply(to.api, reply, goldenClientModel)
			if again := EncodeReply(to.api, reply, goldenClientModel); !bytes.Equal(again, out) {
				t.Errorf("encoding the reply for %s twice gives two bodies:\n%s\n%s", to.name, out, again)
			}
			outs = append(outs, goldenOutput{name: to.name, json: out})
		}
	default:
		t.Fatalf("input section %q is neither request nor reply", input)
	}
	return outs, nil
}

func TestTranslateGolden(t *testing.T) {
	kinds := []string{"request", "reply", "reject"}
	total := 0
	for _, kind := range kinds {
		files, err := filepath.Glob(filepath.Join("testdata", "translate", kind, "*.txt"))
		if err != nil {
			t.Fatal(err)
		}
		total += len(files)
		for _, file := range files {
			t.Run(kind+"/"+strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
				testGoldenFile(t, kind, file)
			})
		}
	}
	if total == 0 {
		t.Fatal("no golden files in testdata/translate")
	}
}

func testGoldenFile(t *testing.T, kind, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := parseGolden(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	input := g.sections[0]
	if !strings.HasPrefix(input.name, "request ") && !strings.HasPrefix(input.name, "reply ") {
		t.Fatalf("%s: the first section is %q, not the input (request <api> or reply <api>)", file, input.name)
	}
	if strings.TrimSpace(g.comment) == "" {
		t.Errorf("%s: no text before the input says what the case pins", file)
	}
	outs, decodeErr := runGolden(t, kind, input.name, []byte(input.body))
	// the directory says whether the input must be refused: a case that
	// changes side fails even under -update
	switch {
	case kind == "reject" && decodeErr == nil:
		t.Errorf("%s is a refusal, but its input decodes", file)
	case kind != "reject" && decodeErr != nil:
		t.Errorf("%s is not a refusal, but its input is refused: %s", file, goldenErrorText(decodeErr))
	}
	if *updateGoldens {
		next := goldenFile{comment: g.comment, sections: []goldenSection{input}}
		for _, o := range outs {
			body := o.text
			if o.json != nil {
				var buf bytes.Buffer
				if err := json.Indent(&buf, o.json, "", "  "); err != nil {
					t.Fatalf("%s: the %s output is not JSON: %v\n%s", file, o.name, err, o.json)
				}
				body = buf.String()
			}
			next.sections = append(next.sections, goldenSection{o.name, body})
		}
		if err := os.WriteFile(file, []byte(next.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := map[string]bool{input.name: true}
	for _, o := range outs {
		want[o.name] = true
		golden, ok := g.section(o.name)
		if !ok {
			t.Errorf("%s: no section %q; the code gives:\n%s\n(go test ./llmapi -run Golden -update rewrites the file)", file, o.name, o.display())
			continue
		}
		if o.json == nil {
			if golden != o.text {
				t.Errorf("%s: %s:\nwant %s\ngot  %s", file, o.name, golden, o.text)
			}
			continue
		}
		var wantC, gotC bytes.Buffer
		if err := json.Compact(&wantC, []byte(golden)); err != nil {
			t.Errorf("%s: section %q is not JSON: %v", file, o.name, err)
			continue
		}
		if err := json.Compact(&gotC, o.json); err != nil {
			t.Errorf("%s: the %s output is not JSON: %v\n%s", file, o.name, err, o.json)
			continue
		}
		if !bytes.Equal(wantC.Bytes(), gotC.Bytes()) {
			t.Errorf("%s: %s differs from the golden file (- golden, + got):\n%s\ngot, compact: %s",
				file, o.name, lineDiff(indentJSON(wantC.Bytes()), indentJSON(gotC.Bytes())), gotC.Bytes())
		}
	}
	for _, s := range g.sections {
		if !want[s.name] {
			t.Errorf("%s: section %q is not one the code gives", file, s.name)
		}
	}
}

func (o goldenOutput) display() string {
	if o.json == nil {
		return o.text
	}
	return indentJSON(o.json)
}

func indentJSON(b []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}

// lineDiff is a line diff of a and b: lines only in a marked -, only in b
// +, common ones indented, from the longest common subsequence.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j] is the length of the LCS of x[i:] and y[j:]
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var lines []string
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, "  "+x[i])
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			lines = append(lines, "- "+x[i])
			i++
		default:
			lines = append(lines, "+ "+y[j])
			j++
		}
	}
	// common lines more than diffContext away from a change are elided
	const diffContext = 6
	near := make([]bool, len(lines))
	for k, l := range lines {
		if l[0] != ' ' {
			for c := max(k-diffContext, 0); c <= min(k+diffContext, len(lines)-1); c++ {
				near[c] = true
			}
		}
	}
	var out strings.Builder
	for k, l := range lines {
		switch {
		case near[k]:
			out.WriteString(l + "\n")
		case k == 0 || near[k-1]:
			out.WriteString("  ...\n")
		}
	}
	return out.String()
}

// The golden harness must see what it is there to see.
func TestGoldenHarness(t *testing.T) {
	g, err := parseGolden("pins x\n-- request chat --\n{\"a\": 1}\n\n-- chat --\n{}\n")
	if err != nil {
		t.Fatal(err)
	}
	if g.comment != "pins x\n" || len(g.sections) != 2 || g.sections[0].body != "{\"a\": 1}\n" || g.sections[1].body != "{}" {
		t.Errorf("parsed %+v", g)
	}
	if got := g.String(); got != "pins x\n-- request chat --\n{\"a\": 1}\n\n-- chat --\n{}\n" {
		t.Errorf("written back as %q", got)
	}
	if _, err := parseGolden("-- a --\n1\n-- a --\n2\n"); err == nil {
		t.Error("a section twice is accepted")
	}
	if d := lineDiff("a\nb\nc", "a\nx\nc"); d != "  a\n- b\n+ x\n  c\n" {
		t.Errorf("diff %q", d)
	}
	long := strings.Repeat("s\n", 20)
	if d := lineDiff(long+"a\n"+long, long+"b\n"+long); d != "  ...\n"+strings.Repeat("  s\n", 6)+"- a\n+ b\n"+strings.Repeat("  s\n", 6)+"  ...\n" {
		t.Errorf("diff with context %q", d)
	}
}
