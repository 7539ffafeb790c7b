package vresource

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// repairBase is the table a writer dies in: sem entries virt i -> sys
// 1000+7i for i in 1..11 on 16-slot indexes, less virt 4 and 5, which
// leave removed slots in both indexes (checked), so that a rebuild moves
// entries.
func repairBase(t *testing.T, dir string) (path string, entries []Entry) {
	t.Helper()
	path = filepath.Join(dir, "base")
	tb, err := CreateTables(path, testAID, TableOptions{Name: "repair", Slots: small()})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for virt := int32(1); virt <= 11; virt++ {
		if err := tb.Insert(Sem, virt, 1000+7*virt); err != nil {
			t.Fatal(err)
		}
	}
	for _, virt := range []int32{4, 5} {
		if err := tb.RemoveVirt(Sem, virt); err != nil {
			t.Fatal(err)
		}
	}
	if d := descOf(tb, Sem); d.TombsByVirt == 0 || d.TombsBySys == 0 {
		t.Fatalf("removed slots %d in by_virt, %d in by_sys: want some in both, or a rebuild moves nothing",
			d.TombsByVirt, d.TombsBySys)
	}
	return path, tb.Entries(Sem)
}

// copyFile copies the table file from to a new file to.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dieIn runs a die command in a C driver process on path and wants the
// process killed by SIGKILL, having answered nothing, and the table
// marked as written.
func dieIn(t *testing.T, driver, path, die string) {
	t.Helper()
	cmd := driverCommand(driver, path)
	cmd.Stdin = strings.NewReader(die + "\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGKILL || len(out) > 0 {
		t.Fatalf("%s %q: %v, answered %q; want death by SIGKILL\n%s", cmd.Path, die, err, out, stderrOf(err))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := overlay(data).Dirty; d != uint32(Sem)+1 {
		t.Fatalf("the dead writer left dirty %d", d)
	}
}

// mendIn runs script on the table file at path through a process of the
// chain ("c", the driver) or through a Tables of this process ("go"), and
// returns the answers.
func mendIn(t *testing.T, side, driver, path, script string) string {
	t.Helper()
	if side == "c" {
		return runC(t, driver, path, script)
	}
	tb, err := OpenTables(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	return runScript(tb, script)
}

// checkWhole wants the table of rt whole: no write marked, no rebuild
// running, counts right, and each index holding exactly the pairs want,
// each found both ways.
func checkWhole(t *testing.T, tb *Tables, rt ResourceType, want []Entry) {
	t.Helper()
	if d := atomic.LoadUint32(&hdrOf(tb).Dirty); d != 0 {
		t.Errorf("dirty %d, want 0", d)
	}
	if r := atomic.LoadUint32(&descOf(tb, rt).Rebuilds); r%2 != 0 {
		t.Errorf("rebuilds %d: a rebuild still runs", r)
	}
	checkCounts(t, tb, rt)
	if got := tb.Entries(rt); !slices.Equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	for _, e := range want {
		if sys, ok := tb.Lookup(rt, e.Virt); !ok || sys != e.Sys {
			t.Errorf("lookup %d: %d, %v; want %d", e.Virt, sys, ok, e.Sys)
		}
		if virt, ok := tb.Reverse(rt, e.Sys); !ok || virt != e.Virt {
			t.Errorf("reverse %d: %d, %v; want %d", e.Sys, virt, ok, e.Virt)
		}
	}
}

func withEntries(base []Entry, extra ...Entry) []Entry {
	out := append(slices.Clone(base), extra...)
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Virt, b.Virt) })
	return out
}

// mendWhole has the next writer, a process of the chain or this process,
// bind sem 777 in a copy of the table file mess, and wants the table
// whole, with want and 777.
func mendWhole(t *testing.T, driver, mess string, want []Entry) {
	t.Helper()
	for _, side := range []string{"c", "go"} {
		path := filepath.Join(t.TempDir(), side+"-mends")
		copyFile(t, mess, path)
		if got := mendIn(t, side, driver, path, fmt.Sprintf("bind %d 777\n", Sem)); got != "777\n" {
			t.Errorf("%s bind after the death: %q, want 777", side, got)
		}
		tb, err := OpenTables(path)
		if err != nil {
			t.Fatal(err)
		}
		checkWhole(t, tb, Sem, withEntries(want, Entry{Sem, 777, 777}))
		tb.Close()
	}
}

