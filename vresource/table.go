package vresource

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	// ErrWedged: a wait on the table outlasted WaitLimit.
	ErrWedged = errors.New("the chain may be wedged")
	// ErrShrunk: the table file shrank under a shared mapping of it.
	ErrShrunk = errors.New("the table file shrank under its mapping")

	// errPrivate: a write to a private copy (ReadTables).
	errPrivate = errors.New("a private copy takes no writes")
)

// WaitLimit bounds every wait of the host side on a chain's table: for
// the writer lock, and for a rebuild to end.  The host runs as root
// against a file every process of the chain can write: a process that
// holds the lock forever, or keeps a rebuild running, must cost it an
// error, never a hang.  A Tables keeps the limit it was opened with.
// Tests lower it.
var WaitLimit = 2 * time.Second

// Tables is one chain's table file, mapped shared, or a private copy of
// it (ReadTables), worked on by the table engine (engine.go), the same
// code the chain's processes run.  Lookups don't lock; every write takes
// the file's writer lock, shared with the chain's processes, and marks
// the table it changes in the header until it is whole, so that the
// next writer repairs what a writer that died halfway left.  A file that
// a process of the chain truncates under the mapping fails every call
// with ErrShrunk.  A Tables must not be used after Close.
//
// A private copy is taken with pread: no process of the chain can change
// it under its reader, and it takes no writes.
type Tables struct {
	path    string
	eng     engine
	mem     []byte   // the whole file, mapped shared, or a private copy in C memory
	file    *os.File // a private copy's file, open for the state of its writer lock; else nil
	private bool
	wait    time.Duration // WaitLimit when opened
	aid     AID
	name    string
	flags   uint32
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

// Sequential reports whether virtual ids are always fresh, never the
// system id itself.
func (t *Tables) Sequential() bool { return t.flags&FlagSequential != 0 }

// Generation counts the restores that rebound ids in these tables; 0 if
// the file can't be read.
func (t *Tables) Generation() uint32 {
	g, _ := t.eng.generation()
	return g
}

// BumpGeneration marks one more restore, under the writer lock, and
// returns the new generation.  Each process of the chain checks its view
// of the file again when it next takes the lock.
func (t *Tables) BumpGeneration() (uint32, error) {
	if err := t.writable(); err != nil {
		return 0, err
	}
	g, errno := t.eng.bumpGeneration()
	return g, t.fail(PID, errno)
}

// Live is the number of entries of a type.
func (t *Tables) Live(rt ResourceType) uint32 {
	if !rt.valid() {
		return 0
	}
	d, _ := t.eng.desc(rt)
	return d.Live
}

// Slots is the size of each of a type's two indexes.
func (t *Tables) Slots(rt ResourceType) uint32 {
	if !rt.valid() {
		return 0
	}
	return t.eng.slots(rt)
}

// Lookup translates a virtual id to the system id.  A table whose
// rebuild does not end within WaitLimit reads as a miss.
func (t *Tables) Lookup(rt ResourceType, virt int32) (sys int32, ok bool) {
	if !rt.valid() {
		return 0, false
	}
	sys, errno := t.eng.lookup(rt, virt, false)
	return sys, errno == 0
}

// Reverse translates a system id to the virtual id, as Lookup does.
func (t *Tables) Reverse(rt ResourceType, sys int32) (virt int32, ok bool) {
	if !rt.valid() {
		return 0, false
	}
	virt, errno := t.eng.lookup(rt, sys, true)
	return virt, errno == 0
}

// Entries is List without its error: nil when List fails.
func (t *Tables) Entries(rt ResourceType) []Entry {
	out, _ := t.List(rt)
	return out
}

// List lists a type's entries sorted by virtual id.  It takes no lock:
// an entry bound or removed meanwhile may be in the list or not, and
// every other entry is in it once.  It fails with ErrWedged when a
// rebuild does not end within WaitLimit.
func (t *Tables) List(rt ResourceType) ([]Entry, error) {
	if err := t.checkType(rt); err != nil {
		return nil, err
	}
	out, errno := t.eng.list(rt)
	if errno != 0 {
		return nil, t.fail(rt, errno)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Virt, b.Virt) })
	return out, nil
}

// Bind returns the virtual id of a system id, making an entry if there is
// none: the system id keeps its own value as virtual id when that value
// is free in the chain (and the tables are not sequential), so an
// unrestored chain sees the ids the OS gave; otherwise it gets a fresh
// one.  A full pid table first drops the entries of processes that are
// gone; the host never drops IPC entries, as it can't see the chain's
// IPC namespace.
func (t *Tables) Bind(rt ResourceType, sys int32) (int32, error) {
	if err := t.writableIDs(rt, sys); err != nil {
		return 0, err
	}
	virt, errno := t.eng.bind(rt, sys)
	return virt, t.fail(rt, errno)
}

// BindKey returns the private system key for a virtual IPC key, deriving
// one from the AID and the key when the chain has none yet (created):
// two chains using one fixed key get two objects.
func (t *Tables) BindKey(vkey int32) (skey int32, created bool, err error) {
	return t.bindKey(vkey, 0)
}

// bindKey tries derived keys from attempt on, as the layer does to step
// past keys that objects outside vrid hold.
func (t *Tables) bindKey(vkey int32, attempt uint32) (int32, bool, error) {
	if err := t.writableIDs(IPCKey, vkey); err != nil {
		return 0, false, err
	}
	skey, created, errno := t.eng.bindKey(vkey, attempt)
	return skey, created, t.fail(IPCKey, errno)
}

