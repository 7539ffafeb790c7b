package core_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vrid/vrid/vresource"
)

// victimUID is the other tenant whose objects a chain names.
const victimUID = 2000

// victim is one set of another tenant's objects (ipc_victim make).
type victim struct{ sem, shm, msg int }

func (v victim) objects() []ipcObject {
	return []ipcObject{{"sem", v.sem, 0}, {"shm", v.shm, 0}, {"msg", v.msg, 0}}
}

// asVictim runs ipc_victim as victimUID.
func asVictim(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(program("ipc_victim"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: victimUID, Gid: victimUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipc_victim %v as uid %d: %v\n%s", args, victimUID, err, out)
	}
	return string(out)
}

func makeVictim(t *testing.T) victim {
	t.Helper()
	var v victim
	out := asVictim(t, "make")
	if _, err := fmt.Sscanf(out, "sem=%d shm=%d msg=%d", &v.sem, &v.shm, &v.msg); err != nil {
		t.Fatalf("ipc_victim make printed %q: %v", out, err)
	}
	t.Cleanup(func() { removeIPC(v.objects()) })
	return v
}

// checkVictim wants the victim's objects whole, with what it put there.
func checkVictim(t *testing.T, v victim) {
	t.Helper()
	got := asVictim(t, "check", fmt.Sprint(v.sem), fmt.Sprint(v.shm), fmt.Sprint(v.msg))
	if want := "sem.val=42\nshm=victim-shm\nmsg.type=7 msg=victim-msg\n"; got != want {
		t.Errorf("the victim's objects hold\n%s\nwant\n%s", got, want)
	}
}

// heldChain is `vrid run -- ipc_hold`, holding its objects until release.
type heldChain struct {
	tables string // the chain's table file
	stdin  io.WriteCloser
	cmd    *exec.Cmd
	stderr *strings.Builder
}

func holdChain(t *testing.T, stateDir string) *heldChain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	t.Cleanup(cancel)
	h := &heldChain{stderr: &strings.Builder{}}
	h.cmd = vridCommand(ctx, stateDir, "run", "--", program("ipc_hold"))
	h.cmd.Stderr = h.stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready=yes\n" {
		t.Fatalf("ipc_hold printed %q (%v)\n%s", line, err, h.stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(stateDir, "chains", "*", "tables"))
	if len(matches) != 1 {
		t.Fatalf("table files %v, want one", matches)
	}
	h.tables = matches[0]
	return h
}

// release lets the chain end and returns what vrid run wrote on stderr.
func (h *heldChain) release(t *testing.T) string {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("vrid run: %v\n%s", err, h.stderr)
	}
	return h.stderr.String()
}

// ownIDs are the system ids of the chain's sem, shm and msg objects.
func (h *heldChain) ownIDs(t *testing.T) victim {
	t.Helper()
	tb, err := vresource.OpenTables(h.tables)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	var ids [3]int
	for i, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg} {
		e := tb.Entries(rt)
		if len(e) != 1 {
			t.Fatalf("%s entries %v, want one", rt, e)
		}
		ids[i] = int(e[0].Sys)
	}
	return victim{ids[0], ids[1], ids[2]}
}

// checkLeftAlone wants the objects the chain left to be exactly v's, and
// vrid run to have said why for each.
func checkLeftAlone(t *testing.T, before []ipcObject, v victim, stderr, why string) {
	t.Helper()
	left := newIPC(before, readIPC(t))
	if want := v.objects(); !slices.Equal(left, want) {
		t.Errorf("objects left after the chain: %v, want the victim's %v", left, want)
	}
	for _, o := range v.objects() {
		if want := fmt.Sprintf("%s %d (virtual ", o.Kind, o.ID); !strings.Contains(stderr, want) ||
			!strings.Contains(stderr, "left alone: "+why) {
			t.Errorf("vrid run does not say that %s was left alone (%s):\n%s", o, why, stderr)
		}
	}
	checkVictim(t, v)
}

// A chain that writes another tenant's ids into its table does not get
// root to remove them when it ends; its own objects go.
func TestTeardownLeavesForgedIPC(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	v := makeVictim(t)
	h := holdChain(t, stateDir)
	tb, err := vresource.OpenTables(h.tables)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range v.objects() {
		rt, _ := vresource.ParseResourceType(o.Kind)
		if _, err := tb.Bind(rt, int32(o.ID)); err != nil {
			t.Fatal(err)
		}
	}
	tb.Close()
	stderr := h.release(t)
	checkLeftAlone(t, before, v, stderr, "the chain has no record of making it")
}

// An entry whose object went behind the layer's back, and whose id
// another tenant's object got next, is left alone: the id names
// something the chain did not make.
func TestTeardownLeavesReusedIPC(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	h := holdChain(t, stateDir)
	own := h.ownIDs(t)
	removeIPC(own.objects())
	for _, o := range own.objects() {
		if err := os.WriteFile("/proc/sys/kernel/"+o.Kind+"_next_id", []byte(fmt.Sprint(o.ID)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v := makeVictim(t)
	if v != own {
		t.Fatalf("the victim got ids %+v, want the chain's %+v", v, own)
	}
	stderr := h.release(t)
	checkLeftAlone(t, before, v, stderr, "")
	for _, want := range []string{
		fmt.Sprintf("sem %d (virtual %d) left alone: made by %d:%d, the chain's was made by 0:0", v.sem, v.sem, victimUID, victimUID),
		fmt.Sprintf("shm %d (virtual %d) left alone: its key is 0x0", v.shm, v.shm),
		fmt.Sprintf("msg %d (virtual %d) left alone: made by %d:%d, the chain's was made by 0:0", v.msg, v.msg, victimUID, victimUID),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("vrid run does not say %q:\n%s", want, stderr)
		}
	}
}

// The chain's own objects go, keyed and private, and nothing is logged.
func TestTeardownRemovesOwnIPC(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	h := holdChain(t, stateDir)
	own := h.ownIDs(t)
	if held := newIPC(before, readIPC(t)); len(held) != 3 {
		t.Fatalf("the chain holds %v, want a sem, a shm and a msg", held)
	}
	if stderr := h.release(t); stderr != "" {
		t.Errorf("vrid run wrote on stderr:\n%s", stderr)
	}
	if left := newIPC(before, readIPC(t)); len(left) != 0 {
		t.Errorf("objects of the chain %+v left: %v", own, left)
	}
	checkNoLeaks(t, stateDir, before)
}
