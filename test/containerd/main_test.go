// Package containerd_test runs vrid containers through a private containerd
// (scripts/test-containerd.sh) with the stack scripts/install-stack.sh
// installs: `ctr run --runtime io.containerd.vrid.v1`, `ctr task exec`,
// containers sharing an IPC namespace, the same container under
// io.containerd.runc.v2, and the CRI path with crictl.  It skips when the
// stack is not installed.
package containerd_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vrid/vrid/vresource"
)

const (
	stackDir    = "/opt/vrid-stack"
	vridRuntime = "io.containerd.vrid.v1"
	runcRuntime = "io.containerd.runc.v2"
	namespace   = "vrid-test"
	probeImage  = "localhost/vrid/probe:test"
	pauseImage  = "localhost/vrid/pause:test"
)

// env is the test containerd and what the tests run in it.
type env struct {
	repo     string
	ctrdDir  string // VRID_CTRD_DIR of scripts/test-containerd.sh
	socket   string
	stateDir string // state_dir of the test configs
	seqCfg   string // config.toml with [tables] ids = "sequential"
	work     string // scratch: images, configs, pod logs
	started  bool   // this process started the test containerd
}

var (
	setupOnce sync.Once
	theEnv    *env
	setupErr  error
	skipWhy   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theEnv != nil {
		theEnv.stop()
	}
	os.Exit(code)
}

// testEnv starts the test containerd on first use, or skips the test.
func testEnv(t *testing.T) *env {
	t.Helper()
	setupOnce.Do(func() { theEnv, skipWhy, setupErr = setup() })
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return theEnv
}

func setup() (*env, string, error) {
	if _, err := os.Stat(filepath.Join(stackDir, "bin", "containerd")); err != nil {
		return nil, "containerd stack not installed (" + stackDir + "/bin/containerd missing): run scripts/install-stack.sh", nil
	}
	if os.Geteuid() != 0 {
		return nil, "containerd tests need root", nil
	}
	_, file, _, _ := runtime.Caller(0)
	repo, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		return nil, "", err
	}
	// VRID_TEST_CTRD_DIR lets two checkouts test side by side, each with
	// its own containerd.
	ctrdDir := os.Getenv("VRID_TEST_CTRD_DIR")
	if ctrdDir == "" {
		ctrdDir = "/run/vrid-test/containerd-shim"
	}
	e := &env{repo: repo, ctrdDir: ctrdDir}
	e.socket = filepath.Join(e.ctrdDir, "containerd.sock")
	if e.work, err = os.MkdirTemp("", "vrid-ctrd-test-"); err != nil {
		return nil, "", err
	}
	// state_dir must be on a filesystem the containers can bind-mount.
	e.stateDir = filepath.Join("/run/vrid-test", fmt.Sprintf("shim-state-%d", os.Getpid()))
	e.seqCfg = filepath.Join(e.work, "sequential.toml")
	if err := e.writeConfig(e.seqCfg, `ids = "sequential"`); err != nil {
		return nil, "", err
	}
	steps := []func() error{e.build, e.images, e.start, e.importImages}
	for _, step := range steps {
		if err := step(); err != nil {
			return e, "", err
		}
	}
	return e, "", nil
}

// writeConfig writes a vrid config.toml on the test state_dir, with the
// stack's runc keeping its state in the test containerd's directory.
func (e *env) writeConfig(path string, tables string) error {
	body := fmt.Sprintf("state_dir = %q\nlog_level = \"warning\"\n\n[tables]\n%s\n\n[runc]\nbinary = %q\nroot = %q\n",
		e.stateDir, tables, "/opt/vrid-stack/bin/runc", filepath.Join(e.ctrdDir, "runc"))
	return os.WriteFile(path, []byte(body), 0o644)
}

func (e *env) build() error {
	_, err := e.cmd("make", "-C", e.repo, "lib/libvrid.so", "bin/vrid", "bin/vrid-hook", "bin/containerd-shim-vrid-v1")
	return err
}

