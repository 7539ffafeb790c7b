package vresource

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"
)

const testAID AID = 7

func newTables(t testing.TB, opt TableOptions) *Tables {
	t.Helper()
	tb, err := CreateTables(filepath.Join(t.TempDir(), "tables"), testAID, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tb.Close() })
	return tb
}

// small gives every type the smallest index.
func small() map[ResourceType]uint32 {
	return map[ResourceType]uint32{PID: 16, Sem: 16, Shm: 16, Msg: 16, IPCKey: 16}
}

// hdrOf views the header of a table's mapping, for tests that read or
// forge what the engine keeps there.
func hdrOf(tb *Tables) *header { return overlay(tb.mem) }

func descOf(tb *Tables, rt ResourceType) *tableDesc { return &hdrOf(tb).Tables[rt] }

// slotsOf views the two indexes of rt.
func slotsOf(tb *Tables, rt ResourceType) (byVirt, bySys []uint64) {
	d := descOf(tb, rt)
	all := unsafe.Slice((*uint64)(unsafe.Pointer(&tb.mem[d.ByVirtOff])), 2*d.Slots)
	return all[:d.Slots], all[d.Slots:]
}

// beginRebuild leaves a rebuild of rt running, as a writer that died in
// one does.
func beginRebuild(tb *Tables, rt ResourceType) {
	if d := descOf(tb, rt); atomic.LoadUint32(&d.Rebuilds)&1 == 0 {
		atomic.AddUint32(&d.Rebuilds, 1)
	}
}

func mustBind(t testing.TB, tb *Tables, rt ResourceType, sys int32) int32 {
	t.Helper()
	virt, err := tb.Bind(rt, sys)
	if err != nil {
		t.Fatalf("bind %s %d: %v", rt, sys, err)
	}
	return virt
}

func TestCreateDefaults(t *testing.T) {
	tb := newTables(t, TableOptions{Name: "web"})
	st, err := os.Stat(tb.path)
	if err != nil {
		t.Fatal(err)
	}
	// The header, 2 indexes of 16 bytes per slot, 48 bytes of IPC
	// record per sem, shm and msg slot after a 64-byte head, and 16 bytes
	// of SEM_UNDO adjustment per sem slot after another.
	if st.Size() != 1187840 {
		t.Errorf("file size %d, want 1187840", st.Size())
	}
	if tb.AID() != testAID || tb.Name() != "web" || tb.Sequential() || tb.Generation() != 0 {
		t.Errorf("aid %d name %q sequential %v generation %d", tb.AID(), tb.Name(), tb.Sequential(), tb.Generation())
	}
	want := map[ResourceType]uint32{PID: 16384, Sem: 4096, Shm: 4096, Msg: 4096, IPCKey: 4096}
	for rt, slots := range want {
		if got := tb.Slots(rt); got != slots {
			t.Errorf("%s slots %d, want %d", rt, got, slots)
		}
	}
	if got, err := tb.BumpGeneration(); got != 1 || err != nil || tb.Generation() != 1 {
		t.Errorf("bump generation: %d, %v, then %d; want 1", got, err, tb.Generation())
	}
}

