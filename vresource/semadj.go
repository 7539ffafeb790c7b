package vresource

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// ErrSemAdjLost: the layer had no room to record some SEM_UNDO
// adjustment, so the record is not the kernel's.
var ErrSemAdjLost = errors.New("SEM_UNDO adjustments went unrecorded")

// SemAdj is one process's SEM_UNDO adjustment of one semaphore, as the
// preload layer recorded it (struct vrid_semadj): what the kernel adds
// to the semaphore when the process exits.  Ids are virtual.  Generation
// is the table's generation when the process's kernel undo list last
// held Adj: one older than the table's is waiting to be applied again
// after a restore.
type SemAdj struct {
	PidVirt    int32
	SemVirt    int32
	Num        uint16
	Adj        int16
	Generation uint32
}

// SemAdjs returns the SEM_UNDO adjustments the chain recorded, sorted
// by process, set and semaphore; the first of two entries of one key
// wins.  It fails with ErrSemAdjLost when the layer found no room for
// one: the record then falls short of the kernel's.  A file made before
// the section existed has none.
func (t *Tables) SemAdjs() ([]SemAdj, error) {
	raw, lost, errno := t.eng.semAdjs()
	if errno != 0 {
		return nil, t.fail(Sem, errno)
	}
	if lost > 0 {
		return nil, fmt.Errorf("%s: %w (%d of them; raise [tables] sem_slots in config.toml)", t.what(), ErrSemAdjLost, lost)
	}
	out := make([]SemAdj, 0, len(raw))
	for _, a := range raw {
		out = append(out, SemAdj{PidVirt: a.PidVirt, SemVirt: a.SemVirt, Num: a.Num, Adj: a.Adj, Generation: a.Generation})
	}
	slices.SortStableFunc(out, func(a, b SemAdj) int {
		return cmp.Or(cmp.Compare(a.PidVirt, b.PidVirt), cmp.Compare(a.SemVirt, b.SemVirt), cmp.Compare(a.Num, b.Num))
	})
	return slices.CompactFunc(out, func(a, b SemAdj) bool {
		return a.PidVirt == b.PidVirt && a.SemVirt == b.SemVirt && a.Num == b.Num
	}), nil
}

// PruneSemAdjs drops the adjustments of processes the pid table no
// longer names, under the writer lock: a restore's, once it has rebound
// the pids of the processes it restores.
func (t *Tables) PruneSemAdjs() error {
	if err := t.writable(); err != nil {
		return err
	}
	return t.fail(PID, t.eng.pruneSemAdjs())
}
