package llmaffinity

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/llmaffinity/caddy-llm-affinity/internal/subdirective"
	"github.com/llmaffinity/caddy-llm-affinity/routing"
)

// Route policies: how a route picks the model that serves.
const (
	PolicyFirst    = "first"
	PolicyRandom   = "random"
	PolicyWeighted = "weighted"
)

// Route is a routing preference: rules and a description that requests are
// matched against, and the models that serve the requests it matches.
type Route struct {
	// The route's name, as the router answers it. Required; "other" is
	// reserved for "no route fits".
	Name string `json:"name"`

	// What requests the route is for, in plain language; sent to the router.
	Description string `json:"description,omitempty"`

	// Candidate models in order. The policy picks the one that serves; when it
	// fails before any response byte reaches the client, the others are tried
	// in order, then the default. At least one is required.
	Models []string `json:"models"`

	// How the serving model is picked: "first", "random" or "weighted" (by
	// the models' weight). With affinity the pick is pinned, so a weighted
	// split is sticky per session. Default: first.
	Policy string `json:"policy,omitempty"`

	// Conditions evaluated in-process before any routing model is asked; the
	// route matches when all hold. A route with conditions and no description
	// is never shown to the routing model.
	When []*routing.Condition `json:"when,omitempty"`

	models []*Model
	origin origin
}

// provision sets the route's default policy, compiles its conditions (once:
// a bad one fails the load here) and looks its models up in models.
func (rt *Route) provision(models map[string]*Model) error {
	if rt.Policy == "" {
		rt.Policy = PolicyFirst
	}
	for _, c := range rt.When {
		if c == nil {
			return rt.origin.errorf("route '%s': empty when condition", rt.Name)
		}
		if err := c.Compile(); err != nil {
			return rt.origin.errorf("route '%s': when: %v", rt.Name, err)
		}
	}
	rt.models = lookupModels(models, rt.Models)
	return nil
}

// readsMessages reports whether one of the route's rules reads message
// text, which takes a full decode of the body.
func (rt *Route) readsMessages() bool {
	for _, c := range rt.When {
		if c.NeedsMessages() {
			return true
		}
	}
	return false
}

// lookupModels returns the models of names, skipping unknown ones.
func lookupModels(models map[string]*Model, names []string) []*Model {
	out := make([]*Model, 0, len(names))
	for _, name := range names {
		if m := models[name]; m != nil {
			out = append(out, m)
		}
	}
	return out
}

// validate checks the route against the configured models and records its
// name in seen, the names of the routes before it; i is its place in the
// handler's list, for a route without a name. Its conditions are checked
// when they compile (see provision and parseCondition).
func (rt *Route) validate(i int, seen map[string]bool, models map[string]*Model) error {
	if rt.Name == "" {
		return rt.origin.errorf("route %d: name is required", i)
	}
	if rt.Name == routing.NoRoute {
		return rt.origin.errorf("route name '%s' is reserved: the router answers it when no route fits", rt.Name)
	}
	if seen[rt.Name] {
		return rt.origin.errorf("route '%s' is defined more than once", rt.Name)
	}
	seen[rt.Name] = true
	if len(rt.Models) == 0 {
		return rt.origin.errorf("route '%s': models is required (one or more model names)", rt.Name)
	}
	weights := 0
	for _, name := range rt.Models {
		m := models[name]
		if m == nil {
			return rt.origin.errorf("route '%s' names unknown model '%s'", rt.Name, name)
		}
		weights += m.weight()
	}
	switch rt.Policy {
	case "", PolicyFirst, PolicyRandom:
	case PolicyWeighted:
		if weights == 0 {
			return rt.origin.errorf("route '%s': the weighted policy needs a model with a positive weight", rt.Name)
		}
	default:
		return rt.origin.errorf("route '%s': unknown policy '%s' (want first, random or weighted)", rt.Name, rt.Policy)
	}
	return nil
}

// pick chooses the model that serves the route, by its policy.
func (rt *Route) pick() *Model {
	switch rt.Policy {
	case PolicyRandom:
		return rt.models[rand.IntN(len(rt.models))]
	case PolicyWeighted:
		total := 0
		for _, m := range rt.models {
			total += m.weight()
		}
		if total > 0 {
			n := rand.IntN(total)
			for _, m := range rt.models {
				if n < m.weight() {
					return m
				}
				n -= m.weight()
			}
		}
	}
	return rt.models[0]
}

// parseRoute reads a route block:
//
//	route <name> {
//		description <text>
//		models      <model> ...
//		policy      first|random|weighted
//		when        <condition>   # see parseCondition
//	}
func parseRoute(d *caddyfile.Dispenser) (*Route, error) {
	rt := &Route{origin: originOf(d)}
	if !d.AllArgs(&rt.Name) {
		return nil, d.Errf("route takes exactly one name: route <name> { ... }")
	}
	err := subdirective.Each(d, fmt.Sprintf("route '%s': ", rt.Name), func(sub string) error {
		switch sub {
		case "description":
			if rt.Description != "" {
				return d.Errf("route '%s': description already specified", rt.Name)
			}
			words := d.RemainingArgs()
			if len(words) == 0 {
				return d.ArgErr()
			}
			rt.Description = strings.Join(words, " ")
			return nil
		case "models":
			if len(rt.Models) > 0 {
				return d.Errf("route '%s': models already specified", rt.Name)
			}
			rt.Models = d.RemainingArgs()
			if len(rt.Models) == 0 {
				return d.ArgErr()
			}
			return nil
		case "policy":
			return subdirective.One(d, "", sub, rt.Policy != "", subdirective.String(&rt.Policy), "")
		case "when":
			return appendParsed(d, &rt.When, parseCondition)
		}
		return subdirective.ErrUnrecognized
	})
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// conditionArgs is how many arguments each kind of when condition takes.
var conditionArgs = map[string]int{"tools": 0, "last_role": 1, "regex": 1, "tokens_over": 1, "header": 2}

// parseCondition reads a route rule and checks it by compiling it:
//
//	when tools
//	when last_role <role>
//	when regex <re>
//	when tokens_over <n>
//	when header <name> <value>
func parseCondition(d *caddyfile.Dispenser) (*routing.Condition, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.Errf("when needs a condition: tools, last_role, regex, tokens_over or header")
	}
	n, known := conditionArgs[args[0]]
	if !known {
		return nil, d.Errf("unknown when condition '%s' (want tools, last_role, regex, tokens_over or header)", args[0])
	}
	if len(args)-1 != n {
		return nil, d.Errf("when %s takes %d argument(s), got %d", args[0], n, len(args)-1)
	}
	cond := new(routing.Condition)
	switch args[0] {
	case "tools":
		cond.Tools = true
	case "last_role":
		cond.LastRole = args[1]
	case "regex":
		cond.Regex = args[1]
	case "tokens_over":
		tokens, err := strconv.Atoi(args[1])
		if err != nil || tokens <= 0 {
			return nil, d.Errf("when tokens_over: '%s' is not a positive whole number", args[1])
		}
		cond.TokensOver = tokens
	case "header":
		cond.Header = &routing.HeaderCondition{Name: args[1], Value: args[2]}
	}
	if err := cond.Compile(); err != nil {
		return nil, d.Errf("when %s: %v", args[0], err)
	}
	return cond, nil
}
