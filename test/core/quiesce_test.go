package core_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/quiesce"
)

const (
	// quiesceTimeout only bounds a process that never answers; the
	// tests that expect an answer never reach it.
	quiesceTimeout = 20 * time.Second
	criuBin        = "/opt/vrid-stack/bin/criu"
	// What CRIU says of a process with SysV shm outside an IPC namespace of its own.
	criuSysVRefusal = "doesn't live in IPC ns"
)

// startQuiesceChain runs program under `vrid run --ids sequential` and
// waits for its "ready=1"; it returns the run and its system pids by
// virtual pid.
func startQuiesceChain(t *testing.T, stateDir string, args ...string) (*chainRun, map[int32]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	t.Cleanup(cancel)
	c := startChain(t, ctx, stateDir, append([]string{"run", "--name", "q", "--ids", "sequential", "--"}, args...)...)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	select {
	case <-c.ready:
	case <-c.done:
		t.Fatalf("the chain ended before it was ready\n%s", c.finish(t))
	case <-ctx.Done():
		t.Fatalf("%s never said ready\n%s", c.name, c.stdout())
	}
	sys := map[int32]int{}
	for _, r := range psJSON(t, stateDir) {
		sys[r.VirtPID] = int(r.SysPID)
	}
	return c, sys
}

// finishQuiesceChain sends the chain its last line, and wants it to end
// with status 0, no stderr, the golden output, and nothing left behind.
func finishQuiesceChain(t *testing.T, c *chainRun, last, golden string, before []ipcObject) {
	t.Helper()
	send(t, c, last)
	res := c.finish(t)
	if res.Code != 0 || res.Stderr != "" {
		t.Errorf("want exit status 0 and no stderr\n%s", res)
	}
	checkGolden(t, golden, res.Stdout)
	checkNoLeaks(t, c.stateDir, before)
}

// waitLine waits until the chain has printed line.
func waitLine(t *testing.T, c *chainRun, line string) {
	t.Helper()
	poll(t, fmt.Sprintf("the line %q", line), func() bool {
		return slices.Contains(strings.Split(c.stdout(), "\n"), line)
	})
}

func send(t *testing.T, c *chainRun, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatalf("write %q to the chain: %v", line, err)
	}
}

func sysvMaps(t *testing.T, pid int) []quiesce.Mapping {
	t.Helper()
	maps, err := quiesce.ReadMaps(pid)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(maps, func(m quiesce.Mapping) bool { return !m.SysV() })
}

// criuDump dumps the tree under pid with --leave-running and returns
// CRIU's exit status and log.
func criuDump(t *testing.T, pid int) (int, string) {
	t.Helper()
	if _, err := os.Stat(criuBin); err != nil {
		t.Skipf("no CRIU at %s (scripts/install-stack.sh installs it)", criuBin)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := bounded(exec.CommandContext(ctx, criuBin, "dump", "--tree", strconv.Itoa(pid),
		"--images-dir", dir, "--leave-running", "--shell-job", "--log-file", "dump.log", "-v4"))
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("criu dump: %v\n%s", err, out)
		}
		code = exit.ExitCode()
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dump.log"))
	return code, string(out) + string(log)
}

