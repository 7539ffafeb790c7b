// Package core_test runs the snippet programs of test/programs under
// `vrid run` and checks them against golden files, plus the behaviour of
// the CLI around a chain: exit statuses, private IPC keys across chains,
// full and broken tables, `vrid ps` and `vrid tables`, and that nothing is
// left behind after a run.
//
// The tests need root.  TestMain re-runs the test binary in a private IPC
// namespace (set VRID_TEST_HOST_IPC=1 to stay in the host's), so that the
// leak checks see only the objects of these tests.
//
//	go test ./test/core/ -count=1
//	go test ./test/core/ -run TestPrograms -update   # rewrite the golden files
package core_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden files under test/testdata/golden")

const (
	envInIPCNS = "VRID_TEST_IN_IPCNS" // set in the re-run test binary
	envHostIPC = "VRID_TEST_HOST_IPC" // stay in the host's IPC namespace

	// runDeadline only keeps a broken layer from hanging the suite; no
	// test asserts on time.  Every program a test runs gets it, and the
	// builds of the setup get buildDeadline.
	runDeadline   = 60 * time.Second
	buildDeadline = 10 * time.Minute
	// waitDelay is how long Wait still reads the output of a program that
	// has exited, or been killed, while processes it left hold the pipes.
	waitDelay = 5 * time.Second
)

// Set once by TestMain.
var (
	repoRoot   string // the module root
	vridBin    string // bin/vrid
	libPath    string // lib/libvrid.so
	progDir    string // compiled snippet programs
	emptyConf  string // a config file with every default
	setupError error  // why the tests cannot run
)

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Geteuid() == 0 && os.Getenv(envInIPCNS) == "" && os.Getenv(envHostIPC) == "" {
		if code, ok := rerunInIPCNamespace(); ok {
			os.Exit(code)
		}
	}
	os.Exit(setupAndRun(m))
}

// rerunInIPCNamespace runs this test binary again in a new IPC namespace
// and returns its exit status; ok is false when no namespace can be made.
func rerunInIPCNamespace() (code int, ok bool) {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envInIPCNS+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWIPC, Pdeathsig: unix.SIGKILL}
	err := cmd.Run()
	if err == nil {
		return 0, true
	}
	if exit, isExit := err.(*exec.ExitError); isExit {
		return exit.ExitCode(), true
	}
	fmt.Fprintf(os.Stderr, "core_test: no private IPC namespace (%v); using the host's\n", err)
	return 0, false
}