// TestRepairDeadWriter kills a process of the chain inside a write, with
// the writer lock held, and wants whoever comes next, in the chain or on
// the host, writer or reader, to repair the table, or to leave it: a
// lookup that misses repairs only a rebuild it would wait on.
//
// The writers die halfway through an insert, a removal, and a rebuild
// between its two indexes.
func TestRepairDeadWriter(t *testing.T) {
	driver := buildDriver(t)
	const sem = int(Sem)
	menders := []struct {
		name, side, script string
		repairs            bool // for a death that leaves no rebuild running
		adds               []Entry
	}{
		{"chain writer", "c", fmt.Sprintf("bind %d 777\n", sem), true, []Entry{{Sem, 777, 777}}},
		{"host writer", "go", fmt.Sprintf("bind %d 777\n", sem), true, []Entry{{Sem, 777, 777}}},
		{"chain lock", "c", "lock\nunlock\n", true, nil},
		{"chain listing", "c", fmt.Sprintf("dump %d\n", sem), true, nil},
		// A miss waits on a running rebuild, and after SETTLE_SPINS looks
		// takes the lock; other misses take no lock and repair nothing.
		{"chain reader", "c", fmt.Sprintf("lookup %d 999\nreverse %d 1042\n", sem, sem), false, nil},
		{"host reader", "go", fmt.Sprintf("lookup %d 999\nreverse %d 1042\n", sem, sem), false, nil},
	}
	deaths := []struct {
		name, die  string
		rebuilding bool    // the death leaves a rebuild running
		whole      []Entry // beyond the base, once repaired
	}{
		// The insert is finished, the removal undone.
		{"inserting", fmt.Sprintf("die-inserting %d 500 1500", sem), false, []Entry{{Sem, 500, 1500}}},
		{"removing", fmt.Sprintf("die-removing %d 1042", sem), false, nil},
		{"rebuilding", fmt.Sprintf("die-rebuilding %d", sem), true, nil},
	}
	for _, death := range deaths {
		t.Run(death.name, func(t *testing.T) {
			base, baseEntries := repairBase(t, t.TempDir())
			dieIn(t, driver, base, death.die)
			for _, m := range menders {
				t.Run(m.name, func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "mess")
					copyFile(t, base, path)
					mendIn(t, m.side, driver, path, m.script)
					data, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					repaired := overlay(data).Dirty == 0
					if want := m.repairs || death.rebuilding; repaired != want {
						t.Fatalf("repaired: %v, want %v", repaired, want)
					}
					if !repaired {
						return
					}
					tb, err := OpenTables(path)
					if err != nil {
						t.Fatal(err)
					}
					defer tb.Close()
					checkWhole(t, tb, Sem, withEntries(baseEntries, append(death.whole, m.adds...)...))
				})
			}
		})
	}
}

// TestRepairDeadRebind kills vrid_rebind after each of its steps, and
// wants the next writer to repair the table: the old pair before by_virt
// is rewritten, the new one after.
func TestRepairDeadRebind(t *testing.T) {
	driver := buildDriver(t)
	const virt, oldSys, newSys = 6, 1042, 5042
	tests := []struct {
		name  string
		steps int
		sys   int32 // the system id of virt, once repaired
	}{
		{"old pair gone from by_sys", 1, oldSys},
		{"by_virt rewritten", 2, newSys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mess, baseEntries := repairBase(t, t.TempDir())
			dieIn(t, driver, mess, fmt.Sprintf("die-rebinding %d %d %d %d", Sem, virt, newSys, tt.steps))
			want := slices.DeleteFunc(slices.Clone(baseEntries), func(e Entry) bool { return e.Virt == virt })
			mendWhole(t, driver, mess, append(want, Entry{Sem, virt, tt.sys}))
		})
	}
}

