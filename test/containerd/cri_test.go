package containerd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// A host-network pod with runtime handler vrid: its container runs in a
// chain (the pause container does not), crictl exec joins it, and removing
// the pod leaves nothing.  The test containerd points the handler at the
// tests' sequential config.
func TestCRIPod(t *testing.T) {
	e := testEnv(t)
	cfg, err := config.Load(e.seqCfg)
	if err != nil {
		t.Fatal(err)
	}
	podID, podFile := e.runPod(t, "vt-pod", nil)
	ctrID, err := e.startPodContainer(t, podID, podFile, "probe")
	if err != nil {
		t.Fatal(err)
	}

	name := oci.ChainName(ctrID)
	ch, ok := chainNamed(t, cfg.StateDir, name)
	if !ok {
		t.Fatalf("no chain %q in %s", name, cfg.StateDir)
	}
	if _, ok := chainNamed(t, cfg.StateDir, oci.ChainName(podID)); ok {
		t.Errorf("the pause container got a chain")
	}
	out, err := e.crictl("exec", ctrID, "/probe", "pid")
	if err != nil {
		t.Fatal(err)
	}
	vpid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(out), "pid="))
	if err != nil {
		t.Fatalf("crictl exec probe pid printed %q", out)
	}
	// Sequential ids: the container's process is 1000, the exec'd one next.
	if vpid != 1001 {
		t.Errorf("crictl exec: getpid() = %d, want 1001", vpid)
	}
	tables, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		t.Fatal(err)
	}
	_, inChain := tables.Lookup(vresource.PID, int32(vpid))
	procs := len(tables.Entries(vresource.PID))
	tables.Close()
	if !inChain {
		t.Errorf("the exec'd process's pid %d is not in chain %s", vpid, ch.AID)
	}
	if procs < 2 {
		t.Errorf("chain %s holds %d pids, want the container's and the exec'd", ch.AID, procs)
	}

	if _, err := e.crictl("stopp", podID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.crictl("rmp", podID); err != nil {
		t.Fatal(err)
	}
	assertNoChain(t, cfg.StateDir, name)
}

func writeJSON(t *testing.T, e *env, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.work, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runPod runs a host-network pod with handler vrid whose containers share
// its pid namespace, and returns its id and config file.
func (e *env) runPod(t *testing.T, name string, annotations map[string]string) (id, file string) {
	t.Helper()
	pod := map[string]any{
		"metadata":    map[string]any{"name": name, "namespace": "default", "uid": name + "-uid"},
		"annotations": annotations,
		"linux": map[string]any{"security_context": map[string]any{
			"namespace_options": map[string]any{"network": criNode, "pid": criPod}}},
		"log_directory": filepath.Join(e.work, "podlogs", name),
	}
	file = writeJSON(t, e, name+".json", pod)
	out, err := e.crictl("runp", "--runtime", "vrid", file)
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(out)
	t.Cleanup(func() {
		_, _ = e.crictl("stopp", id)
		_, _ = e.crictl("rmp", "-f", id)
	})
	return id, file
}

// CRI's NamespaceMode: POD shares the pod's namespace, NODE the host's.
const (
	criPod  = 0
	criNode = 2
)

// startPodContainer creates and starts the probe, sleeping, as container
// name of a pod in the pod's pid namespace.  It returns the container's
// id, known once it is created, and the error of starting it.
func (e *env) startPodContainer(t *testing.T, podID, podFile, name string) (string, error) {
	t.Helper()
	return e.startPodCommand(t, podID, podFile, name, []string{"/probe", "sleep"}, nil)
}

// startPodCommand is startPodContainer with a command of the probe
// image, and CRI mounts ({container_path, host_path}).
func (e *env) startPodCommand(t *testing.T, podID, podFile, name string, command []string, mounts []map[string]any) (string, error) {
	t.Helper()
	ctr := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": probeImage},
		"command":  command,
		"mounts":   mounts,
		"log_path": name + ".log",
		"linux": map[string]any{"security_context": map[string]any{
			"namespace_options": map[string]any{"pid": criPod}}},
	}
	out, err := e.crictl("create", podID, writeJSON(t, e, name+"-container.json", ctr), podFile)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	_, err = e.crictl("start", id)
	return id, err
}
