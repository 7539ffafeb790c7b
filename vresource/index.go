package vresource

import (
	"math"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// index is one resource type's pair of open-addressing indexes in the
// mapped file, the Go twin of struct vrid_index.  The functions here
// mirror probe, find, put, del, insert_locked, remove_locked,
// rebuild_index, rebuild_locked, fresh_locked and collect_locked of
// preload/table.c step for step: a file must come out byte for byte the
// same whichever side wrote it (TestInteropSameBytes).
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
}

// slotsAt views n slots of the mapping starting at byte off.  It is the
// one place that turns mapped bytes into slots; the caller has checked
// that off is 8-aligned and the n slots lie inside mem.
func slotsAt(mem []byte, off uint64, n uint32) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off])), n)
}

func newIndex(mem []byte, rt ResourceType, d *tableDesc) index {
	return index{
		rt:     rt,
		desc:   d,
		byVirt: slotsAt(mem, d.ByVirtOff, d.Slots),
		bySys:  slotsAt(mem, d.ByVirtOff+slotBytes*uint64(d.Slots), d.Slots),
		mask:   d.Slots - 1,
		shift:  d.Shift,
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
// if no rebuild ran during the probe; otherwise the probe runs again.
func (ix *index) find(slots []uint64, key int32) (val int32, found bool) {
	if !storable(key) {
		return 0, false
	}
	k := enc(key)
	for {
		seq := atomic.LoadUint32(&ix.desc.Rebuilds)
		if _, s, found := ix.probe(slots, k); found {
			return slotVal(s), true
		}
		if seq&1 == 0 && atomic.LoadUint32(&ix.desc.Rebuilds) == seq {
			return 0, false
		}
		runtime.Gosched()
	}
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
// before where it was, behind entries that stay.  reclaimLocked rebuilds
// before removed and live slots fill 3/4 of the index, so one is empty.
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

// rebuildLocked rebuilds both indexes with Rebuilds odd meanwhile, so
// that a lock-free reader that misses during the rebuild looks again.
func (ix *index) rebuildLocked() {
	atomic.AddUint32(&ix.desc.Rebuilds, 1)
	ix.rebuildIndexLocked(ix.byVirt, &ix.desc.TombsByVirt)
	ix.rebuildIndexLocked(ix.bySys, &ix.desc.TombsBySys)
	atomic.AddUint32(&ix.desc.Rebuilds, 1)
}

// reclaimLocked rebuilds the indexes when live entries and the removed
// slots of either index reach 3/4 of its slots, as room_locked does after
// collecting.
func (ix *index) reclaimLocked() {
	d := ix.desc
	if ix.live()+max(d.TombsByVirt, d.TombsBySys) >= ix.fullAt() {
		ix.rebuildLocked()
	}
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

// entries lists the index's pairs in slot order, without the lock.  A
// rebuild moves entries, so a listing taken while one ran is taken again,
// as find does with a miss: the list holds every entry that stayed bound
// all along, once.  (vrid_each of table.c does not look again.)  Under
// other concurrent writers it is a snapshot of each slot, not of the
// table.
func (ix *index) entries() []Entry {
	for {
		seq := atomic.LoadUint32(&ix.desc.Rebuilds)
		var out []Entry
		for i := range ix.byVirt {
			s := atomic.LoadUint64(&ix.byVirt[i])
			if s == SlotEmpty || s == SlotTomb {
				continue
			}
			out = append(out, Entry{Type: ix.rt, Virt: int32(slotKey(s) ^ KeyBias), Sys: slotVal(s)})
		}
		if seq&1 == 0 && atomic.LoadUint32(&ix.desc.Rebuilds) == seq {
			return out
		}
		runtime.Gosched()
	}
}
