// Package quiesce owns the host side of the layer's quiesce protocol.
// CRIU refuses to dump a process with System V shared memory attached
// unless the process lives in an IPC namespace of its own, which a chain
// does not; so before a dump, Detach asks each process of the chain that
// /proc/<pid>/maps shows with such a mapping to detach it, and Attach
// asks it afterwards to attach it again at the same addresses.  The
// kernel, not the chain's tables, says who has what attached, and
// /proc/<pid>/maps shows each step done.
//
// The layer's side is vresource/preload/quiesce.c: a detached process has
// every thread parked in the signal handler and each range reserved
// (PROT_NONE), and waits there for Attach; a restored one wakes there.
// docs/restore.md says how a snapshot uses it.
package quiesce

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// sigRTMax is the kernel's last real-time signal on Linux (glibc's
// SIGRTMAX too).
const sigRTMax = 64

// Signal is the real-time signal the layer keeps for the protocol.
const Signal = unix.Signal(sigRTMax - vresource.QuiesceSignalOffset)

var (
	// ErrTimeout: a process did not do what it was asked in time.
	ErrTimeout = errors.New("no answer in time")
	// ErrNoLayer: a process with System V shm attached does not catch
	// Signal, so it does not run the layer and cannot be asked.
	ErrNoLayer = errors.New("does not run the vrid layer")
)

// pollEvery is how often a wait reads /proc/<pid>/maps again.
const pollEvery = 5 * time.Millisecond

// Process is a process asked to detach, with the System V mappings it
// had then: Attach waits for a segment at each Start again.
type Process struct {
	Pid  int
	SysV []Mapping
}

// Detach asks every process of pids that has System V shm attached to
// detach it, and waits up to timeout until /proc/<pid>/maps shows none.
// It returns those processes, for Attach.  A process that exits meanwhile
// has nothing attached.  On error nothing stays detached: every process
// asked is asked to attach again, and the error names each pid that did
// not detach.
func Detach(pids []int, timeout time.Duration) ([]Process, error) {
	var procs []Process
	for _, pid := range pids {
		maps, err := ReadMaps(pid)
		if gone(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("detach SysV shm: %w", err)
		}
		sysv := sysV(maps)
		if len(sysv) == 0 {
			continue
		}
		if err := catchesSignal(pid); err != nil {
			return nil, fmt.Errorf("detach SysV shm: %w", err)
		}
		procs = append(procs, Process{Pid: pid, SysV: sysv})
	}
	var sendErr error
	for i, p := range procs {
		if err := send(p.Pid, vresource.QuiesceDetach); err != nil && !gone(err) {
			sendErr = fmt.Errorf("pid %d: %w", p.Pid, err)
			procs = procs[:i]
			break
		}
	}
	err := sendErr
	if err == nil {
		if err = waitFor(procs, timeout, detached, "still has SysV shm attached"); err == nil {
			return procs, nil
		}
	}
	if aerr := Attach(procs, timeout); aerr != nil {
		err = errors.Join(err, fmt.Errorf("attach again: %w", aerr))
	}
	return nil, fmt.Errorf("detach SysV shm: %w", err)
}

