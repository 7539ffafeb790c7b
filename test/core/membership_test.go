package core_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// A chain's table names a process that is not the chain's: one another
// uid runs, forged into the table, or an unrelated one that took the pid
// of a stale entry.  vrid ps shows it as foreign, not as a member, and
// the end of the chain, by its root's death or by vrid rm, leaves it
// alive: vrid signals only the members of the chain's cgroup.
func TestForeignPidSpared(t *testing.T) {
	needSetup(t)
	shapes := []struct {
		name   string
		victim func(t *testing.T, stateDir string, stale int) (pid int, virt int32)
	}{
		{"forged", forgedVictim},
		{"stale pid reused", reusedVictim},
	}
	ends := []struct {
		name string
		end  func(t *testing.T, stateDir string, root int)
	}{
		{"root killed", func(t *testing.T, _ string, root int) {
			if err := unix.Kill(root, unix.SIGKILL); err != nil {
				t.Fatalf("kill root %d: %v", root, err)
			}
		}},
		{"vrid rm", func(t *testing.T, stateDir string, _ int) {
			if res := vrid(t, stateDir, "rm", "spared"); res.Code != 0 || res.Stdout != "" || res.Stderr != "" {
				t.Errorf("vrid rm spared: want exit status 0 and no output\n%s", res)
			}
		}},
	}
	for _, shape := range shapes {
		for _, end := range ends {
			t.Run(shape.name+", "+end.name, func(t *testing.T) {
				stateDir := t.TempDir()
				before := readIPC(t)
				_, supervisor := detach(t, stateDir, "spared", program("stale_group"))
				waitLog(t, stateDir, "1", "leader=1001\nready=1\n")
				root := int(tableSys(t, stateDir, "spared", 1000))
				// The group of 1001 is gone once its member is: the root alone is left.
				stale := int(tableSys(t, stateDir, "spared", 1001))
				poll(t, fmt.Sprintf("pid %d, the stale entry's, is free", stale), func() bool {
					return unix.Kill(stale, 0) == unix.ESRCH && unix.Kill(-stale, 0) == unix.ESRCH
				})
				victim, virt := shape.victim(t, stateDir, stale)

				want := []psRow{
					{AID: 1, Chain: "spared", State: "running", VirtPID: 1000, SysPID: int32(root), Command: program("stale_group")},
					{AID: 1, Chain: "spared", State: "foreign", VirtPID: virt, SysPID: int32(victim), Command: "sleep 1000"},
				}
				if rows := psJSON(t, stateDir); !reflect.DeepEqual(rows, want) {
					t.Errorf("vrid ps:\n%+v\nwant the root as a member and pid %d as foreign:\n%+v", rows, victim, want)
				}

				end.end(t, stateDir, root)
				waitSupervisor(t, supervisor)
				if unix.Kill(victim, 0) != nil || isZombie(victim) {
					t.Errorf("pid %d, uid %d's, outside the chain, was killed with it", victim, victimUID)
				}
				checkNoLeaks(t, stateDir, before)
			})
		}
	}
}

// forgedVictim starts a process of another uid and writes its pid into
// the chain's table, as a process of the chain could.
func forgedVictim(t *testing.T, stateDir string, _ int) (int, int32) {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: victimUID, Gid: victimUID}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	tb, err := vresource.OpenTables(tablesOf(t, stateDir))
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	virt, err := tb.Bind(vresource.PID, int32(cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, virt
}

// reusedVictim starts a process of another uid with the pid of the
// chain's stale entry 1001 (stale_group), which is free.
func reusedVictim(t *testing.T, _ string, stale int) (int, int32) {
	t.Helper()
	out, err := exec.Command(program("spawn_at"), strconv.Itoa(stale), strconv.Itoa(victimUID), "sleep", "1000").CombinedOutput()
	if err != nil || string(out) != fmt.Sprintf("pid=%d\n", stale) {
		t.Fatalf("spawn_at %d: %v\n%s", stale, err, out)
	}
	// spawn_at exits at once: its child comes to us, the subreaper.
	t.Cleanup(func() { _ = unix.Kill(stale, unix.SIGKILL); reapIfOurs(stale) })
	return stale, 1001
}

// A detached chain whose supervisor is SIGKILLed is collected, whole, by
// vrid gc or by the next vrid run: its processes, its semaphore set, its
// directory, its AID and its cgroup.
func TestOrphanCollected(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name    string
		collect []string
		stdout  string
	}{
		{"vrid gc", []string{"gc"}, "1\torphan\n"},
		{"next vrid run", []string{"run", "--", program("exit_with"), "code", "0"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := t.TempDir()
			before := readIPC(t)
			_, supervisor := detach(t, stateDir, "orphan", program("chain_sleeper"))
			waitLog(t, stateDir, "1", "semget=1\nfork=1001\nready=1\n")
			if err := unix.Kill(supervisor, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			reapIfOurs(supervisor)
			rows := psJSON(t, stateDir)
			if len(rows) != 2 || rows[0].State != "stale" || rows[1].State != "stale" {
				t.Fatalf("vrid ps once the supervisor is killed: %+v, want its two processes, stale", rows)
			}
			if res := vrid(t, stateDir, tc.collect...); res.Code != 0 || res.Stdout != tc.stdout || res.Stderr != "" {
				t.Errorf("vrid %s: want exit status 0, stdout %q and no stderr\n%s", tc.collect[0], tc.stdout, res)
			}
			reapKilled(rows)
			checkNoLeaks(t, stateDir, before)
		})
	}
}

// vrid rm ends a detached chain and leaves nothing, whether its
// supervisor tears it down or is gone and leaves that to vrid rm.
func TestRm(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name           string
		killSupervisor bool
	}{
		{"supervisor alive", false},
		{"supervisor killed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := t.TempDir()
			before := readIPC(t)
			_, supervisor := detach(t, stateDir, "doomed", program("chain_sleeper"))
			waitLog(t, stateDir, "1", "semget=1\nfork=1001\nready=1\n")
			rows := psJSON(t, stateDir)
			if tc.killSupervisor {
				_ = unix.Kill(supervisor, unix.SIGKILL)
			}
			if res := vrid(t, stateDir, "rm", "doomed"); res.Code != 0 || res.Stdout != "" || res.Stderr != "" {
				t.Errorf("vrid rm doomed: want exit status 0 and no output\n%s", res)
			}
			waitSupervisor(t, supervisor)
			reapKilled(rows)
			checkNoLeaks(t, stateDir, before)
		})
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown chain", []string{"rm", "nosuch"}, "vrid: get chain \"nosuch\": unknown chain (see vrid ps)\n"},
		{"unknown AID", []string{"rm", "7"}, "vrid: get chain \"7\": unknown chain (see vrid ps)\n"},
		{"no chain", []string{"rm"}, "vrid: give one chain: vrid rm NAME|AID (see vrid ps)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := vrid(t, t.TempDir(), tc.args...); res.Code != 1 || res.Stdout != "" || res.Stderr != tc.stderr {
				t.Errorf("vrid %s: want exit status 1 and stderr %q\n%s", strings.Join(tc.args, " "), tc.stderr, res)
			}
		})
	}
}

