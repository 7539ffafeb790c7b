package criu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// stackCRIU is the CRIU the tests use: the stack's 4.2.1.
const stackCRIU = "/opt/vrid-stack/bin/criu"

// waitDeadline only keeps a broken restore from hanging the tests; no test
// asserts on time.
const waitDeadline = 60 * time.Second

var (
	buildOnce sync.Once
	binDir    string // the compiled testdata programs
	buildErr  error
)

func TestMain(m *testing.M) {
	// Orphans of the trees (the children of a killed root, the holders
	// of occupy) come to this process, which reaps them (waitGone):
	// this machine's init leaves them as zombies that hold their pids.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	// A shell job's session leader must be in the tree's pid namespace,
	// which a test run from a parent namespace's session is not.
	if sid, _ := unix.Getsid(0); sid == 0 {
		if _, err := unix.Setsid(); err != nil {
			fmt.Fprintln(os.Stderr, "setsid:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// needCRIU skips the test unless it runs as root with the stack's CRIU.
func needCRIU(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: CRIU dumps and restores process trees")
	}
	if _, err := os.Stat(stackCRIU); err != nil {
		t.Skipf("no %s: run scripts/install-stack.sh", stackCRIU)
	}
}

// program returns the path of a testdata program, built dynamically
// linked on first use.
func program(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "vrid-criu-bin-")
		if buildErr != nil {
			return
		}
		for _, p := range []string{"tree", "occupy", "heap"} {
			out, err := exec.Command("gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o",
				filepath.Join(binDir, p), filepath.Join("testdata", p+".c"), "-lpthread").CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("gcc %s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// report is what the tree program printed, by the first two words of each
// line ("P ready", "A after", "A queued"), then by key.
type report map[string]map[string]string

func readReport(t testing.TB, path string) report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := report{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if f[0] == "FAIL" {
			t.Fatalf("tree: %s", sc.Text())
		}
		kv := map[string]string{}
		for _, w := range f[2:] {
			k, v, _ := strings.Cut(w, "=")
			kv[k] = v
		}
		r[f[0]+" "+f[1]] = kv
	}
	return r
}

func (r report) int(t testing.TB, line, key string) int {
	t.Helper()
	n, err := strconv.Atoi(r[line][key])
	if err != nil {
		t.Fatalf("%q %s: %v (report %v)", line, key, err, r)
	}
	return n
}

// waitReport waits until the tree program has printed every line of want.
func waitReport(t testing.TB, path string, want ...string) report {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		r := readReport(t, path)
		missing := ""
		for _, w := range want {
			if r[w] == nil {
				missing = w
			}
		}
		if missing == "" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree never printed %q; output so far: %v", missing, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dumped is a dump of the tree program, made once and shared: tests read
// it, or rewrite it into copies, and never change it.
type dumped struct {
	mode     treeMode
	dir      string // the image
	out      string // the tree's stdout, which a restored tree writes on
	lockFile string
	logKey   string // ExternalKey of the log pipe
	log      string // what the tree wrote on its log pipe before the dump
	skKey    string // ExternalKey of the socket whose peer is outside
	sk       string // what the tree wrote on that socket before the dump
	before   report
	p, a, b  int // pids before the dump
	thread   int // T's tid before the dump
}

// How the tree program is started, and so dumped and restored.
type treeMode int

const (
	// sessionLeader: the root leads its own session (setsid), so every
	// group and session of the tree is in it.
	sessionLeader treeMode = iota
	// shellJob: the root leads its own process group in the test's
	// session, as a shell starts a job; dumped and restored with ShellJob.
	shellJob
)

func (m treeMode) String() string { return [...]string{"session leader", "shell job"}[m] }

var (
	fixtureMu  sync.Mutex
	fixtureDir string
	fixtures   = map[treeMode]*dumped{}
	fixtureErr = map[treeMode]error{} // a failed dump, reported to every test that needs it
)

// treeDump returns the shared dump of the tree program started in mode.
func treeDump(t *testing.T, mode treeMode) *dumped {
	t.Helper()
	needCRIU(t)
	bin := program(t, "tree")
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if d := fixtures[mode]; d != nil {
		return d
	}
	if err := fixtureErr[mode]; err != nil {
		t.Fatal(err)
	}
	var err error
	if fixtureDir == "" {
		if fixtureDir, err = os.MkdirTemp("", "vrid-criu-fixture-"); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(fixtureDir, strconv.Itoa(int(mode)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := dumpTree(t, bin, dir, mode)
	if err != nil {
		fixtureErr[mode] = fmt.Errorf("dump the tree program (%v): %w", mode, err)
		t.Fatal(fixtureErr[mode])
	}
	fixtures[mode] = d
	return d
}

// dumpTree starts the tree program, waits until it is ready and dumps it;
// CRIU kills it.  It returns errors instead of failing, since its result
// is shared by tests.
func dumpTree(t *testing.T, bin, dir string, mode treeMode) (*dumped, error) {
	d := &dumped{mode: mode, dir: filepath.Join(dir, "image"), out: filepath.Join(dir, "out.txt"), lockFile: filepath.Join(dir, "lock")}
	if err := os.Mkdir(d.dir, 0o700); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(d.out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer logR.Close()
	sk, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	skOut, skIn := os.NewFile(uintptr(sk[0]), "sk-out"), os.NewFile(uintptr(sk[1]), "sk-in")
	defer skIn.Close()
	cmd := exec.Command(bin, d.lockFile)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{logW, skOut} // fds 3 and 4
	cmd.Env = append(os.Environ(), "VRID_LOG_FD=3", "EXT_SK_FD=4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: mode == sessionLeader, Setpgid: mode == shellJob}
	if err := cmd.Start(); err != nil {
		logW.Close()
		skOut.Close()
		return nil, err
	}
	logW.Close()
	skOut.Close()
	killed := false
	defer func() {
		if !killed {
			// The tree is the process group P leads, in both modes.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		cmd.Wait()
	}()
	d.before = waitReport(t, d.out, "P ready", "A ready", "B ready", "T ready", "P children")
	d.p, d.a, d.b = cmd.Process.Pid, d.before.int(t, "P children", "a"), d.before.int(t, "P children", "b")
	d.thread = d.before.int(t, "T ready", "tid")
	if d.logKey, err = ExternalKey(d.p, 3); err != nil {
		return nil, err
	}
	if d.skKey, err = ExternalKey(d.p, 4); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if err := Dump(ctx, DumpOpts{Criu: stackCRIU, Pid: d.p, ImageDir: d.dir, FileLocks: true, ShellJob: mode == shellJob, ExternalFds: []int{3, 4}}); err != nil {
		return nil, err
	}
	killed = true
	// CRIU has killed the tree; A and B, reparented, may still be dying.
	for _, pid := range []int{d.p, d.a, d.b, d.thread} {
		if err := waitGone(pid); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, 64)
	n, _ := logR.Read(buf)
	d.log = string(buf[:n])
	n, _ = skIn.Read(buf)
	d.sk = string(buf[:n])
	return d, nil
}

// waitGone waits until no task has the pid, reaping it if it is an
// orphan that came to this process.
func waitGone(pid int) error {
	deadline := time.Now().Add(waitDeadline)
	for {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG|unix.WALL, nil)
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still exists", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
