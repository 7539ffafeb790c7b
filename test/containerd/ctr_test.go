package containerd_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A dynamically linked program in a vrid container is pid 1 of its pid
// namespace, under sequential ids as under runc, and nothing of its chain
// outlives it.
func TestGetpidSequential(t *testing.T) {
	e := testEnv(t)
	out := e.runProbe(t, vridRuntime, "vt-getpid", nil, "/probe", "pid")
	if got := lines(out); !slices.Equal(got, []string{"pid=1"}) {
		t.Errorf("probe pid printed %q, want pid=1", got)
	}
	assertNoChain(t, e.stateDir, "vt-getpid")
}

// A fixed key works, and the container sees its own object by its key.
func TestSemaphoreFixedKey(t *testing.T) {
	e := testEnv(t)
	out := e.runProbe(t, vridRuntime, "vt-sem", nil, "/probe", "sem", "0x1234")
	if got, want := lines(out), []string{"semget=ok", "seen.key=4660"}; !slices.Equal(got, want) {
		t.Errorf("probe sem printed %q, want %q", got, want)
	}
	assertNoChain(t, e.stateDir, "vt-sem")
}

// The same program under runc: pid 1 of its pid namespace, the same
// semaphore, no chain.
func TestRuncComparison(t *testing.T) {
	e := testEnv(t)
	before := len(chains(t, e.stateDir))
	out := e.runProbe(t, runcRuntime, "vt-runc-pid", nil, "/probe", "pid")
	if got := lines(out); !slices.Equal(got, []string{"pid=1"}) {
		t.Errorf("under runc, probe pid printed %q, want pid=1", got)
	}
	out = e.runProbe(t, runcRuntime, "vt-runc-sem", nil, "/probe", "sem", "0x1234")
	if got, want := lines(out), []string{"semget=ok", "seen.key=4660"}; !slices.Equal(got, want) {
		t.Errorf("under runc, probe sem printed %q, want %q", got, want)
	}
	if after := len(chains(t, e.stateDir)); after != before {
		t.Errorf("runc containers registered chains: %d before, %d after", before, after)
	}
}

// psRow is one row of `vrid ps --json`.
type psRow struct {
	AID     uint64 `json:"aid"`
	Chain   string `json:"chain"`
	State   string `json:"state"` // "foreign": no process of the chain's cgroups
	VirtPID int32  `json:"vpid"`
	SysPID  int32  `json:"pid"`
	HostPID int    `json:"host_pid"`
	Command string `json:"command"`
}

// ctr task exec runs processes in the container's chain: virtual pids
// after the init's, listed by vrid ps and among the task's pids; kill and
// delete leave nothing behind.
func TestExecJoinsChain(t *testing.T) {
	e := testEnv(t)
	const id = "vt-exec"
	e.startProbe(t, vridRuntime, id, nil, "/probe", "sleep")
	if _, ok := chainNamed(t, e.stateDir, id); !ok {
		t.Fatalf("no chain %q while the container runs", id)
	}
	fifo := filepath.Join(e.ctrdDir, "fifo")
	out, err := e.ctr("tasks", "exec", "--fifo-dir", fifo, "--exec-id", "e1", id, "/probe", "pid")
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(out); !slices.Equal(got, []string{"pid=1000"}) {
		t.Errorf("exec'd probe pid printed %q, want pid=1000", got)
	}
	if _, err := e.ctr("tasks", "exec", "-d", "--fifo-dir", fifo, "--exec-id", "e2", id, "/probe", "sleep"); err != nil {
		t.Fatal(err)
	}

	// The task's pids (host pids) hold the exec'd process...
	hostPid := execHostPid(t, e, id, "e2")
	// ...whose pid in the container's pid namespace is in the chain's
	// tables as virtual pid 1001.
	nsPid := innermostPid(t, hostPid)
	var rows []psRow
	waitFor(t, func() bool { // the layer in it binds its pid once it runs
		rows = vridPS(t, e)
		return slices.ContainsFunc(rows, func(r psRow) bool { return r.HostPID == hostPid && r.VirtPID != 0 })
	}, "the exec'd process bound in the chain")
	found := false
	for _, r := range rows {
		if r.Chain == id && r.VirtPID == 1001 {
			found = true
			// The tables hold the pid in the container's pid namespace;
			// vrid ps must find the process it names.
			if r.SysPID != nsPid || r.HostPID != hostPid || r.State != "running" {
				t.Errorf("vrid ps: vpid 1001 is pid %d, host pid %d, %s; want %d, %d, running (a member of the container's cgroup)",
					r.SysPID, r.HostPID, r.State, nsPid, hostPid)
			}
			if r.Command != "/probe sleep" {
				t.Errorf("vrid ps: vpid 1001 runs %q, want \"/probe sleep\"", r.Command)
			}
		}
	}
	if !found {
		t.Errorf("vrid ps shows no vpid 1001 in chain %s: %+v", id, rows)
	}

	e.stopProbe(t, id)
	assertNoChain(t, e.stateDir, id)
}

