package vresource

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

var (
	// ErrFull: a table has no room for another entry.
	ErrFull = errors.New("table full")
	// ErrNotFound: no entry has that id.
	ErrNotFound = errors.New("no such entry")
	// ErrExists: an entry already has that id.
	ErrExists = errors.New("entry exists")
	// ErrInvalidID: the id can't be stored (math.MinInt32, see KeyBias).
	ErrInvalidID = errors.New("id can't be stored")
	// ErrCorrupt: a table file fails the checks the preload layer makes.
	ErrCorrupt = errors.New("corrupt table file")
)

// Tables is one chain's mapped table file.  Lookups don't lock; every
// write takes the file's writer lock, shared with the chain's processes,
// and marks the table it changes in the header until it is whole, so
// that the next writer repairs what a writer that died halfway left
// (writer.go).  A Tables must not be used after Close.
//
// A private Tables (ReadTables) is a copy of the file taken with pread: no
// process of the chain can change it under its reader, and it takes no
// writes.
type Tables struct {
	path    string
	file    *os.File // the table file, open read-write (read-only if private): the writer lock is on its description
	mem     []byte   // the whole file, mapped shared, or a private copy
	private bool
	hdr     *header // overlays mem
	idx     [NumResourceTypes]index
	aid     AID
	name    string
	// records is the IPC records section as the file was opened with it.
	records    section
	hasRecords bool

	// mu lets one goroutine at a time take the writer lock through file,
	// and so protects the index fields that only writers change.
	mu sync.Mutex
	// wedged: the last wait for the writer lock outlasted WaitLimit; the
	// next one doesn't wait.  Protected by mu.
	wedged bool
}

// Entry is one translation: Virt is the id the chain sees, Sys the
// kernel's.
type Entry struct {
	Type ResourceType
	Virt int32
	Sys  int32
}

// AID is the chain the tables belong to.
func (t *Tables) AID() AID { return t.aid }

// Name is the chain's name as the file records it.
func (t *Tables) Name() string { return t.name }

// Generation counts the restores that rebound ids in these tables.
func (t *Tables) Generation() uint32 { return atomic.LoadUint32(&t.hdr.Generation) }

// BumpGeneration marks one more restore and returns the new generation.
func (t *Tables) BumpGeneration() uint32 { return atomic.AddUint32(&t.hdr.Generation, 1) }

// Sequential reports whether virtual ids are always fresh, never the
// system id itself.
func (t *Tables) Sequential() bool { return t.hdr.Flags&FlagSequential != 0 }

// Live is the number of entries of a type.
func (t *Tables) Live(rt ResourceType) uint32 {
	if !rt.valid() {
		return 0
	}
	return t.idx[rt].live()
}

// Slots is the size of each of a type's two indexes.
func (t *Tables) Slots(rt ResourceType) uint32 {
	if !rt.valid() {
		return 0
	}
	return t.idx[rt].mask + 1
}

// Lookup translates a virtual id to the system id.  A table whose
// rebuild does not end within WaitLimit reads as a miss.
func (t *Tables) Lookup(rt ResourceType, virt int32) (sys int32, ok bool) {
	if !rt.valid() {
		return 0, false
	}
	sys, ok, _ = t.idx[rt].find(t.idx[rt].byVirt, virt)
	return sys, ok
}

// Reverse translates a system id to the virtual id, as Lookup does.
func (t *Tables) Reverse(rt ResourceType, sys int32) (virt int32, ok bool) {
	if !rt.valid() {
		return 0, false
	}
	virt, ok, _ = t.idx[rt].find(t.idx[rt].bySys, sys)
	return virt, ok
}

// Entries is List without its error: nil when List fails.
func (t *Tables) Entries(rt ResourceType) []Entry {
	out, _ := t.List(rt)
	return out
}

// List lists a type's entries sorted by virtual id.  It takes no lock
// (vrid_each of table.c does): an entry bound or removed meanwhile may be
// in the list or not, and every other entry is in it once.  It fails
// with ErrWedged when a rebuild does not end within WaitLimit.
func (t *Tables) List(rt ResourceType) (_ []Entry, err error) {
	if err := t.checkType(rt); err != nil {
		return nil, err
	}
	defer t.catchFault(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	out, err := t.idx[rt].entries()
	if err != nil {
		return nil, t.wrap(err)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Virt, b.Virt) })
	return out, nil
}

