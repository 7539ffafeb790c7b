package vresource

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReadTables takes a private copy of the table file open at f, with
// pread: what host-side readers (vrid ps, vrid tables, teardown) look at.
// Every process of the chain can write the file, so the copy is checked
// as OpenTables checks a mapping; a file that shrinks or grows meanwhile
// fails the check rather than fault, and nothing the chain does later
// changes the copy.  f stays open, owned by the Tables, for the writer
// lock's state.
//
// A copy is only good when no write was under way while it was taken:
// the header's Dirty mark and every Rebuilds count must read the same,
// and at rest, before and after the copy.  While a writer holds the lock
// the copy is taken again, for at most WaitLimit; a mark left by a writer
// that died (nobody holds the lock) is repaired in the copy, as the next
// writer would repair the file.
func ReadTables(f *os.File) (*Tables, error) {
	return readTables(f, false)
}

// SalvageTables is ReadTables for teardown, which must remove what the
// tables name even when a process of the chain wedged them: after
// WaitLimit it returns the copy as it was last taken, repaired in itself,
// together with the ErrWedged error.
func SalvageTables(f *os.File) (*Tables, error) {
	return readTables(f, true)
}

func readTables(f *os.File, salvage bool) (*Tables, error) {
	fail := func(err error) (*Tables, error) {
		return nil, fmt.Errorf("read tables %s: %w", f.Name(), err)
	}
	deadline := time.Now().Add(WaitLimit)
	pause := 20 * time.Microsecond
	for {
		t, settled, err := readCopy(f)
		if err != nil {
			return fail(err)
		}
		if settled {
			t.file = f
			return t, nil
		}
		held, err := lockHeld(f.Fd())
		if err != nil {
			t.Close()
			return fail(err)
		}
		if !held {
			if err := t.repair(); err != nil {
				t.Close()
				return fail(err)
			}
			t.file = f
			return t, nil
		}
		if time.Now().After(deadline) {
			_, err := fail(fmt.Errorf("%s: writer lock held for %v by another process; %w", t.what(), WaitLimit, ErrWedged))
			if !salvage {
				t.Close()
				return nil, err
			}
			if rerr := t.repair(); rerr != nil {
				err = errors.Join(err, rerr)
			}
			t.file = f
			return t, err
		}
		t.Close()
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// readCopy reads the whole file into C memory and checks it with the
// engine.  settled: no write was under way, as far as the header tells.
func readCopy(f *os.File) (t *Tables, settled bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, fmt.Errorf("%w: not a regular file (mode %#o)", ErrCorrupt, st.Mode)
	}
	if st.Size < TableHeaderSize || st.Size > maxFileSize {
		return nil, false, fmt.Errorf("%w: %d bytes, outside %d..%d", ErrCorrupt, st.Size, TableHeaderSize, maxFileSize)
	}
	before := make([]byte, TableHeaderSize)
	if err := preadFull(f, before); err != nil {
		return nil, false, err
	}
	mem := cAlloc(int(st.Size))
	if err := preadFull(f, mem); err != nil {
		cFree(mem)
		return nil, false, err
	}
	after := make([]byte, TableHeaderSize)
	if err := preadFull(f, after); err != nil {
		cFree(mem)
		return nil, false, err
	}
	if t, err = attachEngine(f.Name(), mem, uint64(len(mem)), -1, true); err != nil {
		cFree(mem)
		return nil, false, err
	}
	return t, atRest(before) && marksOf(before) == marksOf(after), nil
}

// repair mends in a private copy what a writer that died left, as the
// next writer would mend the file.
func (t *Tables) repair() error {
	return t.fail(PID, t.eng.settle())
}

// maxFileSize is the largest file fileLayout makes.
var maxFileSize = func() int64 {
	var slots [NumResourceTypes]uint32
	for rt := range slots {
		slots[rt] = MaxSlots
	}
	return int64(fileLayout(slots).size)
}()

func preadFull(f *os.File, buf []byte) error {
	n, err := f.ReadAt(buf, 0)
	if n == len(buf) {
		return nil
	}
	if err == io.EOF || err == nil {
		return fmt.Errorf("%w: the file shrank to %d bytes while read", ErrCorrupt, n)
	}
	return err
}

// writeMarks are the header fields a writer changes when it starts and
// ends: the Dirty mark and each table's Rebuilds.
type writeMarks struct {
	dirty    uint32
	rebuilds [NumResourceTypes]uint32
}

func marksOf(raw []byte) writeMarks {
	words := make([]uint64, (len(raw)+7)/8)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(raw)), raw)
	h := (*header)(unsafe.Pointer(&words[0]))
	m := writeMarks{dirty: h.Dirty}
	for rt := range h.Tables {
		m.rebuilds[rt] = h.Tables[rt].Rebuilds
	}
	return m
}

// atRest: no write mark and no rebuild running.
func atRest(raw []byte) bool {
	m := marksOf(raw)
	if m.dirty != 0 {
		return false
	}
	for _, r := range m.rebuilds {
		if r&1 != 0 {
			return false
		}
	}
	return true
}

// lockHeld reports whether some description holds the writer lock of fd.
func lockHeld(fd uintptr) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: unix.SEEK_SET, Start: 0, Len: 1}
	if err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("test the writer lock: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}
