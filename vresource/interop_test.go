package vresource

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runC runs a script through the C driver on the table file at path.
func runC(t testing.TB, driver, path, script string) string {
	t.Helper()
	cmd := exec.Command(driver)
	cmd.Env = append(os.Environ(), "VRID_TABLE="+path)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("C driver: %v\n%s", err, stderrOf(err))
	}
	return string(out)
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

func buildDriver(t testing.TB) string {
	return buildC(t, "interop", "testdata/interop.c")
}

// randomScript mixes binds, removals and lookups of a few ids on the
// pid, sem and ipckey tables: enough ids to fill 16-slot indexes, so that
// collisions, tombstones, fresh ids, full tables and (for pids, which
// are all dead) collection happen.
func randomScript(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	pick := func(base, spread int) int { return base + r.IntN(spread) }
	var b strings.Builder
	for range n {
		switch op := r.IntN(100); {
		case op < 40:
			if r.IntN(2) == 0 {
				fmt.Fprintf(&b, "bind 0 %d\n", pick(deadPid, 30))
			} else {
				fmt.Fprintf(&b, "bind 1 %d\n", pick(0, 30))
			}
		case op < 55:
			fmt.Fprintf(&b, "remove-sys %d %d\n", 1-r.IntN(2), pick(0, 30)+deadPid*(r.IntN(2)))
		case op < 65:
			fmt.Fprintf(&b, "remove-virt 0 %d\n", pick(PIDFreshBase, 20))
		case op < 70:
			fmt.Fprintf(&b, "remove-virt 1 %d\n", pick(0, 30))
		case op < 80:
			fmt.Fprintf(&b, "bindkey %d %d\n", pick(-5, 25), r.IntN(3))
		case op < 85:
			fmt.Fprintf(&b, "remove-virt 4 %d\n", pick(-5, 25))
		case op < 95:
			fmt.Fprintf(&b, "lookup %d %d\n", r.IntN(2), pick(0, 30))
		default:
			fmt.Fprintf(&b, "reverse 0 %d\n", pick(deadPid, 30))
		}
	}
	for _, rt := range []int{0, 1, 4} {
		fmt.Fprintf(&b, "live %d\ndump %d\n", rt, rt)
	}
	return b.String()
}

// TestInteropSameBytes runs one random script on a Go-written file
// through Go and on an identical file through table.c, and wants the same
// answers and then the same bytes: the two sides run one algorithm.
func TestInteropSameBytes(t *testing.T) {
	driver := buildDriver(t)
	tests := []struct {
		name       string
		sequential bool
		seed       uint64
	}{
		{"sequential", true, 1},
		{"system ids kept", false, 2},
		{"system ids kept, other seed", false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := TableOptions{Name: "same", Slots: small(), Sequential: tt.sequential}
			dir := t.TempDir()
			goSide, err := CreateTables(filepath.Join(dir, "go"), 9, opt)
			if err != nil {
				t.Fatal(err)
			}
			defer goSide.Close()
			cSide, err := CreateTables(filepath.Join(dir, "c"), 9, opt)
			if err != nil {
				t.Fatal(err)
			}
			cSide.Close()

			script := randomScript(tt.seed, 4000)
			goOut, cOut := runScript(goSide, script), runC(t, driver, filepath.Join(dir, "c"), script)
			if goOut != cOut {
				t.Fatalf("answers differ:\n%s", lineDiff(cOut, goOut))
			}
			for _, word := range []string{"full", "absent", "created"} {
				if !strings.Contains(goOut, word) {
					t.Errorf("the script never got %q: it tests less than it should", word)
				}
			}
			goBytes, _ := os.ReadFile(filepath.Join(dir, "go"))
			cBytes, _ := os.ReadFile(filepath.Join(dir, "c"))
			if string(goBytes) != string(cBytes) {
				t.Errorf("files differ:\n%s", lineDiff(hexdump(cBytes), hexdump(goBytes)))
			}
		})
	}
}

// TestInteropTakeTurns lets Go and C write one file in turn, each reading
// what the other wrote.
func TestInteropTakeTurns(t *testing.T) {
	driver := buildDriver(t)
	tb := newTables(t, TableOptions{Sequential: true})
	steps := []struct {
		side string // "go" or "c"
		cmd  string
		want string
	}{
		{"go", "bind 0 4242", "1000"},
		{"c", "bind 0 4243", "1001"},
		{"go", "bind 0 4244", "1002"},
		{"c", "lookup 0 1000", "4242"},
		{"go", "lookup 0 1001", "4243"},
		{"c", "reverse 0 4244", "1002"},
		{"c", "remove-sys 0 4242", "ok"},
		{"go", "lookup 0 1000", "absent"},
		{"go", "remove-virt 0 1001", "ok"},
		{"c", "reverse 0 4243", "absent"},
		{"c", "live 0", "1"},
		{"go", "live 0", "1"},
		{"c", "bind 2 77", "1"},
		{"go", "bind 2 78", "2"},
		{"c", "bindkey 4660 0", "-731093342 created"},
		{"go", "bindkey 4660 0", "-731093342 found"},
		{"go", "bindkey -1 0", "1898619810 created"},
		{"c", "reverse 4 1898619810", "-1"},
	}
	for i, s := range steps {
		var got string
		if s.side == "go" {
			got = runLine(tb, s.cmd)
		} else {
			got = strings.TrimSuffix(runC(t, driver, tb.path, s.cmd+"\n"), "\n")
		}
		if got != s.want {
			t.Errorf("step %d, %s %q: %q, want %q", i, s.side, s.cmd, got, s.want)
		}
	}
}

// TestInteropDeriveKey compares derive_key and deriveKey over AIDs, keys
// and attempts.
func TestInteropDeriveKey(t *testing.T) {
	driver := buildDriver(t)
	tb := newTables(t, TableOptions{})
	var script strings.Builder
	for _, aid := range []uint64{1, 2, 7, 1 << 40, 1<<64 - 1} {
		for _, vkey := range []int32{0, 1, -1, 0x1234, 1 << 30, -1 << 31} {
			for _, attempt := range []uint32{0, 1, 7} {
				fmt.Fprintf(&script, "derive %d %d %d\n", int64(aid), vkey, attempt)
			}
		}
	}
	goOut, cOut := runScript(tb, script.String()), runC(t, driver, tb.path, script.String())
	if goOut != cOut {
		t.Errorf("keys differ:\n%s", lineDiff(cOut, goOut))
	}
}