// what names the tables in errors.
func (t *Tables) what() string {
	return fmt.Sprintf("tables of chain %d", t.aid)
}

// wrap gives an error of the indexes the tables' name, or returns nil.
func (t *Tables) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", t.what(), err)
}

// ErrShrunk: the table file shrank under a shared mapping of it.
var ErrShrunk = errors.New("the table file shrank under its mapping")

// catchFault turns the fault of an access to the shared mapping past the
// end of the file, which a process of the chain truncated, into an
// error: the table is unusable, but the host process that mapped it
// lives on to tear the chain down.  The caller has armed the fault with
// debug.SetPanicOnFault.  A regular file can't be sealed against
// truncation, and the table file can't be a sealed memfd (see
// docs/limits.md), so every call that touches a shared mapping from the
// host side runs under this guard.
func (t *Tables) catchFault(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if fault, ok := r.(interface{ Addr() uintptr }); ok && t.inMapping(fault.Addr()) {
		*err = fmt.Errorf("%s: %w (fault at offset %d)", t.what(), ErrShrunk, fault.Addr()-uintptr(unsafe.Pointer(&t.mem[0])))
		return
	}
	panic(r)
}

func (t *Tables) inMapping(addr uintptr) bool {
	base := uintptr(unsafe.Pointer(&t.mem[0]))
	return addr >= base && addr-base < uintptr(len(t.mem))
}

func (t *Tables) checkType(rt ResourceType) error {
	if !rt.valid() {
		return fmt.Errorf("tables %s: unknown resource type %d", t.path, uint32(rt))
	}
	return nil
}

func (t *Tables) checkIDs(rt ResourceType, ids ...int32) error {
	if err := t.checkType(rt); err != nil {
		return err
	}
	for _, id := range ids {
		if !storable(id) {
			return fmt.Errorf("tables %s: %s id %d: %w", t.path, rt, id, ErrInvalidID)
		}
	}
	return nil
}

