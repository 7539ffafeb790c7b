package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/criu"
)

// A thread dumped while blocked in a system call is restored to make the
// call again: CRIU saves its registers wound back to the syscall
// instruction, with ax set to the call's number again (compel's
// get_task_regs).  The layer made that call with system ids it had
// translated, so the restarted call would name the old host's objects and
// processes, which are gone or someone else's here.  So the first
// argument of the blocking calls that take a System V id or a pid is
// rewritten in the thread's core image: semop, semtimedop, msgsnd and
// msgrcv (the id), wait4 (the pid, or a process group as -pgid) and
// waitid (the pid or group, by idtype).  Registers are x86_64's.
//
// semop, semtimedop, msgsnd and msgrcv are never restarted by the kernel:
// the dump's own interruption (ptrace or the freezer) makes them return
// EINTR, and the layer waits again only for its quiesce signal.  A thread
// dumped with that EINTR in ax, its orig_ax still the call, was stopped
// at the call's exit before any handler ran, and the call did nothing
// (each is all or nothing), so it is wound back to make the call again,
// as CRIU does for the calls the kernel restarts.  A semtimedop restarted
// so waits its whole timeout again.

// idMaps are the old system ids of a restore and their new ones.
type idMaps struct {
	pids map[int]int
	sem  map[int32]int32
	msg  map[int32]int32
}

// restartArgs rewrites the arguments of blocked calls in the core images
// of every thread of the tree, in dir (the rewritten copy, named by the
// new tids).
func restartArgs(dir string, tree *criu.Tree, ids idMaps) error {
	for _, p := range tree.Procs {
		for _, old := range p.Threads {
			if err := restartArgsOf(filepath.Join(dir, "core-"+strconv.Itoa(ids.pids[old])+".img"), ids); err != nil {
				return fmt.Errorf("restart of thread %d (was %d): %w", ids.pids[old], old, err)
			}
		}
	}
	return nil
}

func restartArgsOf(path string, ids idMaps) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	img, err := crit.New(f, nil, "", false, false).Decode(&criu_core.CoreEntry{})
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	changed := false
	for _, e := range img.Entries {
		regs := e.Message.(*criu_core.CoreEntry).GetThreadInfo().GetGpregs()
		if regs == nil || regs.Ax == nil || regs.OrigAx == nil || regs.Ip == nil {
			continue
		}
		if int64(*regs.Ax) == -int64(unix.EINTR) && neverRestarted(*regs.OrigAx) {
			*regs.Ax = *regs.OrigAx
			*regs.Ip -= syscallInsnLen
			changed = true
		}
		if *regs.Ax == *regs.OrigAx {
			changed = rewriteArgs(*regs.OrigAx, &regs.Di, &regs.Si, ids) || changed
		}
	}
	if !changed {
		return nil
	}
	tmp := path + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = crit.New(nil, out, "", false, false).Encode(img)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// syscallInsnLen is the length of x86_64's syscall instruction (0f 05).
const syscallInsnLen = 2

// neverRestarted: the blocking System V calls, which return EINTR when
// interrupted, handler or not.
func neverRestarted(nr uint64) bool {
	switch nr {
	case unix.SYS_SEMOP, unix.SYS_SEMTIMEDOP, unix.SYS_MSGSND, unix.SYS_MSGRCV:
		return true
	}
	return false
}

// rewriteArgs maps the id arguments of syscall nr; it reports whether it
// changed one.
func rewriteArgs(nr uint64, di, si **uint64, ids idMaps) bool {
	ipc := func(m map[int32]int32, reg *uint64) bool {
		if n, ok := m[int32(*reg)]; ok {
			*reg = uint64(uint32(n))
			return true
		}
		return false
	}
	pid := func(reg *uint64) bool {
		old := int(int32(*reg))
		sign := 1
		if old < -1 {
			old, sign = -old, -1
		}
		if n, ok := ids.pids[old]; ok && old > 0 {
			*reg = uint64(uint32(int32(sign * n)))
			return true
		}
		return false
	}
	switch nr {
	case unix.SYS_SEMOP, unix.SYS_SEMTIMEDOP:
		return *di != nil && ipc(ids.sem, *di)
	case unix.SYS_MSGSND, unix.SYS_MSGRCV:
		return *di != nil && ipc(ids.msg, *di)
	case unix.SYS_WAIT4:
		return *di != nil && pid(*di)
	case unix.SYS_WAITID:
		if *di != nil && *si != nil && (**di == unix.P_PID || **di == unix.P_PGID) {
			return pid(*si)
		}
	}
	return false
}
