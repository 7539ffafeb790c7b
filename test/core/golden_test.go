package core_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenPath is test/testdata/golden/<name>.out.
func goldenPath(name string) string {
	return filepath.Join(repoRoot, "test", "testdata", "golden", name+".out")
}

// checkGolden compares got with the golden file of name; with -update it
// rewrites the file instead.  A golden file holds what a correct layer
// prints, reviewed by hand: never accept a rewrite without reading it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := goldenPath(name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatalf("update %s: %v", path, err)
		}
		t.Logf("updated %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update to create it, then review it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff lists the lines of want and got that differ, line by line.
// The outputs are name=value lines in a fixed order, so a positional
// comparison says enough.
func lineDiff(want, got string) string {
	w := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	g := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			continue
		}
		if i < len(w) {
			fmt.Fprintf(&b, "line %d: -want %s\n", i+1, wl)
		}
		if i < len(g) {
			fmt.Fprintf(&b, "line %d: +got  %s\n", i+1, gl)
		}
	}
	return b.String()
}
