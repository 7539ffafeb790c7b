package vresource

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestTablesGolden builds a small table file with fixed operations and
// compares its bytes with testdata/tables.golden: a change to the layout
// or to where entries land shows up here as a diff.
func TestTablesGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tables")
	tb, err := CreateTables(path, 42, TableOptions{Name: "golden", Slots: small()})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	steps := []func() error{
		func() error { _, err := tb.Bind(PID, 100); return err },
		func() error { _, err := tb.Bind(PID, 4242); return err },
		func() error { return tb.Insert(PID, 1, 9000) },
		func() error { _, err := tb.Bind(PID, 1); return err },   // virt 1 is taken: fresh 1000
		func() error { _, err := tb.Bind(PID, 101); return err }, // then removed, leaving slots behind
		func() error { _, err := tb.Bind(PID, 102); return err },
		func() error { return tb.RemoveSys(PID, 101) },
		func() error { _, err := tb.Bind(PID, 207); return err }, // 207 and 215 share a home slot,
		func() error { _, err := tb.Bind(PID, 215); return err },
		func() error { return tb.RemoveSys(PID, 207) }, // so removing 207 leaves a tombstone
		func() error { _, err := tb.Bind(Sem, 0); return err },
		func() error { _, err := tb.Bind(Sem, 32768); return err },
		func() error { _, err := tb.Bind(Shm, 5); return err },
		func() error { return tb.RemoveVirt(Shm, 5) },
		func() error { return tb.Insert(Msg, 3, 3) },
		func() error { return tb.Rebind(Msg, 3, 65539) },
		func() error { _, _, err := tb.BindKey(0x1234); return err },
		func() error { _, _, err := tb.BindKey(-1); return err },
		func() error { tb.BumpGeneration(); return nil },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "tables.golden", "# table file of AID 42 \"golden\", 16 slots per index: the non-zero 16-byte lines\n"+hexdump(data))
}

// rebuildScript keeps a queue of msg entries on 16-slot indexes, removing
// the oldest before binding a new one.  Removals leave removed slots
// behind, until live entries and removed slots reach 3/4 of an index and
// a bind rebuilds both indexes.
func rebuildScript() string {
	var b strings.Builder
	for i := range 16 {
		if i >= 8 {
			fmt.Fprintf(&b, "remove-sys %d %d\n", Msg, 1000+i-8)
		}
		fmt.Fprintf(&b, "bind %d %d\n", Msg, 1000+i)
		fmt.Fprintf(&b, "counts %d\n", Msg)
	}
	fmt.Fprintf(&b, "dump %d\n", Msg)
	return b.String()
}

// TestRebuildGolden runs rebuildScript through Go and through table.c and
// compares both files with testdata/rebuild.golden: where a rebuild puts
// entries is part of the contract.
func TestRebuildGolden(t *testing.T) {
	driver := buildDriver(t)
	dir := t.TempDir()
	opt := TableOptions{Name: "rebuild", Slots: small()}
	goSide, err := CreateTables(filepath.Join(dir, "go"), 42, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer goSide.Close()
	cSide, err := CreateTables(filepath.Join(dir, "c"), 42, opt)
	if err != nil {
		t.Fatal(err)
	}
	cSide.Close()

	script := rebuildScript()
	goOut, cOut := runScript(goSide, script), runC(t, driver, filepath.Join(dir, "c"), script)
	if goOut != cOut {
		t.Fatalf("answers differ:\n%s", lineDiff(cOut, goOut))
	}
	if d := goSide.idx[Msg].desc; d.Rebuilds != 2 {
		t.Errorf("rebuilds %d, want 2: one rebuild", d.Rebuilds)
	}
	checkCounts(t, goSide, Msg)
	const head = "# table file of AID 42 \"rebuild\" after rebuildScript: the non-zero 16-byte lines\n"
	goBytes, _ := os.ReadFile(filepath.Join(dir, "go"))
	cBytes, _ := os.ReadFile(filepath.Join(dir, "c"))
	if string(goBytes) != string(cBytes) {
		t.Errorf("files differ:\n%s", lineDiff(hexdump(cBytes), hexdump(goBytes)))
	}
	checkGolden(t, "rebuild.golden", head+hexdump(goBytes))
}

// checkGolden compares got with testdata/name, or with -update writes it
// there.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("table file differs from %s (run with -update if the change is meant):\n%s", golden, lineDiff(string(want), got))
	}
}

// hexdump prints the 16-byte lines of data that are not all zero.
func hexdump(data []byte) string {
	var b strings.Builder
	zero := make([]byte, 16)
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		if bytes.Equal(line, zero[:len(line)]) {
			continue
		}
		fmt.Fprintf(&b, "%06x  % x  % x\n", off, line[:8], line[8:])
	}
	return b.String()
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "-%s\n+%s\n", wl, gl)
		}
	}
	return b.String()
}
