package vresource

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// withWriter runs fn holding the chain's writer lock, which every C and
// Go writer of the chain takes: an open-file-description write lock on
// the first byte of the table file (vrid_lock of preload/table.c).  The
// kernel drops it when the description's last holder dies, so a writer
// killed under the lock never leaves it held, and it works across pid
// namespaces.
//
// table.c blocks every signal while it holds the lock, so that a handler
// in the same thread can't wait on it.  Go handlers never take the lock
// (signals reach Go code through channels), so nothing is blocked here.
func (t *Tables) withWriter(fn func() error) error {
	if err := t.lockWriter(); err != nil {
		return err
	}
	defer t.unlockWriter()
	return fn()
}

// lockWriter takes mu, then the OFD lock.  An OFD lock belongs to an open
// file description, not to a thread: every goroutine of this Tables
// locks through the one description of t.file, which would let them all
// in at once, so mu lets one at a time at it.  Another Tables of the same
// file, in this process or not, has a description of its own.
func (t *Tables) lockWriter() error {
	t.mu.Lock()
	if err := ofdLock(t.file.Fd(), unix.F_WRLCK); err != nil {
		t.mu.Unlock()
		return fmt.Errorf("tables %s: take the writer lock: %w", t.path, err)
	}
	return nil
}

// unlockWriter drops what lockWriter took.  Unlocking a lock held through
// an open fd can't fail but for EINTR, which ofdLock retries.
func (t *Tables) unlockWriter() {
	ofdLock(t.file.Fd(), unix.F_UNLCK)
	t.mu.Unlock()
}

// ofdLock is ofd_lock of table.c: F_OFD_SETLKW on byte 0, length 1.  A
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
