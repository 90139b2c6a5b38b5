package routing

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"

	"github.com/llmaffinity/caddy-llm-affinity/llmapi"
)

// Condition is one rule a route may require, evaluated in-process with no
// routing model. Exactly one field is set. A route matches when all its
// conditions hold; rules run before the LLM router, and the first route whose
// rules all hold wins.
type Condition struct {
	// Tools holds when the request offers tools. Caddyfile: when tools
	Tools bool `json:"tools,omitempty"`

	// LastRole holds when the last message has this role: user, assistant,
	// system, developer or tool ("tool" also matches an Anthropic user turn
	// made only of tool_result blocks). Caddyfile: when last_role <role>
	LastRole string `json:"last_role,omitempty"`

	// Regex holds when the newest user message's text matches this RE2
	// expression. Caddyfile: when regex <re>
	Regex string `json:"regex,omitempty"`

	// TokensOver holds when the request's estimated tokens (text characters
	// divided by 4) exceed this number. Caddyfile: when tokens_over <n>
	TokensOver int `json:"tokens_over,omitempty"`

	// Header holds when the request header has exactly this value.
	// Caddyfile: when header <name> <value>
	Header *HeaderCondition `json:"header,omitempty"`

	re *regexp.Regexp
}

// HeaderCondition is a request header and the value it must have.
type HeaderCondition struct {
	// Name is the request header's name.
	Name string `json:"name"`
	// Value is the value it must have, compared exactly.
	Value string `json:"value"`
}

// Compile checks the condition and prepares it for Match.
func (c *Condition) Compile() error {
	set := 0
	for _, isSet := range []bool{c.Tools, c.LastRole != "", c.Regex != "", c.TokensOver != 0, c.Header != nil} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		return errors.New("a condition needs exactly one of tools, last_role, regex, tokens_over or header")
	}
	switch {
	case c.LastRole != "":
		switch c.LastRole {
		case "user", "assistant", "system", "developer", "tool":
		default:
			return fmt.Errorf("last_role '%s' is not one of user, assistant, system, developer, tool", c.LastRole)
		}
	case c.Regex != "":
		re, err := regexp.Compile(c.Regex)
		if err != nil {
			return fmt.Errorf("regex: %v", err)
		}
		c.re = re
	case c.TokensOver < 0:
		return errors.New("tokens_over must be positive")
	case c.Header != nil:
		if c.Header.Name == "" {
			return errors.New("header condition needs a header name")
		}
	}
	return nil
}

// Match reports whether the condition holds for a request and its headers.
func (c *Condition) Match(req *llmapi.Summary, header http.Header) bool {
	switch {
	case c.Tools:
		return len(req.ToolNames) > 0
	case c.LastRole != "":
		return req.LastRole == c.LastRole
	case c.re != nil:
		return c.re.MatchString(req.LastUserText)
	case c.TokensOver > 0:
		return req.EstimatedTokens() > c.TokensOver
	case c.Header != nil:
		return header.Get(c.Header.Name) == c.Header.Value
	}
	return false
}

// NeedsMessages reports whether the condition reads message text (regex,
// tokens_over), which takes a full Decode; the others hold or fail on what
// DecodeShallow reads.
func (c *Condition) NeedsMessages() bool { return c.Regex != "" || c.TokensOver != 0 }

// MatchAll reports whether every condition holds; an empty list never matches.
func MatchAll(conds []*Condition, req *llmapi.Summary, header http.Header) bool {
	if len(conds) == 0 {
		return false
	}
	for _, c := range conds {
		if !c.Match(req, header) {
			return false
		}
	}
	return true
}
