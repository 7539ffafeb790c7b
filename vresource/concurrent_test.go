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
	"time"
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
			stopReaders := startReaders(t, tb, 4)

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
					cmd = exec.Command(driver)
					cmd.Env = []string{"VRID_TABLE=" + tb.path}
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

// startReaders looks the stable entries up without pause until stopped.
func startReaders(t *testing.T, tb *Tables, n int) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for range n {
		wg.Go(func() {
			for !done.Load() {
				for virt := int32(1); virt <= stableIDs; virt++ {
					if sys, ok := tb.Lookup(Sem, virt); !ok || sys != 100+virt {
						t.Errorf("lookup %d during writes: %d, %v", virt, sys, ok)
						return
					}
					if v, ok := tb.Reverse(Sem, 100+virt); !ok || v != virt {
						t.Errorf("reverse %d during writes: %d, %v", 100+virt, v, ok)
						return
					}
				}
				lookups.Add(2 * stableIDs)
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

func TestWriterLockOfDeadThreadIsTaken(t *testing.T) {
	tb := newTables(t, TableOptions{})
	tb.hdr.Writer = deadPid // a writer killed while it held the lock
	if _, err := tb.Bind(PID, 5); err != nil {
		t.Fatal(err)
	}
	if tb.hdr.Writer != 0 {
		t.Errorf("lock word %d after the bind, want 0", tb.hdr.Writer)
	}
}

func TestWriterLockOfLiveThreadIsWaitedFor(t *testing.T) {
	tb := newTables(t, TableOptions{})
	atomic.StoreUint32(&tb.hdr.Writer, 1) // init: alive, and not us
	bound := make(chan error)
	go func() {
		_, err := tb.Bind(PID, 5)
		bound <- err
	}()
	select {
	case err := <-bound:
		t.Fatalf("bind went past a held lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	atomic.StoreUint32(&tb.hdr.Writer, 0)
	if err := <-bound; err != nil {
		t.Fatal(err)
	}
}