// images builds the probe image and the pause image.
func (e *env) images() error {
	probe := filepath.Join(e.work, "probe")
	if _, err := e.cmd("gcc", "-O2", "-Wall", "-Werror", "-o", probe, "testdata/probe.c"); err != nil {
		return err
	}
	ckpt := filepath.Join(e.work, "ckpt")
	if _, err := e.cmd("gcc", "-O2", "-Wall", "-Werror", "-o", ckpt, "testdata/ckpt.c"); err != nil {
		return err
	}
	if _, err := e.cmd("gcc", "-O2", "-Wall", "-Werror", "-o", filepath.Join(e.work, "takepid"), "testdata/takepid.c"); err != nil {
		return err
	}
	// Another tenant's objects, made by victimUID on the host side.
	if _, err := e.cmd("gcc", "-O2", "-Wall", "-Werror", "-o", filepath.Join(e.work, "ipc_victim"),
		filepath.Join(e.repo, "test", "programs", "ipc_victim.c")); err != nil {
		return err
	}
	if err := os.Chmod(e.work, 0o711); err != nil {
		return err
	}
	// SEM_UNDO across a checkpoint, as vrid snapshot's test has it.
	snapUndo := filepath.Join(e.work, "snap_undo")
	if _, err := e.cmd("gcc", "-O2", "-Wall", "-Werror", "-o", snapUndo, filepath.Join(e.repo, "test", "programs", "snap_undo.c")); err != nil {
		return err
	}
	build := filepath.Join(e.repo, "test", "ociimage", "build.sh")
	if _, err := e.cmd(build, filepath.Join(e.work, "img"), "probe:test", probe+"=/probe", ckpt+"=/ckpt", snapUndo+"=/snap_undo"); err != nil {
		return err
	}
	_, err := e.cmd(build, "--pause", filepath.Join(e.work, "img"))
	return err
}

func (e *env) script(action string) (string, error) {
	c := exec.Command(filepath.Join(e.repo, "scripts", "test-containerd.sh"), action)
	c.Env = append(os.Environ(), "VRID_CTRD_DIR="+e.ctrdDir, "VRID_SHIM_DIR="+filepath.Join(e.repo, "bin"),
		"VRID_CONFIG_PATH="+e.seqCfg)
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("test-containerd.sh %s: %w\n%s", action, err, out)
	}
	return string(out), nil
}

func (e *env) start() error {
	if _, err := os.Stat(filepath.Join(e.repo, "scripts", "test-containerd.sh")); err != nil {
		return fmt.Errorf("scripts/test-containerd.sh: %w", err)
	}
	e.started = true // stop is harmless after a start that failed half-way
	_, err := e.script("start")
	return err
}

func (e *env) stop() {
	if e.started {
		if out, err := e.script("stop"); err != nil {
			fmt.Fprintln(os.Stderr, "containerd_test:", err, out)
		}
	}
	if e.work != "" {
		os.RemoveAll(e.work)
	}
	if e.stateDir != "" {
		os.RemoveAll(e.stateDir)
	}
}

func (e *env) importImages() error {
	for _, ns := range []string{namespace, "k8s.io"} {
		for _, tar := range []string{"probe_test.tar", "pause_test.tar"} {
			if _, err := e.ctrIn(ns, "images", "import", "--all-platforms", filepath.Join(e.work, "img", tar)); err != nil {
				return err
			}
		}
	}
	return nil
}

