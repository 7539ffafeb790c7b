package core_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestExitStatus(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name     string
		cmd      []string
		want     int
		inStderr string
	}{
		{"exit 0", []string{program("exit_with"), "code", "0"}, 0, ""},
		{"exit 3", []string{program("exit_with"), "code", "3"}, 3, ""},
		{"false", []string{"false"}, 1, ""},
		{"SIGTERM", []string{program("exit_with"), "signal", "15"}, 128 + 15, ""},
		{"SIGKILL", []string{program("exit_with"), "signal", "9"}, 128 + 9, ""},
		// dash's kill builtin signals $$, the shell's virtual pid
		{"sh kill $$", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"unknown command", []string{"no-such-command-vrid-test"}, 127, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runChain(t, nil, append([]string{"--ids", "sequential", "--"}, tc.cmd...)...)
			if res.Code != tc.want {
				t.Errorf("exit status %d, want %d\n%s", res.Code, tc.want, res)
			}
			if tc.inStderr != "" && !strings.Contains(res.Stderr, tc.inStderr) {
				t.Errorf("stderr lacks %q\n%s", tc.inStderr, res)
			}
		})
	}
}

// A signal to `vrid run` goes to the chain's root; the run ends with the
// root's status and takes the rest of the chain with it.
func TestSignalForwarded(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	r := startSleeper(t, stateDir)
	if err := r.cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := r.finish(t)
	if res.Code != 128+int(unix.SIGTERM) {
		t.Errorf("exit status %d, want %d (SIGTERM reached the root)\n%s", res.Code, 128+int(unix.SIGTERM), res)
	}
	checkGolden(t, "chain_sleeper", res.Stdout)
	checkNoLeaks(t, stateDir, before)
}

// chainRun is a `vrid run` started in the background with its stdin and
// stdout as pipes.
type chainRun struct {
	cmd      *exec.Cmd
	ctx      context.Context // its end kills the run (vridCommand)
	name     string          // the program it runs, for messages
	stateDir string
	waitOnce sync.Once
	stdin    io.WriteCloser
	mu       sync.Mutex
	lines    []string
	ready    chan struct{} // closed at the line "ready=1"
	done     chan struct{} // closed when stdout ends
	stderr   strings.Builder
}

func startChain(t *testing.T, ctx context.Context, stateDir string, args ...string) *chainRun {
	t.Helper()
	c := &chainRun{ctx: ctx, name: vridName(args), stateDir: stateDir,
		ready: make(chan struct{}), done: make(chan struct{})}
	c.cmd = vridCommand(ctx, stateDir, args...)
	c.cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A test that stops early still ends and reaps its `vrid run`.
	t.Cleanup(func() {
		_ = unix.Kill(-c.cmd.Process.Pid, unix.SIGKILL)
		c.wait()
	})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		readySeen := false
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			if sc.Text() == "ready=1" && !readySeen {
				readySeen = true
				close(c.ready)
			}
		}
	}()
	return c
}

// startSleeper runs chain_sleeper with sequential ids in stateDir and
// waits until it is ready.
func startSleeper(t *testing.T, stateDir string) *chainRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	t.Cleanup(cancel)
	r := startChain(t, ctx, stateDir, "run", "--ids", "sequential", "--", program("chain_sleeper"))
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	r.waitReady(t)
	return r
}

// waitReady waits for the line "ready=1"; a run that ends or outlives
// its context first fails the test.
func (c *chainRun) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-c.ready:
	case <-c.done:
		t.Fatalf("the chain ended before it was ready\n%s", c.finish(t))
	case <-c.ctx.Done():
		t.Fatalf("%s never said ready\n%s", c.name, c.stdout())
	}
}

func (c *chainRun) stdout() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n") + "\n"
}

// wait reaps the `vrid run` (Wait closes our end of its stdout, which a
// process it left may still hold, and stops reading its stderr after
// waitDelay).
func (c *chainRun) wait() {
	c.waitOnce.Do(func() {
		c.stdin.Close()
		_ = c.cmd.Wait()
		<-c.done
	})
}

// finish closes stdin, waits for the end of the run's output and returns
// what the run left.  A run that outlives its context is killed with its
// process group and its chain, and fails the test.
func (c *chainRun) finish(t *testing.T) result {
	t.Helper()
	c.stdin.Close()
	select {
	case <-c.done:
	case <-c.ctx.Done():
		killChainProcesses(t, c.stateDir)
	}
	c.wait()
	res := result{Stdout: c.stdout(), Stderr: c.stderr.String(), Code: c.cmd.ProcessState.ExitCode()}
	if c.ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; its process group and chain were killed\n%s", c.name, runDeadline, res)
	}
	return res
}

