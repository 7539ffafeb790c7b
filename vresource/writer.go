package vresource

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// WaitLimit bounds every wait of Go code on a chain's table: for the
// writer lock, and for a rebuild (an odd Rebuilds) to end.  Go code runs
// on the host, as root, against a file every process of the chain can
// write: a process that holds the lock forever, or keeps a rebuild
// running, must cost it an error, never a hang.  Tests lower it.
var WaitLimit = 2 * time.Second

// ErrWedged: a wait on the table outlasted WaitLimit.
var ErrWedged = errors.New("the chain may be wedged")

// errPrivate: a write to a private copy (ReadTables).
var errPrivate = errors.New("a private copy takes no writes")

// withWriter runs fn, a write to the table of rt, holding the chain's
// writer lock, which every C and Go writer of the chain takes: an
// open-file-description write lock on the first byte of the table file
// (vrid_lock of preload/lock.c).  The kernel drops it when the
// description's last holder dies, so a writer killed under the lock never
// leaves it held, and it works across pid namespaces.
//
// Meanwhile the header's Dirty names the table, as begin_write and
// end_write of table.c do: a writer that dies inside fn leaves the mark,
// and the next one to take the lock repairs the table (repairLocked).
//
// lock.c blocks every signal while it holds the lock, so that a handler
// in the same thread can't wait on it.  Go handlers never take the lock
// (signals reach Go code through channels), so nothing is blocked here;
// a signal that kills the process mid-write is one more death that the
// mark covers.
func (t *Tables) withWriter(rt ResourceType, fn func() error) (err error) {
	defer t.catchFault(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if err := t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	atomic.StoreUint32(&t.hdr.Dirty, uint32(rt)+1)
	err = fn()
	atomic.StoreUint32(&t.hdr.Dirty, 0)
	return err
}

// lockWriter takes mu, then the OFD lock, then repairs what a writer that
// died under the lock left, as vrid_lock does.  An OFD lock belongs to an
// open file description, not to a thread: every goroutine of this Tables
// locks through the one description of t.file, which would let them all
// in at once, so mu lets one at a time at it, as the thread word of
// lock.c does for the threads of a process.  Another Tables of the same
// file, in this process or not, has a description of its own.
//
// The wait for the lock is bounded by WaitLimit: F_OFD_SETLK is tried
// again and again, with growing pauses, rather than F_OFD_SETLKW, which
// nothing could interrupt in time.
func (t *Tables) lockWriter() error {
	if t.private {
		return fmt.Errorf("%s: %w", t.what(), errPrivate)
	}
	t.mu.Lock()
	limit := WaitLimit
	if t.wedged {
		limit = 0 // one wait was enough: try once
	}
	err := ofdLockBounded(t.file.Fd(), limit)
	t.wedged = errors.Is(err, ErrWedged)
	if err != nil {
		t.mu.Unlock()
		if t.wedged {
			return fmt.Errorf("%s: writer lock held for %v by another process; %w", t.what(), WaitLimit, ErrWedged)
		}
		return fmt.Errorf("%s: %w", t.what(), err)
	}
	t.repairLocked()
	return nil
}

// ofdLockBounded takes the writer lock of fd, waiting at most limit.
func ofdLockBounded(fd uintptr, limit time.Duration) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: unix.SEEK_SET, Start: 0, Len: 1}
	deadline := time.Now().Add(limit)
	pause := 20 * time.Microsecond
	for {
		err := unix.FcntlFlock(fd, unix.F_OFD_SETLK, &lk)
		switch {
		case err == nil:
			return nil
		case err != unix.EAGAIN && err != unix.EACCES && err != unix.EINTR:
			return fmt.Errorf("take the writer lock: %w", err)
		case !time.Now().Before(deadline):
			return ErrWedged
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// lockHeld reports whether some description holds the writer lock of fd.
func lockHeld(fd uintptr) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: unix.SEEK_SET, Start: 0, Len: 1}
	if err := unix.FcntlFlock(fd, unix.F_OFD_GETLK, &lk); err != nil {
		return false, fmt.Errorf("test the writer lock: %w", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// unlockWriter drops what lockWriter took.  Unlocking a lock held through
// an open fd can't fail but for EINTR, which ofdLock retries.
func (t *Tables) unlockWriter() {
	ofdLock(t.file.Fd(), unix.F_UNLCK)
	t.mu.Unlock()
}

// settle takes the writer lock and lets it go, for lock-free readers that
// wait on a rebuild too long: its writer died, and taking the lock
// repairs the table.  A lock that fails repairs nothing, and the reader
// gives up.  A private copy has no writer to wait for: it is repaired
// in place.
func (t *Tables) settle() error {
	if t.private {
		t.repairLocked()
		return nil
	}
	if err := t.lockWriter(); err != nil {
		return err
	}
	t.unlockWriter()
	return nil
}

// repairLocked is vrid_repair_locked of table.c.  A non-zero Dirty under
// the lock means a writer died inside a write: Dirty - 1 is the type of
// the table it was writing, which index.repairLocked makes whole again.
// A value past the types names no table and is only cleared.  An odd
// rebuild count with no mark is repaired too, so that no reader waits on
// it.
func (t *Tables) repairLocked() {
	if dirty := atomic.LoadUint32(&t.hdr.Dirty); dirty != 0 {
		if dirty <= NumResourceTypes {
			t.idx[dirty-1].repairLocked()
		}
		atomic.StoreUint32(&t.hdr.Dirty, 0)
	}
	for i := range t.idx {
		if atomic.LoadUint32(&t.idx[i].desc.Rebuilds)&1 != 0 {
			t.idx[i].repairLocked()
		}
	}
}

// ofdLock is ofd_lock of lock.c: F_OFD_SETLKW on byte 0, length 1.  A
// signal (the Go runtime preempts goroutines with SIGURG) interrupts a
// wait with EINTR; the wait goes on.
func ofdLock(fd uintptr, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: unix.SEEK_SET, Start: 0, Len: 1} // Pid 0, as OFD locks want
	for {
		err := unix.FcntlFlock(fd, unix.F_OFD_SETLKW, &lk)
		if err != unix.EINTR {
			return err
		}
	}
}

// pidAlive is pid_sys_alive of preload/pid.c: an entry of the pid table
// also stands for the process group and session of that id.
func pidAlive(sys int32) bool {
	return unix.Kill(int(sys), 0) != unix.ESRCH || unix.Kill(-int(sys), 0) != unix.ESRCH
}