// cmd runs a command in this directory and returns its stdout.
func (e *env) cmd(name string, args ...string) (string, error) {
	c := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	c.Env = append(os.Environ(), "CONTAINERD_ADDRESS="+e.socket)
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return stdout.String(), fmt.Errorf("%s %s: %w\nstdout: %s\nstderr: %s",
				name, strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
	case <-time.After(2 * time.Minute):
		_ = c.Process.Kill()
		<-done
		return stdout.String(), fmt.Errorf("%s %s: timed out\nstderr: %s", name, strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), nil
}

func (e *env) ctrIn(ns string, args ...string) (string, error) {
	return e.cmd(filepath.Join(stackDir, "bin", "ctr"), append([]string{"--address", e.socket, "-n", ns}, args...)...)
}

func (e *env) ctr(args ...string) (string, error) { return e.ctrIn(namespace, args...) }

func (e *env) crictl(args ...string) (string, error) {
	return e.cmd(filepath.Join(stackDir, "bin", "crictl"),
		append([]string{"--runtime-endpoint", "unix://" + e.socket, "--image-endpoint", "unix://" + e.socket, "--timeout", "60s"}, args...)...)
}

// runArgs is `ctr run` of the probe image; vrid gets config cfg.
func (e *env) runArgs(runtimeName, cfg, id string, extra []string, args ...string) []string {
	a := []string{"run", "--fifo-dir", filepath.Join(e.ctrdDir, "fifo"), "--runtime", runtimeName}
	if runtimeName == vridRuntime {
		a = append(a, "--runtime-config-path", cfg)
	} else {
		a = append(a, "--runc-binary", filepath.Join(stackDir, "bin", "runc"), "--runc-root", filepath.Join(e.ctrdDir, "runc"))
	}
	a = append(a, extra...)
	return append(append(a, probeImage, id), args...)
}

// runProbe runs the probe to its end and returns what it printed.
func (e *env) runProbe(t *testing.T, runtimeName, id string, extra []string, args ...string) string {
	t.Helper()
	t.Cleanup(func() { e.remove(id) })
	out, err := e.ctr(e.runArgs(runtimeName, e.seqCfg, id, append([]string{"--rm"}, extra...), args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// startProbe starts the probe detached and returns the host pid of its
// init process.
func (e *env) startProbe(t *testing.T, runtimeName, id string, extra []string, args ...string) int {
	t.Helper()
	t.Cleanup(func() { e.remove(id) })
	if _, err := e.ctr(e.runArgs(runtimeName, e.seqCfg, id, append([]string{"-d", "--null-io"}, extra...), args...)...); err != nil {
		t.Fatal(err)
	}
	pid, err := e.taskPid(id)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func (e *env) taskPid(id string) (int, error) {
	out, err := e.ctr("tasks", "ls")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			var pid int
			_, err := fmt.Sscan(f[1], &pid)
			return pid, err
		}
	}
	return 0, fmt.Errorf("no task %s in\n%s", id, out)
}

// remove kills and deletes a container and its task, whatever their state.
func (e *env) remove(id string) {
	_, _ = e.ctr("tasks", "kill", "-a", "-s", "KILL", id)
	for i := 0; i < 50; i++ {
		if _, err := e.ctr("tasks", "delete", "-f", id); err == nil || !e.hasTask(id) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _ = e.ctr("containers", "delete", id)
}

func (e *env) hasTask(id string) bool {
	_, err := e.taskPid(id)
	return err == nil
}

// stopProbe kills a task and deletes it and its container, as a user would.
func (e *env) stopProbe(t *testing.T, id string) {
	t.Helper()
	if _, err := e.ctr("tasks", "kill", "-s", "KILL", id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.ctr("tasks", "delete", id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := e.ctr("containers", "delete", id); err != nil {
		t.Fatal(err)
	}
}

// chains lists the registered chains of a state directory.
func chains(t *testing.T, stateDir string) []vresource.Chain {
	t.Helper()
	reg, err := vresource.OpenFileRegistry(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func chainNamed(t *testing.T, stateDir, name string) (vresource.Chain, bool) {
	t.Helper()
	for _, ch := range chains(t, stateDir) {
		if ch.Name == name {
			return ch, true
		}
	}
	return vresource.Chain{}, false
}

// assertNoChain checks that nothing of chain name is left, and no chain
// directory of an AID that is not registered.
func assertNoChain(t *testing.T, stateDir, name string) {
	t.Helper()
	if ch, ok := chainNamed(t, stateDir, name); ok {
		t.Errorf("chain %q still registered as AID %d", name, ch.AID)
	}
	live := map[string]bool{}
	for _, ch := range chains(t, stateDir) {
		live[ch.AID.String()] = true
	}
	entries, err := os.ReadDir(filepath.Join(stateDir, "chains"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if !live[ent.Name()] {
			t.Errorf("directory of released chain %s left in %s", ent.Name(), stateDir)
		}
	}
}

// lines is the probe's output as a list of lines.
func lines(s string) []string {
	return strings.Split(strings.TrimSpace(s), "\n")
}

// semKeysIn lists the keys of the semaphores in the IPC namespace of pid.
func (e *env) semKeysIn(t *testing.T, pid int) []string {
	t.Helper()
	out, err := e.cmd("nsenter", fmt.Sprintf("--ipc=/proc/%d/ns/ipc", pid), "cat", "/proc/sysvipc/sem")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, line := range lines(out)[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			keys = append(keys, f[0])
		}
	}
	return keys
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
