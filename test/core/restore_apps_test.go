package core_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Case (g) of vrid snapshot and restore: real programs.  python3's
// multiprocessing keeps its pool and starts a new Process after the
// restore, every pid as before; redis-server answers with the data it
// held, reports the same virtual pid, and forks for an RDB save.
func TestRestorePythonPool(t *testing.T) {
	needCRIU(t)
	py := python(t)
	stateDir := t.TempDir()
	ipcBefore := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	c := startSnapChainCmd(t, stateDir, "pool", py, filepath.Join(repoRoot, "test", "programs", "py_snap_pool.py"))
	if got, want := c.waitLine(t, "ready"), "ready pid=1000 workers=[1001, 1002] sum=285"; got != want {
		t.Fatalf("before the snapshot: %q, want %q", got, want)
	}
	supervisor := registry(t, stateDir)["pool"].Owner.Pid
	image := filepath.Join(t.TempDir(), "image")
	if res := vrid(t, stateDir, "snapshot", "pool", "--image", image); res.Code != 0 {
		t.Fatalf("vrid snapshot pool:\n%s", res)
	}
	waitSupervisor(t, supervisor)
	if res := vrid(t, stateDir, "restore", "--image", image, "--detach"); res.Code != 0 {
		t.Fatalf("vrid restore:\n%s", res)
	}
	poll(t, "the restored root in the registry", func() bool { return registry(t, stateDir)["pool"].RootPid > 0 })
	c.wake(t)
	// 1003-1005 are the tids of the pool's three handler threads.
	if got, want := c.waitLine(t, "after"), "after pid=1000 workers=[1001, 1002] sum=285 new=1006 new.ppid=1000 new.exit=0"; got != want {
		t.Errorf("after the restore: %q, want %q", got, want)
	}
	if got := c.waitLine(t, "P"); got != "PASS" {
		t.Errorf("py_snap_pool: %s\n%s", got, strings.Join(c.lines(t), "\n"))
	}
	waitSupervisor(t, registry(t, stateDir)["pool"].Owner.Pid)
	checkNoLeaks(t, stateDir, ipcBefore)
}

func TestRestoreRedis(t *testing.T) {
	needCRIU(t)
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no redis-server: scripts/install-stack.sh installs it")
	}
	stateDir := t.TempDir()
	ipcBefore := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	data := t.TempDir()
	port := freePort(t)
	_, supervisor := detach(t, stateDir, "redis", server, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", data, "--daemonize", "no")
	redis := func(args ...string) string {
		out, err := exec.Command("redis-cli", append([]string{"-p", fmt.Sprint(port)}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	poll(t, "redis answers", func() bool {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(port), "ping").Output()
		return strings.TrimSpace(string(out)) == "PONG"
	})
	if got := redis("set", "greeting", "hello from before"); got != "OK" {
		t.Fatalf("set: %q", got)
	}
	if got := serverPid(redis("info", "server")); got != "1000" {
		t.Fatalf("redis's process_id before the snapshot: %q, want 1000", got)
	}
	// CRIU dumps no connected TCP socket: redis must have closed the
	// last redis-cli's, which it may not have seen end yet.
	poll(t, "redis closes its clients' connections", func() bool { return !tcpConnected(t, port) })
	image := filepath.Join(t.TempDir(), "image")
	if res := vrid(t, stateDir, "snapshot", "redis", "--image", image); res.Code != 0 {
		t.Fatalf("vrid snapshot redis:\n%s", res)
	}
	waitSupervisor(t, supervisor)
	if out, err := exec.Command("redis-cli", "-p", fmt.Sprint(port), "ping").CombinedOutput(); err == nil && strings.Contains(string(out), "PONG") {
		t.Fatalf("redis still answers after its snapshot ended it")
	}
	if res := vrid(t, stateDir, "restore", "--image", image, "--detach"); res.Code != 0 {
		t.Fatalf("vrid restore:\n%s", res)
	}
	if got := redis("get", "greeting"); got != "hello from before" {
		t.Errorf("get after the restore: %q", got)
	}
	if got := serverPid(redis("info", "server")); got != "1000" {
		t.Errorf("redis's process_id after the restore: %q, want 1000", got)
	}
	// BGSAVE forks a child in the restored chain, which writes the RDB file.
	if got := redis("bgsave"); got != "Background saving started" {
		t.Fatalf("bgsave: %q", got)
	}
	rdb := filepath.Join(data, "dump.rdb")
	poll(t, "the RDB file", func() bool {
		b, err := os.ReadFile(rdb)
		return err == nil && bytes.Contains(b, []byte("hello from before"))
	})
	poll(t, "the save done", func() bool { return strings.Contains(redis("info", "persistence"), "rdb_last_bgsave_status:ok") })
	restored := registry(t, stateDir)["redis"]
	if res := vrid(t, stateDir, "rm", "redis"); res.Code != 0 {
		t.Errorf("vrid rm redis:\n%s", res)
	}
	waitSupervisor(t, restored.Owner.Pid)
	checkNoLeaks(t, stateDir, ipcBefore)
}

// startSnapChainCmd is startSnapChain for a program with an interpreter.
func startSnapChainCmd(t *testing.T, stateDir, name string, cmd ...string) *snapChain {
	t.Helper()
	c := &snapChain{stateDir: stateDir, name: name, report: filepath.Join(t.TempDir(), "report")}
	args := append([]string{"run", "--detach", "--name", name, "--ids", "sequential", "--"}, cmd...)
	if res := vrid(t, stateDir, append(args, c.report)...); res.Code != 0 {
		t.Fatalf("vrid run --detach %v:\n%s", cmd, res)
	}
	c.waitLine(t, "ready")
	poll(t, name+"'s root in the registry", func() bool { return registry(t, stateDir)[name].RootPid > 0 })
	return c
}

// serverPid is the process_id line of redis's INFO server.
func serverPid(info string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return v
		}
	}
	return ""
}

// tcpConnected says whether a socket of local port port on 127.0.0.1 is
// connected (ESTABLISHED) or waits for its owner to close it
// (CLOSE_WAIT), from /proc/net/tcp.
func tcpConnected(t *testing.T, port int) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && (f[3] == "01" || f[3] == "08") {
			return true
		}
	}
	return false
}
