package routing

import (
	"net/http"
	"strings"
	"testing"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

func TestConditionCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		cond    Condition
		wantErr string
	}{
		{name: "none set", cond: Condition{},
			wantErr: "a condition needs exactly one of tools, last_role, regex, tokens_over or header"},
		{name: "tools and last_role", cond: Condition{Tools: true, LastRole: "user"},
			wantErr: "a condition needs exactly one of"},
		{name: "regex and header", cond: Condition{Regex: "x", Header: &HeaderCondition{Name: "X-A", Value: "1"}},
			wantErr: "a condition needs exactly one of"},
		{name: "tokens_over and tools", cond: Condition{TokensOver: 5, Tools: true},
			wantErr: "a condition needs exactly one of"},
		{name: "all set", cond: Condition{Tools: true, LastRole: "user", Regex: "x", TokensOver: 1, Header: &HeaderCondition{Name: "X"}},
			wantErr: "a condition needs exactly one of"},
		{name: "bad regex", cond: Condition{Regex: "fix("}, wantErr: "regex: error parsing regexp"},
		{name: "perl lookahead is not RE2", cond: Condition{Regex: "(?=x)"}, wantErr: "regex: "},
		{name: "bad last_role", cond: Condition{LastRole: "bot"},
			wantErr: "last_role 'bot' is not one of user, assistant, system, developer, tool"},
		{name: "last_role is case sensitive", cond: Condition{LastRole: "User"}, wantErr: "last_role 'User' is not one of"},
		{name: "negative tokens_over", cond: Condition{TokensOver: -1}, wantErr: "tokens_over must be positive"},
		{name: "header without name", cond: Condition{Header: &HeaderCondition{Value: "premium"}},
			wantErr: "header condition needs a header name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cond
			err := c.Compile()
			if err == nil {
				t.Fatalf("Compile succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Compile error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestConditionCompileValid(t *testing.T) {
	for _, c := range []Condition{
		{Tools: true},
		{LastRole: "user"}, {LastRole: "assistant"}, {LastRole: "system"}, {LastRole: "developer"}, {LastRole: "tool"},
		{Regex: `(?i)\bfix\b`},
		{TokensOver: 1},
		{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
		{Header: &HeaderCondition{Name: "X-Tier"}},
	} {
		if err := c.Compile(); err != nil {
			t.Errorf("Compile(%+v): %v", c, err)
		}
	}
}

func TestConditionMatch(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		cond   Condition
		req    llmapi.Summary
		header http.Header
		want   bool
	}{
		{name: "tools: offered", cond: Condition{Tools: true}, req: llmapi.Summary{ToolNames: []string{"f"}}, want: true},
		{name: "tools: none", cond: Condition{Tools: true}, req: llmapi.Summary{}, want: false},

		{name: "last_role: same", cond: Condition{LastRole: "tool"}, req: llmapi.Summary{LastRole: "tool"}, want: true},
		{name: "last_role: other", cond: Condition{LastRole: "tool"}, req: llmapi.Summary{LastRole: "user"}, want: false},
		{name: "last_role: empty request", cond: Condition{LastRole: "user"}, req: llmapi.Summary{}, want: false},

		{name: "regex: newest user text matches", cond: Condition{Regex: `(?i)\bfix\b`},
			req: llmapi.Summary{LastUserText: "please FIX the build", FirstUserText: "hello"}, want: true},
		{name: "regex: only older user text matches", cond: Condition{Regex: `(?i)\bfix\b`},
			req: llmapi.Summary{LastUserText: "thanks", FirstUserText: "fix it"}, want: false},
		{name: "regex: only system matches", cond: Condition{Regex: `fix`},
			req: llmapi.Summary{LastUserText: "thanks", System: "fix everything"}, want: false},
		{name: "regex: only assistant text matches", cond: Condition{Regex: `fix`},
			req:  llmapi.Summary{LastUserText: "ok", Conversation: []llmapi.Utterance{{Role: "assistant", Content: "I will fix it"}, {Role: "user", Content: "ok"}}},
			want: false},
		{name: "regex: anchored", cond: Condition{Regex: `^/plan`}, req: llmapi.Summary{LastUserText: "do /plan"}, want: false},

		{name: "tokens_over: above", cond: Condition{TokensOver: 10}, req: llmapi.Summary{TextChars: 44}, want: true},
		{name: "tokens_over: equal is not over", cond: Condition{TokensOver: 10}, req: llmapi.Summary{TextChars: 40}, want: false},
		{name: "tokens_over: rounds down", cond: Condition{TokensOver: 10}, req: llmapi.Summary{TextChars: 43}, want: false},

		{name: "header: exact value", cond: Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
			header: hdr("X-Tier", "premium"), want: true},
		{name: "header: name is case insensitive", cond: Condition{Header: &HeaderCondition{Name: "x-tier", Value: "premium"}},
			header: hdr("X-TIER", "premium"), want: true},
		{name: "header: value is case sensitive", cond: Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
			header: hdr("X-Tier", "Premium"), want: false},
		{name: "header: no substring match", cond: Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
			header: hdr("X-Tier", "premium-plus"), want: false},
		{name: "header: absent", cond: Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
			header: hdr("X-Other", "premium"), want: false},
		{name: "header: nil header", cond: Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
			header: nil, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cond
			if err := c.Compile(); err != nil {
				t.Fatalf("Compile: %v", err)
			}
			req := tt.req
			if got := c.Match(&req, tt.header); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchAll(t *testing.T) {
	compiled := func(cs ...Condition) []*Condition {
		out := make([]*Condition, len(cs))
		for i := range cs {
			c := cs[i]
			if err := c.Compile(); err != nil {
				t.Fatalf("Compile(%+v): %v", c, err)
			}
			out[i] = &c
		}
		return out
	}
	req := &llmapi.Summary{LastRole: "user", LastUserText: "fix the bug", ToolNames: []string{"edit"}, TextChars: 400}
	header := http.Header{"X-Tier": {"premium"}}
	tests := []struct {
		name  string
		conds []*Condition
		want  bool
	}{
		{name: "nil list", conds: nil, want: false},
		{name: "empty list", conds: []*Condition{}, want: false},
		{name: "one holds", conds: compiled(Condition{Tools: true}), want: true},
		{name: "all hold", conds: compiled(
			Condition{Tools: true},
			Condition{LastRole: "user"},
			Condition{Regex: "bug"},
			Condition{TokensOver: 99},
			Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "premium"}},
		), want: true},
		{name: "last fails", conds: compiled(Condition{Tools: true}, Condition{LastRole: "tool"}), want: false},
		{name: "first fails", conds: compiled(Condition{TokensOver: 100}, Condition{Tools: true}), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchAll(tt.conds, req, header); got != tt.want {
				t.Errorf("MatchAll = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConditionNeedsMessages(t *testing.T) {
	tests := []struct {
		cond Condition
		want bool
	}{
		{Condition{Tools: true}, false},
		{Condition{LastRole: "tool"}, false},
		{Condition{Header: &HeaderCondition{Name: "X-Tier", Value: "gold"}}, false},
		{Condition{Regex: "refactor"}, true},
		{Condition{TokensOver: 1000}, true},
	}
	for _, tt := range tests {
		if got := tt.cond.NeedsMessages(); got != tt.want {
			t.Errorf("%+v.NeedsMessages() = %v, want %v", tt.cond, got, tt.want)
		}
	}
}