func setupAndRun(m *testing.M) int {
	if os.Geteuid() != 0 {
		setupError = fmt.Errorf("these tests run as root")
		return m.Run()
	}
	// The chains these tests dump are shell jobs of this process's
	// session, whose leader CRIU needs in their pid namespace: a run
	// from a parent namespace's session (as CI's may be) gets a session
	// of its own here.
	if sid, _ := unix.Getsid(0); sid == 0 {
		if _, err := unix.Setsid(); err != nil {
			fmt.Fprintln(os.Stderr, "setsid:", err)
			return 1
		}
	}
	tmp, err := os.MkdirTemp("", "vrid-core-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	setupError = setup(tmp)
	if setupError != nil {
		fmt.Fprintln(os.Stderr, "core_test: setup:", setupError)
		return 1
	}
	return m.Run()
}

func setup(tmp string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	repoRoot = root
	vridBin = filepath.Join(root, "bin", "vrid")
	libPath = filepath.Join(root, "lib", "libvrid.so")
	// Through make: its CGO_CFLAGS name the engine's sources (Makefile).
	if err := runBuild(root, "make", "-C", root, "lib/libvrid.so", "bin/vrid"); err != nil {
		return err
	}
	// Detached chains outlive `vrid run --detach`: their supervisors come
	// to us, so that each test can reap what it started.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	emptyConf = filepath.Join(tmp, "config.toml")
	if err := os.WriteFile(emptyConf, nil, 0o644); err != nil {
		return err
	}
	// Other uids run some programs (ipc_trust_test.go).
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	progDir = filepath.Join(tmp, "programs")
	if err := os.Mkdir(progDir, 0o755); err != nil {
		return err
	}
	return compilePrograms(filepath.Join(root, "test", "programs"), progDir)
}

// compilePrograms builds every snippet program, dynamically linked, as
// the layer needs.
func compilePrograms(srcDir, outDir string) error {
	sources, err := filepath.Glob(filepath.Join(srcDir, "*.c"))
	if err != nil || len(sources) == 0 {
		return fmt.Errorf("no programs in %s: %v", srcDir, err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for _, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := filepath.Join(outDir, strings.TrimSuffix(filepath.Base(src), ".c"))
			if err := runBuild("", "gcc", "-O1", "-Wall", "-o", out, src, "-lpthread"); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// runBuild runs one build step of the setup in dir, within buildDeadline.
func runBuild(dir string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildDeadline)
	defer cancel()
	cmd := bounded(exec.CommandContext(ctx, args[0], args[1:]...))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("%s did not finish within %v; its process group was killed\n%s",
			strings.Join(args, " "), buildDeadline, out)
	}
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// bounded makes a command of exec.CommandContext end with what it
// started: it leads a process group of its own, the end of its context
// kills the whole group, and Wait stops reading output waitDelay after
// the command exited or was killed, whoever still holds the pipes.
// Processes that left the group, such as a chain's, are the caller's to
// kill (killChainProcesses).
func bounded(cmd *exec.Cmd) *exec.Cmd {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// runProgram runs a program of a test, made by exec.CommandContext(ctx,
// ...) and bounded, to the end and returns what it left.  A program that
// outlives its context fails the test, by name.  kill, when not nil,
// ends what the program started outside its process group, as soon as
// the context ends.
func runProgram(t *testing.T, ctx context.Context, cmd *exec.Cmd, name string, kill func()) result {
	t.Helper()
	if kill != nil {
		stop := context.AfterFunc(ctx, kill)
		defer stop()
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("%s: %v", name, err)
	}
	res := result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; its process group was killed\n%s", name, runDeadline, res)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("%s exited, but processes it left held its output %v longer", name, waitDelay)
	}
	return res
}

// needSetup skips or fails a test that cannot run here.
func needSetup(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if setupError != nil {
		t.Fatalf("setup: %v", setupError)
	}
}

// program is the path of a compiled snippet program.
func program(name string) string {
	return filepath.Join(progDir, name)
}

// cleanEnv is the test's environment without anything that would put
// vrid itself under a layer or pick another config.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LD_PRELOAD" || strings.HasPrefix(k, "VRID_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// result is what a finished command left.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit status %d\n--- stdout:\n%s--- stderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// vridCommand is bin/vrid with a private state directory and the default
// configuration, bounded by ctx; args follow the global flags.
func vridCommand(ctx context.Context, stateDir string, args ...string) *exec.Cmd {
	full := []string{"--state-dir", stateDir}
	if !hasFlag(args, "--config") {
		full = append(full, "--config", emptyConf)
	}
	cmd := bounded(exec.CommandContext(ctx, vridBin, append(full, args...)...))
	cmd.Env = cleanEnv()
	return cmd
}

// vridName names a vrid command line after the program it runs, if any:
// "program pid_kill (vrid run --ids sequential -- /tmp/.../pid_kill)".
func vridName(args []string) string {
	line := "vrid " + strings.Join(args, " ")
	if i := slices.Index(args, "--"); i >= 0 && i+1 < len(args) {
		return fmt.Sprintf("program %s (%s)", filepath.Base(args[i+1]), line)
	}
	return line
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
		if a == "run" || a == "--" {
			return false
		}
	}
	return false
}

// vrid runs bin/vrid to the end and returns what it left.  A command that
// outlives runDeadline is killed with its process group and the
// processes of its chains, which lead groups of their own.
func vrid(t *testing.T, stateDir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	return runProgram(t, ctx, vridCommand(ctx, stateDir, args...), vridName(args),
		func() { killChainProcesses(t, stateDir) })
}

// runChain runs `vrid run ARGS` (ARGS start with run's own flags) in a
// fresh state directory and checks that the run left nothing behind.
func runChain(t *testing.T, globalArgs []string, runArgs ...string) result {
	t.Helper()
	stateDir := t.TempDir()
	before := readIPC(t)
	res := vrid(t, stateDir, append(append(globalArgs, "run"), runArgs...)...)
	checkNoLeaks(t, stateDir, before)
	return res
}
