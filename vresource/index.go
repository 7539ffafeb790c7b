package vresource

import (
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// index is one resource type's pair of open-addressing indexes in the
// mapped file, the Go twin of struct vrid_index.  The functions here
// mirror probe, find, put, del, insert_locked, remove_locked,
// rebuild_index, rebuild_locked, fill_from, repair_type_locked,
// fresh_locked and collect_locked of preload/table.c step for step: a
// file must come out byte for byte the same whichever side wrote it
// (TestInteropSameBytes, TestRepairSameBytes).
//
// Slots are read with atomic loads everywhere, so lock-free readers never
// see half an entry; only writers holding the writer lock store to them.
type index struct {
	rt ResourceType
	// desc is shared with every process of the chain.  Live, FreshNext,
	// TombsByVirt, TombsBySys and Rebuilds are written under the writer
	// lock; lock-free readers load only Live and Rebuilds.
	desc   *tableDesc
	byVirt []uint64
	bySys  []uint64
	mask   uint32 // slots - 1
	shift  uint32
	// settle takes the writer lock and lets it go: taking it repairs what
	// a writer that died mid-rebuild left (Tables.lockWriter).
	settle func() error
}

// settleSpins is how many times a lock-free reader looks again at a
// rebuild before it suspects the rebuilder died and settles the index,
// as find of table.c does.
const settleSpins = 1024

// slotsAt views n slots of the mapping starting at byte off.  It is the
// one place that turns mapped bytes into slots; the caller has checked
// that off is 8-aligned and the n slots lie inside mem.
func slotsAt(mem []byte, off uint64, n uint32) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off])), n)
}

func newIndex(mem []byte, rt ResourceType, d *tableDesc, settle func() error) index {
	return index{
		rt:     rt,
		desc:   d,
		byVirt: slotsAt(mem, d.ByVirtOff, d.Slots),
		bySys:  slotsAt(mem, d.ByVirtOff+slotBytes*uint64(d.Slots), d.Slots),
		mask:   d.Slots - 1,
		shift:  d.Shift,
		settle: settle,
	}
}

func enc(key int32) uint32 {
	return uint32(key) ^ KeyBias
}

// storable reports whether key can be a slot key: enc maps only
// math.MinInt32 to 0, which would read as an empty or removed slot.
func storable(key int32) bool {
	return key != math.MinInt32
}

func slotKey(s uint64) uint32 { return uint32(s >> 32) }

func slotVal(s uint64) int32 { return int32(uint32(s)) }

func makeSlot(k uint32, val int32) uint64 {
	return uint64(k)<<32 | uint64(uint32(val))
}

func (ix *index) home(k uint32) uint32 {
	return (k * HashMul) >> ix.shift
}

// probe is probe of table.c: one walk of k's run from its home slot.  It
// returns the slot holding k and its contents, loaded once.  k is never
// 0 (see storable): a removed slot has key 0.
func (ix *index) probe(slots []uint64, k uint32) (i uint32, s uint64, found bool) {
	i = ix.home(k)
	for n := uint32(0); n <= ix.mask; n++ {
		s = atomic.LoadUint64(&slots[i])
		if s == SlotEmpty {
			return 0, 0, false
		}
		if slotKey(s) == k {
			return i, s, true
		}
		i = (i + 1) & ix.mask
	}
	return 0, 0, false
}

// find is the lock-free lookup, find of table.c.  A hit is always right:
// a rebuild moves entries but never changes one.  A miss is believed only
// if no rebuild ran during the probe; otherwise the probe runs again.  A
// rebuild still running after settleSpins probes may be one whose writer
// died: taking the writer lock repairs it, or waits for its end.  (Go's
// atomic loads are sequentially consistent: the second load of Rebuilds
// stays after the probe's loads without the fence table.c needs.)  Unlike
// find, it gives up after WaitLimit (rebuildWait).
func (ix *index) find(slots []uint64, key int32) (val int32, found bool, err error) {
	if !storable(key) {
		return 0, false, nil
	}
	k := enc(key)
	var wait rebuildWait
	for spins := 1; ; spins++ {
		seq := atomic.LoadUint32(&ix.desc.Rebuilds)
		if _, s, found := ix.probe(slots, k); found {
			return slotVal(s), true, nil
		}
		if seq&1 == 0 && atomic.LoadUint32(&ix.desc.Rebuilds) == seq {
			return 0, false, nil
		}
		if spins%settleSpins == 0 {
			if err := wait.settle(ix); err != nil {
				return 0, false, err
			}
		}
		runtime.Gosched()
	}
}

