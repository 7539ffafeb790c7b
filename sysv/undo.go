package sysv

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// SemAdj is one semaphore's SEM_UNDO adjustment in one process: what the
// kernel adds to the semaphore when the process exits (semadj), which is
// minus the sum of the operations it made with SEM_UNDO since the last
// SETVAL or SETALL of that semaphore.
type SemAdj struct {
	SemVirt int32  `json:"sem_virt"`
	Num     uint16 `json:"num"`
	Adj     int16  `json:"adj"`
}

// ProcessUndo is the undo list of one process of the chain (threads share
// their process's list, as CLONE_SYSVSEM makes them).
type ProcessUndo struct {
	VirtPid int32    `json:"virt_pid"`
	Adjs    []SemAdj `json:"adjs"`
}

// UndoOps is what one restored process runs to get its undo list back:
// one semop per semaphore set, a pair of operations per semaphore that
// adds and takes back the same amount, one half with SEM_UNDO, so that
// the value stays as restored and only the undo list grows.
type UndoOps struct {
	VirtPid int32
	Sets    []SetOps
}

// Sembuf is struct sembuf: one operation of a semop.
type Sembuf struct {
	Num uint16
	Op  int16
	Flg int16
}

// SetOps is one semop call: the set's new system id and its operations.
type SetOps struct {
	SysID int32
	Ops   []Sembuf
}

type semKey struct {
	virt int32
	num  uint16
}

// semBases checks the undo lists against the sets and returns, for each
// semaphore an adjustment touches, the saved value plus every
// adjustment.  Every partial sum must keep the semaphore within
// 0..SEMVMX: a state outside that (a process that added with SEM_UNDO
// what another took without) is refused.  The operation pairs of
// UndoPlan, which leave the value as it is, would rebuild more than that;
// the check keeps to the states whose undo the kernel could give back
// whole, in any order of exits.
func (st *State) semBases() (map[semKey]int, error) {
	nsems := make(map[int32]int, len(st.Sems))
	values := make(map[semKey]int)
	for _, s := range st.Sems {
		nsems[s.VirtID] = len(s.Values)
		for n, v := range s.Values {
			values[semKey{s.VirtID, uint16(n)}] = int(v)
		}
	}
	lo := make(map[semKey]int)
	hi := make(map[semKey]int)
	base := make(map[semKey]int)
	seenPid := make(map[int32]bool, len(st.Undo))
	for _, p := range st.Undo {
		if seenPid[p.VirtPid] {
			return nil, fmt.Errorf("%w: undo list of pid %d saved twice", ErrCorrupt, p.VirtPid)
		}
		seenPid[p.VirtPid] = true
		seen := make(map[semKey]bool, len(p.Adjs))
		for _, a := range p.Adjs {
			k := semKey{a.SemVirt, a.Num}
			n, ok := nsems[a.SemVirt]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: pid %d has an adjustment on sem %d, which is not saved", ErrCorrupt, p.VirtPid, a.SemVirt)
			case int(a.Num) >= n:
				return nil, fmt.Errorf("%w: pid %d has an adjustment on sem %d semaphore %d of %d", ErrCorrupt, p.VirtPid, a.SemVirt, a.Num, n)
			case seen[k]:
				return nil, fmt.Errorf("%w: pid %d has two adjustments on sem %d semaphore %d", ErrCorrupt, p.VirtPid, a.SemVirt, a.Num)
			case a.Adj == 0 || a.Adj < -semValMax:
				return nil, fmt.Errorf("%w: pid %d has adjustment %d on sem %d semaphore %d", ErrCorrupt, p.VirtPid, a.Adj, a.SemVirt, a.Num)
			}
			seen[k] = true
			if _, ok := base[k]; !ok {
				base[k], lo[k], hi[k] = values[k], values[k], values[k]
			}
			base[k] += int(a.Adj)
			if a.Adj < 0 {
				lo[k] += int(a.Adj)
			} else {
				hi[k] += int(a.Adj)
			}
		}
	}
	for k := range base {
		if lo[k] < 0 || hi[k] > semValMax {
			return nil, fmt.Errorf("%w: sem %d semaphore %d holds %d, and its adjustments would take it through %d..%d",
				ErrUndo, k.virt, k.num, values[k], lo[k], hi[k])
		}
	}
	return base, nil
}

// UndoPlan turns the saved undo lists into the operations each restored
// process runs, on the new ids of rebinds, sorted by virtual pid and set.
func (st *State) UndoPlan(rebinds []Rebind) ([]UndoOps, error) {
	newSys := make(map[int32]int32)
	for _, r := range rebinds {
		if r.Type == vresource.Sem {
			newSys[r.Virt] = r.NewSys
		}
	}
	var plan []UndoOps
	for _, p := range st.Undo {
		bySet := make(map[int32][]SemAdj)
		for _, a := range p.Adjs {
			if _, ok := newSys[a.SemVirt]; !ok {
				return nil, fmt.Errorf("undo plan of pid %d: sem %d was not restored", p.VirtPid, a.SemVirt)
			}
			bySet[a.SemVirt] = append(bySet[a.SemVirt], a)
		}
		u := UndoOps{VirtPid: p.VirtPid}
		for _, virt := range slices.Sorted(maps.Keys(bySet)) {
			adjs := bySet[virt]
			slices.SortFunc(adjs, func(a, b SemAdj) int { return cmp.Compare(a.Num, b.Num) })
			var ops []Sembuf
			for _, a := range adjs {
				ops = append(ops, undoPair(a)...)
			}
			u.Sets = append(u.Sets, SetOps{SysID: newSys[virt], Ops: ops})
		}
		plan = append(plan, u)
	}
	slices.SortFunc(plan, func(a, b UndoOps) int { return cmp.Compare(a.VirtPid, b.VirtPid) })
	return plan, nil
}

// undoPair is the two operations that give an undo list adjustment a.Adj
// on a semaphore and leave its value as it is: the SEM_UNDO one is
// -a.Adj, the other takes it back.  The value goes up first, so it never
// has to wait (the layer goes down first when up would pass SEMVMX).
func undoPair(a SemAdj) []Sembuf {
	mag := a.Adj
	if mag < 0 {
		mag = -mag
	}
	up := Sembuf{Num: a.Num, Op: mag, Flg: unix.IPC_NOWAIT}
	down := Sembuf{Num: a.Num, Op: -mag, Flg: unix.IPC_NOWAIT}
	if a.Adj > 0 {
		down.Flg |= semUndo
	} else {
		up.Flg |= semUndo
	}
	return []Sembuf{up, down}
}

// ApplyUndo runs a process's operations in the calling process, whose
// undo list they rebuild.  It must run in the restored process itself,
// before any process of the chain runs its own code again (the preload
// layer's restore step does it; see docs/sysv-state.md), and from a Go
// program only in one that has no other undo list to keep: the calls are
// plain semop, on whichever thread runs them, and every thread of a
// process shares the list.
func ApplyUndo(u UndoOps) error {
	for _, s := range u.Sets {
		if err := semop(s.SysID, s.Ops); err != nil {
			return fmt.Errorf("re-apply undo of pid %d on sem %d: %w", u.VirtPid, s.SysID, err)
		}
	}
	return nil
}
