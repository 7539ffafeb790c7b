package containerd_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// victimUID is the other tenant whose objects a container names.
const victimUID = 2000

// ipcIDs lists "kind id" of every System V object of this IPC namespace.
func ipcIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, kind := range []string{"sem", "shm", "msg"} {
		data, err := os.ReadFile("/proc/sysvipc/" + kind)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // the header line
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 1 {
				ids = append(ids, kind+" "+f[1])
			}
		}
	}
	return ids
}

// asVictim runs ipc_victim as victimUID, in this IPC namespace.
func (e *env) asVictim(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.work, "ipc_victim"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: victimUID, Gid: victimUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipc_victim %v as uid %d: %v\n%s", args, victimUID, err, out)
	}
	return string(out)
}

// A uid-1000 container in the host side's IPC namespace writes another
// tenant's ids into its table.  When it ends, the poststop hook leaves
// those objects whole and says why, and removes the container's own.
func TestForgedIPCEntriesInSharedNamespace(t *testing.T) {
	e := testEnv(t)
	const id = "vt-ipc-forge"
	before := ipcIDs(t)
	var v [3]int // sem, shm, msg
	out := e.asVictim(t, "make")
	if _, err := fmt.Sscanf(out, "sem=%d shm=%d msg=%d", &v[0], &v[1], &v[2]); err != nil {
		t.Fatalf("ipc_victim make printed %q: %v", out, err)
	}
	kinds := []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg}
	t.Cleanup(func() {
		_, _ = unix.SysvShmCtl(v[1], unix.IPC_RMID, nil)
		_, _, _ = unix.Syscall6(unix.SYS_SEMCTL, uintptr(v[0]), 0, unix.IPC_RMID, 0, 0, 0)
		_, _, _ = unix.Syscall(unix.SYS_MSGCTL, uintptr(v[2]), unix.IPC_RMID, 0)
	})
	victims := newIDs(before, ipcIDs(t))

	joinHost := []string{"--user", "1000:1000", "--with-ns", fmt.Sprintf("ipc:/proc/%d/ns/ipc", os.Getpid())}
	e.startProbe(t, vridRuntime, id, joinHost, "/probe", "ipc")
	ch, ok := chainNamed(t, e.stateDir, id)
	if !ok {
		t.Fatalf("no chain %q while the container runs", id)
	}
	tb, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tb.Live(vresource.Sem)+tb.Live(vresource.Shm)+tb.Live(vresource.Msg) == 3 },
		"the container's objects")
	if own := newIDs(before, ipcIDs(t)); len(own) != 6 {
		t.Fatalf("objects %v, want the victim's 3 and the container's 3", own)
	}
	var virt [3]int32
	for i, rt := range kinds {
		if virt[i], err = tb.Bind(rt, int32(v[i])); err != nil {
			t.Fatal(err)
		}
	}
	tb.Close()
	e.stopProbe(t, id)
	assertNoChain(t, e.stateDir, id)

	if left := newIDs(before, ipcIDs(t)); !slices.Equal(left, victims) {
		t.Errorf("objects left: %v; want the victim's %v", left, victims)
	}
	got := e.asVictim(t, "check", strconv.Itoa(v[0]), strconv.Itoa(v[1]), strconv.Itoa(v[2]))
	if want := "sem.val=42\nshm=victim-shm\nmsg.type=7 msg=victim-msg\n"; got != want {
		t.Errorf("the victim's objects hold\n%s\nwant\n%s", got, want)
	}
	log, err := os.ReadFile(filepath.Join(e.stateDir, "logs", "hooks.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i, rt := range kinds {
		want := fmt.Sprintf("chain %s: %s %d (virtual %d) left alone: owned by uid %d and made by uid %d, "+
			"and the chain runs as [1000] without CAP_SYS_ADMIN", ch.AID, rt, v[i], virt[i], victimUID, victimUID)
		if !strings.Contains(string(log), want) {
			t.Errorf("the hooks' log does not say %q:\n%s", want, log)
		}
	}
}

// newIDs is what after has and before had not.
func newIDs(before, after []string) []string {
	var fresh []string
	for _, o := range after {
		if !slices.Contains(before, o) {
			fresh = append(fresh, o)
		}
	}
	return fresh
}
