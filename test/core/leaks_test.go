package core_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/cgroup"
)

// ipcObject is one System V object as /proc/sysvipc shows it.
type ipcObject struct {
	Kind string // sem, shm or msg
	ID   int
	Key  int32
}

func (o ipcObject) String() string {
	return fmt.Sprintf("%s id %d key %#x", o.Kind, o.ID, uint32(o.Key))
}

var ipcKinds = []string{"sem", "shm", "msg"}

// readIPC lists the System V objects of this IPC namespace.
func readIPC(t *testing.T) []ipcObject {
	t.Helper()
	var objs []ipcObject
	for _, kind := range ipcKinds {
		data, err := os.ReadFile("/proc/sysvipc/" + kind)
		if err != nil {
			t.Fatalf("read /proc/sysvipc/%s: %v", kind, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // the header line
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			key, err1 := strconv.ParseInt(f[0], 10, 32)
			id, err2 := strconv.Atoi(f[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("/proc/sysvipc/%s: unreadable line %q", kind, sc.Text())
			}
			objs = append(objs, ipcObject{Kind: kind, ID: id, Key: int32(key)})
		}
	}
	return objs
}

// newIPC is what after has and before had not.
func newIPC(before, after []ipcObject) []ipcObject {
	var fresh []ipcObject
	for _, o := range after {
		if !slices.Contains(before, o) {
			fresh = append(fresh, o)
		}
	}
	return fresh
}

// removeIPC removes objects with the plain system calls, without libc.
func removeIPC(objs []ipcObject) {
	for _, o := range objs {
		switch o.Kind {
		case "sem":
			_, _, _ = unix.Syscall6(unix.SYS_SEMCTL, uintptr(o.ID), 0, unix.IPC_RMID, 0, 0, 0)
		case "shm":
			_, _, _ = unix.Syscall(unix.SYS_SHMCTL, uintptr(o.ID), unix.IPC_RMID, 0)
		case "msg":
			_, _, _ = unix.Syscall(unix.SYS_MSGCTL, uintptr(o.ID), unix.IPC_RMID, 0)
		}
	}
}

// checkNoLeaks is the check after every run: no chain directory, no chain
// in the registry, no IPC object the run made, no process of it, and no
// cgroup.  What leaked is reported and then removed, so that the next
// test starts clean.
func checkNoLeaks(t *testing.T, stateDir string, ipcBefore []ipcObject) {
	t.Helper()
	chains, err := os.ReadDir(filepath.Join(stateDir, "chains"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read chains dir: %v", err)
	}
	for _, c := range chains {
		t.Errorf("leak: %s left behind", filepath.Join(stateDir, "chains", c.Name()))
	}
	if reg := registryChains(t, stateDir); len(reg) > 0 {
		t.Errorf("leak: the registry still has chains %v", reg)
	}
	if leaked := newIPC(ipcBefore, readIPC(t)); len(leaked) > 0 {
		t.Errorf("leak: IPC objects left after the run: %v", leaked)
		removeIPC(leaked)
	}
	if procs := chainProcesses(stateDir); len(procs) > 0 {
		t.Errorf("leak: processes of the chain still run: %v", procs)
		killChainProcesses(t, stateDir)
	}
	for _, path := range chainCgroups(t, stateDir) {
		t.Errorf("leak: cgroup %s left behind", path)
		if cg, err := cgroup.Open(path); err == nil {
			_ = cg.Kill()
			_ = cg.Remove()
		}
	}
}

// chainCgroups lists the cgroups of the chains of stateDir that exist.
func chainCgroups(t *testing.T, stateDir string) []string {
	t.Helper()
	pattern, err := cgroup.ChainPattern(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// registryChains lists the AIDs registry.json holds.
func registryChains(t *testing.T, stateDir string) []int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "registry.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read registry: %v", err)
	}
	var reg struct {
		Chains []struct {
			AID int `json:"aid"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(data, &reg); err != nil {
		t.Fatalf("registry.json: %v\n%s", err, data)
	}
	var aids []int
	for _, c := range reg.Chains {
		aids = append(aids, c.AID)
	}
	return aids
}

// chainProcesses lists the live processes whose VRID_TABLE lies in
// stateDir: every process of a chain run there, whatever it became.
func chainProcesses(stateDir string) []int {
	mark := []byte("VRID_TABLE=" + stateDir + "/")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, mark) || isZombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// killChainProcesses ends, by pid, every process of the chains of
// stateDir, and reaps those of them that came to us as subreaper.
func killChainProcesses(t *testing.T, stateDir string) {
	t.Helper()
	for _, pid := range chainProcesses(stateDir) {
		_ = unix.Kill(pid, unix.SIGKILL)
		reapIfOurs(pid)
	}
}

// reapIfOurs waits for pid when it is our child: an orphan that came to
// us.  os/exec waits for its own children itself.
func reapIfOurs(pid int) {
	if parentOf(pid) != os.Getpid() {
		return
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return
		}
	}
}

func parentOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return -1
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