// Two chains use one fixed key with IPC_CREAT|IPC_EXCL at the same time:
// both succeed, each gets its own objects and sees only those.  In one
// state directory the chains have different AIDs; in two, both are AID 1,
// and the second must step around the first one's private key.
func TestTwoChainsPrivateKeys(t *testing.T) {
	needSetup(t)
	const fixedKey = 0x4a11
	for _, tc := range []struct {
		name      string
		sharedDir bool
	}{
		{"one state dir", true},
		{"two state dirs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirA := t.TempDir()
			dirB := dirA
			if !tc.sharedDir {
				dirB = t.TempDir()
			}
			before := readIPC(t)
			ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
			defer cancel()
			values := []string{"11", "22"}
			runs := []*chainRun{
				startChain(t, ctx, dirA, "run", "--ids", "sequential", "--", program("ipc_private_keys"), values[0]),
				startChain(t, ctx, dirB, "run", "--ids", "sequential", "--", program("ipc_private_keys"), values[1]),
			}
			t.Cleanup(func() {
				killChainProcesses(t, dirA)
				killChainProcesses(t, dirB)
			})
			for i, r := range runs {
				select {
				case <-r.ready:
				case <-r.done:
					t.Fatalf("chain %s ended before it was ready\n%s", values[i], r.finish(t))
				case <-ctx.Done():
					t.Fatalf("chain %s: %s never said ready\n%s", values[i], r.name, r.stdout())
				}
			}

			// Both chains hold their objects now.
			held := newIPC(before, readIPC(t))
			count := map[string]int{}
			keyedSems := map[int32]bool{}
			for _, o := range held {
				count[o.Kind]++
				if o.Key == fixedKey {
					t.Errorf("%v uses the virtual key as its system key: keys must be private", o)
				}
				if o.Kind == "sem" && o.Key != 0 {
					keyedSems[o.Key] = true
				}
			}
			if count["sem"] != 4 || count["shm"] != 2 || count["msg"] != 2 {
				t.Errorf("while both chains run: %d sem, %d shm, %d msg objects, want 4, 2, 2: %v",
					count["sem"], count["shm"], count["msg"], held)
			}
			if len(keyedSems) != 2 {
				t.Errorf("the two chains' keyed semaphore sets have system keys %v, want two different ones", keyedSems)
			}

			for i, r := range runs {
				if _, err := io.WriteString(r.stdin, "go\n"); err != nil {
					t.Errorf("chain %s: %v", values[i], err)
				}
			}
			for i, r := range runs {
				res := r.finish(t)
				if res.Code != 0 || res.Stderr != "" {
					t.Errorf("chain %s: want exit status 0 and no stderr\n%s", values[i], res)
				}
				checkGolden(t, "ipc_private_keys."+values[i], res.Stdout)
			}
			checkNoLeaks(t, dirA, before)
			if !tc.sharedDir {
				checkNoLeaks(t, dirB, before)
			}
		})
	}
}

// psRow and tablesOut are the JSON of `vrid ps --json` and `vrid tables --json`.
type psRow struct {
	AID     int    `json:"aid"`
	Chain   string `json:"chain"`
	State   string `json:"state"`
	VirtPID int32  `json:"vpid"`
	SysPID  int32  `json:"pid"`
	Command string `json:"command"`
}

type tablesOut struct {
	AID     int    `json:"aid"`
	Name    string `json:"name"`
	Entries []struct {
		Type string `json:"type"`
		Virt int32  `json:"virtual"`
		Sys  int32  `json:"system"`
	} `json:"entries"`
}

func psJSON(t *testing.T, stateDir string) []psRow {
	t.Helper()
	res := vrid(t, stateDir, "ps", "--json")
	if res.Code != 0 {
		t.Fatalf("vrid ps --json:\n%s", res)
	}
	var rows []psRow
	if err := json.Unmarshal([]byte(res.Stdout), &rows); err != nil {
		t.Fatalf("vrid ps --json: %v\n%s", err, res.Stdout)
	}
	return rows
}

func tablesJSON(t *testing.T, stateDir, chain string) tablesOut {
	t.Helper()
	res := vrid(t, stateDir, "tables", "--json", chain)
	if res.Code != 0 {
		t.Fatalf("vrid tables --json %s:\n%s", chain, res)
	}
	var out tablesOut
	if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
		t.Fatalf("vrid tables --json: %v\n%s", err, res.Stdout)
	}
	return out
}

