package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Start starts cmd as a member of the cgroup from its first instruction,
// so that nothing it forks, however early, is born outside.  On v2 the
// kernel places it as it is cloned (CLONE_INTO_CGROUP).  On v1, which
// has no such flag, the caller moves itself into the cgroup for the
// clone and back out after: the child inherits the cgroup at fork.  The
// caller must not start other processes meanwhile.
func (c *Cgroup) Start(cmd *exec.Cmd) error {
	if c.v2 {
		return c.startV2(cmd)
	}
	return c.startV1(cmd)
}

func (c *Cgroup) startV2(cmd *exec.Cmd) error {
	// CLONE_INTO_CGROUP takes a real descriptor, not an O_PATH one.
	fd, err := unix.Open(c.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("start in cgroup %s: %w", c.Path, err)
	}
	defer unix.Close(fd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	return cmd.Start()
}

func (c *Cgroup) startV1(cmd *exec.Cmd) error {
	self := os.Getpid()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return fmt.Errorf("start in cgroup %s: %w", c.Path, err)
	}
	_, ownFreezer := parseProcCgroup(string(data))
	if ownFreezer == "" {
		return fmt.Errorf("start in cgroup %s: vrid is in no freezer cgroup", c.Path)
	}
	home := filepath.Join(freezerRoot, ownFreezer)
	if err := enter(c.Path, self); err != nil {
		return fmt.Errorf("start in cgroup %s: %w", c.Path, err)
	}
	err = cmd.Start()
	if back := enter(home, self); back != nil {
		// Left in the chain's cgroup, we would be killed with it.
		if err == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
		return errors.Join(err, fmt.Errorf("start in cgroup %s: back to %s: %w", c.Path, home, back))
	}
	return err
}

// Enter moves process pid, with all its threads, into the cgroup.  It is
// for a process that cannot fork meanwhile, such as a tree CRIU restored
// and holds until it resumes; Start is how a new one begins inside.
func (c *Cgroup) Enter(pid int) error {
	if err := enter(c.Path, pid); err != nil {
		return fmt.Errorf("move %d into cgroup %s: %w", pid, c.Path, err)
	}
	return nil
}

// enter moves process pid, every thread of it, into the cgroup at dir.
func enter(dir string, pid int) error {
	return os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}
