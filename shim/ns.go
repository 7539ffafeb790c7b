package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// A checkpoint and a restore run runc, and through it CRIU, from a thread
// in the container's IPC namespace.  CRIU takes the namespace it runs in
// for its own: it neither dumps it (which would take the neighbours'
// objects of a shared namespace along, and clash with theirs at restore:
// "Failed to create shm set: File exists") nor restores one.  vrid saves
// and recreates the chain's own objects instead.  CRIU has no
// --external for IPC namespaces, and runc's org.criu.config file has no
// option that skips one, so this is the way to keep it out.

// onThread runs fn on a locked OS thread that enter first moves into the
// namespaces fn needs.  The thread is never given back to other
// goroutines: it ends with fn's goroutine.  Processes fn starts inherit
// its namespaces.
func onThread(enter func() error, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := enter(); err != nil {
			done <- err
			return
		}
		done <- fn()
	}()
	return <-done
}

// joinIPC enters the IPC namespace at path, if it is want (a zero want
// takes whatever path names).
func joinIPC(path string, want vresource.NamespaceID) func() error {
	return func() error {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("enter IPC namespace: %w", err)
		}
		defer f.Close()
		got, err := vresource.NamespaceOfFD(int(f.Fd()))
		if err != nil {
			return fmt.Errorf("enter IPC namespace %s: %w", path, err)
		}
		if !want.IsZero() && got != want {
			return fmt.Errorf("%s is IPC namespace %s, the chain's is %s", path, got, want)
		}
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWIPC); err != nil {
			return fmt.Errorf("enter IPC namespace %s: %w", path, err)
		}
		return nil
	}
}

// newIPC enters a new IPC namespace, for a container restored into a
// private one: the restored processes keep it.
func newIPC() error {
	if err := unix.Unshare(unix.CLONE_NEWIPC); err != nil {
		return fmt.Errorf("new IPC namespace: %w", err)
	}
	return nil
}

// stay leaves the thread where it is.
func stay() error { return nil }

// nsPidOf is the pid of host process pid in its own pid namespace (the
// last field of NSpid), as a container's tables hold it.
func nsPidOf(pid int) (int32, error) {
	n, err := vresource.InnermostID(pid, "NSpid")
	return int32(n), err
}

// hostPidIn finds the host pid of pid nsPid of the pid namespace of host
// process init.
func hostPidIn(init int) func(nsPid int32) (int, error) {
	return func(nsPid int32) (int, error) {
		want, err := vresource.NamespaceOf(fmt.Sprintf("/proc/%d/ns/pid", init))
		if err != nil {
			return 0, err
		}
		dirs, err := os.ReadDir("/proc")
		if err != nil {
			return 0, err
		}
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			if ns, err := vresource.NamespaceOf(filepath.Join("/proc", d.Name(), "ns", "pid")); err != nil || ns != want {
				continue
			}
			if n, err := nsPidOf(pid); err == nil && n == nsPid {
				return pid, nil
			}
		}
		return 0, fmt.Errorf("no process %d in the pid namespace of %d", nsPid, init)
	}
}

// holderProc is a procfs of the pid namespace at path, when path is
// /proc/<pid>/ns/pid: that process's /proc.
func holderProc(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "/proc/")
	pid, tail, _ := strings.Cut(rest, "/")
	if _, err := strconv.Atoi(pid); !ok || err != nil || tail != "ns/pid" {
		return "", fmt.Errorf("pid namespace %s: restoring into a shared pid namespace needs it named as /proc/<pid>/ns/pid", path)
	}
	proc := filepath.Join("/proc", pid, "root", "proc")
	var fs unix.Statfs_t
	if err := unix.Statfs(proc, &fs); err != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		return "", fmt.Errorf("pid namespace %s: no procfs at %s (%v): the process holding it must mount /proc", path, proc, err)
	}
	return proc, nil
}