// poll calls done until it says yes; the deadline only stops a hang.
func poll(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(runDeadline)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A detached chain: `vrid ps` and `vrid tables` show it while it runs, its
// name is taken meanwhile, and it ends, leaving nothing, when its root is
// killed.
func TestDetachedChain(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	aid, supervisor := detach(t, stateDir, "sleeper", program("chain_sleeper"))

	var rows []psRow
	// The child is in the chain's cgroup from its fork on, and in the
	// tables once fork has returned in the root.
	poll(t, "vrid ps shows the root and its child", func() bool {
		rows = psJSON(t, stateDir)
		return len(rows) == 2 && rows[0].VirtPID != 0 && rows[1].VirtPID != 0
	})
	sysOf := map[int32]int32{}
	for _, r := range rows {
		if strconv.Itoa(r.AID) != aid || r.Chain != "sleeper" || r.State != "running" ||
			!strings.Contains(r.Command, "chain_sleeper") {
			t.Errorf("vrid ps row %+v: want aid %s, chain sleeper, running, command chain_sleeper", r, aid)
		}
		sysOf[r.VirtPID] = r.SysPID
	}
	if len(sysOf) != 2 || sysOf[1000] <= 0 || sysOf[1001] <= 0 {
		t.Fatalf("vrid ps: want virtual pids 1000 and 1001, got %+v", rows)
	}
	if parentOf(int(sysOf[1001])) != int(sysOf[1000]) {
		t.Errorf("vrid ps: system pid %d (1001) is not the child of %d (1000)", sysOf[1001], sysOf[1000])
	}

	for _, name := range []string{"sleeper", aid} {
		tab := tablesJSON(t, stateDir, name)
		if strconv.Itoa(tab.AID) != aid || tab.Name != "sleeper" {
			t.Errorf("vrid tables %s: aid %d name %q, want %s sleeper", name, tab.AID, tab.Name, aid)
		}
		got := map[string]map[int32]int32{}
		for _, e := range tab.Entries {
			if got[e.Type] == nil {
				got[e.Type] = map[int32]int32{}
			}
			got[e.Type][e.Virt] = e.Sys
		}
		if got["pid"][1000] != sysOf[1000] || got["pid"][1001] != sysOf[1001] {
			t.Errorf("vrid tables %s: pid entries %v, want 1000->%d and 1001->%d", name, got["pid"], sysOf[1000], sysOf[1001])
		}
		semSys, okSem := got["sem"][1]
		keySys, okKey := got["ipckey"][0x4242]
		if !okSem || !okKey || keySys == 0x4242 {
			t.Errorf("vrid tables %s: want sem 1 and a private system key for 0x4242: %+v", name, tab.Entries)
		}
		found := false
		for _, o := range readIPC(t) {
			found = found || (o.Kind == "sem" && o.ID == int(semSys) && o.Key == keySys)
		}
		if !found {
			t.Errorf("vrid tables %s: no semaphore set with id %d and key %#x in /proc/sysvipc/sem", name, semSys, keySys)
		}
	}

	// The synopsis puts the flag last: vrid tables NAME|AID [--json].
	if res := vrid(t, stateDir, "tables", "sleeper", "--json"); res.Code != 0 || !strings.HasPrefix(res.Stdout, "{") {
		t.Errorf("vrid tables sleeper --json: want the JSON, as with --json first\n%s", res)
	}

	// The name is taken while the chain runs.
	dup := vrid(t, stateDir, "run", "--name", "sleeper", "--", program("exit_with"), "code", "0")
	if dup.Code == 0 || !strings.Contains(dup.Stderr, `chain name "sleeper" is already running`) {
		t.Errorf("a second chain named sleeper: want a failure saying the name is running\n%s", dup)
	}

	// The chain ends with its root.
	if err := unix.Kill(int(sysOf[1000]), unix.SIGKILL); err != nil {
		t.Fatalf("kill root %d: %v", sysOf[1000], err)
	}
	waitSupervisor(t, supervisor)
	if rows := psJSON(t, stateDir); len(rows) != 0 {
		t.Errorf("vrid ps after the root died: %+v", rows)
	}
	logData, err := os.ReadFile(filepath.Join(stateDir, "logs", aid+".log"))
	if err != nil || !strings.Contains(string(logData), "fork=1001\nready=1\n") {
		t.Errorf("the chain's output in logs/%s.log: %q (%v), want fork=1001 and ready=1", aid, logData, err)
	}
	checkNoLeaks(t, stateDir, before)
}

// ownerPid is the pid registry.json names as the owner of its one chain.
func ownerPid(t *testing.T, stateDir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		Chains []struct {
			Owner struct {
				Pid int `json:"pid"`
			} `json:"owner"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(data, &reg); err != nil || len(reg.Chains) != 1 || reg.Chains[0].Owner.Pid <= 0 {
		t.Fatalf("registry.json: want one chain with an owner (%v)\n%s", err, data)
	}
	return reg.Chains[0].Owner.Pid
}

// TestLibcChildrenForgotten runs a chain whose root starts and reaps
// children through system() and popen()/pclose(), and wants its pid table
// to hold the root alone afterwards: reaped children leave it.
func TestLibcChildrenForgotten(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	aid, _ := detach(t, stateDir, "libc", program("libc_children"))
	t.Cleanup(func() {
		if res := vrid(t, stateDir, "rm", "libc"); res.Code != 0 {
			t.Errorf("vrid rm libc:\n%s", res)
		}
	})
	logFile := filepath.Join(stateDir, "logs", aid+".log")
	var out string
	poll(t, "the chain's root says ready", func() bool {
		data, _ := os.ReadFile(logFile)
		out = string(data)
		return strings.Contains(out, "ready=1")
	})
	want := "system.status=3\npopen.pid=1002\npclose.status=0\npclose.w.status=4\nready=1\n"
	if out != want {
		t.Errorf("the program printed:\n%s\nwant:\n%s", out, want)
	}
	var pids []int32
	for _, e := range tablesJSON(t, stateDir, "libc").Entries {
		if e.Type == "pid" {
			pids = append(pids, e.Virt)
		}
	}
	if len(pids) != 1 || pids[0] != 1000 {
		t.Errorf("virtual pids in the table %v: want the root, 1000, alone", pids)
	}
}