// Insert adds an explicit pair, as a restore does.  It never drops dead
// entries to make room: a restore may insert ids of processes it has not
// started yet.
func (t *Tables) Insert(rt ResourceType, virt, sys int32) error {
	if err := t.writableIDs(rt, virt, sys); err != nil {
		return err
	}
	switch errno := t.eng.insert(rt, virt, sys); errno {
	case unix.EEXIST:
		if other, ok := t.Lookup(rt, virt); ok {
			return fmt.Errorf("tables %s: %s virt %d already maps to sys %d: %w", t.path, rt, virt, other, ErrExists)
		}
		other, _ := t.Reverse(rt, sys)
		return fmt.Errorf("tables %s: %s sys %d already maps to virt %d: %w", t.path, rt, sys, other, ErrExists)
	default:
		return t.fail(rt, errno)
	}
}

// Rebind points an existing virtual id at a new system id, as a restore
// does once the object is recreated.  A lookup of virt never misses
// meanwhile.
func (t *Tables) Rebind(rt ResourceType, virt, newSys int32) error {
	if err := t.writableIDs(rt, virt, newSys); err != nil {
		return err
	}
	switch errno := t.eng.rebind(rt, virt, newSys); errno {
	case unix.ENOENT:
		return fmt.Errorf("tables %s: rebind %s virt %d: %w", t.path, rt, virt, ErrNotFound)
	case unix.EEXIST:
		other, _ := t.Reverse(rt, newSys)
		return fmt.Errorf("tables %s: rebind %s virt %d: sys %d already maps to virt %d: %w",
			t.path, rt, virt, newSys, other, ErrExists)
	default:
		return t.fail(rt, errno)
	}
}

// RemoveSys drops the entry of a system id.
func (t *Tables) RemoveSys(rt ResourceType, sys int32) error {
	return t.remove(rt, sys, true)
}

// RemoveVirt drops the entry of a virtual id.
func (t *Tables) RemoveVirt(rt ResourceType, virt int32) error {
	return t.remove(rt, virt, false)
}

// remove finds no entry for math.MinInt32, which no entry can have,
// rather than call the id invalid.
func (t *Tables) remove(rt ResourceType, id int32, bySys bool) error {
	if err := t.writableIDs(rt); err != nil {
		return err
	}
	switch errno := t.eng.remove(rt, id, bySys); errno {
	case unix.ENOENT:
		side := "virt"
		if bySys {
			side = "sys"
		}
		return fmt.Errorf("tables %s: remove %s %s %d: %w", t.path, rt, side, id, ErrNotFound)
	default:
		return t.fail(rt, errno)
	}
}

// what names the tables in errors.
func (t *Tables) what() string {
	return fmt.Sprintf("tables of chain %d", t.aid)
}

// fail makes an error of what the engine answered to a call on rt's
// table: nil for 0.
func (t *Tables) fail(rt ResourceType, errno syscall.Errno) error {
	switch errno {
	case 0:
		return nil
	case unix.ETIMEDOUT:
		return fmt.Errorf("%s: writer lock held for %v by another process; %w", t.what(), t.wait, ErrWedged)
	case unix.EBUSY:
		return fmt.Errorf("%s: a rebuild of the %s table has not ended in %v; %w", t.what(), rt, t.wait, ErrWedged)
	case unix.EFAULT:
		return fmt.Errorf("%s: %w (fault at offset %d)", t.what(), ErrShrunk, t.eng.faultOffset())
	case unix.EINVAL:
		return fmt.Errorf("tables %s: %s id: %w", t.path, rt, ErrInvalidID)
	case unix.ENOSPC:
		d, _ := t.eng.desc(rt)
		if slots := t.eng.slots(rt); d.Live >= fullAt(slots) {
			return fmt.Errorf("tables %s: %s %w (%d entries in %d slots); raise [tables] %s_slots in config.toml",
				t.path, rt, ErrFull, d.Live, slots, rt)
		}
		// More slots would not help: every id of the range is in use.
		return fmt.Errorf("tables %s: %s %w: no fresh virtual id left in %d..%d (%d entries)",
			t.path, rt, ErrFull, d.FreshBase, d.FreshMax, d.Live)
	}
	return fmt.Errorf("%s: %s table: %w", t.what(), rt, errno)
}

// fullAt is the live count at which an index counts as full (FULL of
// preload/table.c): 3/4 of its slots, to keep probes short.
func fullAt(slots uint32) uint32 {
	mask := slots - 1
	return mask - mask>>2
}

func (t *Tables) checkType(rt ResourceType) error {
	if !rt.valid() {
		return fmt.Errorf("tables %s: unknown resource type %d", t.path, uint32(rt))
	}
	return nil
}

func (t *Tables) writable() error {
	if t.private {
		return fmt.Errorf("%s: %w", t.what(), errPrivate)
	}
	return nil
}

// writableIDs checks a write's type and ids before the engine sees them.
func (t *Tables) writableIDs(rt ResourceType, ids ...int32) error {
	if err := t.checkType(rt); err != nil {
		return err
	}
	for _, id := range ids {
		if id == math.MinInt32 {
			return fmt.Errorf("tables %s: %s id %d: %w", t.path, rt, id, ErrInvalidID)
		}
	}
	return t.writable()
}

// Close unmaps or frees the table and closes the file.
func (t *Tables) Close() error {
	if t.mem == nil {
		return nil
	}
	mem := t.mem
	t.mem = nil
	t.eng.close()
	var err error
	if t.private {
		cFree(mem)
		if t.file != nil {
			err = t.file.Close()
		}
	} else {
		err = unix.Munmap(mem)
	}
	if err != nil {
		return fmt.Errorf("close tables %s: %w", t.path, err)
	}
	return nil
}
