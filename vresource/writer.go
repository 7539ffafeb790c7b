package vresource

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

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
func (t *Tables) withWriter(rt ResourceType, fn func() error) error {
	if err := t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	atomic.StoreUint32(&t.hdr.Dirty, uint32(rt)+1)
	err := fn()
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
func (t *Tables) lockWriter() error {
	t.mu.Lock()
	if err := ofdLock(t.file.Fd(), unix.F_WRLCK); err != nil {
		t.mu.Unlock()
		return fmt.Errorf("tables %s: take the writer lock: %w", t.path, err)
	}
	t.repairLocked()
	return nil
}

// unlockWriter drops what lockWriter took.  Unlocking a lock held through
// an open fd can't fail but for EINTR, which ofdLock retries.
func (t *Tables) unlockWriter() {
	ofdLock(t.file.Fd(), unix.F_UNLCK)
	t.mu.Unlock()
}

// settle takes the writer lock and lets it go, for lock-free readers that
// wait on a rebuild too long: its writer died, and taking the lock
// repairs the table.  A lock that fails repairs nothing; the reader looks
// again, and settles again later.
func (t *Tables) settle() {
	if t.lockWriter() == nil {
		t.unlockWriter()
	}
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