// rebuildWait bounds a lock-free reader's wait on rebuilds: each settle
// takes the writer lock, which repairs a rebuild whose writer died, but
// a writer may hold the lock forever, or a process of the chain start
// rebuild after rebuild without it.  Its zero value starts the clock.
type rebuildWait struct {
	deadline time.Time
}

func (w *rebuildWait) settle(ix *index) error {
	now := time.Now()
	if w.deadline.IsZero() {
		w.deadline = now.Add(WaitLimit)
	} else if now.After(w.deadline) {
		return fmt.Errorf("a rebuild of the %s table has not ended in %v; %w", ix.rt, WaitLimit, ErrWedged)
	}
	return ix.settle()
}

// findLocked is the lookup of writers, who hold the writer lock: no
// rebuild can run, so one probe answers.  key is storable.
func (ix *index) findLocked(slots []uint64, key int32) (val int32, found bool) {
	_, s, found := ix.probe(slots, enc(key))
	return slotVal(s), found
}

func (ix *index) virtUsedLocked(virt int32) bool {
	_, used := ix.findLocked(ix.byVirt, virt)
	return used
}

// putLocked writes k -> val into the first empty or removed slot of k's
// run, and counts a removed slot it reuses in tombs.  The caller has
// checked that k is absent and that the index has room.
func (ix *index) putLocked(slots []uint64, tombs *uint32, k uint32, val int32) {
	i := ix.home(k)
	for n := uint32(0); n <= ix.mask; n++ {
		s := atomic.LoadUint64(&slots[i])
		if s == SlotEmpty || s == SlotTomb {
			if s == SlotTomb {
				*tombs--
			}
			atomic.StoreUint64(&slots[i], makeSlot(k, val))
			return
		}
		i = (i + 1) & ix.mask
	}
}

// delLocked marks key's slot removed, then empties the removed slots that
// end a run: a probe reaching them would stop at the next slot anyway.
// tombs counts the removed slots of the index.
func (ix *index) delLocked(slots []uint64, tombs *uint32, key int32) {
	i, _, found := ix.probe(slots, enc(key))
	if !found {
		return
	}
	atomic.StoreUint64(&slots[i], SlotTomb)
	*tombs++
	for atomic.LoadUint64(&slots[i]) == SlotTomb &&
		atomic.LoadUint64(&slots[(i+1)&ix.mask]) == SlotEmpty {
		atomic.StoreUint64(&slots[i], SlotEmpty)
		*tombs--
		i = (i - 1) & ix.mask
	}
}

func (ix *index) insertLocked(virt, sys int32) {
	ix.putLocked(ix.byVirt, &ix.desc.TombsByVirt, enc(virt), sys)
	ix.putLocked(ix.bySys, &ix.desc.TombsBySys, enc(sys), virt)
	atomic.AddUint32(&ix.desc.Live, 1)
}

func (ix *index) removeLocked(virt, sys int32) {
	ix.delLocked(ix.bySys, &ix.desc.TombsBySys, sys)
	ix.delLocked(ix.byVirt, &ix.desc.TombsByVirt, virt)
	atomic.AddUint32(&ix.desc.Live, ^uint32(0))
}