// Fifty chains run at once in one state directory, each leaving a child
// behind when its root exits: every run ends, and nothing is left.
func TestConcurrentRuns(t *testing.T) {
	needSetup(t)
	const runs = 50
	stateDir := t.TempDir()
	before := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	results := make([]string, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := vridCommand(t.Context(), stateDir, "run", "--", "sh", "-c", "sleep 1000 & echo ran")
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "ran\n" {
				results[i] = fmt.Sprintf("%v: %q", err, out)
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r != "" {
			t.Errorf("run %d: want exit status 0 and \"ran\": %s", i, r)
		}
	}
	checkNoLeaks(t, stateDir, before)
}

// detach runs CMD as a detached chain NAME with sequential ids, and
// returns its AID and its supervisor, which the test ends, and reaps, if
// it is still there when the test ends.
func detach(t *testing.T, stateDir, name string, cmd ...string) (aid string, supervisor int) {
	t.Helper()
	// Last: what a failed test left, the chain's cgroup too.
	t.Cleanup(func() {
		killChainProcesses(t, stateDir)
		vrid(t, stateDir, "gc")
	})
	res := vrid(t, stateDir, append([]string{"run", "--detach", "--name", name, "--ids", "sequential", "--"}, cmd...)...)
	if res.Code != 0 {
		t.Fatalf("vrid run --detach:\n%s", res)
	}
	aid = strings.TrimSpace(res.Stdout)
	if _, err := strconv.Atoi(aid); err != nil {
		t.Fatalf("vrid run --detach printed %q, want the AID", res.Stdout)
	}
	supervisor = ownerPid(t, stateDir)
	t.Cleanup(func() {
		if unix.Kill(supervisor, 0) == nil {
			_ = unix.Kill(supervisor, unix.SIGKILL)
			reapIfOurs(supervisor)
		}
	})
	return aid, supervisor
}

// waitLog waits until the log of detached chain aid reads want.
func waitLog(t *testing.T, stateDir, aid, want string) {
	t.Helper()
	var got []byte
	poll(t, "the chain's log reads "+strconv.Quote(want), func() bool {
		got, _ = os.ReadFile(filepath.Join(stateDir, "logs", aid+".log"))
		return string(got) == want
	})
}

// reapKilled reaps the processes of rows that were killed and came to us.
func reapKilled(rows []psRow) {
	for _, r := range rows {
		if isZombie(int(r.SysPID)) {
			reapIfOurs(int(r.SysPID))
		}
	}
}

// tablesOf is the table file of the one chain of stateDir.
func tablesOf(t *testing.T, stateDir string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(stateDir, "chains", "*", "tables"))
	if len(matches) != 1 {
		t.Fatalf("table files %v, want one", matches)
	}
	return matches[0]
}

// tableSys is the system pid chain name's tables give virtual pid virt.
func tableSys(t *testing.T, stateDir, name string, virt int32) int32 {
	t.Helper()
	for _, e := range tablesJSON(t, stateDir, name).Entries {
		if e.Type == "pid" && e.Virt == virt {
			return e.Sys
		}
	}
	t.Fatalf("no pid %d in the tables of %s", virt, name)
	return 0
}
