package vresource

import (
	"math"
	"sync/atomic"
	"unsafe"
)

// index is one resource type's pair of open-addressing indexes in the
// mapped file, the Go twin of struct vrid_index.  The functions here
// mirror find, put, del, insert_locked, remove_locked, fresh_locked and
// collect_locked of preload/table.c step for step: a file must come out
// byte for byte the same whichever side wrote it (TestInteropSameBytes).
//
// Slots are read with atomic loads everywhere, so lock-free readers never
// see half an entry; only writers holding the writer lock store to them.
type index struct {
	rt     ResourceType
	desc   *tableDesc // Live and FreshNext: written under the writer lock
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

// probe walks key's run from its home slot and returns the slot holding
// key and its contents, loaded once.
func (ix *index) probe(slots []uint64, key int32) (i uint32, s uint64, found bool) {
	k := enc(key)
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

func (ix *index) find(slots []uint64, key int32) (val int32, found bool) {
	if !storable(key) {
		return 0, false
	}
	_, s, found := ix.probe(slots, key)
	return slotVal(s), found
}

func (ix *index) virtUsed(virt int32) bool {
	_, used := ix.find(ix.byVirt, virt)
	return used
}

// putLocked writes key -> val into the first free slot of key's run.  The
// caller has checked that key is absent and that the table has room.
func (ix *index) putLocked(slots []uint64, key, val int32) {
	k := enc(key)
	i := ix.home(k)
	for n := uint32(0); n <= ix.mask; n++ {
		s := atomic.LoadUint64(&slots[i])
		if s == SlotEmpty || s == SlotTomb {
			atomic.StoreUint64(&slots[i], makeSlot(k, val))
			return
		}
		i = (i + 1) & ix.mask
	}
}

// delLocked marks key's slot removed, then empties the removed slots that
// end a run: a probe reaching them would stop at the next slot anyway.
func (ix *index) delLocked(slots []uint64, key int32) {
	i, _, found := ix.probe(slots, key)
	if !found {
		return
	}
	atomic.StoreUint64(&slots[i], SlotTomb)
	for atomic.LoadUint64(&slots[i]) == SlotTomb &&
		atomic.LoadUint64(&slots[(i+1)&ix.mask]) == SlotEmpty {
		atomic.StoreUint64(&slots[i], SlotEmpty)
		i = (i - 1) & ix.mask
	}
}

func (ix *index) insertLocked(virt, sys int32) {
	ix.putLocked(ix.byVirt, virt, sys)
	ix.putLocked(ix.bySys, sys, virt)
	atomic.AddUint32(&ix.desc.Live, 1)
}

func (ix *index) removeLocked(virt, sys int32) {
	ix.delLocked(ix.bySys, sys)
	ix.delLocked(ix.byVirt, virt)
	atomic.AddUint32(&ix.desc.Live, ^uint32(0))
}

func (ix *index) live() uint32 {
	return atomic.LoadUint32(&ix.desc.Live)
}

// fullAt is the live count at which the index counts as full: 3/4 of its
// slots, to keep probes short.
func (ix *index) fullAt() uint32 {
	return ix.mask - ix.mask>>2
}

// freshLocked returns the next fresh virtual id nobody in the chain uses.
// table.c loops until it finds one; here a whole lap of the range without
// one gives up instead of spinning forever under the lock.
func (ix *index) freshLocked() (int32, bool) {
	d := ix.desc
	lap := uint64(d.FreshMax) - uint64(d.FreshBase) + 1
	for n := uint64(0); n < lap; n++ {
		virt := int32(d.FreshNext)
		if d.FreshNext >= d.FreshMax {
			d.FreshNext = d.FreshBase
		} else {
			d.FreshNext++
		}
		if !ix.virtUsed(virt) {
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

// entries lists the index's pairs in slot order, without the lock: under
// concurrent writers it is a snapshot of each slot, not of the table.
func (ix *index) entries() []Entry {
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
