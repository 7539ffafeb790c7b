package containerd_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/snapshot"
)

// criState is what crictl inspect says of a container.
type criState struct {
	State string
	Pid   int
}

func (e *env) criInspect(t *testing.T, id string) criState {
	t.Helper()
	out, err := e.crictl("inspect", id)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Status struct{ State string }
		Info   struct{ Pid int }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("crictl inspect %s: %v\n%s", id, err, out)
	}
	return criState{State: v.Status.State, Pid: v.Info.Pid}
}

// tarFiles reads the regular files of a tar archive.
func tarFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}

// CRI's CheckpointContainer (crictl checkpoint --export) on a vrid
// container of a pod that shares its pid namespace: containerd packs the
// checkpoint directory under checkpoint/ of the archive, vrid's state
// (its pod's chain) included, and the container goes on running.  Its
// pod mates, a vrid container in the same chain and the pause container,
// are untouched: same pids, still running, the chain and its tables as
// they were.
func TestCRICheckpoint(t *testing.T) {
	e := testEnv(t)
	podID, podFile := e.runPod(t, "vt-ckpod", nil)
	target, err := e.startPodContainer(t, podID, podFile, "target")
	if err != nil {
		t.Fatal(err)
	}
	mate, err := e.startPodContainer(t, podID, podFile, "mate")
	if err != nil {
		t.Fatal(err)
	}
	podChain, ok := chainNamed(t, e.stateDir, oci.PodChainName(podID))
	if !ok {
		t.Fatalf("no chain for pod %s", podID)
	}
	waitFor(t, func() bool { return len(tableEntries(t, podChain)) == 2 }, "both containers' pids in the chain's table")
	before := map[string]criState{}
	for _, id := range []string{target, mate} {
		before[id] = e.criInspect(t, id)
	}
	tables := tableEntries(t, podChain)
	pausePid := e.podPid(t, podID)

	archive := filepath.Join(t.TempDir(), "ck.tar")
	if _, err := e.crictl("checkpoint", "--export="+archive, target); err != nil {
		t.Fatal(err)
	}

	files := tarFiles(t, archive)
	for _, name := range []string{"checkpoint/tables.img", "checkpoint/sysv.json", "checkpoint/pstree.img", "spec.dump", "config.dump"} {
		if _, ok := files[name]; !ok {
			t.Errorf("the archive holds no %s", name)
		}
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(files["checkpoint/"+snapshot.ManifestName], &m); err != nil {
		t.Fatalf("checkpoint/%s: %v", snapshot.ManifestName, err)
	}
	if !m.Container || m.AID != podChain.AID || m.Name != podChain.Name {
		t.Errorf("manifest: container %v, chain %s (AID %d); want a container's, chain %s (AID %d)",
			m.Container, m.Name, m.AID, podChain.Name, podChain.AID)
	}
	for _, name := range []string{"tables.img", "sysv.json", "pstree.img"} {
		if _, ok := m.Files[name]; !ok {
			t.Errorf("the manifest sums no %s (it sums %v)", name, slices.Sorted(maps.Keys(m.Files)))
		}
	}

	for _, id := range []string{target, mate} {
		if got := e.criInspect(t, id); got != before[id] || got.State != "CONTAINER_RUNNING" {
			t.Errorf("container %s after the checkpoint: %+v, want %+v and running", id, got, before[id])
		}
	}
	if got := e.podPid(t, podID); got != pausePid {
		t.Errorf("the pod's pause process is %d, was %d", got, pausePid)
	}
	if ch, ok := chainNamed(t, e.stateDir, podChain.Name); !ok || ch.AID != podChain.AID {
		t.Errorf("the pod's chain: %+v (found %v), want AID %d still", ch, ok, podChain.AID)
	}
	if got := tableEntries(t, podChain); !reflect.DeepEqual(got, tables) {
		t.Errorf("the pod chain's tables:\n%v\nwere\n%v", got, tables)
	}

}

// podPid is the host pid of a pod's pause process.
func (e *env) podPid(t *testing.T, podID string) int {
	t.Helper()
	out, err := e.crictl("inspectp", podID)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Info struct{ Pid int } }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Info.Pid == 0 {
		t.Fatalf("crictl inspectp %s: pid %d, %v", podID, v.Info.Pid, err)
	}
	return v.Info.Pid
}
