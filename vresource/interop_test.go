package vresource

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// driverCommand runs the C driver on the table file at path.
func driverCommand(driver, path string) *exec.Cmd {
	cmd := exec.Command(driver)
	cmd.Env = append(os.Environ(), "VRID_TABLE="+path)
	return cmd
}

// runC runs a script through the C driver on the table file at path.
func runC(t testing.TB, driver, path, script string) string {
	t.Helper()
	cmd := driverCommand(driver, path)
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
	return buildC(t, "interop", "testdata/interop.c", "preload/lock.c", "preload/record.c")
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

// rebuildingScript binds and removes ids at random on the pid, sem and
// ipckey tables, keeping from 4 to 8 entries in each 16-slot table: never
// full, but with removed slots piling up, so that every table is rebuilt
// again and again.  Lookups and counts along the way compare the sides
// between rebuilds too.
func rebuildingScript(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 2))
	types := []struct {
		rt         ResourceType
		base       int
		bind, drop string // commands with %d for the id
	}{
		{PID, deadPid, "bind 0 %d", "remove-sys 0 %d"},
		{Sem, 0, "bind 1 %d", "remove-sys 1 %d"},
		{IPCKey, -500, "bindkey %d 0", "remove-virt 4 %d"},
	}
	bound := make([][]int, len(types))
	var b strings.Builder
	for i := range n {
		k := r.IntN(len(types))
		ty, ids := types[k], bound[k]
		if len(ids) < 4 || len(ids) < 8 && r.IntN(2) == 0 {
			id := ty.base + r.IntN(1000)
			fmt.Fprintf(&b, ty.bind+"\n", id)
			if !slices.Contains(ids, id) {
				bound[k] = append(ids, id)
			}
		} else {
			j := r.IntN(len(ids))
			fmt.Fprintf(&b, ty.drop+"\n", ids[j])
			bound[k] = slices.Delete(ids, j, j+1)
		}
		if i%50 == 0 {
			fmt.Fprintf(&b, "counts %d\nlookup 1 %d\nreverse 0 %d\n", ty.rt, r.IntN(1000), deadPid+r.IntN(1000))
		}
	}
	for _, ty := range types {
		fmt.Fprintf(&b, "counts %d\ndump %d\n", ty.rt, ty.rt)
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
		script     string
		answers    []string // words the answers must hold somewhere
		rebuilt    []ResourceType
	}{
		{"sequential", true, randomScript(1, 4000), []string{"full", "absent", "created"}, nil},
		{"system ids kept", false, randomScript(2, 4000), []string{"full", "absent", "created"}, nil},
		{"system ids kept, other seed", false, randomScript(3, 4000), []string{"full", "absent", "created"}, nil},
		{"rebuilds", false, rebuildingScript(4, 6000), []string{"created", "ok"}, []ResourceType{PID, Sem, IPCKey}},
		{"rebuilds, sequential", true, rebuildingScript(5, 6000), []string{"created", "ok"}, []ResourceType{PID, Sem, IPCKey}},
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

			goOut, cOut := runScript(goSide, tt.script), runC(t, driver, filepath.Join(dir, "c"), tt.script)
			if goOut != cOut {
				t.Fatalf("answers differ:\n%s", lineDiff(cOut, goOut))
			}
			for _, word := range tt.answers {
				if !strings.Contains(goOut, word) {
					t.Errorf("the script never got %q: it tests less than it should", word)
				}
			}
			for rt := range ResourceType(NumResourceTypes) {
				checkCounts(t, goSide, rt)
				if n := goSide.idx[rt].desc.Rebuilds; n > 0 {
					t.Logf("%s: %d rebuilds", rt, n/2)
				}
			}
			for _, rt := range tt.rebuilt {
				if goSide.idx[rt].desc.Rebuilds == 0 {
					t.Errorf("the script never rebuilt the %s table: it tests less than it should", rt)
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
		// INT32_MIN can't be a slot key: both sides refuse it alike.
		{"c", "bind 1 -2147483648", "invalid"},
		{"go", "bind 1 -2147483648", "invalid"},
		{"c", "bindkey -2147483648 0", "invalid"},
		{"go", "bindkey -2147483648 0", "invalid"},
		{"c", "remove-sys 1 -2147483648", "absent"},
		{"go", "remove-sys 1 -2147483648", "absent"},
		{"c", "remove-virt 4 -2147483648", "absent"},
		{"go", "remove-virt 4 -2147483648", "absent"},
		{"c", "lookup 4 -2147483648", "absent"},
		{"go", "reverse 1 -2147483648", "absent"},
		{"c", "live 1", "0"},
		{"c", "counts 0", "1 0 0 0"},
		{"go", "counts 0", "1 0 0 0"},
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
