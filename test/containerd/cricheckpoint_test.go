package containerd_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/archive"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"

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

// docs/restore.md, "CRI": an archive of `crictl checkpoint --export`
// restored into a new pod, with the containerd Go client, as a program
// on a node would.  The original pod is gone by then; the new pod's
// namespaces hold the system ids the container had (its pids, by
// testdata/takepid.c; its System V ids, by objects ipcmk makes).  The
// restored ckpt keeps its virtual pids and System V ids, on new system
// ones, and passes every check through them; removing it and the pod
// leaves no chain.
func TestCRIExportIntoNewPod(t *testing.T) {
	e := testEnv(t)
	oldPod, oldPodFile := e.runPod(t, "vt-crix-old", nil)
	out := t.TempDir()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	orig, err := e.startPodCommand(t, oldPod, oldPodFile, podContainer{name: "vt-crix-ckpt", command: []string{"/ckpt", "/out", "0x4747"},
		pidMode: criPod, mounts: map[string]string{"/out": out}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("ready pid=%d child=%d", sharedPID, ckptChild(sharedPID))
	if got := readReport(t, out, "ready"); len(got) != 1 || got[0] != want {
		t.Fatalf("ckpt: %q, want %q", got, want)
	}
	e.criCkptCheck(t, orig, out, 1, checkLines(sharedPID, 7))
	// It shares the pod's pid namespace: its chain is the pod's.
	origChain, ok := chainNamed(t, e.stateDir, oci.PodChainName(oldPod))
	if !ok {
		t.Fatalf("no chain for pod %s of container %s", oldPod, orig)
	}
	before := e.vridTables(t, origChain.Name)
	archive := filepath.Join(t.TempDir(), "ck.tar")
	if _, err := e.crictl("checkpoint", "--export="+archive, orig); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"stopp", oldPod}, {"rmp", oldPod}} {
		if _, err := e.crictl(args...); err != nil {
			t.Fatal(err)
		}
	}
	assertNoChain(t, e.stateDir, origChain.Name)

	newPod, _ := e.runPod(t, "vt-crix-new", nil)
	pause := e.podPid(t, newPod)
	for _, en := range before {
		if en.Type == "pid" {
			e.takePid(t, pause, en.Sys)
		}
	}
	for _, kind := range []string{"-S 1", "-M 4096", "-M 4096", "-Q"} {
		if _, err := e.cmd("nsenter", fmt.Sprintf("--ipc=/proc/%d/ns/ipc", pause), "sh", "-c", "ipcmk "+kind); err != nil {
			t.Fatal(err)
		}
	}
	neighbours := e.sysvKeysIn(t, pause)

	const restored = "vt-crix-restored"
	dir := unpackTar(t, archive)
	ctx := namespaces.WithNamespace(context.Background(), criNamespace)
	c := e.restoreExported(t, ctx, dir, restored, newPod, pause)

	e.criCkptCheck(t, restored, out, 2, checkLines(sharedPID, 8))
	// Made outside CRI, the container is not CRI's.
	if got, err := e.crictl("ps", "-a", "-q"); err != nil || strings.TrimSpace(got) != "" {
		t.Errorf("crictl ps -a -q: %q, %v; want no container", got, err)
	}
	// The client's task options name no runc root: the shim takes the
	// config's, the pod's.
	if _, err := os.Stat(filepath.Join(e.ctrdDir, "runc", criNamespace, restored)); err != nil {
		t.Errorf("the restored container's runc state is not in the config's runc root: %v", err)
	}
	ch, ok := chainNamed(t, e.stateDir, oci.ChainName(restored))
	if !ok || ch.AID == origChain.AID {
		t.Fatalf("restored chain %q: %+v (found %v), want a new AID, not %d", oci.ChainName(restored), ch, ok, origChain.AID)
	}
	after := e.vridTables(t, ch.Name)
	if got, want := virtIDs(after), virtIDs(before); !reflect.DeepEqual(got, want) {
		t.Errorf("restored virtual ids %v, want the original's %v", got, want)
	}
	for _, en := range after {
		for _, old := range before {
			if en.Type == old.Type && en.Virt == old.Virt && en.Sys == old.Sys {
				t.Errorf("restored %s %d is on system id %d, as the original was", en.Type, en.Virt, en.Sys)
			}
		}
	}
	rows := 0
	for _, r := range vridPS(t, e) {
		if r.Chain != ch.Name {
			continue
		}
		rows++
		if r.Command != "/ckpt /out 0x4747" || r.State != "running" || (r.VirtPID != sharedPID && r.VirtPID != int32(ckptChild(sharedPID))) {
			t.Errorf("vrid ps row of the restored chain: %+v", r)
		}
		for _, ns := range []string{"pid", "ipc", "uts"} {
			if got, want := nsOf(r.HostPID, ns), nsOf(pause, ns); got != want || got == "" {
				t.Errorf("restored process %d (vpid %d) in %s namespace %q, want the new pod's %q", r.HostPID, r.VirtPID, ns, got, want)
			}
		}
	}
	if rows != 2 {
		t.Errorf("vrid ps lists %d processes of chain %s, want ckpt and its child", rows, ch.Name)
	}

	e.removeExported(t, ctx, c)
	assertNoChain(t, e.stateDir, ch.Name)
	if got := e.sysvKeysIn(t, pause); !reflect.DeepEqual(got, neighbours) {
		t.Errorf("the new pod's System V objects after the restored container: %q, want ipcmk's %q alone", got, neighbours)
	}
}

