package llmaffinity

import (
	"math"
	"testing"
)

// decModels returns models with the given names and weights (the default
// weight for a name without one).
func decModels(weights map[string]int, names ...string) []*Model {
	out := make([]*Model, len(names))
	for i, n := range names {
		out[i] = &Model{Name: n}
		if w, ok := weights[n]; ok {
			out[i].Weight = &w
		}
	}
	return out
}

func TestPick(t *testing.T) {
	const draws = 10000
	tests := []struct {
		name    string
		policy  string
		weights map[string]int
		names   []string
		want    map[string]float64 // share of draws
	}{
		{name: "first", policy: PolicyFirst, names: []string{"a", "b", "c"}, want: map[string]float64{"a": 1}},
		{name: "empty policy is first", policy: "", names: []string{"b", "a"}, want: map[string]float64{"b": 1}},
		{name: "weighted 3:1", policy: PolicyWeighted, weights: map[string]int{"a": 3, "b": 1},
			names: []string{"a", "b"}, want: map[string]float64{"a": 0.75, "b": 0.25}},
		{name: "weighted 3:0:1, zero never picked", policy: PolicyWeighted, weights: map[string]int{"a": 3, "z": 0, "b": 1},
			names: []string{"z", "a", "b"}, want: map[string]float64{"a": 0.75, "b": 0.25}},
		{name: "weighted with only one positive weight", policy: PolicyWeighted, weights: map[string]int{"a": 0, "b": 2},
			names: []string{"a", "b"}, want: map[string]float64{"b": 1}},
		{name: "weighted with all weights 0 falls back to the first", policy: PolicyWeighted, weights: map[string]int{"a": 0, "b": 0},
			names: []string{"a", "b"}, want: map[string]float64{"a": 1}},
		{name: "weighted with default weights", policy: PolicyWeighted,
			names: []string{"a", "b"}, want: map[string]float64{"a": 0.5, "b": 0.5}},
		{name: "random is uniform", policy: PolicyRandom, names: []string{"a", "b", "c"},
			want: map[string]float64{"a": 1.0 / 3, "b": 1.0 / 3, "c": 1.0 / 3}},
		{name: "random ignores weights", policy: PolicyRandom, weights: map[string]int{"a": 0, "b": 9},
			names: []string{"a", "b"}, want: map[string]float64{"a": 0.5, "b": 0.5}},
		{name: "one model", policy: PolicyRandom, names: []string{"a"}, want: map[string]float64{"a": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &Route{Name: "r", Policy: tt.policy, models: decModels(tt.weights, tt.names...)}
			counts := map[string]int{}
			for range draws {
				m := rt.pick()
				if m == nil {
					t.Fatal("pick returned nil")
				}
				counts[m.Name]++
			}
			for name, n := range counts {
				if _, ok := tt.want[name]; !ok {
					t.Errorf("model %s picked %d times, want never", name, n)
				}
			}
			for name, share := range tt.want {
				got := float64(counts[name]) / draws
				if math.Abs(got-share) > 0.03 {
					t.Errorf("model %s picked %.2f%% of the time, want %.2f%% ± 3%%", name, got*100, share*100)
				}
			}
		})
	}
}