// rebuildIndexLocked empties every removed slot of one index, then puts
// each entry back from its home, run by run, starting after a slot that
// was empty before: no run crosses that slot, so each entry lands at or
// before where it was, behind entries that stay.  Writers rebuild before
// removed and live slots fill 3/4 of the index, so one is empty.
func (ix *index) rebuildIndexLocked(slots []uint64, tombs *uint32) {
	start := uint32(0)
	for start < ix.mask && atomic.LoadUint64(&slots[start]) != SlotEmpty {
		start++
	}
	for i := range slots {
		if atomic.LoadUint64(&slots[i]) == SlotTomb {
			atomic.StoreUint64(&slots[i], SlotEmpty)
		}
	}
	var unused uint32 // no slot is removed any more
	for n := uint32(1); n <= ix.mask; n++ {
		i := (start + n) & ix.mask
		s := atomic.LoadUint64(&slots[i])
		if s == SlotEmpty {
			continue
		}
		atomic.StoreUint64(&slots[i], SlotEmpty)
		ix.putLocked(slots, &unused, slotKey(s), slotVal(s))
	}
	*tombs = 0
}

// beginRebuild is begin_rebuild of table.c: Rebuilds turns odd, unless
// it already is because the writer of an earlier rebuild died, and a
// lock-free reader that misses from now on looks again.
func (ix *index) beginRebuild() {
	if atomic.LoadUint32(&ix.desc.Rebuilds)&1 == 0 {
		atomic.AddUint32(&ix.desc.Rebuilds, 1)
	}
}

// endRebuild turns Rebuilds even again.
func (ix *index) endRebuild() {
	atomic.AddUint32(&ix.desc.Rebuilds, 1)
}

// rebuildLocked rebuilds both indexes with Rebuilds odd meanwhile, so
// that a lock-free reader that misses during the rebuild looks again.
func (ix *index) rebuildLocked() {
	ix.beginRebuild()
	ix.rebuildIndexLocked(ix.byVirt, &ix.desc.TombsByVirt)
	ix.rebuildIndexLocked(ix.bySys, &ix.desc.TombsBySys)
	ix.endRebuild()
}

// crowdedLocked reports whether live entries and the removed slots of
// either index reach 3/4 of its slots: the point at which writers rebuild.
func (ix *index) crowdedLocked() bool {
	d := ix.desc
	return ix.live()+max(d.TombsByVirt, d.TombsBySys) >= ix.fullAt()
}

// fillFromLocked is fill_from of table.c: it puts into to every pair of
// from that to lacks.  tombs counts the removed slots of to.
func (ix *index) fillFromLocked(to, from []uint64, tombs *uint32) {
	for i := range from {
		s := atomic.LoadUint64(&from[i])
		if s == SlotEmpty || s == SlotTomb {
			continue
		}
		keyOfTo := slotVal(s)
		if _, _, found := ix.probe(to, enc(keyOfTo)); !found {
			ix.putLocked(to, tombs, enc(keyOfTo), int32(slotKey(s)^KeyBias))
		}
	}
}

// countEntries counts the slots of an index that hold an entry.
func (ix *index) countEntries(slots []uint64) uint32 {
	var n uint32
	for i := range slots {
		if s := atomic.LoadUint64(&slots[i]); s != SlotEmpty && s != SlotTomb {
			n++
		}
	}
	return n
}

// soundLocked is index_sound of table.c: every entry is the first its own
// probe finds, with no hole before it and no twin.
func (ix *index) soundLocked(slots []uint64) bool {
	for i := range slots {
		s := atomic.LoadUint64(&slots[i])
		if s == SlotEmpty || s == SlotTomb {
			continue
		}
		for j := ix.home(slotKey(s)); j != uint32(i); j = (j + 1) & ix.mask {
			o := atomic.LoadUint64(&slots[j])
			if o == SlotEmpty || slotKey(o) == slotKey(s) {
				return false
			}
		}
	}
	return true
}

// clearLocked is clear_index of table.c.
func (ix *index) clearLocked(slots []uint64, tombs *uint32) {
	for i := range slots {
		atomic.StoreUint64(&slots[i], SlotEmpty)
	}
	atomic.StoreUint32(tombs, 0)
}

