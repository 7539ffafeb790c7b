package core_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A program exec'd after root was dropped still has its tables, although
// the state directory is root's alone: it opens them through the fd
// every process of the chain inherits (VRID_TABLE_FD).  setpriv drops
// root and execs in place, so the program is the root, 1000; runuser
// forks first, so it is 1001; env -i clears the environment that names
// the fd and the table, which exec puts back.  Python's subprocess
// closes every fd but stdio before it execs runuser: exec puts the
// table's fd back too.
func TestPrivilegeDrop(t *testing.T) {
	needSetup(t)
	setpriv := needCommand(t, "setpriv")
	runuser := needCommand(t, "runuser")
	// The shell forks id and true: its children are recorded, under the writer lock.
	prog := []string{"/bin/sh", "-c", `echo uid=$(id -u) pid=$$ ppid=$PPID; /bin/true & wait $!; echo child=$! status=$?`}
	for _, tc := range []struct {
		name string // golden file privdrop_<name>
		cmd  []string
	}{
		{"setpriv", append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}, prog...)},
		{"runuser", append([]string{runuser, "-u", "nobody", "--"}, prog...)},
		{"runuser_env_i", append([]string{runuser, "-u", "nobody", "--", "/usr/bin/env", "-i"}, prog...)},
		{"python_subprocess", []string{python(t), "-c", fmt.Sprintf(
			"import subprocess; subprocess.run([%q, '-u', 'nobody', '--', %q, %q, %q], check=True)",
			runuser, prog[0], prog[1], prog[2])}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runChainPrivate(t, append([]string{"--ids", "sequential", "--"}, tc.cmd...)...)
			if res.Code != 0 || res.Stderr != "" {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			checkGolden(t, "privdrop_"+tc.name, res.Stdout)
		})
	}
}

// runChainPrivate is runChain in a state directory of mode 0700, as vrid
// makes it (t.TempDir makes 0755): only root may reach the table by its
// path.
func runChainPrivate(t *testing.T, runArgs ...string) result {
	t.Helper()
	stateDir := t.TempDir()
	if err := os.Chmod(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	before := readIPC(t)
	res := vrid(t, stateDir, append([]string{"run"}, runArgs...)...)
	checkNoLeaks(t, stateDir, before)
	return res
}

// The table's inherited fd reaches the chain's processes and nobody else:
// while chain_sleeper's root (1000) and child (1001) run, the processes
// that hold the table file open are exactly those two, each with fd 4
// (VRID_TABLE_FD) and a description of its own for the writer lock, and
// `vrid run` itself, with the one it maps.
func TestTableFDHolders(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	if err := os.Chmod(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	before := readIPC(t)
	r := startSleeper(t, stateDir)
	var table unix.Stat_t
	if err := unix.Stat(filepath.Join(stateDir, "chains", "1", "tables"), &table); err != nil {
		t.Fatal(err)
	}
	got := fdsOpenOn(table.Dev, table.Ino)
	want := map[int]bool{r.cmd.Process.Pid: true}
	for _, pid := range chainProcesses(stateDir) {
		want[pid] = true
	}
	if len(want) != 3 {
		t.Errorf("want the supervisor and 2 chain processes, found %v", want)
	}
	for pid, fds := range got {
		switch {
		case !want[pid]:
			t.Errorf("pid %d (%s), outside the chain, holds the table as fds %v", pid, comm(pid), fds)
		case pid == r.cmd.Process.Pid && len(fds) != 1:
			t.Errorf("vrid run holds the table as fds %v, want one", fds)
		case pid != r.cmd.Process.Pid && (len(fds) != 2 || !slices.Contains(fds, 4)):
			t.Errorf("chain process %d holds the table as fds %v, want 4 and its lock's", pid, fds)
		}
	}
	for pid := range want {
		if got[pid] == nil {
			t.Errorf("pid %d (%s) does not hold the table", pid, comm(pid))
		}
	}
	if err := r.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if res := r.finish(t); res.Code != 128+int(unix.SIGTERM) {
		t.Errorf("exit status %d, want %d\n%s", res.Code, 128+int(unix.SIGTERM), res)
	}
	checkNoLeaks(t, stateDir, before)
}

// fdsOpenOn lists, by pid, the fds of every process that are open on the
// file dev/ino.
func fdsOpenOn(dev, ino uint64) map[int][]int {
	out := map[int][]int{}
	links, _ := filepath.Glob("/proc/[0-9]*/fd/[0-9]*")
	for _, link := range links {
		var st unix.Stat_t
		if unix.Stat(link, &st) != nil || st.Dev != dev || st.Ino != ino {
			continue
		}
		parts := strings.Split(link, "/") // "", proc, PID, fd, N
		pid, _ := strconv.Atoi(parts[2])
		fd, _ := strconv.Atoi(parts[4])
		out[pid] = append(out[pid], fd)
	}
	return out
}

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}
