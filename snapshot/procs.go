package snapshot

import (
	"errors"
	"fmt"
	"time"

	"github.com/vrid/vrid/cgroup"
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

// freezeLimit bounds the wait for the kernel to say that the chain's
// cgroup froze or thawed (a task in uninterruptible sleep).
const freezeLimit = 10 * time.Second

// freeze freezes the chain's cgroup, so that its tables and System V
// objects hold still while they are saved and CRIU dumps the processes.
// A chain without a cgroup (from before cgroups) is not frozen: CRIU
// stops its processes for the dump, and the tables and objects are saved
// while they run.
func freeze(ch vresource.Chain) (*cgroup.Cgroup, error) {
	if ch.Facts.Cgroup == "" {
		return nil, nil
	}
	cg, err := cgroup.Open(ch.Facts.Cgroup)
	if err != nil {
		return nil, err
	}
	if err := cg.Freeze(freezeLimit); err != nil {
		return nil, errors.Join(err, cg.Thaw(freezeLimit))
	}
	return cg, nil
}