// Bind returns the virtual id of a system id, making an entry if there is
// none, with vrid_bind's policy: the system id keeps its own value as
// virtual id when that value is free in the chain (and the tables are not
// sequential), so an unrestored chain sees the ids the OS gave; otherwise
// it gets a fresh one.  A full pid table first drops the entries of
// processes that are gone.
func (t *Tables) Bind(rt ResourceType, sys int32) (virt int32, err error) {
	if err := t.checkIDs(rt, sys); err != nil {
		return 0, err
	}
	defer t.catchFault(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	ix := &t.idx[rt]
	if virt, ok, err := ix.find(ix.bySys, sys); ok || err != nil {
		return virt, t.wrap(err)
	}
	err = t.withWriter(rt, func() error {
		var ok bool
		if virt, ok = ix.findLocked(ix.bySys, sys); ok {
			return nil
		}
		if err := t.roomLocked(ix, rt == PID); err != nil {
			return err
		}
		if !t.Sequential() && !ix.virtUsedLocked(sys) {
			virt = sys
		} else if virt, ok = ix.freshLocked(); !ok {
			// More slots would not help: every id of the range is in use.
			return fmt.Errorf("tables %s: %s %w: no fresh virtual id left in %d..%d (%d entries)",
				t.path, rt, ErrFull, ix.desc.FreshBase, ix.desc.FreshMax, ix.live())
		}
		ix.insertLocked(virt, sys)
		return nil
	})
	return virt, err
}

// roomLocked is room_locked of table.c: it makes room for one more entry,
// dropping dead entries when the index is full and collect says so, and
// rebuilding the indexes when removed slots crowd them, unless the index
// is full anyway; then it fails with ErrFull if the index still holds
// 3/4 of its slots.
func (t *Tables) roomLocked(ix *index, collect bool) error {
	if collect && ix.live() >= ix.fullAt() {
		ix.collectLocked(pidAlive)
	}
	if ix.live() < ix.fullAt() && ix.crowdedLocked() {
		ix.rebuildLocked()
	}
	if ix.live() < ix.fullAt() {
		return nil
	}
	return fmt.Errorf("tables %s: %s %w (%d entries in %d slots); raise [tables] %s_slots in config.toml",
		t.path, ix.rt, ErrFull, ix.live(), ix.mask+1, ix.rt)
}

// Insert adds an explicit pair, as a restore does.  It never drops dead
// entries to make room: a restore may insert ids of processes it has not
// started yet.
func (t *Tables) Insert(rt ResourceType, virt, sys int32) error {
	if err := t.checkIDs(rt, virt, sys); err != nil {
		return err
	}
	ix := &t.idx[rt]
	return t.withWriter(rt, func() error {
		if err := t.absentLocked(ix, virt, sys); err != nil {
			return err
		}
		if err := t.roomLocked(ix, false); err != nil {
			return err
		}
		ix.insertLocked(virt, sys)
		return nil
	})
}

func (t *Tables) absentLocked(ix *index, virt, sys int32) error {
	if other, ok := ix.findLocked(ix.byVirt, virt); ok {
		return fmt.Errorf("tables %s: %s virt %d already maps to sys %d: %w", t.path, ix.rt, virt, other, ErrExists)
	}
	if other, ok := ix.findLocked(ix.bySys, sys); ok {
		return fmt.Errorf("tables %s: %s sys %d already maps to virt %d: %w", t.path, ix.rt, sys, other, ErrExists)
	}
	return nil
}

// Rebind points an existing virtual id at a new system id, as a restore
// does once the object is recreated.  The by_virt slot is rewritten in
// place, so a lookup of virt never misses meanwhile.
//
// table.c has no rebind.  As room_locked does before an insert, Rebind
// first rebuilds crowded indexes, since each rebind may leave one more
// removed slot in by_sys; it does so even when the index is full, where
// room_locked gives up, or rebinds of a full table would fill by_sys with
// removed slots.  Its steps keep the table one that repairLocked mends if
// the writer dies between two of them: with the old pair gone from by_sys
// first, by_virt rewritten next, and the new pair put in by_sys last, at
// most one index lacks one pair of the other's.
func (t *Tables) Rebind(rt ResourceType, virt, newSys int32) error {
	if err := t.checkIDs(rt, virt, newSys); err != nil {
		return err
	}
	ix := &t.idx[rt]
	return t.withWriter(rt, func() error {
		oldSys, found := ix.findLocked(ix.byVirt, virt)
		if !found {
			return fmt.Errorf("tables %s: rebind %s virt %d: %w", t.path, rt, virt, ErrNotFound)
		}
		if oldSys == newSys {
			return nil
		}
		if other, ok := ix.findLocked(ix.bySys, newSys); ok {
			return fmt.Errorf("tables %s: rebind %s virt %d: sys %d already maps to virt %d: %w",
				t.path, rt, virt, newSys, other, ErrExists)
		}
		if ix.crowdedLocked() {
			ix.rebuildLocked()
		}
		ix.delLocked(ix.bySys, &ix.desc.TombsBySys, oldSys)
		i, _, _ := ix.probe(ix.byVirt, enc(virt)) // found above; a rebuild may have moved it
		atomic.StoreUint64(&ix.byVirt[i], makeSlot(enc(virt), newSys))
		ix.putLocked(ix.bySys, &ix.desc.TombsBySys, enc(newSys), virt)
		return nil
	})
}

// RemoveSys drops the entry of a system id.
func (t *Tables) RemoveSys(rt ResourceType, sys int32) error {
	return t.remove(rt, sys, true)
}

// RemoveVirt drops the entry of a virtual id.
func (t *Tables) RemoveVirt(rt ResourceType, virt int32) error {
	return t.remove(rt, virt, false)
}

// remove is remove_by of table.c.  Like it, it finds no entry for
// math.MinInt32, which no entry can have, rather than call the id invalid.
func (t *Tables) remove(rt ResourceType, id int32, bySys bool) error {
	if err := t.checkType(rt); err != nil {
		return err
	}
	ix := &t.idx[rt]
	side, slots := "virt", ix.byVirt
	if bySys {
		side, slots = "sys", ix.bySys
	}
	if !storable(id) {
		return fmt.Errorf("tables %s: remove %s %s %d: %w", t.path, rt, side, id, ErrNotFound)
	}
	return t.withWriter(rt, func() error {
		other, found := ix.findLocked(slots, id)
		switch {
		case !found:
			return fmt.Errorf("tables %s: remove %s %s %d: %w", t.path, rt, side, id, ErrNotFound)
		case bySys:
			ix.removeLocked(other, id)
		default:
			ix.removeLocked(id, other)
		}
		return nil
	})
}
