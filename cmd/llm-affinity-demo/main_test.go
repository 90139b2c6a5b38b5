package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestSelfContainedDemo runs the demo as the README's quick start does: no
// flags, no keys, Caddy and the stand-ins started and stopped in-process.
func TestSelfContainedDemo(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, "", "gpt-4o-mini", "unused", 2*time.Minute); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"Run 1: WITHOUT Model Affinity",
		"✗  Without affinity: model switched 3 time(s)",
		"Run 2: WITH Model Affinity  (X-Model-Affinity: ",
		"✓  With affinity: claude-sonnet-4-20250514 for all 4 turns",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	run1, run2, _ := strings.Cut(out.String(), "Run 2:")
	if strings.Count(run1, "← switched") != 3 || strings.Contains(run2, "← switched") {
		t.Errorf("want 3 switches in run 1 and none in run 2:\n%s", out.String())
	}
}
