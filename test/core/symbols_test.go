package core_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The library exports exactly the calls interposed.tsv lists.
func TestExportedSymbols(t *testing.T) {
	needSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	nm := bounded(exec.CommandContext(ctx, "nm", "-D", "--defined-only", libPath))
	res := runProgram(t, ctx, nm, "nm -D --defined-only "+libPath, nil)
	if res.Code != 0 {
		t.Fatalf("nm -D --defined-only %s:\n%s", libPath, res)
	}
	var exported []string
	sc := bufio.NewScanner(strings.NewReader(res.Stdout))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		name, _, _ := strings.Cut(f[2], "@")
		if !slices.Contains(exported, name) {
			exported = append(exported, name)
		}
	}

	tsv, err := os.ReadFile(filepath.Join(repoRoot, "vresource", "preload", "interposed.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for i, line := range strings.Split(string(tsv), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "\t")
		if name == "name" { // the header row
			continue
		}
		if slices.Contains(listed, name) {
			t.Errorf("interposed.tsv line %d: %s listed twice", i+1, name)
		}
		listed = append(listed, name)
	}

	for _, name := range exported {
		if !slices.Contains(listed, name) {
			t.Errorf("libvrid.so exports %s, which interposed.tsv does not list", name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(exported, name) {
			t.Errorf("interposed.tsv lists %s, which libvrid.so does not export", name)
		}
	}
	if len(listed) == 0 {
		t.Error("interposed.tsv lists nothing")
	}
}
