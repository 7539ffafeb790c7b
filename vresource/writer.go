package vresource

import (
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// withWriter runs fn holding the file's writer lock: the header word that
// holds the writer's system tid, shared with every C and Go writer of the
// chain.  The goroutine stays on one OS thread meanwhile, because the word
// names a thread, and a stuck lock is stolen only when that thread is gone.
//
// table.c blocks every signal while it holds the lock, so that a handler
// in the same thread can't wait on it.  Go handlers never take the lock
// (signals reach Go code through channels), so nothing is blocked here.
func (t *Tables) withWriter(fn func() error) error {
	// Writers of this process queue on mu rather than spin on the shared
	// word, each on a thread of its own.
	t.mu.Lock()
	defer t.mu.Unlock()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	word := &t.hdr.Writer
	me := uint32(unix.Gettid())
	for spins := uint32(1); !atomic.CompareAndSwapUint32(word, 0, me); spins++ {
		// A writer killed inside its few instructions leaves its tid.
		if spins%256 == 0 {
			owner := atomic.LoadUint32(word)
			if owner != 0 && !tidAlive(owner) {
				atomic.CompareAndSwapUint32(word, owner, 0)
			}
		}
		runtime.Gosched()
	}
	defer atomic.StoreUint32(word, 0)
	return fn()
}

func tidAlive(tid uint32) bool {
	return unix.Kill(int(tid), 0) != unix.ESRCH
}

// pidAlive is pid_sys_alive of preload/pid.c: an entry of the pid table
// also stands for the process group and session of that id.
func pidAlive(sys int32) bool {
	return unix.Kill(int(sys), 0) != unix.ESRCH || unix.Kill(-int(sys), 0) != unix.ESRCH
}
