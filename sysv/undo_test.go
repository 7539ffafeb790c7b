package sysv

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"testing"
	"unsafe"

	"github.com/vrid/vrid/vresource"
)

// helperEnv makes the test binary a process that runs ApplyUndo with the
// operations in it, says "ready" and waits to be killed: a process with
// an undo list of its own.
const helperEnv = "VRID_SYSV_TEST_HELPER"

func runHelper(arg string) int {
	var u UndoOps
	if err := json.Unmarshal([]byte(arg), &u); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := ApplyUndo(u); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	os.Stdin.Read(make([]byte, 1)) // until killed
	return 0
}

// holder starts a process that applies u and keeps its undo list.
func holder(t *testing.T, u UndoOps) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("holder of %+v: %q, %v", u, line, err)
	}
	return cmd
}

// kill ends a holder: the kernel applies its undo list as it exits.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Kill()
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) {
		t.Fatalf("holder ended with %v, want killed", err)
	}
}

func wantValues(t *testing.T, what string, id int32, want ...uint16) {
	t.Helper()
	for n, v := range want {
		if got := semVal(t, id, n); got != v {
			t.Errorf("%s: semaphore %d = %d, want %d", what, n, got, v)
		}
	}
}

const (
	nowait     = 0x800            // IPC_NOWAIT
	nowaitUndo = semUndo | nowait // SEM_UNDO | IPC_NOWAIT
)

// TestUndo: a process holds semaphore 0 with SEM_UNDO (a lock), another
// released 2 on semaphore 1 with SEM_UNDO.  After Save, removal and
// Restore, the values are the saved ones, processes that run UndoPlan's
// operations leave them so, and killing them gives back what killing the
// first ones gave back.
func TestUndo(t *testing.T) {
	id := mustSemget(t, ipcPrivate, 2, root(0o600))
	if err := semctl(id, 0, setAll, unsafe.Pointer(&[]uint16{1, 0}[0])); err != nil {
		t.Fatal(err)
	}
	a := holder(t, UndoOps{VirtPid: 1000, Sets: []SetOps{{SysID: id, Ops: []Sembuf{{Num: 0, Op: -1, Flg: nowaitUndo}}}}})
	b := holder(t, UndoOps{VirtPid: 1001, Sets: []SetOps{{SysID: id, Ops: []Sembuf{{Num: 1, Op: 2, Flg: nowaitUndo}}}}})
	wantValues(t, "held", id, 0, 2)

	dir := t.TempDir()
	undo := []ProcessUndo{
		{VirtPid: 1001, Adjs: []SemAdj{{SemVirt: 10, Num: 1, Adj: -2}}},
		{VirtPid: 1000, Adjs: []SemAdj{{SemVirt: 10, Num: 0, Adj: 1}}},
	}
	if _, err := Save(dir, []Object{{Type: vresource.Sem, VirtID: 10, SysID: id}}, undo); err != nil {
		t.Fatal(err)
	}
	kill(t, a)
	kill(t, b)
	wantValues(t, "holders killed", id, 1, 0)
	remove(t, vresource.Sem, id)

	st, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rebinds, err := Restore(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	newID := rebinds[0].NewSys
	wantValues(t, "restored, before the undo lists", newID, 0, 2)
	plan, err := st.UndoPlan(rebinds)
	if err != nil {
		t.Fatal(err)
	}
	wantPlan := []UndoOps{
		{VirtPid: 1000, Sets: []SetOps{{SysID: newID, Ops: []Sembuf{{Num: 0, Op: 1, Flg: nowait}, {Num: 0, Op: -1, Flg: nowaitUndo}}}}},
		{VirtPid: 1001, Sets: []SetOps{{SysID: newID, Ops: []Sembuf{{Num: 1, Op: 2, Flg: nowaitUndo}, {Num: 1, Op: -2, Flg: nowait}}}}},
	}
	if !reflect.DeepEqual(plan, wantPlan) {
		t.Fatalf("plan %+v, want %+v", plan, wantPlan)
	}
	a2 := holder(t, plan[0])
	b2 := holder(t, plan[1])
	wantValues(t, "undo lists re-applied", newID, 0, 2)
	kill(t, a2)
	wantValues(t, "lock holder killed", newID, 1, 2)
	kill(t, b2)
	wantValues(t, "both killed", newID, 1, 0)
	remove(t, vresource.Sem, newID)
}

func TestSemBases(t *testing.T) {
	set := func(values ...uint16) []SemSet {
		return []SemSet{{Ident: Ident{VirtID: 1}, Values: values}}
	}
	adj := func(pid int32, num uint16, a int16) ProcessUndo {
		return ProcessUndo{VirtPid: pid, Adjs: []SemAdj{{SemVirt: 1, Num: num, Adj: a}}}
	}
	tests := []struct {
		name string
		sems []SemSet
		undo []ProcessUndo
		want map[semKey]int
		err  error
	}{
		{"none", set(3), nil, map[semKey]int{}, nil},
		{"two lock holders", set(0, 5), []ProcessUndo{adj(1, 0, 1), adj(2, 1, 2)}, map[semKey]int{{1, 0}: 1, {1, 1}: 7}, nil},
		{"added with undo, taken without", set(0), []ProcessUndo{adj(1, 0, -1)}, nil, ErrUndo},
		{"mixed, feasible", set(2), []ProcessUndo{adj(1, 0, -2), adj(2, 0, 3)}, map[semKey]int{{1, 0}: 3}, nil},
		{"over SEMVMX", set(semValMax), []ProcessUndo{adj(1, 0, 1)}, nil, ErrUndo},
		{"unknown set", set(1), []ProcessUndo{{VirtPid: 1, Adjs: []SemAdj{{SemVirt: 9, Adj: 1}}}}, nil, ErrCorrupt},
		{"semaphore out of range", set(1), []ProcessUndo{adj(1, 1, 1)}, nil, ErrCorrupt},
		{"zero adjustment", set(1), []ProcessUndo{adj(1, 0, 0)}, nil, ErrCorrupt},
		{"pid twice", set(1), []ProcessUndo{adj(1, 0, 1), adj(1, 0, 1)}, nil, ErrCorrupt},
		{"semaphore twice in a pid", set(1), []ProcessUndo{{VirtPid: 1, Adjs: []SemAdj{{SemVirt: 1, Adj: 1}, {SemVirt: 1, Adj: 1}}}}, nil, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &State{Sems: tt.sems, Undo: tt.undo}
			got, err := st.semBases()
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("bases %v, want %v", got, tt.want)
			}
		})
	}
}
