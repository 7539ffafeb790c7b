package core_test

import (
	"os"
	"testing"
)

// A program exec'd after root was dropped still has its tables, although
// the state directory is root's alone: it opens them through the fd
// every process of the chain inherits (VRID_TABLE_FD).  setpriv drops
// root and execs in place, so the program is the root, 1000; runuser
// forks first, so it is 1001; env -i clears the environment that names
// the fd and the table, which exec puts back.
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
