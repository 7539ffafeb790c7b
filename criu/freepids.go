package criu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoFreePids: the pid namespace has too few free pids for the tree.
var ErrNoFreePids = errors.New("not enough free pids")

// minPid is the kernel's RESERVED_PIDS: where its allocator starts again
// after it wraps at pid_max.  Pids below are left to early boot.
const minPid = 300

// pidLockPath is the lock that LockPids takes.
const pidLockPath = "/run/vrid/criu-pids.lock"

// ChooseFreePids returns a free system pid for every pid and tid of the
// tree (Tree.Ids), for RewritePids.  A pid is free when no task has it
// and no process group or session is named by it: clone3's set_tid, which
// CRIU restores every pid and tid with, fails with EEXIST on both.
//
// CRIU takes the pids only when it restores, so until then another fork
// could take one.  The kernel hands out pids upwards from ns_last_pid and
// wraps at pid_max, so the pids chosen are the free ones just below
// ns_last_pid: forks reach them only after going round the whole pid
// space.  What remains:
//   - a process that picks its own pid (clone3 set_tid, writing
//     ns_last_pid: CRIU restores, checkpointing tools) can take one;
//     other restores through this package are kept out by LockPids;
//   - with the pid space nearly full, the allocator may wrap onto them.
//
// In both cases the restore fails with "File exists" and leaves nothing
// behind; a retry chooses again.
func ChooseFreePids(t *Tree) (map[int]int, error) {
	last, err := readProcInt("/proc/sys/kernel/ns_last_pid")
	if err != nil {
		return nil, fmt.Errorf("choose free pids: %w", err)
	}
	return chooseFree(t, "/proc", last)
}

// ChooseFreePidsIn is ChooseFreePids in another pid namespace, seen
// through proc, a procfs mounted for it (such as /proc/<pid>/root/proc
// of a container that shares it).  Its ns_last_pid reads only from
// inside, so the pids chosen are the free ones just below the highest
// pid in use there, which forks reach as late.
func ChooseFreePidsIn(t *Tree, proc string) (map[int]int, error) {
	dirs, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("choose free pids in %s: %w", proc, err)
	}
	last := 0
	for _, d := range dirs {
		if n, err := strconv.Atoi(d.Name()); err == nil && n > last {
			last = n
		}
	}
	if last == 0 {
		return nil, fmt.Errorf("choose free pids: %s lists no process: not a procfs", proc)
	}
	return chooseFree(t, proc, last)
}

// chooseFree picks pids for t that procfs proc shows free, below last.
func chooseFree(t *Tree, proc string, last int) (map[int]int, error) {
	max, err := readProcInt("/proc/sys/kernel/pid_max")
	if err != nil {
		return nil, fmt.Errorf("choose free pids: %w", err)
	}
	groups, err := groupIds(proc)
	if err != nil {
		return nil, fmt.Errorf("choose free pids: %w", err)
	}
	busy := func(pid int) bool {
		if groups[pid] {
			return true
		}
		// /proc/N exists for thread ids too, though readdir lists only
		// thread-group leaders.
		_, err := os.Lstat(filepath.Join(proc, strconv.Itoa(pid)))
		return err == nil
	}
	pids, err := pickFree(t.Ids(), last, max, busy)
	if err != nil {
		return nil, fmt.Errorf("choose free pids for %d ids: %w", len(t.Ids()), err)
	}
	return pids, nil
}

// pickFree maps the sorted ids to free pids: the first free ones below
// last going down to minPid, then down from max-1 to above last.  The
// mapping keeps the order of the ids, so parents stay below their
// children where they were.
func pickFree(ids []int, last, max int, busy func(int) bool) (map[int]int, error) {
	var free []int
	take := func(p int) bool {
		if !busy(p) {
			free = append(free, p)
		}
		return len(free) == len(ids)
	}
	done := len(ids) == 0
	for p := last; p >= minPid && !done; p-- {
		done = take(p)
	}
	for p := max - 1; p > last && p >= minPid && !done; p-- {
		done = take(p)
	}
	if !done {
		return nil, fmt.Errorf("%w: found %d of %d", ErrNoFreePids, len(free), len(ids))
	}
	slices.Sort(free)
	pids := make(map[int]int, len(ids))
	for i, id := range ids {
		pids[id] = free[i]
	}
	return pids, nil
}

// groupIds returns the process group and session ids in use in procfs
// proc.
func groupIds(proc string) (map[int]bool, error) {
	dirs, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	ids := map[int]bool{}
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(proc, d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp session ...; comm may hold anything.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			return nil, fmt.Errorf("%s/%s/stat: no command name", proc, d.Name())
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 4 {
			return nil, fmt.Errorf("%s/%s/stat: too few fields", proc, d.Name())
		}
		for _, s := range f[2:4] {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				ids[n] = true
			}
		}
	}
	return ids, nil
}

func readProcInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// LockPids takes a host-wide lock that keeps other callers of LockPids
// from choosing pids until unlock is called: hold it from ChooseFreePids
// until Restore returns.
func LockPids() (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(pidLockPath), 0o755); err != nil {
		return nil, fmt.Errorf("lock pids: %w", err)
	}
	f, err := os.OpenFile(pidLockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock pids: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock pids: %w", err)
	}
	return func() { f.Close() }, nil
}
