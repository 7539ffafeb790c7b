package core_test

import (
	"os/exec"
	"strings"
	"testing"
)

// needCommand returns the path of a Debian package's command, or skips
// the test when it is missing.
func needCommand(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (scripts/install-stack.sh installs it)", name)
	}
	return path
}

// Debian's tools that name processes by pid, run in a chain whose virtual
// pids differ from the system ones: strace follows forks with ptrace,
// setpriv sets capabilities through capset's header pid.
func TestTools(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name string // golden file tool_<name>
		cmd  []string
		// allowStderr, when set, is the one message stderr may hold.
		allowStderr string
	}{
		{name: "strace_true", cmd: []string{"strace", "-f", "-o", "/dev/null", "true"}},
		// a tracer sees a child's exit before its parent reaps it: the
		// parent still gets the pid fork gave it, and the status
		{name: "strace_bash_jobs", cmd: []string{"strace", "-f", "-o", "/dev/null", "bash", "-c",
			"sleep 0 & wait $!; echo wait=$?; (exit 3); echo subshell=$?; echo $(echo substitution)"}},
		{name: "setpriv_inh_caps", cmd: []string{"setpriv", "--inh-caps=-all", "true"}},
		// The exec'd process has dropped root and cannot open the table
		// yet (issue 7, item 6): the layer says so, and nothing else may.
		{name: "setpriv_reuid", cmd: []string{"setpriv", "--reuid", "1000", "--inh-caps=-all", "true"},
			allowStderr: "cannot open tables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needCommand(t, tc.cmd[0])
			res := runChain(t, nil, append([]string{"--ids", "sequential", "--"}, tc.cmd...)...)
			if res.Code != 0 || !stderrAllowed(res.Stderr, tc.allowStderr) {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			checkGolden(t, "tool_"+tc.name, res.Stdout)
		})
	}
}

// stderrAllowed says whether every line of stderr holds allow; with no
// allow, stderr must be empty.
func stderrAllowed(stderr, allow string) bool {
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line != "" && (allow == "" || !strings.Contains(line, allow)) {
			return false
		}
	}
	return true
}
