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
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	// test asserts on time.
	runDeadline = 60 * time.Second
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
	build := [][]string{
		{"make", "-C", root, "lib/libvrid.so"},
		{"go", "build", "-o", vridBin, "./cmd/vrid"},
	}
	for _, args := range build {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
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
			cmd := exec.Command("gcc", "-O1", "-Wall", "-o", out, src, "-lpthread")
			if msg, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("gcc %s: %v\n%s", src, err, msg))
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
// configuration; args follow the global flags.
func vridCommand(ctx context.Context, stateDir string, args ...string) *exec.Cmd {
	full := []string{"--state-dir", stateDir}
	if !hasFlag(args, "--config") {
		full = append(full, "--config", emptyConf)
	}
	cmd := exec.CommandContext(ctx, vridBin, append(full, args...)...)
	cmd.Env = cleanEnv()
	return cmd
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
// outlives runDeadline is killed with what it started.
func vrid(t *testing.T, stateDir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := vridCommand(ctx, stateDir, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("vrid %s: %v", strings.Join(args, " "), err)
	}
	res := result{Stdout: stdout.String(), Stderr: stderr.String(), Code: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		killChainProcesses(t, stateDir)
		t.Fatalf("vrid %s did not finish within %v\n%s", strings.Join(args, " "), runDeadline, res)
	}
	return res
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