func TestCreateTablesRefuses(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		aid  AID
		opt  TableOptions
		want string
	}{
		{"existing file", existing, 1, TableOptions{}, "file exists"},
		{"long name", filepath.Join(dir, "a"), 1, TableOptions{Name: strings.Repeat("n", 64)}, "the limit is 63"},
		{"slots not a power of two", filepath.Join(dir, "b"), 1, TableOptions{Slots: map[ResourceType]uint32{Sem: 100}}, "sem slots 100"},
		{"slots too few", filepath.Join(dir, "c"), 1, TableOptions{Slots: map[ResourceType]uint32{PID: 8}}, "pid slots 8"},
		{"slots too many", filepath.Join(dir, "d"), 1, TableOptions{Slots: map[ResourceType]uint32{Msg: 1 << 25}}, "msg slots 33554432"},
		{"unknown type", filepath.Join(dir, "e"), 1, TableOptions{Slots: map[ResourceType]uint32{9: 16}}, "unknown resource type 9"},
		{"aid 0", filepath.Join(dir, "f"), 0, TableOptions{}, "aid 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := CreateTables(tt.path, tt.aid, tt.opt)
			if err == nil {
				tb.Close()
				t.Fatal("created")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if data, _ := os.ReadFile(existing); string(data) != "keep me" {
		t.Errorf("existing file now holds %q", data)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestBindPolicy(t *testing.T) {
	type bind struct {
		rt       ResourceType
		sys      int32
		wantVirt int32
	}
	tests := []struct {
		name       string
		sequential bool
		insert     []Entry // made first, with Insert
		binds      []bind
	}{
		{"system id kept when free", false, nil, []bind{
			{PID, 4242, 4242}, {PID, 17, 17}, {Sem, 0, 0}, {Shm, 32769, 32769}, {IPCKey, -5, -5},
		}},
		{"same system id binds once", false, nil, []bind{
			{PID, 4242, 4242}, {PID, 4242, 4242},
		}},
		{"sequential pids from 1000", true, nil, []bind{
			{PID, 4242, 1000}, {PID, 4243, 1001}, {PID, 77, 1002}, {PID, 4242, 1000},
		}},
		{"sequential keeps a pid namespace's init at 1", true, nil, []bind{
			{PID, 7, 1000}, {PID, 1, 1}, {PID, 2, 1001}, {Sem, 1, 1}, {Shm, 1, 1}, {Msg, 3, 1}, {Msg, 1, 2},
		}},
		{"sequential ipc ids from 1", true, nil, []bind{
			{Sem, 5, 1}, {Sem, 9, 2}, {Shm, 9, 1}, {Msg, 65536, 1},
		}},
		{"collision gets a fresh id", false, []Entry{{PID, 500, 9000}}, []bind{
			{PID, 500, 1000}, {PID, 1000, 1001}, {PID, 9000, 500},
		}},
		{"fresh ids skip used ones", true, []Entry{{PID, 1000, 1}, {PID, 1002, 2}}, []bind{
			{PID, 50, 1001}, {PID, 51, 1003},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(t, TableOptions{Sequential: tt.sequential})
			for _, e := range tt.insert {
				if err := tb.Insert(e.Type, e.Virt, e.Sys); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range tt.binds {
				if got := mustBind(t, tb, b.rt, b.sys); got != b.wantVirt {
					t.Errorf("bind %s %d = %d, want %d", b.rt, b.sys, got, b.wantVirt)
				}
			}
		})
	}
}

func TestFreshWraps(t *testing.T) {
	tb := newTables(t, TableOptions{Sequential: true})
	descOf(tb, PID).FreshNext = PIDFreshMax
	if got := mustBind(t, tb, PID, 5); got != PIDFreshMax {
		t.Errorf("first bind %d, want %d", got, PIDFreshMax)
	}
	if got := mustBind(t, tb, PID, 6); got != PIDFreshBase {
		t.Errorf("bind after the end %d, want %d", got, PIDFreshBase)
	}
}

func TestLookupReverse(t *testing.T) {
	tb := newTables(t, TableOptions{})
	for _, e := range []Entry{{PID, 1, 300}, {PID, 300, 301}, {Sem, 0, 98304}, {IPCKey, -1, math.MaxInt32}} {
		if err := tb.Insert(e.Type, e.Virt, e.Sys); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		reverse bool
		rt      ResourceType
		id      int32
		want    int32
		wantOK  bool
	}{
		{"pid virt 1", false, PID, 1, 300, true},
		{"pid virt 300", false, PID, 300, 301, true},
		{"pid sys 300", true, PID, 300, 1, true},
		{"pid sys 301", true, PID, 301, 300, true},
		{"pid sys 1 absent", true, PID, 1, 0, false},
		{"pid virt 301 absent", false, PID, 301, 0, false},
		{"sem virt 0", false, Sem, 0, 98304, true},
		{"sem sys 98304", true, Sem, 98304, 0, true},
		{"types apart", false, Shm, 0, 0, false},
		{"negative key", false, IPCKey, -1, math.MaxInt32, true},
		{"negative key back", true, IPCKey, math.MaxInt32, -1, true},
		{"unstorable id", false, IPCKey, math.MinInt32, 0, false},
		{"unknown type", false, 5, 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got int32
			var ok bool
			if tt.reverse {
				got, ok = tb.Reverse(tt.rt, tt.id)
			} else {
				got, ok = tb.Lookup(tt.rt, tt.id)
			}
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("got %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	tb := newTables(t, TableOptions{Sequential: true})
	for sys := int32(10); sys < 14; sys++ {
		mustBind(t, tb, Shm, sys) // virt 1..4
	}
	if err := tb.RemoveSys(Shm, 11); err != nil {
		t.Fatal(err)
	}
	if err := tb.RemoveVirt(Shm, 3); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
	}{
		{"sys again", tb.RemoveSys(Shm, 11)},
		{"virt again", tb.RemoveVirt(Shm, 3)},
		{"sys never bound", tb.RemoveSys(Shm, 99)},
		{"virt of removed sys", tb.RemoveVirt(Shm, 2)},
		{"unstorable sys", tb.RemoveSys(Shm, math.MinInt32)}, // as remove_by of table.c
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tt.name, tt.err)
		}
	}
	for _, id := range []int32{2, 3} {
		if sys, ok := tb.Lookup(Shm, id); ok {
			t.Errorf("virt %d still maps to %d", id, sys)
		}
	}
	for _, id := range []int32{11, 12} {
		if virt, ok := tb.Reverse(Shm, id); ok {
			t.Errorf("sys %d still maps to %d", id, virt)
		}
	}
	want := []Entry{{Shm, 1, 10}, {Shm, 4, 13}}
	if got := tb.Entries(Shm); !slices.Equal(got, want) || tb.Live(Shm) != 2 {
		t.Errorf("entries %v live %d, want %v live 2", got, tb.Live(Shm), want)
	}
}

// countSlots counts an index's empty and removed slots.
func countSlots(slots []uint64) (empty, tombs int) {
	for _, s := range slots {
		switch s {
		case SlotEmpty:
			empty++
		case SlotTomb:
			tombs++
		}
	}
	return empty, tombs
}

func countEmpty(slots []uint64) int {
	empty, _ := countSlots(slots)
	return empty
}

// checkCounts wants the counts of a type's descriptor to be those of its
// indexes: live entries, and removed slots of each index.
func checkCounts(t *testing.T, tb *Tables, rt ResourceType) {
	t.Helper()
	byVirt, bySys := slotsOf(tb, rt)
	emptyV, tombsV := countSlots(byVirt)
	emptyS, tombsS := countSlots(bySys)
	live := uint32(len(byVirt) - emptyV - tombsV)
	if liveS := uint32(len(bySys) - emptyS - tombsS); liveS != live {
		t.Errorf("%s: %d entries in by_virt, %d in by_sys", rt, live, liveS)
	}
	d := descOf(tb, rt)
	if d.Live != live || d.TombsByVirt != uint32(tombsV) || d.TombsBySys != uint32(tombsS) {
		t.Errorf("%s counts live %d, removed %d and %d; the indexes hold %d, %d and %d",
			rt, d.Live, d.TombsByVirt, d.TombsBySys, live, tombsV, tombsS)
	}
}

// TestTombstoneChurn binds and removes 1e5 ids on 16-slot indexes next to
// a few entries that stay, and checks every answer on the way.
func TestTombstoneChurn(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	stay := []int32{3, 40, 700}
	for _, sys := range stay {
		mustBind(t, tb, Sem, sys)
	}
	for i := range 100000 {
		sys := int32(1000 + i*7919%100003)
		virt := mustBind(t, tb, Sem, sys)
		if got, ok := tb.Lookup(Sem, virt); !ok || got != sys {
			t.Fatalf("cycle %d: lookup %d = %d, %v; want %d", i, virt, got, ok, sys)
		}
		var err error
		if i%2 == 0 {
			err = tb.RemoveSys(Sem, sys)
		} else {
			err = tb.RemoveVirt(Sem, virt)
		}
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, ok := tb.Reverse(Sem, sys); ok {
			t.Fatalf("cycle %d: sys %d still bound", i, sys)
		}
		if i%1000 == 0 {
			for _, s := range stay {
				if v, ok := tb.Reverse(Sem, s); !ok || v != s {
					t.Fatalf("cycle %d: lost sys %d (%d, %v)", i, s, v, ok)
				}
			}
		}
	}
	want := []Entry{{Sem, 3, 3}, {Sem, 40, 40}, {Sem, 700, 700}}
	if got := tb.Entries(Sem); !slices.Equal(got, want) || tb.Live(Sem) != 3 {
		t.Errorf("entries %v live %d, want %v live 3", got, tb.Live(Sem), want)
	}
	byVirt, bySys := slotsOf(tb, Sem)
	for _, slots := range [][]uint64{byVirt, bySys} {
		empty, tombs := countSlots(slots)
		t.Logf("after the churn: %d live, %d removed, %d empty slots", 16-empty-tombs, tombs, empty)
	}
	checkCounts(t, tb, Sem)
	if r := descOf(tb, Sem).Rebuilds; r == 0 || r%2 != 0 {
		t.Errorf("rebuilds %d, want some, and none running", r)
	}
	t.Logf("%d rebuilds", descOf(tb, Sem).Rebuilds/2)
}

func TestInsertRebind(t *testing.T) {
	tb := newTables(t, TableOptions{})
	if err := tb.Insert(PID, 1, 5000); err != nil {
		t.Fatal(err)
	}
	if err := tb.Insert(PID, 2, 5001); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"insert taken virt", tb.Insert(PID, 1, 6000), ErrExists},
		{"insert taken sys", tb.Insert(PID, 3, 5000), ErrExists},
		{"insert unstorable", tb.Insert(IPCKey, math.MinInt32, 1), ErrInvalidID},
		{"rebind unknown virt", tb.Rebind(PID, 9, 6000), ErrNotFound},
		{"rebind to taken sys", tb.Rebind(PID, 1, 5001), ErrExists},
		{"rebind to same sys", tb.Rebind(PID, 1, 5000), nil},
		{"rebind", tb.Rebind(PID, 2, 7000), nil},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if sys, ok := tb.Lookup(PID, 2); !ok || sys != 7000 {
		t.Errorf("lookup 2 = %d, %v; want 7000", sys, ok)
	}
	if virt, ok := tb.Reverse(PID, 7000); !ok || virt != 2 {
		t.Errorf("reverse 7000 = %d, %v; want 2", virt, ok)
	}
	if virt, ok := tb.Reverse(PID, 5001); ok {
		t.Errorf("old sys 5001 still maps to %d", virt)
	}
	want := []Entry{{PID, 1, 5000}, {PID, 2, 7000}}
	if got := tb.Entries(PID); !slices.Equal(got, want) || tb.Live(PID) != 2 {
		t.Errorf("entries %v live %d, want %v live 2", got, tb.Live(PID), want)
	}
}

// TestRebindChurn rebinds the entries of a full 16-slot table over and
// over.  Each rebind may leave a removed slot in by_sys, with no insert
// to reclaim it; Rebind reclaims them itself, so that by_sys keeps empty
// slots, which probes and rebuilds rely on.
func TestRebindChurn(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	const n = 12 // full: 3/4 of 16
	for virt := int32(1); virt <= n; virt++ {
		if err := tb.Insert(Msg, virt, 100*virt); err != nil {
			t.Fatal(err)
		}
	}
	sysOf := func(virt int32, round int) int32 { return 100*virt + int32(round%2) }
	for round := 1; round <= 200; round++ {
		for virt := int32(1); virt <= n; virt++ {
			if err := tb.Rebind(Msg, virt, sysOf(virt, round)); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if _, bySys := slotsOf(tb, Msg); countEmpty(bySys) == 0 {
			t.Fatalf("round %d: by_sys has no empty slot left", round)
		}
	}
	for virt := int32(1); virt <= n; virt++ {
		want := sysOf(virt, 200)
		if sys, ok := tb.Lookup(Msg, virt); !ok || sys != want {
			t.Errorf("lookup %d: %d, %v; want %d", virt, sys, ok, want)
		}
		if v, ok := tb.Reverse(Msg, want); !ok || v != virt {
			t.Errorf("reverse %d: %d, %v; want %d", want, v, ok, virt)
		}
		if v, ok := tb.Reverse(Msg, sysOf(virt, 199)); ok {
			t.Errorf("old sys %d still maps to %d", sysOf(virt, 199), v)
		}
	}
	checkCounts(t, tb, Msg)
}

func TestEntriesSorted(t *testing.T) {
	tb := newTables(t, TableOptions{})
	virts := []int32{900, -3, 12, 65536, 0, 7, -70000, 1 << 30}
	for i, v := range virts {
		if err := tb.Insert(IPCKey, v, int32(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	got := tb.Entries(IPCKey)
	var gotVirts []int32
	for _, e := range got {
		gotVirts = append(gotVirts, e.Virt)
	}
	want := slices.Clone(virts)
	slices.Sort(want)
	if !slices.Equal(gotVirts, want) {
		t.Errorf("virts %v, want %v", gotVirts, want)
	}
}

func TestBindKey(t *testing.T) {
	dir := t.TempDir()
	open := func(name string, aid AID) *Tables {
		tb, err := CreateTables(filepath.Join(dir, name), aid, TableOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tb.Close() })
		return tb
	}
	a1, a1again, a2 := open("a1", 1), open("a1-again", 1), open("a2", 2)
	for _, vkey := range []int32{0x1234, 1, -1, math.MaxInt32} {
		s1, created, err := a1.BindKey(vkey)
		if err != nil || !created {
			t.Fatalf("bind key %#x: %d, %v, %v", vkey, s1, created, err)
		}
		again, created, err := a1.BindKey(vkey)
		if err != nil || created || again != s1 {
			t.Errorf("bind key %#x again: %d, %v, %v; want %d, false", vkey, again, created, err, s1)
		}
		if s, _, _ := a1again.BindKey(vkey); s != s1 {
			t.Errorf("key %#x: aid 1 gives %d, then %d", vkey, s1, s)
		}
		if s, _, _ := a2.BindKey(vkey); s == s1 {
			t.Errorf("key %#x: aids 1 and 2 both give %d", vkey, s)
		}
		if v, ok := a1.Reverse(IPCKey, s1); !ok || v != vkey {
			t.Errorf("reverse %d = %d, %v; want %#x", s1, v, ok, vkey)
		}
	}
	if _, _, err := a1.BindKey(math.MinInt32); !errors.Is(err, ErrInvalidID) {
		t.Errorf("bind key MinInt32: %v, want ErrInvalidID", err)
	}
}

// TestBindKeySkipsTakenKeys makes the first derived key belong to another
// virtual key already, as a collision would.
func TestBindKeySkipsTakenKeys(t *testing.T) {
	tb := newTables(t, TableOptions{})
	const first, second = -1795883000, -812522999 // derived for AID 7, key 42 (TestDeriveKey)
	if err := tb.Insert(IPCKey, 41, first); err != nil {
		t.Fatal(err)
	}
	skey, created, err := tb.BindKey(42)
	if err != nil || !created || skey != second {
		t.Errorf("bind key 42: %d, %v, %v; want %d", skey, created, err, second)
	}
}

// TestDeriveKey pins the keys derive_key of table.c gives: a chain's
// objects keep their keys across versions of vrid.
func TestDeriveKey(t *testing.T) {
	driver := buildDriver(t)
	tb := newTables(t, TableOptions{})
	tests := []struct {
		aid     AID
		vkey    int32
		attempt uint32
		want    int32
	}{
		{1, 0x1234, 0, -595531413},
		{1, 0x1234, 1, 1917491713},
		{2, 0x1234, 0, 483168208},
		{7, -1, 0, 1898619810},
		{7, 42, 0, -1795883000},
		{7, 42, 1, -812522999},
	}
	for _, tt := range tests {
		got := runC(t, driver, tb.path, fmt.Sprintf("derive %d %d %d\n", tt.aid, tt.vkey, tt.attempt))
		if want := fmt.Sprintf("%d\n", tt.want); got != want {
			t.Errorf("derive aid %d key %d attempt %d: %q, want %q", tt.aid, tt.vkey, tt.attempt, got, want)
		}
	}
}

func TestFull(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	for sys := int32(1); sys <= 12; sys++ {
		mustBind(t, tb, Sem, sys)
	}
	_, err := tb.Bind(Sem, 13)
	want := "tables " + tb.path + ": sem table full (12 entries in 16 slots); raise [tables] sem_slots in config.toml"
	if !errors.Is(err, ErrFull) || err.Error() != want {
		t.Errorf("bind 13th: %v\nwant %s", err, want)
	}
	if err := tb.Insert(Sem, 100, 100); !errors.Is(err, ErrFull) {
		t.Errorf("insert 13th: %v, want ErrFull", err)
	}
	for vkey := int32(1); vkey <= 12; vkey++ {
		if _, _, err := tb.BindKey(vkey); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := tb.BindKey(13); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "ipckey_slots") {
		t.Errorf("bind 13th key: %v, want ErrFull naming ipckey_slots", err)
	}
	if err := tb.RemoveSys(Sem, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Bind(Sem, 13); err != nil {
		t.Errorf("bind after a removal: %v", err)
	}
}

func TestFreshRangeExhausted(t *testing.T) {
	tb := newTables(t, TableOptions{Sequential: true})
	d := descOf(tb, Msg)
	d.FreshBase, d.FreshNext, d.FreshMax = 5, 5, 6
	mustBind(t, tb, Msg, 100)
	mustBind(t, tb, Msg, 101)
	_, err := tb.Bind(Msg, 102)
	if want := "msg table full: no fresh virtual id left in 5..6 (2 entries)"; !errors.Is(err, ErrFull) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("bind past the fresh range: %v\nwant ...%s", err, want)
	}
	if d.FreshNext != 5 {
		t.Errorf("fresh_next %d after a lap of 5..6, want 5", d.FreshNext)
	}
	if err := tb.RemoveVirt(Msg, 5); err != nil {
		t.Fatal(err)
	}
	if got := mustBind(t, tb, Msg, 102); got != 5 {
		t.Errorf("bind after a removal: %d, want 5", got)
	}
}

func TestUnknownType(t *testing.T) {
	tb := newTables(t, TableOptions{})
	if _, err := tb.Bind(5, 1); err == nil || !strings.Contains(err.Error(), "unknown resource type 5") {
		t.Errorf("bind type 5: %v", err)
	}
	if tb.Live(5) != 0 || tb.Slots(5) != 0 || tb.Entries(5) != nil {
		t.Error("type 5 has a table")
	}
}

func TestReopen(t *testing.T) {
	tb := newTables(t, TableOptions{Name: "db", Sequential: true})
	mustBind(t, tb, PID, 31337)
	if _, err := tb.BumpGeneration(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenTables(tb.path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.AID() != testAID || again.Name() != "db" || !again.Sequential() || again.Generation() != 1 {
		t.Errorf("reopened: aid %d name %q sequential %v generation %d",
			again.AID(), again.Name(), again.Sequential(), again.Generation())
	}
	if got := mustBind(t, again, PID, 31338); got != 1001 {
		t.Errorf("bind through the second mapping: %d, want 1001", got)
	}
	if sys, ok := tb.Lookup(PID, 1001); !ok || sys != 31338 {
		t.Errorf("first mapping sees %d, %v; want 31338", sys, ok)
	}
	if _, err := OpenTables(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open missing file: %v", err)
	}
}
