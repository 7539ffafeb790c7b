package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vrid/vrid/harness"
	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/vresource"
)

// quiesceTimeout bounds each wait of the quiesce protocol: a process
// that does not detach or attach in it is named in the error.
const quiesceTimeout = 10 * time.Second

// members lists the chain's processes: everything below its supervisor,
// the root and the orphans the supervisor adopted.  The table is the
// chain's to write and never says who belongs to it.
func members(ch vresource.Chain) ([]int, error) {
	pids := harness.Descendants(ch.Owner.Pid)
	if len(pids) == 0 {
		return nil, fmt.Errorf("%w: no process below its supervisor %d", ErrNotRunning, ch.Owner.Pid)
	}
	return pids, nil
}

// quiesce detaches the SysV shm attachments of every member that has
// one (package quiesce), so that CRIU never sees a map it refuses.
func (s *taking) quiesce() error {
	procs, err := quiesce.Detach(s.members, quiesceTimeout)
	if err != nil {
		return err
	}
	s.detached = procs
	return nil
}

// freezer is a chain's cgroup, frozen by the snapshot.
type freezer struct {
	path string
	file string // cgroup.freeze (v2) or freezer.state (v1)
}

// freeze freezes the chain's cgroup, so that its tables and System V
// objects hold still while they are saved and CRIU dumps the processes.
// A chain without a cgroup (from before cgroups) is not frozen: CRIU
// stops its processes for the dump, and the tables and objects are saved
// while they run.
func freeze(ch vresource.Chain) (*freezer, error) {
	if ch.Facts.Cgroup == "" {
		return nil, nil
	}
	f := &freezer{path: ch.Facts.Cgroup, file: filepath.Join(ch.Facts.Cgroup, "cgroup.freeze")}
	value, done := "1", "frozen 1"
	if _, err := os.Stat(f.file); err != nil {
		f.file = filepath.Join(ch.Facts.Cgroup, "freezer.state")
		value, done = "FROZEN", "FROZEN"
	}
	if err := f.set(value, done); err != nil {
		return nil, errors.Join(err, f.thaw())
	}
	return f, nil
}

// thaw thaws the cgroup.  One that is gone is no error: the chain's
// supervisor removes it once the chain's processes are.
func (f *freezer) thaw() error {
	var err error
	if strings.HasSuffix(f.file, "cgroup.freeze") {
		err = f.set("0", "frozen 0")
	} else {
		err = f.set("THAWED", "THAWED")
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// set writes value and waits until the state file shows done.
func (f *freezer) set(value, done string) error {
	if err := os.WriteFile(f.file, []byte(value), 0); err != nil {
		return fmt.Errorf("freeze %s (%s): %w", f.path, value, err)
	}
	state := f.file
	if strings.HasSuffix(f.file, "cgroup.freeze") {
		state = filepath.Join(f.path, "cgroup.events")
	}
	const limit = 10 * time.Second // a task in uninterruptible sleep
	deadline := time.Now().Add(limit)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		b, err := os.ReadFile(state)
		if err != nil {
			return fmt.Errorf("freeze %s (%s): %w", f.path, value, err)
		}
		if strings.Contains(string(b), done) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("freeze %s (%s): not done after %v", f.path, value, limit)
		}
		time.Sleep(pause)
	}
}