// Attach asks each process to attach its segments again, and waits up to
// timeout until /proc/<pid>/maps shows a System V mapping at each address
// it had.  It serves after a dump with the chain left running, after a
// failed snapshot, and after a restore, where the tables name the new
// segments.
func Attach(procs []Process, timeout time.Duration) error {
	var errs []error
	for _, p := range procs {
		if err := send(p.Pid, vresource.QuiesceAttach); err != nil {
			errs = append(errs, fmt.Errorf("pid %d: %w", p.Pid, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("attach SysV shm: %w", errors.Join(errs...))
	}
	if err := waitFor(procs, timeout, attached, "has not attached every segment again (its log says why)"); err != nil {
		return fmt.Errorf("attach SysV shm: %w", err)
	}
	return nil
}

// detached: no System V mapping left (a process that is gone has none).
func detached(p Process) (bool, error) {
	maps, err := ReadMaps(p.Pid)
	if err != nil {
		return gone(err), err
	}
	return len(sysV(maps)) == 0, nil
}

// attached: a System V mapping starts at each address p had one.
func attached(p Process) (bool, error) {
	maps, err := ReadMaps(p.Pid)
	if gone(err) {
		return false, fmt.Errorf("pid %d exited before it attached again", p.Pid)
	}
	if err != nil {
		return false, err
	}
	for _, was := range p.SysV {
		if !slices.ContainsFunc(maps, func(m Mapping) bool { return m.SysV() && m.Start == was.Start }) {
			return false, nil
		}
	}
	return true, nil
}

// waitFor polls until done holds for every process, or fails for it, or
// timeout passes.  The error names each process that failed, and each
// that still was not done (what it still was not).
func waitFor(procs []Process, timeout time.Duration, done func(Process) (bool, error), what string) error {
	var errs []error
	pending := slices.Clone(procs)
	deadline := time.Now().Add(timeout)
	for {
		pending = slices.DeleteFunc(pending, func(p Process) bool {
			ok, err := done(p)
			if !ok && err != nil {
				errs = append(errs, err)
				return true
			}
			return ok
		})
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollEvery)
	}
	for _, p := range pending {
		hint := ""
		if _, blocked, err := signalMasks(p.Pid); err == nil && blocked&sigBit(Signal) != 0 {
			hint = fmt.Sprintf(" (its main thread blocks signal %d)", Signal)
		}
		errs = append(errs, fmt.Errorf("pid %d %s after %v%s: %w", p.Pid, what, timeout, hint, ErrTimeout))
	}
	return errors.Join(errs...)
}

func catchesSignal(pid int) error {
	caught, _, err := signalMasks(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	if caught&sigBit(Signal) == 0 {
		return fmt.Errorf("pid %d has SysV shm attached but does not catch signal %d: %w", pid, Signal, ErrNoLayer)
	}
	return nil
}

// Undo asks a restored process to apply its recorded SEM_UNDO
// adjustments again (the layer's sem.c); the caller sees it done in the
// tables.  A detached process does it while it waits for Attach.
func Undo(pid int) error {
	caught, _, err := signalMasks(pid)
	if err == nil && caught&sigBit(Signal) == 0 {
		err = fmt.Errorf("does not catch signal %d: %w", Signal, ErrNoLayer)
	}
	if err == nil {
		err = send(pid, vresource.QuiesceUndo)
	}
	if err != nil {
		return fmt.Errorf("re-apply SEM_UNDO adjustments in pid %d: %w", pid, err)
	}
	return nil
}

func sigBit(sig unix.Signal) uint64 {
	return 1 << (uint(sig) - 1)
}

// gone says whether err means the process no longer exists.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// siginfo is the kernel's siginfo_t for SI_QUEUE on a 64-bit little-endian
// machine: value holds sival_int in its low half.
type siginfo struct {
	signo, errno, code int32
	_                  int32
	pid                int32
	uid                uint32
	value              uint64
	_                  [96]byte
}

const siQueue = -1

// send queues Signal with value to pid, as sigqueue(3) does.
func send(pid int, value uint32) error {
	info := siginfo{signo: int32(Signal), code: siQueue, pid: int32(os.Getpid()),
		uid: uint32(os.Getuid()), value: uint64(value)}
	_, _, errno := unix.Syscall(unix.SYS_RT_SIGQUEUEINFO, uintptr(pid), uintptr(Signal),
		uintptr(unsafe.Pointer(&info)))
	if errno != 0 {
		return fmt.Errorf("rt_sigqueueinfo %s: %w", signalName(value), errno)
	}
	return nil
}

func signalName(value uint32) string {
	switch value {
	case vresource.QuiesceDetach:
		return "detach"
	case vresource.QuiesceAttach:
		return "attach"
	case vresource.QuiesceUndo:
		return "undo"
	}
	return fmt.Sprintf("%#x", value)
}
