package vresource

import (
	"cmp"
	"errors"
	"fmt"
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
	if d := tb.idx[Sem].desc; d.TombsByVirt == 0 || d.TombsBySys == 0 {
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

// dieIn runs a die command in a driver process and wants the process
// killed by SIGKILL, having answered nothing.
func dieIn(t *testing.T, cmd *exec.Cmd, die string) {
	t.Helper()
	cmd.Stdin = strings.NewReader(die + "\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != unix.SIGKILL || len(out) > 0 {
		t.Fatalf("%s %q: %v, answered %q; want death by SIGKILL\n%s", cmd.Path, die, err, out, stderrOf(err))
	}
}

// mendIn runs script on the table file at path through the C driver
// ("c") or through a Tables of this process ("go"), and returns the
// answers.
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
	if d := atomic.LoadUint32(&tb.hdr.Dirty); d != 0 {
		t.Errorf("dirty %d, want 0", d)
	}
	if r := atomic.LoadUint32(&tb.idx[rt].desc.Rebuilds); r%2 != 0 {
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

// TestRepairSameBytes kills a C writer and a Go writer at the same step
// of a write, with the writer lock held, and wants them to leave the same
// bytes.  Then C and Go processes that come next, writers and readers,
// each repair either mess, or leave it, alike: the same answers, the same
// bytes, and a whole table.
//
// The writers die halfway through an insert, a removal, and a rebuild
// between its two indexes.  A rebuild cut inside rebuild_index is not
// among them, because repair_type_locked of table.c, which Go mirrors,
// can't mend it: once removed slots are emptied, runs have holes, the
// first empty slot no longer bounds a run, and the repair's own
// rebuild_index can leave an entry its probes don't reach, of which
// fill_from then puts in a second copy.
func TestRepairSameBytes(t *testing.T) {
	driver := buildDriver(t)
	const sem = int(Sem)
	menders := []struct {
		name, script string
		repairs      bool // for a death that leaves no rebuild running
		adds         []Entry
	}{
		{"writer", fmt.Sprintf("bind %d 777\ncounts %d\n", sem, sem), true, []Entry{{Sem, 777, 777}}},
		{"lock", "lock\nunlock\n", true, nil},
		{"listing", fmt.Sprintf("dump %d\n", sem), true, nil},
		// A miss waits on a running rebuild, and after settleSpins looks
		// takes the lock; other misses take no lock and repair nothing.
		{"reader", fmt.Sprintf("lookup %d 999\nreverse %d 1042\n", sem, sem), false, nil},
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
			dir := t.TempDir()
			base, baseEntries := repairBase(t, dir)
			mess := map[string]string{}
			for _, maker := range []string{"c", "go"} {
				mess[maker] = filepath.Join(dir, maker+"-mess")
				copyFile(t, base, mess[maker])
				cmd := driverCommand(driver, mess[maker])
				if maker == "go" {
					cmd = helperCommand("tables", "VRID_TABLE="+mess[maker])
				}
				dieIn(t, cmd, death.die)
			}
			cMess, _ := os.ReadFile(mess["c"])
			goMess, _ := os.ReadFile(mess["go"])
			if string(cMess) != string(goMess) {
				t.Fatalf("dead writers left different files:\n%s", lineDiff(hexdump(cMess), hexdump(goMess)))
			}
			h := overlay(goMess)
			if h.Dirty != uint32(Sem)+1 || (h.Tables[Sem].Rebuilds%2 == 1) != death.rebuilding {
				t.Fatalf("the dead writer left dirty %d, rebuilds %d", h.Dirty, h.Tables[Sem].Rebuilds)
			}

			for _, m := range menders {
				t.Run(m.name, func(t *testing.T) {
					var answers, files []string
					var last string
					for _, maker := range []string{"c", "go"} {
						for _, side := range []string{"c", "go"} {
							path := filepath.Join(t.TempDir(), maker+"-mess-"+side+"-mends")
							copyFile(t, mess[maker], path)
							answers = append(answers, mendIn(t, side, driver, path, m.script))
							data, _ := os.ReadFile(path)
							files = append(files, string(data))
							last = path
						}
					}
					for i := 1; i < len(files); i++ {
						if answers[i] != answers[0] {
							t.Errorf("answers differ:\n%s", lineDiff(answers[0], answers[i]))
						}
						if files[i] != files[0] {
							t.Errorf("files differ:\n%s", lineDiff(hexdump([]byte(files[0])), hexdump([]byte(files[i]))))
						}
					}
					repaired := overlay([]byte(files[0])).Dirty == 0
					if want := m.repairs || death.rebuilding; repaired != want {
						t.Fatalf("repaired: %v, want %v", repaired, want)
					}
					if !repaired {
						return
					}
					tb, err := OpenTables(last)
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

// dieInProcess stands for a writer of this process that died inside a
// write: under the lock and with the table of rt marked, it runs steps,
// then lets the lock go as the kernel does for a dead holder, leaving the
// mark.
func dieInProcess(t *testing.T, tb *Tables, rt ResourceType, steps func(ix *index)) {
	t.Helper()
	if err := tb.lockWriter(); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint32(&tb.hdr.Dirty, uint32(rt)+1)
	steps(&tb.idx[rt])
	tb.unlockWriter()
}

// mendBothSides lets a C writer and a Go writer each bind sem 777 in a
// copy of the table file mess, wants the same answers and bytes from
// both, and opens the copy Go mended.
func mendBothSides(t *testing.T, driver, dir, mess string) *Tables {
	t.Helper()
	var files, answers []string
	script := fmt.Sprintf("bind %d 777\n", Sem)
	for _, side := range []string{"c", "go"} {
		path := filepath.Join(dir, side+"-mends")
		copyFile(t, mess, path)
		answers = append(answers, mendIn(t, side, driver, path, script))
		data, _ := os.ReadFile(path)
		files = append(files, string(data))
	}
	if answers[0] != answers[1] {
		t.Errorf("answers differ:\n%s", lineDiff(answers[0], answers[1]))
	}
	if files[0] != files[1] {
		t.Errorf("files differ:\n%s", lineDiff(hexdump([]byte(files[0])), hexdump([]byte(files[1]))))
	}
	tb, err := OpenTables(filepath.Join(dir, "go-mends"))
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// TestRepairDeadRebind kills Rebind, which table.c lacks, after each of
// its steps, and wants a C writer and a Go writer to repair the table to
// the same bytes: the old pair before by_virt is rewritten, the new one
// after.
func TestRepairDeadRebind(t *testing.T) {
	driver := buildDriver(t)
	const virt, oldSys, newSys = 6, 1042, 5042
	tests := []struct {
		name  string
		steps func(ix *index) // Rebind's, up to where it dies
		sys   int32           // the system id of virt, once repaired
	}{
		{"old pair gone from by_sys", func(ix *index) {
			ix.delLocked(ix.bySys, &ix.desc.TombsBySys, oldSys)
		}, oldSys},
		{"by_virt rewritten", func(ix *index) {
			ix.delLocked(ix.bySys, &ix.desc.TombsBySys, oldSys)
			i, _, _ := ix.probe(ix.byVirt, enc(virt))
			atomic.StoreUint64(&ix.byVirt[i], makeSlot(enc(virt), newSys))
		}, newSys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mess, baseEntries := repairBase(t, dir)
			tb, err := OpenTables(mess)
			if err != nil {
				t.Fatal(err)
			}
			dieInProcess(t, tb, Sem, tt.steps)
			tb.Close()

			tb = mendBothSides(t, driver, dir, mess)
			defer tb.Close()
			want := slices.DeleteFunc(slices.Clone(baseEntries), func(e Entry) bool { return e.Virt == virt })
			checkWhole(t, tb, Sem, withEntries(want, Entry{Sem, virt, tt.sys}, Entry{Sem, 777, 777}))
		})
	}
}

// TestReaderSettlesDeadRebuild leaves a rebuild running with no writer,
// and wants lock-free lookups that miss, and listings, to end anyway: they
// take the writer lock, which repairs the table.
func TestReaderSettlesDeadRebuild(t *testing.T) {
	dead := func(ix *index) {
		ix.beginRebuild()
		ix.rebuildIndexLocked(ix.byVirt, &ix.desc.TombsByVirt)
	}
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
			tb, err := OpenTables(base)
			if err != nil {
				t.Fatal(err)
			}
			defer tb.Close()
			dieInProcess(t, tb, Sem, dead)
			if !tt.read(tb, baseEntries) {
				t.Error("wrong answer")
			}
			checkWhole(t, tb, Sem, baseEntries)
		})
	}
}

// rebuildCut runs rebuild_index on one index up to its cut-th move, where
// a writer killed inside it would leave the index: holes where removed
// slots were, and an entry emptied but not yet put back.
func rebuildCut(ix *index, slots []uint64, cut int) {
	start := uint32(0)
	for start < ix.mask && atomic.LoadUint64(&slots[start]) != SlotEmpty {
		start++
	}
	for i := range slots {
		if atomic.LoadUint64(&slots[i]) == SlotTomb {
			atomic.StoreUint64(&slots[i], SlotEmpty)
		}
	}
	var unused uint32
	moves := 0
	for n := uint32(1); n <= ix.mask; n++ {
		i := (start + n) & ix.mask
		s := atomic.LoadUint64(&slots[i])
		if s == SlotEmpty {
			continue
		}
		atomic.StoreUint64(&slots[i], SlotEmpty)
		if moves == cut {
			return // died with s in flight
		}
		moves++
		ix.putLocked(slots, &unused, slotKey(s), slotVal(s))
	}
}

// TestRepairDeadInsideRebuild kills a rebuild of by_virt after each of its
// moves, and wants C and Go writers to make the table whole, to the same
// bytes: the half-rebuilt index has holes in its runs, so it is refilled
// from by_sys rather than rebuilt.
func TestRepairDeadInsideRebuild(t *testing.T) {
	driver := buildDriver(t)
	for cut := 0; cut <= 9; cut++ {
		t.Run(fmt.Sprintf("after %d moves", cut), func(t *testing.T) {
			dir := t.TempDir()
			mess, baseEntries := repairBase(t, dir)
			tb, err := OpenTables(mess)
			if err != nil {
				t.Fatal(err)
			}
			dieInProcess(t, tb, Sem, func(ix *index) {
				ix.beginRebuild()
				rebuildCut(ix, ix.byVirt, cut)
			})
			tb.Close()

			tb = mendBothSides(t, driver, dir, mess)
			defer tb.Close()
			checkWhole(t, tb, Sem, withEntries(baseEntries, Entry{Sem, 777, 777}))
		})
	}
}

// TestRepairUnsoundIndex is a by_virt left by a rebuild killed just after
// it emptied the removed slots 0, 13 and 14: 402 and 460 sit behind the
// hole at slot 0.  Rebuilding that index as it stands would lose or
// double them; the repair must refill it from by_sys instead, on both
// sides alike.
func TestRepairUnsoundIndex(t *testing.T) {
	driver := buildDriver(t)
	dir := t.TempDir()
	mess := filepath.Join(dir, "mess")
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
	ix := &tb.idx[Sem]
	if ix.home(enc(402)) != 15 || ix.home(enc(460)) != 12 {
		t.Fatalf("homes of 402 and 460 are %d and %d: the layout below no longer shows the hole",
			ix.home(enc(402)), ix.home(enc(460)))
	}
	dieInProcess(t, tb, Sem, func(ix *index) {
		ix.beginRebuild()
		for i := range ix.byVirt {
			atomic.StoreUint64(&ix.byVirt[i], SlotEmpty)
		}
		for slot, virt := range layout {
			atomic.StoreUint64(&ix.byVirt[slot], makeSlot(enc(virt), virt+10000))
		}
	})
	tb.Close()

	var files []string
	for _, side := range []string{"c", "go"} {
		path := filepath.Join(dir, side+"-mends")
		copyFile(t, mess, path)
		mendIn(t, side, driver, path, fmt.Sprintf("bind %d 777\n", Sem))
		data, _ := os.ReadFile(path)
		files = append(files, string(data))
		mended, err := OpenTables(path)
		if err != nil {
			t.Fatal(err)
		}
		checkWhole(t, mended, Sem, withEntries(want, Entry{Sem, 777, 777}))
		mended.Close()
	}
	if files[0] != files[1] {
		t.Errorf("files differ:\n%s", lineDiff(hexdump([]byte(files[0])), hexdump([]byte(files[1]))))
	}
}