// sysvKeysIn lists the keys of the System V objects in the IPC namespace
// of host process pid, by kind.
func (e *env) sysvKeysIn(t *testing.T, pid int) map[string][]string {
	t.Helper()
	keys := map[string][]string{}
	for _, kind := range []string{"sem", "shm", "msg"} {
		out, err := e.cmd("nsenter", fmt.Sprintf("--ipc=/proc/%d/ns/ipc", pid), "cat", "/proc/sysvipc/"+kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range lines(out)[1:] {
			if f := strings.Fields(line); len(f) > 0 {
				keys[kind] = append(keys[kind], f[0])
			}
		}
	}
	return keys
}

// nsOf names the namespace of type ns of host process pid.
func nsOf(pid int, ns string) string {
	link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	return link
}

// criNamespace is the containerd namespace of CRI's containers.
const criNamespace = "k8s.io"

// criCkptCheck is ckptCheck for a container of CRI's namespace.
func (e *env) criCkptCheck(t *testing.T, id, out string, n int, want []string) {
	t.Helper()
	if _, err := e.ctrIn(criNamespace, "tasks", "kill", "-s", "SIGUSR1", id); err != nil {
		t.Fatal(err)
	}
	if got := readReport(t, out, fmt.Sprintf("check-%d", n)); !slices.Equal(got, want) {
		t.Errorf("%s check %d:\n%q\nwant\n%q", id, n, got, want)
	}
}

// tablesRow is a row of `vrid tables --json`.
type tablesRow struct {
	Type string `json:"type"`
	Virt int32  `json:"virtual"`
	Sys  int32  `json:"system"`
}

// vridTables is what `vrid tables NAME --json` prints of a chain.
func (e *env) vridTables(t *testing.T, name string) []tablesRow {
	t.Helper()
	out, err := e.cmd(filepath.Join(e.repo, "bin", "vrid"), "--config", e.seqCfg, "tables", name, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Entries []tablesRow }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("vrid tables %s --json: %v\n%s", name, err, out)
	}
	return v.Entries
}

// virtIDs are the virtual ids of table rows, by type.
func virtIDs(rows []tablesRow) map[string][]int32 {
	ids := map[string][]int32{}
	for _, r := range rows {
		ids[r.Type] = append(ids[r.Type], r.Virt)
	}
	return ids
}

// unpackTar unpacks an uncompressed tar of regular files and directories
// into a new directory.
func unpackTar(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := exec.Command("tar", "-xf", path, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v", path, err)
	}
	return dir
}

// restoreExported restores the unpacked CRI checkpoint archive dir as
// container id of CRI's pod podID, whose pause process is host pid
// pause, with the containerd Go client, as docs/restore.md ("CRI")
// describes: spec.dump with the pod's namespaces and files, a new
// snapshot of the image with rootfs-diff.tar applied, and a task from
// checkpoint/.
func (e *env) restoreExported(t *testing.T, ctx context.Context, dir, id, podID string, pause int) client.Container {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "spec.dump"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatalf("spec.dump: %v", err)
	}
	movePodSpec(&spec, id, podID, pause)

	cl, err := client.New(e.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	img, err := cl.GetImage(ctx, probeImage)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := os.ReadFile(filepath.Join(e.ctrdDir, "snapshotter"))
	if err != nil {
		t.Fatal(err)
	}
	snapshotter := strings.TrimSpace(string(sn))
	c, err := cl.NewContainer(ctx, id, client.WithSnapshotter(snapshotter), client.WithNewSnapshot(id, img),
		client.WithRuntime(vridRuntime, nil), client.WithSpec(&spec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if task, err := c.Task(ctx, nil); err == nil {
			_, _ = task.Delete(ctx, client.WithProcessKill)
		}
		_ = c.Delete(ctx, client.WithSnapshotCleanup)
	})
	mounts, err := cl.SnapshotService(snapshotter).Mounts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := mount.WithTempMount(ctx, mounts, func(root string) error {
		f, err := os.Open(filepath.Join(dir, "rootfs-diff.tar"))
		if err != nil {
			return err
		}
		defer f.Close()
		// containerd gzips it, whatever its name says.
		r, err := compression.DecompressStream(f)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = archive.Apply(ctx, root, r)
		return err
	}); err != nil {
		t.Fatalf("apply rootfs-diff.tar: %v", err)
	}
	task, err := c.NewTask(ctx, cio.NullIO, client.WithRestoreImagePath(filepath.Join(dir, "checkpoint")))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// movePodSpec points a CRI container's spec at pod podID, whose pause
// process is host pid pause: its namespaces, the files CRI keeps per pod
// (/etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/shm), the sandbox
// annotation, and a cgroup of the container's own.
func movePodSpec(spec *specs.Spec, id, podID string, pause int) {
	const sandboxKey = "io.kubernetes.cri.sandbox-id"
	old := spec.Annotations[sandboxKey]
	spec.Annotations[sandboxKey] = podID
	for i, m := range spec.Mounts {
		spec.Mounts[i].Source = strings.ReplaceAll(m.Source, "/sandboxes/"+old+"/", "/sandboxes/"+podID+"/")
	}
	proc := map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc",
		specs.UTSNamespace: "uts", specs.NetworkNamespace: "net"}
	for i, ns := range spec.Linux.Namespaces {
		if name, ok := proc[ns.Type]; ok && ns.Path != "" {
			spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pause, name)
		}
	}
	spec.Linux.CgroupsPath = "/" + criNamespace + "/" + id
}

// removeExported kills and deletes a restored container, its task and
// its snapshot.
func (e *env) removeExported(t *testing.T, ctx context.Context, c client.Container) {
	t.Helper()
	task, err := c.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if _, err := task.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
}