// TestReaderSettlesDeadRebuild leaves a rebuild running with no writer,
// and wants lock-free lookups that miss, and listings, on the host to end
// anyway: they take the writer lock, which repairs the table.
func TestReaderSettlesDeadRebuild(t *testing.T) {
	driver := buildDriver(t)
	tests := []struct {
		name string
		read func(tb *Tables, base []Entry) bool // true if the answer is right
	}{
		{"lookup", func(tb *Tables, _ []Entry) bool { _, ok := tb.Lookup(Sem, 999); return !ok }},
		{"reverse", func(tb *Tables, _ []Entry) bool { _, ok := tb.Reverse(Sem, 999); return !ok }},
		{"entries", func(tb *Tables, base []Entry) bool { return slices.Equal(tb.Entries(Sem), base) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, baseEntries := repairBase(t, t.TempDir())
			dieIn(t, driver, base, fmt.Sprintf("die-rebuilding %d", Sem))
			tb, err := OpenTables(base)
			if err != nil {
				t.Fatal(err)
			}
			defer tb.Close()
			if !tt.read(tb, baseEntries) {
				t.Error("wrong answer")
			}
			checkWhole(t, tb, Sem, baseEntries)
		})
	}
}

// TestRepairDeadInsideRebuild kills a rebuild of by_virt after each of its
// moves, and wants the next writer to make the table whole: the
// half-rebuilt index has holes in its runs, so it is refilled from by_sys
// rather than rebuilt.
func TestRepairDeadInsideRebuild(t *testing.T) {
	driver := buildDriver(t)
	for cut := 0; cut <= 9; cut++ {
		t.Run(fmt.Sprintf("after %d moves", cut), func(t *testing.T) {
			mess, baseEntries := repairBase(t, t.TempDir())
			dieIn(t, driver, mess, fmt.Sprintf("die-rebuild-cut %d %d", Sem, cut))
			mendWhole(t, driver, mess, baseEntries)
		})
	}
}

// home is where key k's run starts in an index of slots slots.
func home(slots uint32, k uint32) uint32 {
	return (k * HashMul) >> (32 - uint32(bits.TrailingZeros32(slots)))
}

func makeSlot(key, val int32) uint64 {
	return uint64(uint32(key)^KeyBias)<<32 | uint64(uint32(val))
}

// TestRepairUnsoundIndex is a by_virt left by a rebuild killed just after
// it emptied the removed slots 0, 13 and 14: 402 and 460 sit behind the
// hole at slot 0.  Rebuilding that index as it stands would lose or
// double them; the repair must refill it from by_sys instead.
func TestRepairUnsoundIndex(t *testing.T) {
	driver := buildDriver(t)
	mess := filepath.Join(t.TempDir(), "mess")
	tb, err := CreateTables(mess, testAID, TableOptions{Name: "unsound", Slots: small()})
	if err != nil {
		t.Fatal(err)
	}
	layout := map[uint32]int32{1: 399, 2: 213, 3: 402, 7: 199, 8: 34, 10: 442, 11: 78, 12: 316, 15: 460}
	var want []Entry
	for _, virt := range layout {
		if err := tb.Insert(Sem, virt, virt+10000); err != nil {
			t.Fatal(err)
		}
		want = append(want, Entry{Sem, virt, virt + 10000})
	}
	if h402, h460 := home(16, uint32(402)^KeyBias), home(16, uint32(460)^KeyBias); h402 != 15 || h460 != 12 {
		t.Fatalf("homes of 402 and 460 are %d and %d: the layout below no longer shows the hole", h402, h460)
	}
	// As a writer that died in the rebuild leaves it.
	byVirt, _ := slotsOf(tb, Sem)
	beginRebuild(tb, Sem)
	atomic.StoreUint32(&hdrOf(tb).Dirty, uint32(Sem)+1)
	for i := range byVirt {
		atomic.StoreUint64(&byVirt[i], SlotEmpty)
	}
	for slot, virt := range layout {
		atomic.StoreUint64(&byVirt[slot], makeSlot(virt, virt+10000))
	}
	tb.Close()
	mendWhole(t, driver, mess, withEntries(want))
}