// Three segments of different sizes, one with a fixed key, in a root and
// the child that inherited them, with a thread writing into one all the
// while: CRIU refuses the tree; after Detach each range is reserved with
// no SysV map left, and CRIU dumps it; after Attach every segment is back
// at its range, intact and shared.
func TestQuiesceSysVShm(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	c, sys := startQuiesceChain(t, stateDir, program("quiesce_shm"))
	root, child := sys[1000], sys[1001]
	if root == 0 || child == 0 || len(sys) != 2 {
		t.Fatalf("vrid ps: want virtual pids 1000 and 1001, got %v", sys)
	}
	was := map[int][]quiesce.Mapping{root: sysvMaps(t, root), child: sysvMaps(t, child)}
	for pid, m := range was {
		if len(m) != 3 {
			t.Fatalf("pid %d has SysV maps %v, want 3", pid, m)
		}
	}

	if code, log := criuDump(t, root); code == 0 || !strings.Contains(log, criuSysVRefusal) {
		t.Errorf("criu dump with SysV shm attached: want a failure saying %q, got exit status %d\n%s",
			criuSysVRefusal, code, log)
	}

	procs, err := quiesce.Detach(chainProcesses(stateDir), quiesceTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 2 {
		t.Errorf("Detach asked %+v, want the root and its child", procs)
	}
	for pid, sysv := range was {
		maps, err := quiesce.ReadMaps(pid)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sysv {
			if !slices.ContainsFunc(maps, func(m quiesce.Mapping) bool {
				// Adjacent reservations merge into one mapping.
				return m.Reserved() && m.Start <= s.Start && s.End <= m.End
			}) {
				t.Errorf("pid %d after Detach: no reservation ---p over %x-%x in its maps", pid, s.Start, s.End)
			}
		}
		if left := sysvMaps(t, pid); len(left) != 0 {
			t.Errorf("pid %d after Detach still has SysV maps %v", pid, left)
		}
	}

	if code, log := criuDump(t, root); code != 0 || strings.Contains(log, criuSysVRefusal) {
		t.Errorf("criu dump --leave-running after Detach: want success, got exit status %d\n%s", code, log)
	}

	if err := quiesce.Attach(procs, quiesceTimeout); err != nil {
		t.Fatal(err)
	}
	for pid, sysv := range was {
		if got := sysvMaps(t, pid); !slices.Equal(got, sysv) {
			t.Errorf("pid %d after Attach: SysV maps\n%v\nwant\n%v", pid, got, sysv)
		}
	}
	finishQuiesceChain(t, c, "check", "quiesce_shm", before)
}

// A root that blocks the quiesce signal never detaches: Detach gives up
// after its timeout, names the root, and leaves the child, which had
// detached, attached again.  Once the root unblocks the signal, the
// detach and attach queued for it come one after the other, and every
// segment is intact and shared.
func TestQuiesceTimeout(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	c, sys := startQuiesceChain(t, stateDir, program("quiesce_shm"), "block")
	root, child := sys[1000], sys[1001]
	was := map[int][]quiesce.Mapping{root: sysvMaps(t, root), child: sysvMaps(t, child)}

	timeout := time.Second
	_, err := quiesce.Detach(chainProcesses(stateDir), timeout)
	want := fmt.Sprintf("detach SysV shm: pid %d still has SysV shm attached after 1s "+
		"(its main thread blocks signal %d): no answer in time", root, quiesce.Signal)
	if err == nil || err.Error() != want || !errors.Is(err, quiesce.ErrTimeout) {
		t.Fatalf("Detach with the root blocking the signal:\n got %v\nwant %s", err, want)
	}
	for pid, sysv := range was {
		if got := sysvMaps(t, pid); !slices.Equal(got, sysv) {
			t.Errorf("pid %d after the failed Detach: SysV maps\n%v\nwant\n%v", pid, got, sysv)
		}
	}

	send(t, c, "unblock")
	waitLine(t, c, "unblocked=1")
	if got := sysvMaps(t, root); !slices.Equal(got, was[root]) {
		t.Errorf("root after unblocking: SysV maps\n%v\nwant\n%v", got, was[root])
	}
	finishQuiesceChain(t, c, "check", "quiesce_shm_block", before)
}

// inSyscall says whether the task's /proc/.../syscall shows it blocked in
// one of nrs.
func inSyscall(path string, nrs ...int) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	nr, err := strconv.Atoi(strings.Fields(string(data) + " x")[0])
	return err == nil && slices.Contains(nrs, nr)
}

