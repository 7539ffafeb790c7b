package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// How long Kill and Remove keep at it: a process in uninterruptible
// sleep dies only when it wakes up.  A limit, not a delay.
const (
	killTimeout   = 10 * time.Second
	freezeTimeout = time.Second
	removeTimeout = 2 * time.Second
)

// Kill ends every process in the cgroup and below it, and returns once
// none is left (zombies are no members: their parents reap them).  It
// never signals a process that is not a member: v2 has the kernel do it
// (cgroup.kill); otherwise it freezes the cgroup, so that nothing forks
// or leaves, and signals the members through pidfds opened before it
// checks, once more, that each is still listed.
func (c *Cgroup) Kill() error {
	if err := c.checkKillable(); err != nil {
		return err
	}
	members, err := c.live()
	if err != nil || len(members) == 0 {
		return err
	}
	if c.v2 {
		_, err := removedAsNotExist(nil, os.WriteFile(filepath.Join(c.Path, "cgroup.kill"), []byte("1"), 0))
		if err == nil {
			return c.waitEmpty(killTimeout)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("kill cgroup %s: %w", c.Path, err)
		}
		if _, err := os.Stat(c.Path); errors.Is(err, fs.ErrNotExist) {
			return nil // removed, with its members
		}
		// cgroup.kill came with Linux 5.14: freeze instead.
	}
	return c.killByFreezing(members)
}

// killByFreezing kills by rounds of killFrozen until no member is left.
func (c *Cgroup) killByFreezing(members []int) error {
	deadline := time.Now().Add(killTimeout)
	for len(members) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("kill cgroup %s: processes %v still there after %v", c.Path, members, killTimeout)
		}
		if err := c.killFrozen(); err != nil {
			return err
		}
		if err := c.waitEmpty(50 * time.Millisecond); err == nil {
			return nil
		}
		var err error
		if members, err = c.live(); err != nil {
			return err
		}
	}
	return nil
}

// checkKillable refuses a hierarchy's root: it holds every process.
func (c *Cgroup) checkKillable() error {
	for _, root := range []string{v2Root, v2HybridRoot, freezerRoot} {
		if filepath.Clean(c.Path) == root {
			return fmt.Errorf("kill cgroup %s: refusing a hierarchy's root", c.Path)
		}
	}
	return nil
}

// killFrozen is one round of the freezer's way: freeze, open a pidfd for
// each member, list again, SIGKILL those still listed, thaw.
// A freeze that does not settle in time is no error here: the
// membership is checked again after it.
func (c *Cgroup) killFrozen() (err error) {
	switch err := c.Freeze(freezeTimeout); {
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed, with its members
	case err != nil && !errors.Is(err, ErrNotSettled):
		return err
	}
	defer func() {
		if terr := c.Thaw(freezeTimeout); terr != nil && !errors.Is(terr, ErrNotSettled) && err == nil {
			err = terr
		}
	}()
	listed, err := c.Members()
	if err != nil {
		return err
	}
	pidfds := map[int]int{}
	defer func() {
		for _, fd := range pidfds {
			unix.Close(fd)
		}
	}()
	for _, pid := range listed {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			pidfds[pid] = fd
		}
	}
	// A pidfd opened after the pid was reused names the newcomer: only
	// a pid listed again now is a member's for sure.
	still, err := c.Members()
	if err != nil {
		return err
	}
	for pid, fd := range pidfds {
		if slices.Contains(still, pid) {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
	}
	return nil
}

// ErrNotSettled: the kernel did not say the cgroup was frozen, or thawed,
// within the time given (a member in uninterruptible sleep, or dying).
var ErrNotSettled = errors.New("freezer state did not settle")

// Freeze freezes the cgroup and every cgroup below it, and waits up to
// limit until the kernel says so.
func (c *Cgroup) Freeze(limit time.Duration) error { return c.setFrozen(true, limit) }

// Thaw thaws the cgroup and every cgroup below it, and waits up to limit
// until the kernel says so.  A cgroup that is gone is no error: its
// members went with it.
func (c *Cgroup) Thaw(limit time.Duration) error {
	if err := c.setFrozen(false, limit); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (c *Cgroup) setFrozen(frozen bool, limit time.Duration) error {
	file, value, done := "cgroup.freeze", "0", "frozen 0"
	if frozen {
		value, done = "1", "frozen 1"
	}
	if !c.v2 {
		file, value, done = "freezer.state", "THAWED", "THAWED"
		if frozen {
			value, done = "FROZEN", "FROZEN"
		}
	}
	fail := func(err error) error { return fmt.Errorf("freeze cgroup %s (%s): %w", c.Path, value, err) }
	if _, err := removedAsNotExist(nil, os.WriteFile(filepath.Join(c.Path, file), []byte(value), 0)); err != nil {
		return fail(err)
	}
	state := filepath.Join(c.Path, "freezer.state")
	if c.v2 {
		state = filepath.Join(c.Path, "cgroup.events")
	}
	err := poll(limit, func() (bool, error) {
		data, err := removedAsNotExist(os.ReadFile(state))
		return err == nil && strings.Contains(string(data), done), err
	})
	if errors.Is(err, errTimeout) {
		err = ErrNotSettled
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// live lists the members of a cgroup that may be removed meanwhile: one
// that is gone has none.
func (c *Cgroup) live() ([]int, error) {
	members, err := c.Members()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return members, err
}

// waitEmpty waits until the cgroup has no member left.
func (c *Cgroup) waitEmpty(limit time.Duration) error {
	err := poll(limit, func() (bool, error) {
		members, err := c.live()
		return len(members) == 0, err
	})
	if errors.Is(err, errTimeout) {
		members, _ := c.live()
		return fmt.Errorf("kill cgroup %s: processes %v still there after %v", c.Path, members, limit)
	}
	return err
}

var errTimeout = errors.New("timed out")

// poll calls done, with growing pauses, until it says yes or limit has
// passed.
func poll(limit time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	pause := 100 * time.Microsecond
	for {
		ok, err := done()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// Remove removes the cgroup and every cgroup below it, which must hold
// no process.  One already gone is no error.
func (c *Cgroup) Remove() error {
	var dirs []string
	err := c.walk(func(dir string) error { dirs = append(dirs, dir); return nil })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", c.Path, err)
	}
	// Deepest first; a process that just died may pin its cgroup for a
	// moment.
	slices.Reverse(dirs)
	for _, dir := range dirs {
		err := poll(removeTimeout, func() (bool, error) {
			err := unix.Rmdir(dir)
			switch {
			case err == nil || err == unix.ENOENT:
				return true, nil
			case err == unix.EBUSY:
				return false, nil
			}
			return false, err
		})
		if err != nil {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
	}
	return nil
}
