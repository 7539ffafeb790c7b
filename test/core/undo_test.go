package core_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/vrid/vrid/vresource"
)

// semAdjs are the SEM_UNDO adjustments the layer recorded in chain aid's
// tables.
func semAdjs(t *testing.T, stateDir string, aid int) ([]vresource.SemAdj, uint32) {
	t.Helper()
	tables, err := vresource.OpenTables(filepath.Join(stateDir, "chains", strconv.Itoa(aid), "tables"))
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	adjs, err := tables.SemAdjs()
	if err != nil {
		t.Fatal(err)
	}
	return adjs, tables.Generation()
}

// Case (d): a semaphore held with SEM_UNDO across a snapshot.  The layer
// records each process's adjustments as its semops succeed (a holder's
// +1, a releaser's -2, none for a process whose two semops cancel out);
// the snapshot saves them; the restore, onto taken pids and SysV ids,
// brings the values back as they were and has each process give its
// undo list its adjustments again.  Then killing the holder gives the
// lock back, and killing the releaser takes its 2 back, exactly as the
// kernel would have done without the snapshot.
func TestRestoreSemUndo(t *testing.T) {
	needCRIU(t)
	stateDir := t.TempDir()
	ipcBefore := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	c := startSnapChain(t, stateDir, "undo", "snap_undo")
	const ready = "ready holder=1001 releaser=1002 sem=1 values=0,2"
	if got := c.waitLine(t, "ready"); got != ready {
		t.Fatalf("before the snapshot: %q, want %q", got, ready)
	}
	recorded := []vresource.SemAdj{
		{PidVirt: 1001, SemVirt: 1, Num: 0, Adj: 1},
		{PidVirt: 1002, SemVirt: 1, Num: 1, Adj: -2},
	}
	if got, gen := semAdjs(t, stateDir, 1); !reflect.DeepEqual(got, recorded) || gen != 0 {
		t.Fatalf("recorded %+v at generation %d, want %+v at 0", got, gen, recorded)
	}
	old := sysIDs(t, stateDir, "undo")
	supervisor := registry(t, stateDir)["undo"].Owner.Pid
	image := filepath.Join(t.TempDir(), "image")
	snapshotTo(t, stateDir, "undo", image)
	waitSupervisor(t, supervisor)

	b, err := os.ReadFile(filepath.Join(image, "sysv.json"))
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Undo json.RawMessage `json:"undo"`
	}
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	const wantUndo = `[{"virt_pid":1001,"adjs":[{"sem_virt":1,"num":0,"adj":1}]},{"virt_pid":1002,"adjs":[{"sem_virt":1,"num":1,"adj":-2}]}]`
	var compact json.RawMessage
	if compact, err = json.Marshal(saved.Undo); err != nil || string(compact) != wantUndo {
		t.Errorf("sysv.json undo: %s, want %s", saved.Undo, wantUndo)
	}

	var pids []int
	for _, sys := range old["pid"] {
		pids = append(pids, int(sys))
	}
	occupyPids(t, pids)
	for _, sys := range old["sem"] {
		occupyIPC(t, "sem", int(sys))
	}
	if aid := restoreFrom(t, stateDir, image); aid != "2" {
		t.Fatalf("restore: AID %s, want 2", aid)
	}
	// Applied again: the same adjustments, now at the restored tables' generation.
	got, gen := semAdjs(t, stateDir, 2)
	reapplied := []vresource.SemAdj{
		{PidVirt: 1001, SemVirt: 1, Num: 0, Adj: 1, Generation: gen},
		{PidVirt: 1002, SemVirt: 1, Num: 1, Adj: -2, Generation: gen},
	}
	if gen == 0 || !reflect.DeepEqual(got, reapplied) {
		t.Errorf("after the restore %+v at generation %d, want %+v", got, gen, reapplied)
	}
	now := sysIDs(t, stateDir, "undo")
	if now["sem"][1] == 0 || now["sem"][1] == old["sem"][1] {
		t.Errorf("sem 1: system id %d after the restore, was %d (taken)", now["sem"][1], old["sem"][1])
	}
	supervisor = registry(t, stateDir)["undo"].Owner.Pid
	c.wake(t)
	const after = "after holder=1001 releaser=1002 sem=1 values=0,2 holder-killed=1,2 releaser-killed=1,0"
	if got := c.waitLine(t, "after"); got != after {
		t.Errorf("after the restore: %q, want %q", got, after)
	}
	c.waitLine(t, "PASS")
	waitSupervisor(t, supervisor)
	checkNoLeaks(t, stateDir, append(ipcBefore, takenIPC(map[string]map[int32]int32{"sem": old["sem"]})...))
}

// The layer's record of SEM_UNDO adjustments, step by step
// (sem_undo_record.c says what each step does): semop and semtimedop with
// SEM_UNDO add minus their operations to their process's adjustments,
// threads included and fork children apart; SETVAL and SETALL clear
// everyone's; a reaped process's go; IPC_RMID drops the set's; an
// adjustment back at 0 goes.
func TestSemUndoRecorded(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	ipcBefore := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	c := startSnapChain(t, stateDir, "record", "sem_undo_record")
	supervisor := registry(t, stateDir)["record"].Owner.Pid
	steps := []struct {
		name string
		want []vresource.SemAdj
	}{
		{"semops", []vresource.SemAdj{
			{PidVirt: 1000, SemVirt: 1, Num: 0, Adj: 1},
			{PidVirt: 1000, SemVirt: 1, Num: 1, Adj: -2},
			{PidVirt: 1000, SemVirt: 1, Num: 2, Adj: 1},
			{PidVirt: 1001, SemVirt: 1, Num: 0, Adj: 2},
			{PidVirt: 1001, SemVirt: 1, Num: 1, Adj: 1},
		}},
		{"SETVAL and a reaped child", []vresource.SemAdj{
			{PidVirt: 1000, SemVirt: 1, Num: 1, Adj: -2},
			{PidVirt: 1000, SemVirt: 1, Num: 2, Adj: 1},
		}},
		{"SETALL and IPC_RMID", []vresource.SemAdj{
			{PidVirt: 1000, SemVirt: 2, Num: 0, Adj: -1},
		}},
		{"back at 0", []vresource.SemAdj{}},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			c.waitLine(t, "step "+strconv.Itoa(i+1))
			if got, _ := semAdjs(t, stateDir, 1); !reflect.DeepEqual(got, st.want) {
				t.Errorf("recorded %+v, want %+v", got, st.want)
			}
		})
		c.wake(t)
	}
	c.waitLine(t, "PASS")
	waitSupervisor(t, supervisor)
	checkNoLeaks(t, stateDir, ipcBefore)
}