// Processes blocked in semop, semtimedop, msgrcv (one of them a second thread),
// pause, nanosleep, waitpid and read are still blocked after Detach and
// Attach, with nothing printed, and each wakes on its own event.
func TestQuiesceBlockedCalls(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	c, sys := startQuiesceChain(t, stateDir, program("quiesce_block"))
	if len(sys) != 8 {
		t.Fatalf("vrid ps: want virtual pids 1000 to 1007, got %v", sys)
	}
	root := sys[1000]
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", root))
	if err != nil || len(tasks) != 2 {
		t.Fatalf("root's tasks %v (%v), want two", tasks, err)
	}
	thread := tasks[0].Name()
	if thread == strconv.Itoa(root) {
		thread = tasks[1].Name()
	}
	blocked := []struct {
		who  string
		path string
		nrs  []int
	}{
		{"root in read", fmt.Sprintf("/proc/%d/syscall", root), []int{unix.SYS_READ}},
		{"root's thread in msgrcv", fmt.Sprintf("/proc/%d/task/%s/syscall", root, thread), []int{unix.SYS_MSGRCV}},
		{"1001 in semop", fmt.Sprintf("/proc/%d/syscall", sys[1001]), []int{unix.SYS_SEMOP, unix.SYS_SEMTIMEDOP}},
		{"1002 in semtimedop", fmt.Sprintf("/proc/%d/syscall", sys[1002]), []int{unix.SYS_SEMTIMEDOP}},
		{"1003 in msgrcv", fmt.Sprintf("/proc/%d/syscall", sys[1003]), []int{unix.SYS_MSGRCV}},
		{"1004 in pause", fmt.Sprintf("/proc/%d/syscall", sys[1004]), []int{unix.SYS_PAUSE}},
		{"1005 in nanosleep", fmt.Sprintf("/proc/%d/syscall", sys[1005]), []int{unix.SYS_NANOSLEEP, unix.SYS_CLOCK_NANOSLEEP}},
		{"1006 in waitpid", fmt.Sprintf("/proc/%d/syscall", sys[1006]), []int{unix.SYS_WAIT4}},
		{"1007 in pause", fmt.Sprintf("/proc/%d/syscall", sys[1007]), []int{unix.SYS_PAUSE}},
	}
	allBlocked := func(when string) {
		t.Helper()
		for _, b := range blocked {
			poll(t, b.who+" "+when, func() bool { return inSyscall(b.path, b.nrs...) })
		}
	}
	allBlocked("before Detach")

	procs, err := quiesce.Detach(chainProcesses(stateDir), quiesceTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 8 {
		t.Errorf("Detach asked %d processes, want 8: %+v", len(procs), procs)
	}
	if err := quiesce.Attach(procs, quiesceTimeout); err != nil {
		t.Fatal(err)
	}
	allBlocked("after Attach")
	if got := c.stdout(); got != "ready=1\n" {
		t.Errorf("a blocked call returned across Detach and Attach; the chain printed\n%s", got)
	}

	for _, ev := range []struct{ send, line string }{
		{"post 0", "semop=0"},
		{"post 1", "semtimedop=0"},
		{"send 1 one", "msgrcv=one"},
		{"send 2 two", "thread.msgrcv=two"},
		{"kill 1004 10", "pause=-1 errno=EINTR usr1=1"},
		{"kill 1005 10", "nanosleep=-1 errno=EINTR usr1=1 rem.left=1"},
		{"kill 1007 15", "waitpid=1007 signal=15"},
	} {
		send(t, c, ev.send)
		waitLine(t, c, ev.line)
	}
	finishQuiesceChain(t, c, "end", "quiesce_block", before)
}

// A process with SysV shm that does not run the layer is never sent the
// signal, whose default action would kill it: Detach fails, naming it.
func TestQuiesceWithoutLayer(t *testing.T) {
	needSetup(t)
	before := readIPC(t)
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := bounded(exec.CommandContext(ctx, program("quiesce_shm")))
	cmd.Env = cleanEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	poll(t, "quiesce_shm attaches its segments", func() bool { return len(sysvMaps(t, pid)) == 3 })

	_, err = quiesce.Detach([]int{pid}, quiesceTimeout)
	want := fmt.Sprintf("detach SysV shm: pid %d has SysV shm attached but does not catch signal %d: "+
		"does not run the vrid layer", pid, quiesce.Signal)
	if err == nil || err.Error() != want || !errors.Is(err, quiesce.ErrNoLayer) {
		t.Errorf("Detach of a process without the layer:\n got %v\nwant %s", err, want)
	}
	if _, err := io.WriteString(stdin, "check\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil || stderr.String() != "" {
		t.Errorf("quiesce_shm without the layer: %v\n%s", err, stderr.String())
	}
	checkGolden(t, "quiesce_shm", stdout.String())
	if leaked := newIPC(before, readIPC(t)); len(leaked) != 0 {
		removeIPC(leaked)
		t.Errorf("quiesce_shm left %v", leaked)
	}
}
