package snapshot

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/sysv"
	"github.com/vrid/vrid/vresource"
)

// SEM_UNDO adjustments across a snapshot (docs/sysv-state.md): the layer
// records them in the tables as the semops succeed; the snapshot saves
// those of the live processes; after a restore, each process gives its
// undo list the recorded adjustments again, in itself, with a pair of
// operations that leaves the semaphore's value as restored.

// Members are a chain's processes: the pids its tables name them by (in
// the chain's pid namespace), each with its host pid.
type Members map[int32]int

// HostMembers are processes of a chain that runs in the host's pid
// namespace.
func HostMembers(pids []int) Members {
	m := Members{}
	for _, pid := range pids {
		m[int32(pid)] = pid
	}
	return m
}

// undoLists groups the recorded adjustments by process, for sysv.Save:
// only those of live processes, since the kernel applied a dead one's
// list when it exited, and only on the sets saved.
func undoLists(tables *vresource.Tables, members Members, saved []sysv.Object) ([]sysv.ProcessUndo, error) {
	adjs, err := tables.SemAdjs()
	if err != nil {
		return nil, err
	}
	live := map[int32]bool{}
	for pid, host := range members {
		if virt, ok := tables.Reverse(vresource.PID, pid); ok && !zombie(host) {
			live[virt] = true
		}
	}
	sets := map[int32]bool{}
	for _, o := range saved {
		if o.Type == vresource.Sem {
			sets[o.VirtID] = true
		}
	}
	var out []sysv.ProcessUndo
	for _, a := range adjs { // sorted by process
		if !live[a.PidVirt] || !sets[a.SemVirt] {
			continue
		}
		if len(out) == 0 || out[len(out)-1].VirtPid != a.PidVirt {
			out = append(out, sysv.ProcessUndo{VirtPid: a.PidVirt})
		}
		last := &out[len(out)-1]
		last.Adjs = append(last.Adjs, sysv.SemAdj{SemVirt: a.SemVirt, Num: a.Num, Adj: a.Adj})
	}
	return out, nil
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// reapplyUndo asks every restored process that has adjustments to apply
// them again (quiesce.Undo), and waits until the table shows each done,
// up to timeout.  Adjustments of processes the restore did not bring
// back are dropped first.  hostPid gives the host pid of a pid the tables
// name.
func reapplyUndo(tables *vresource.Tables, timeout time.Duration, hostPid func(int32) (int, error)) error {
	if err := tables.PruneSemAdjs(); err != nil {
		return err
	}
	pending := func() ([]int, error) {
		adjs, err := tables.SemAdjs()
		if err != nil {
			return nil, err
		}
		gen := tables.Generation()
		var pids []int
		for _, a := range adjs {
			if a.Generation == gen {
				continue
			}
			sys, ok := tables.Lookup(vresource.PID, a.PidVirt)
			if ok && !slices.Contains(pids, int(sys)) {
				pids = append(pids, int(sys))
			}
		}
		return pids, nil
	}
	pids, err := pending()
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		host, err := hostPid(int32(pid))
		if err != nil {
			return err
		}
		if err := quiesce.Undo(host); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		if pids, err = pending(); err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v did not apply their SEM_UNDO adjustments again in %v (their log says why)", pids, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
