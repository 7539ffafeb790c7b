package vresource

import (
	"bytes"
	"cmp"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Every worker of TestConcurrentWriters binds its own system ids, then
// removes every other one.
const (
	perWorker = 1000
	stableIDs = 10 // bound before the workers start, looked up all along
)

func workerSys(w, i int) int32 { return int32(1_000_000 + w*10_000 + i) }

func workerScript(w int) string {
	var b strings.Builder
	for i := range perWorker {
		fmt.Fprintf(&b, "bind %d %d\n", Sem, workerSys(w, i))
	}
	for i := 1; i < perWorker; i += 2 {
		fmt.Fprintf(&b, "remove-sys %d %d\n", Sem, workerSys(w, i))
	}
	return b.String()
}

// TestConcurrentWriters has goroutines, Go processes and C processes bind
// and remove at once in one sequential table, while goroutines look up
// entries that stay.  Sequential ids make the outcome exact: every bind
// gets its own virtual id, and together they are 1..N.
func TestConcurrentWriters(t *testing.T) {
	tests := []struct {
		name                        string
		goroutines, goProcs, cProcs int
	}{
		{"goroutines", 8, 0, 0},
		{"go processes", 0, 4, 0},
		{"c processes and goroutines", 3, 0, 3},
		{"c and go processes", 0, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var driver string
			if tt.cProcs > 0 {
				driver = buildDriver(t)
			}
			tb := newTables(t, TableOptions{Sequential: true, Slots: map[ResourceType]uint32{Sem: 16384}})
			for sys := int32(1); sys <= stableIDs; sys++ {
				mustBind(t, tb, Sem, 100+sys) // virt sys
			}
			stopReaders := startReaders(t, tb, 4, stableIDs)

			workers := tt.goroutines + tt.goProcs + tt.cProcs
			outs := make([]string, workers)
			var wg sync.WaitGroup
			for w := range workers {
				var cmd *exec.Cmd
				switch {
				case w < tt.goroutines:
					wg.Go(func() { outs[w] = runScript(tb, workerScript(w)) })
					continue
				case w < tt.goroutines+tt.goProcs:
					cmd = helperCommand("tables", "VRID_TABLE="+tb.path)
				default:
					cmd = driverCommand(driver, tb.path)
				}
				cmd.Stdin = strings.NewReader(workerScript(w))
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					if err := cmd.Wait(); err != nil {
						t.Errorf("worker %d: %v\n%s", w, err, stderr.Bytes())
					}
					outs[w] = stdout.String()
				})
			}
			wg.Wait()
			stopReaders()
			checkWorkers(t, tb, outs)
		})
	}
}