// execHostPid finds an exec'd process among a task's pids.
func execHostPid(t *testing.T, e *env, id, execID string) int {
	t.Helper()
	out, err := e.ctr("tasks", "ps", id)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines(out) {
		if strings.Contains(line, `exec_id:"`+execID+`"`) {
			pid, err := strconv.Atoi(strings.Fields(line)[0])
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("exec %s not among the pids of %s:\n%s", execID, id, out)
	return 0
}

// innermostPid is a process's pid in its own pid namespace (NSpid).
func innermostPid(t *testing.T, hostPid int) int32 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", hostPid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(v)
			pid, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				t.Fatal(err)
			}
			return int32(pid)
		}
	}
	t.Fatalf("no NSpid in /proc/%d/status", hostPid)
	return 0
}

func vridPS(t *testing.T, e *env) []psRow {
	t.Helper()
	out, err := e.cmd(filepath.Join(e.repo, "bin", "vrid"), "--config", e.seqCfg, "ps", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []psRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("vrid ps --json: %v\n%s", err, out)
	}
	return rows
}

// Two vrid containers in one IPC namespace each create the same fixed key
// with IPC_EXCL and each sees only its own object; deleting the second
// removes its object from the namespace it shares.
func TestSharedIPCNamespace(t *testing.T) {
	e := testEnv(t)
	holder := e.startProbe(t, vridRuntime, "vt-ipc-a", nil, "/probe", "sem", "0x1234", "hold")
	waitFor(t, func() bool { return len(e.semKeysIn(t, holder)) == 1 }, "the first container's semaphore")
	joinNS := []string{"--with-ns", fmt.Sprintf("ipc:/proc/%d/ns/ipc", holder)}
	out := e.runProbe(t, vridRuntime, "vt-ipc-b", joinNS, "/probe", "sem", "0x1234")
	if got, want := lines(out), []string{"semget=ok", "seen.key=4660"}; !slices.Equal(got, want) {
		t.Errorf("second container printed %q, want %q", got, want)
	}
	if keys := e.semKeysIn(t, holder); len(keys) != 1 {
		t.Errorf("after the second container, the shared namespace holds semaphores %q, want the first's alone", keys)
	}
	assertNoChain(t, e.stateDir, "vt-ipc-b")
	e.stopProbe(t, "vt-ipc-a")
	assertNoChain(t, e.stateDir, "vt-ipc-a")
}

// Tables the shim can't size fail the task's creation with their
// cause, and release the chain.
func TestTablesFailure(t *testing.T) {
	e := testEnv(t)
	bad := filepath.Join(e.work, "bad-slots.toml")
	if err := e.writeConfig(bad, "pid_slots = 3"); err != nil {
		t.Fatal(err)
	}
	const id = "vt-badhook"
	t.Cleanup(func() { e.remove(id) })
	_, err := e.ctr(e.runArgs(vridRuntime, bad, id, []string{"--rm"}, "/probe", "pid")...)
	if err == nil {
		t.Fatal("ctr run succeeded with pid_slots = 3")
	}
	for _, want := range []string{"vrid: create " + id, "register chain", "size its tables: pid slots 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	assertNoChain(t, e.stateDir, id)
}

// A config the shim cannot read fails the task's creation with its path.
func TestMissingConfig(t *testing.T) {
	e := testEnv(t)
	const id = "vt-nocfg"
	t.Cleanup(func() { e.remove(id) })
	missing := filepath.Join(e.work, "missing.toml")
	_, err := e.ctr(e.runArgs(vridRuntime, missing, id, []string{"--rm"}, "/probe", "pid")...)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ctr run with a missing config: %v, want an error naming %s", err, missing)
	}
}