// repairLocked is repair_type_locked of table.c, for a writer that died
// inside a write (Tables.repairLocked).  An insert or removal cut short
// leaves one pair in one index only; a rebuild cut short leaves one index
// unsound but the other whole.  So an unsound index is emptied, both are
// rebuilt, and each is filled from the other.
func (ix *index) repairLocked() {
	d := ix.desc
	ix.beginRebuild()
	if !ix.soundLocked(ix.byVirt) {
		ix.clearLocked(ix.byVirt, &d.TombsByVirt)
	} else if !ix.soundLocked(ix.bySys) {
		ix.clearLocked(ix.bySys, &d.TombsBySys)
	}
	ix.rebuildIndexLocked(ix.byVirt, &d.TombsByVirt)
	ix.rebuildIndexLocked(ix.bySys, &d.TombsBySys)
	ix.fillFromLocked(ix.byVirt, ix.bySys, &d.TombsByVirt)
	ix.fillFromLocked(ix.bySys, ix.byVirt, &d.TombsBySys)
	atomic.StoreUint32(&d.Live, ix.countEntries(ix.byVirt))
	ix.endRebuild()
}

func (ix *index) live() uint32 {
	return atomic.LoadUint32(&ix.desc.Live)
}

// fullAt is the live count at which the index counts as full: 3/4 of its
// slots, to keep probes short.
func (ix *index) fullAt() uint32 {
	return ix.mask - ix.mask>>2
}

// freshLocked returns the next fresh virtual id nobody in the chain uses,
// as fresh_locked does.  A lap of the range, or more candidates than the
// index has slots, finds one if any: live entries are fewer than slots.
func (ix *index) freshLocked() (int32, bool) {
	d := ix.desc
	tries := min(uint64(d.FreshMax)-uint64(d.FreshBase)+1, uint64(ix.mask)+1)
	for ; tries > 0; tries-- {
		virt := int32(d.FreshNext)
		if d.FreshNext >= d.FreshMax {
			d.FreshNext = d.FreshBase
		} else {
			d.FreshNext++
		}
		if !ix.virtUsedLocked(virt) {
			return virt, true
		}
	}
	return 0, false
}

// collectLocked drops the entries whose system object is gone and returns
// how many, walking by_sys in slot order as collect_locked does.
func (ix *index) collectLocked(alive func(sys int32) bool) uint32 {
	var freed uint32
	for i := range ix.bySys {
		s := atomic.LoadUint64(&ix.bySys[i])
		if s == SlotEmpty || s == SlotTomb {
			continue
		}
		sys := int32(slotKey(s) ^ KeyBias)
		if alive(sys) {
			continue
		}
		ix.removeLocked(slotVal(s), sys)
		freed++
	}
	return freed
}

// list is the walk of vrid_each of table.c: the index's pairs in slot
// order.  Under the writer lock it is the table; without it, a snapshot
// of each slot, which entries turns into a listing.
func (ix *index) list() []Entry {
	var out []Entry
	for i := range ix.byVirt {
		s := atomic.LoadUint64(&ix.byVirt[i])
		if s == SlotEmpty || s == SlotTomb {
			continue
		}
		out = append(out, Entry{Type: ix.rt, Virt: int32(slotKey(s) ^ KeyBias), Sys: slotVal(s)})
	}
	return out
}

// entries lists the index's pairs in slot order, without the lock, where
// vrid_each of table.c takes it.  A rebuild moves entries, so a listing
// taken while one ran is taken again, as find does with a miss, and it
// settles a rebuild whose writer died: the list holds every entry that
// stayed bound all along, once.  Under other concurrent writers it is a
// snapshot of each slot, not of the table.
func (ix *index) entries() ([]Entry, error) {
	var wait rebuildWait
	for spins := 1; ; spins++ {
		seq := atomic.LoadUint32(&ix.desc.Rebuilds)
		out := ix.list()
		if seq&1 == 0 && atomic.LoadUint32(&ix.desc.Rebuilds) == seq {
			return out, nil
		}
		if spins%settleSpins == 0 {
			if err := wait.settle(ix); err != nil {
				return nil, err
			}
		}
		runtime.Gosched()
	}
}