// startReaders looks the stable entries up without pause until stopped:
// sem virtual ids 1..stable, bound to system ids 101...
func startReaders(t *testing.T, tb *Tables, n int, stable int32) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for range n {
		wg.Go(func() {
			for !done.Load() {
				for virt := int32(1); virt <= stable; virt++ {
					if sys, ok := tb.Lookup(Sem, virt); !ok || sys != 100+virt {
						t.Errorf("lookup %d during writes: %d, %v", virt, sys, ok)
						return
					}
					if v, ok := tb.Reverse(Sem, 100+virt); !ok || v != virt {
						t.Errorf("reverse %d during writes: %d, %v", 100+virt, v, ok)
						return
					}
				}
				lookups.Add(2 * int64(stable))
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
		t.Logf("%d lock-free lookups during the writes", lookups.Load())
	}
}

func checkWorkers(t *testing.T, tb *Tables, outs []string) {
	t.Helper()
	var want []Entry
	for virt := int32(1); virt <= stableIDs; virt++ {
		want = append(want, Entry{Sem, virt, 100 + virt})
	}
	seen := map[int32]bool{}
	for w, out := range outs {
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != perWorker+perWorker/2 {
			t.Fatalf("worker %d answered %d lines, want %d", w, len(lines), perWorker+perWorker/2)
		}
		for i, line := range lines[:perWorker] {
			virt, err := strconv.Atoi(line)
			if err != nil || seen[int32(virt)] {
				t.Fatalf("worker %d bind %d: %q (seen before: %v)", w, i, line, seen[int32(virt)])
			}
			seen[int32(virt)] = true
			if i%2 == 0 {
				want = append(want, Entry{Sem, int32(virt), workerSys(w, i)})
			}
		}
		for i, line := range lines[perWorker:] {
			if line != "ok" {
				t.Errorf("worker %d remove %d: %q", w, i, line)
			}
		}
	}
	total := int32(len(outs) * perWorker)
	for virt := int32(stableIDs + 1); virt <= stableIDs+total; virt++ {
		if !seen[virt] {
			t.Fatalf("virtual id %d never handed out: ids are not 1..%d", virt, stableIDs+total)
		}
	}
	slices.SortFunc(want, func(a, b Entry) int { return cmp.Compare(a.Virt, b.Virt) })
	if got := tb.Entries(Sem); !slices.Equal(got, want) {
		t.Errorf("entries: %d, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	if tb.Live(Sem) != uint32(len(want)) {
		t.Errorf("live %d, want %d", tb.Live(Sem), len(want))
	}
	for _, e := range want {
		if sys, ok := tb.Lookup(Sem, e.Virt); !ok || sys != e.Sys {
			t.Errorf("lookup %d: %d, %v; want %d", e.Virt, sys, ok, e.Sys)
		}
		if virt, ok := tb.Reverse(Sem, e.Sys); !ok || virt != e.Virt {
			t.Errorf("reverse %d: %d, %v; want %d", e.Sys, virt, ok, e.Virt)
		}
	}
}

func firstDiff(a, b []Entry) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// churnScript binds and at once removes n system ids of worker w on the
// sem table.  Removals leave removed slots behind, so that a small index
// fills with them and is rebuilt again and again.
func churnScript(w, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "bind %d %d\nremove-sys %d %d\n", Sem, workerSys(w, i), Sem, workerSys(w, i))
	}
	return b.String()
}

// readScript looks up the stable entries of startReaders n times over,
// both ways.
func readScript(stable int32, n int) (script, want string) {
	var s, w strings.Builder
	for range n {
		for virt := int32(1); virt <= stable; virt++ {
			fmt.Fprintf(&s, "lookup %d %d\nreverse %d %d\n", Sem, virt, Sem, 100+virt)
			fmt.Fprintf(&w, "%d\n%d\n", 100+virt, virt)
		}
	}
	return s.String(), w.String()
}

// TestLookupsDuringRebuilds churns a 16-slot index with Go and C writers,
// which rebuild it over and over, while Go and C readers look up the
// entries that stay, lock-free: a lookup that misses during a rebuild
// must look again rather than answer "absent".
func TestLookupsDuringRebuilds(t *testing.T) {
	driver := buildDriver(t)
	const stable, cycles = 4, 2000
	tb := newTables(t, TableOptions{Sequential: true, Slots: small()})
	for sys := int32(101); sys <= 100+stable; sys++ {
		mustBind(t, tb, Sem, sys) // virt 1..stable
	}
	stopReaders := startReaders(t, tb, 3, stable)
	stopListers := startListers(t, tb, 2, stable)

	// Writers 0 and 1 are C processes, 2 a Go process, 3 and 4 goroutines.
	writers := []*exec.Cmd{
		driverCommand(driver, tb.path),
		driverCommand(driver, tb.path),
		helperCommand("tables", "VRID_TABLE="+tb.path),
	}
	outs := make([]string, len(writers)+2)
	readC, wantC := readScript(stable, cycles)
	var readOut string
	run := func(cmd *exec.Cmd, script string, out *string) {
		cmd.Stdin = strings.NewReader(script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil {
			t.Errorf("%s: %v\n%s", cmd.Path, err, stderr.Bytes())
		}
		*out = string(got)
	}
	var wg sync.WaitGroup
	for w, cmd := range writers {
		wg.Go(func() { run(cmd, churnScript(w, cycles), &outs[w]) })
	}
	for w := len(writers); w < len(outs); w++ {
		wg.Go(func() { outs[w] = runScript(tb, churnScript(w, cycles)) })
	}
	wg.Go(func() { run(driverCommand(driver, tb.path), readC, &readOut) })
	wg.Wait()
	stopReaders()
	stopListers()

	if readOut != wantC {
		t.Errorf("C lookups during rebuilds:\n%s", lineDiff(wantC, readOut))
	}
	for w, out := range outs {
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 2*cycles {
			t.Fatalf("writer %d answered %d lines, want %d", w, len(lines), 2*cycles)
		}
		for i := 1; i < len(lines); i += 2 {
			if _, err := strconv.Atoi(lines[i-1]); err != nil || lines[i] != "ok" {
				t.Fatalf("writer %d cycle %d: %q, %q", w, i/2, lines[i-1], lines[i])
			}
		}
	}
	d := descOf(tb, Sem)
	if d.Rebuilds == 0 || d.Rebuilds%2 != 0 {
		t.Errorf("rebuilds %d, want some, and none running", d.Rebuilds)
	}
	t.Logf("%d rebuilds", d.Rebuilds/2)
	checkCounts(t, tb, Sem)
	want := []Entry{{Sem, 1, 101}, {Sem, 2, 102}, {Sem, 3, 103}, {Sem, 4, 104}}
	if got := tb.Entries(Sem); !slices.Equal(got, want) || tb.Live(Sem) != stable {
		t.Errorf("entries %v live %d, want %v", got, tb.Live(Sem), want)
	}
}

// startListers lists the sem entries without pause until stopped, and
// wants every stable entry (see startReaders) in each list, once.
func startListers(t *testing.T, tb *Tables, n int, stable int32) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	var lists atomic.Int64
	for range n {
		wg.Go(func() {
			for !done.Load() {
				seen := map[int32]int32{}
				for _, e := range tb.Entries(Sem) {
					if _, dup := seen[e.Virt]; dup {
						t.Errorf("virt %d listed twice", e.Virt)
						return
					}
					seen[e.Virt] = e.Sys
				}
				for virt := int32(1); virt <= stable; virt++ {
					if sys, ok := seen[virt]; !ok || sys != 100+virt {
						t.Errorf("list during writes: virt %d -> %d, %v", virt, sys, ok)
						return
					}
				}
				lists.Add(1)
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
		t.Logf("%d lock-free lists during the writes", lists.Load())
	}
}
