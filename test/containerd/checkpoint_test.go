package containerd_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vrid/vrid/vresource"
)

// The checkpoint tests run testdata/ckpt.c in vrid containers, checkpoint
// them with `ctr container checkpoint --task`, and restore them with `ctr
// container restore --live`.  ckpt remembers its virtual pid, its child's,
// a semaphore value, two segments' patterns, a queued message and a
// thread, and checks all of them through the ids it holds when the test
// sends it SIGUSR1, into OUT/check-N of a host directory bind-mounted at
// /out.

// Virtual pids of ckpt's root under sequential ids: its pid namespace's
// init keeps pid 1; in a namespace whose init is another's, it gets the
// first fresh pid.  Its child gets the next fresh one.
const (
	ownInit   = 1
	sharedPID = 1000
)

func ckptChild(root int) int {
	if root == ownInit {
		return 1000
	}
	return root + 1
}

// checkLines is what ckpt with root vpid root writes when every check
// passes; the semaphore reads 7 at the first check and one more at each
// later one.
func checkLines(root, sem int) []string {
	return []string{fmt.Sprintf("pid=%d", root), "kill=ok", fmt.Sprintf("child=%d ppid=%d", ckptChild(root), root),
		"sem=" + strconv.Itoa(sem), "shm=ok", "keys=ok", "msg=hello", "thread=ok"}
}

// ckptRun starts ckpt in a vrid container that writes into a new
// directory, and waits until it is ready with virtual pid root.  It
// returns that directory.
func (e *env) ckptRun(t *testing.T, id, key string, root int, extra ...string) string {
	t.Helper()
	out := t.TempDir()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	extra = append(extra, "--mount", "type=bind,src="+out+",dst=/out,options=rbind:rw")
	e.startProbe(t, vridRuntime, id, extra, "/ckpt", "/out", key)
	ready := readReport(t, out, "ready")
	if want := fmt.Sprintf("ready pid=%d child=%d", root, ckptChild(root)); len(ready) != 1 || ready[0] != want {
		t.Fatalf("ckpt in %s: %q, want %q", id, ready, want)
	}
	return out
}

// readReport waits for the file name in out and returns its lines.
func readReport(t *testing.T, out, name string) []string {
	t.Helper()
	var b []byte
	waitFor(t, func() bool {
		var err error
		b, err = os.ReadFile(filepath.Join(out, name))
		return err == nil
	}, out+"/"+name)
	return lines(string(b))
}

// ckptCheck asks the ckpt of container id for check n and compares it
// with want.
func (e *env) ckptCheck(t *testing.T, id, out string, n int, want []string) {
	t.Helper()
	if _, err := e.ctr("tasks", "kill", "-s", "SIGUSR1", id); err != nil {
		t.Fatal(err)
	}
	if got := readReport(t, out, fmt.Sprintf("check-%d", n)); !slices.Equal(got, want) {
		t.Errorf("%s check %d:\n%q\nwant\n%q", id, n, got, want)
	}
}

// checkpoint checkpoints the task of id into the image ref, leaving it
// running, and removes the image when the test ends.
func (e *env) checkpoint(t *testing.T, id, ref string) {
	t.Helper()
	t.Cleanup(func() { _, _ = e.ctr("images", "rm", ref) })
	if _, err := e.ctr("containers", "checkpoint", "--task", "--image", id, ref); err != nil {
		t.Fatal(err)
	}
	if pid, err := e.taskPid(id); err != nil || pid == 0 {
		t.Errorf("after the checkpoint, task %s: pid %d, %v; want it running", id, pid, err)
	}
}

// restore restores ref as container id.
func (e *env) restore(t *testing.T, id, ref string) error {
	t.Helper()
	t.Cleanup(func() { e.remove(id) })
	_, err := e.ctr("containers", "restore", "--live", id, ref)
	return err
}

// sysvIDs are a chain's System V ids, by type, as its tables hold them.
func sysvIDs(t *testing.T, stateDir, name string) map[vresource.ResourceType][]int32 {
	t.Helper()
	ch, ok := chainNamed(t, stateDir, name)
	if !ok {
		t.Fatalf("no chain %q", name)
	}
	ids := map[vresource.ResourceType][]int32{}
	tables, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	for _, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg, vresource.PID} {
		for _, en := range tables.Entries(rt) {
			ids[rt] = append(ids[rt], en.Sys)
		}
		slices.Sort(ids[rt])
	}
	return ids
}

// (a) and (e): a container restored under a new id on the same node, with
// a chain of its own, checkpointed and restored once more; each copy goes
// on where the last left off, and deleting each leaves nothing of its
// chain.
func TestCheckpointMovedTwice(t *testing.T) {
	e := testEnv(t)
	const first, second, third = "vt-ck-1", "vt-ck-2", "vt-ck-3"
	out := e.ckptRun(t, first, "0x4242", ownInit)
	e.ckptCheck(t, first, out, 1, checkLines(ownInit, 7))
	e.checkpoint(t, first, "vrid-test/ck:1")
	firstChain, _ := chainNamed(t, e.stateDir, first)
	e.stopProbe(t, first)
	assertNoChain(t, e.stateDir, first)

	if err := e.restore(t, second, "vrid-test/ck:1"); err != nil {
		t.Fatal(err)
	}
	ch, ok := chainNamed(t, e.stateDir, second)
	if !ok || ch.AID == firstChain.AID {
		t.Fatalf("restored chain %q: %+v (found %v), want a new AID, not %d", second, ch, ok, firstChain.AID)
	}
	e.ckptCheck(t, second, out, 2, checkLines(ownInit, 8))
	e.checkpoint(t, second, "vrid-test/ck:2")
	e.stopProbe(t, second)
	assertNoChain(t, e.stateDir, second)

	if err := e.restore(t, third, "vrid-test/ck:2"); err != nil {
		t.Fatal(err)
	}
	e.ckptCheck(t, third, out, 3, checkLines(ownInit, 9))
	e.stopProbe(t, third)
	assertNoChain(t, e.stateDir, third)
}

// (b): a container in a pod-like IPC namespace, held by another, is
// checkpointed; a neighbour then makes objects with the same fixed key
// and takes the original system ids (*_next_id).  The restore makes the
// chain's objects afresh on other ids, and both containers keep working
// with their own objects.  CRIU never dumps the shared namespace, so the
// neighbour's objects are neither saved nor in the way.
func TestCheckpointSharedIPC(t *testing.T) {
	e := testEnv(t)
	holder := e.startProbe(t, runcRuntime, "vt-ckipc-pod", nil, "/probe", "sleep")
	ipcNS := []string{"--with-ns", fmt.Sprintf("ipc:/proc/%d/ns/ipc", holder)}
	const first, neighbour, restored = "vt-ckipc-a", "vt-ckipc-n", "vt-ckipc-a2"
	out := e.ckptRun(t, first, "0x4343", ownInit, ipcNS...)
	orig := sysvIDs(t, e.stateDir, first)
	e.checkpoint(t, first, "vrid-test/ckipc:1")
	e.stopProbe(t, first)

	next := map[string]int32{"sem": orig[vresource.Sem][0], "shm": orig[vresource.Shm][0], "msg": orig[vresource.Msg][0]}
	for kind, id := range next {
		if _, err := e.cmd("nsenter", fmt.Sprintf("--ipc=/proc/%d/ns/ipc", holder), "sh", "-c",
			fmt.Sprintf("echo %d > /proc/sys/kernel/%s_next_id", id, kind)); err != nil {
			t.Fatal(err)
		}
	}
	outN := e.ckptRun(t, neighbour, "0x4343", ownInit, ipcNS...)
	took := sysvIDs(t, e.stateDir, neighbour)
	for rt, want := range map[vresource.ResourceType]int32{vresource.Sem: next["sem"], vresource.Shm: next["shm"], vresource.Msg: next["msg"]} {
		if !slices.Contains(took[rt], want) {
			t.Fatalf("the neighbour's %s ids %v do not hold the original %d", rt, took[rt], want)
		}
	}

	if err := e.restore(t, restored, "vrid-test/ckipc:1"); err != nil {
		t.Fatal(err)
	}
	now := sysvIDs(t, e.stateDir, restored)
	for _, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg} {
		if len(now[rt]) != len(orig[rt]) || slices.ContainsFunc(now[rt], func(id int32) bool { return slices.Contains(took[rt], id) }) {
			t.Errorf("restored %s ids %v: want %d ids, none of the neighbour's %v", rt, now[rt], len(orig[rt]), took[rt])
		}
	}
	e.ckptCheck(t, restored, out, 1, checkLines(ownInit, 7))
	e.ckptCheck(t, neighbour, outN, 1, checkLines(ownInit, 7))
	e.stopProbe(t, restored)
	e.ckptCheck(t, neighbour, outN, 2, checkLines(ownInit, 8))
	e.stopProbe(t, neighbour)
	assertNoChain(t, e.stateDir, restored)
	assertNoChain(t, e.stateDir, neighbour)
	if keys := e.semKeysIn(t, holder); len(keys) != 0 {
		t.Errorf("the pod's IPC namespace still holds semaphores %q", keys)
	}
}

// (c): a container in a pod-like pid namespace, whose init is the pod's
// holder.  After the checkpoint its pids are taken there (the child a
// zombie of the holder, the root by a process the test starts on it), and
// the restore puts it on free pids: the virtual pids stay, and glibc's
// cached thread ids are patched (pthread_kill works).
func TestCheckpointSharedPID(t *testing.T) {
	e := testEnv(t)
	holder := e.startProbe(t, runcRuntime, "vt-ckpid-pod", nil, "/probe", "sleep")
	pidNS := []string{"--with-ns", fmt.Sprintf("pid:/proc/%d/ns/pid", holder)}
	const first, restored = "vt-ckpid-a", "vt-ckpid-a2"
	out := e.ckptRun(t, first, "0x4444", sharedPID, pidNS...)
	orig := sysvIDs(t, e.stateDir, first)[vresource.PID]
	if len(orig) != 2 {
		t.Fatalf("chain %s has pids %v, want its root and child", first, orig)
	}
	e.checkpoint(t, first, "vrid-test/ckpid:1")
	e.stopProbe(t, first)
	for _, pid := range orig {
		e.takePid(t, holder, pid)
	}

	if err := e.restore(t, restored, "vrid-test/ckpid:1"); err != nil {
		t.Fatal(err)
	}
	now := sysvIDs(t, e.stateDir, restored)[vresource.PID]
	if len(now) != 2 || slices.ContainsFunc(now, func(p int32) bool { return slices.Contains(orig, p) }) {
		t.Errorf("restored on pids %v, want two others than %v", now, orig)
	}
	e.ckptCheck(t, restored, out, 1, checkLines(sharedPID, 7))
	e.stopProbe(t, restored)
	assertNoChain(t, e.stateDir, restored)
}

// takePid makes pid of the pid namespace of host process holder taken,
// by a process there (testdata/takepid.c), unless something has it
// already: a process, such as the zombie child the container left to the
// holder, or a process group or session of one, such as the zombie's,
// which the container's root led.
func (e *env) takePid(t *testing.T, holder int, pid int32) {
	t.Helper()
	out, err := e.cmd("nsenter", "-t", strconv.Itoa(holder), "-p", "--", filepath.Join(e.work, "takepid"), strconv.Itoa(int(pid)))
	if err != nil && strings.Contains(err.Error(), "clone3: File exists") {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != strconv.Itoa(int(pid)) {
		t.Fatalf("takepid %d started %s", pid, out)
	}
	hostPid, err := hostPidOf(holder, pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(hostPid, syscall.SIGKILL) })
}

// hostPidOf finds the host pid of pid nsPid in the pid namespace of host
// process holder.
func hostPidOf(holder int, nsPid int32) (int, error) {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", holder))
	if err != nil {
		return 0, err
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); ns != want {
			continue
		}
		if innermost(pid) == nsPid {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no pid %d in the pid namespace of %d", nsPid, holder)
}

func innermost(pid int) int32 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			fields := strings.Fields(v)
			n, _ := strconv.Atoi(fields[len(fields)-1])
			return int32(n)
		}
	}
	return 0
}

// (d): migration between two containerd instances with their own roots,
// states and sockets, playing two nodes: the checkpoint image goes across
// with ctr images export and import.  The image carries the container's
// runtime options, so the restored shim reads the config path the first
// node's did (as runc options carry runc's binary and root): on two real
// nodes, the same path names each node's own config.  Here both nodes
// read one config, and one vrid state directory.
func TestCheckpointMigrate(t *testing.T) {
	e := testEnv(t)
	const id, moved = "vt-ckmig-a", "vt-ckmig-b"
	out := e.ckptRun(t, id, "0x4545", ownInit)
	e.ckptCheck(t, id, out, 1, checkLines(ownInit, 7))
	e.checkpoint(t, id, "vrid-test/ckmig:1")
	e.stopProbe(t, id)
	archive := filepath.Join(t.TempDir(), "ckmig.tar")
	if _, err := e.ctr("images", "export", "--local", "--skip-manifest-json", "--all-platforms", archive, "vrid-test/ckmig:1"); err != nil {
		t.Fatal(err)
	}

	node := e.secondNode(t)
	if _, err := node.ctr("images", "import", "--all-platforms", archive); err != nil {
		t.Fatal(err)
	}
	if err := node.restore(t, moved, "vrid-test/ckmig:1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := chainNamed(t, e.stateDir, moved); !ok {
		t.Errorf("no chain %q on the second node", moved)
	}
	node.ckptCheck(t, moved, out, 2, checkLines(ownInit, 8))
	node.stopProbe(t, moved)
	assertNoChain(t, e.stateDir, moved)
}

// secondNode starts another containerd, with a directory and a socket
// of its own, and the test images; it stops when the test ends.
func (e *env) secondNode(t *testing.T) *env {
	t.Helper()
	n := *e
	n.ctrdDir = e.ctrdDir + "-node2"
	n.socket = filepath.Join(n.ctrdDir, "containerd.sock")
	t.Cleanup(func() {
		if out, err := n.script("stop"); err != nil {
			t.Errorf("stop the second node: %v\n%s", err, out)
		}
	})
	if _, err := n.script("start"); err != nil {
		t.Fatal(err)
	}
	for _, tar := range []string{"probe_test.tar", "pause_test.tar"} {
		if _, err := n.ctr("images", "import", "--all-platforms", filepath.Join(e.work, "img", tar)); err != nil {
			t.Fatal(err)
		}
	}
	return &n
}

// (f): several segments of different sizes, one with a fixed key, shared
// with a child, are what ckpt holds in every case above.  Here
// test/programs/snap_undo holds a semaphore with SEM_UNDO in one child (a
// lock), has added to another with SEM_UNDO in a second, and left none of
// its own.  The checkpoint saves the adjustments, by virtual pid, though
// the tables name the pids of the container's namespace; the restore has
// each process give its undo list them again; and killing the children of
// the restored container gives back exactly what they held.
func TestCheckpointSemUndo(t *testing.T) {
	e := testEnv(t)
	const first, restored = "vt-ckundo-a", "vt-ckundo-b"
	out := t.TempDir()
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	mount := []string{"--mount", "type=bind,src=" + out + ",dst=/out,options=rbind:rw"}
	e.startProbe(t, vridRuntime, first, mount, "/snap_undo", "/out/report")
	const ready = "ready holder=1000 releaser=1001 sem=1 values=0,2"
	if got := reportLine(t, out, "ready"); got != ready {
		t.Fatalf("before the checkpoint: %q, want %q", got, ready)
	}
	recorded := []vresource.SemAdj{
		{PidVirt: 1000, SemVirt: 1, Num: 0, Adj: 1},
		{PidVirt: 1001, SemVirt: 1, Num: 1, Adj: -2},
	}
	if got, gen := e.semAdjsOf(t, first); !reflect.DeepEqual(got, recorded) || gen != 0 {
		t.Fatalf("recorded %+v at generation %d, want %+v at 0", got, gen, recorded)
	}
	e.checkpoint(t, first, "vrid-test/ckundo:1")
	e.stopProbe(t, first)
	const wantUndo = `[{"virt_pid":1000,"adjs":[{"sem_virt":1,"num":0,"adj":1}]},{"virt_pid":1001,"adjs":[{"sem_virt":1,"num":1,"adj":-2}]}]`
	if got := e.savedUndo(t, "vrid-test/ckundo:1"); got != wantUndo {
		t.Errorf("sysv.json undo: %s, want %s", got, wantUndo)
	}

	if err := e.restore(t, restored, "vrid-test/ckundo:1"); err != nil {
		t.Fatal(err)
	}
	got, gen := e.semAdjsOf(t, restored)
	reapplied := []vresource.SemAdj{
		{PidVirt: 1000, SemVirt: 1, Num: 0, Adj: 1, Generation: gen},
		{PidVirt: 1001, SemVirt: 1, Num: 1, Adj: -2, Generation: gen},
	}
	if gen == 0 || !reflect.DeepEqual(got, reapplied) {
		t.Errorf("after the restore %+v at generation %d, want %+v", got, gen, reapplied)
	}
	if _, err := e.ctr("tasks", "kill", "-s", "SIGUSR1", restored); err != nil {
		t.Fatal(err)
	}
	const after = "after holder=1000 releaser=1001 sem=1 values=0,2 holder-killed=1,2 releaser-killed=1,0"
	if got := reportLine(t, out, "after"); got != after {
		t.Errorf("after the restore: %q, want %q", got, after)
	}
	if got := reportLine(t, out, "PASS"); got != "PASS" {
		t.Errorf("snap_undo ends with %q, want PASS", got)
	}
	e.remove(restored) // snap_undo has ended

	assertNoChain(t, e.stateDir, restored)
}

// savedUndo is the undo lists of the sysv.json of checkpoint image ref,
// compacted.
func (e *env) savedUndo(t *testing.T, ref string) string {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "ck.tar")
	if _, err := e.ctr("images", "export", "--local", "--skip-manifest-json", "--all-platforms", archive, ref); err != nil {
		t.Fatal(err)
	}
	a, err := readOCIArchive(archive)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Undo json.RawMessage `json:"undo"`
	}
	if err := a.editCheckpointFile("sysv.json", func(b []byte) []byte {
		if err := json.Unmarshal(b, &saved); err != nil {
			t.Errorf("sysv.json: %v", err)
		}
		return b
	}); err != nil {
		t.Fatal(err)
	}
	compact, err := json.Marshal(saved.Undo)
	if err != nil {
		t.Fatal(err)
	}
	return string(compact)
}

// reportLine waits for a line of out/report that starts with prefix, or
// a FAIL line, and returns it.
func reportLine(t *testing.T, out, prefix string) string {
	t.Helper()
	var line string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(out, "report"))
		for _, l := range lines(string(b)) {
			if strings.HasPrefix(l, prefix) || strings.HasPrefix(l, "FAIL") {
				line = l
				return true
			}
		}
		return false
	}, "a line "+prefix+" in "+out+"/report")
	return line
}

// semAdjsOf are the SEM_UNDO adjustments the tables of chain name hold,
// and the tables' generation.
func (e *env) semAdjsOf(t *testing.T, name string) ([]vresource.SemAdj, uint32) {
	t.Helper()
	ch, ok := chainNamed(t, e.stateDir, name)
	if !ok {
		t.Fatalf("no chain %q", name)
	}
	tables, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	adjs, err := tables.SemAdjs()
	if err != nil {
		t.Fatal(err)
	}
	return adjs, tables.Generation()
}

// (g) A checkpoint that is not a vrid container's, or whose vrid state
// does not match its manifest, is refused with the cause, and leaves no
// task, chain or object behind.
func TestCheckpointBadInput(t *testing.T) {
	e := testEnv(t)
	const id = "vt-ckbad-a"
	e.ckptRun(t, id, "0x4646", ownInit)
	e.checkpoint(t, id, "vrid-test/ckbad:1")
	e.stopProbe(t, id)
	runcID := "vt-ckbad-runc"
	e.startProbe(t, runcRuntime, runcID, nil, "/probe", "sleep")
	e.checkpoint(t, runcID, "vrid-test/ckbad:runc")
	e.stopProbe(t, runcID)

	tests := []struct {
		name, ref string
		edit      func(*ociArchive) error
		want      string
	}{
		{name: "corrupt tables", ref: "vrid-test/ckbad:1", edit: func(a *ociArchive) error {
			return a.editCheckpointFile("tables.img", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
		}, want: "verify image"},
		{name: "no vrid state", ref: "vrid-test/ckbad:runc", edit: func(a *ociArchive) error {
			return a.setRuntime(vridRuntime)
		}, want: "checkpoint holds no vrid state"},
		// Under runc.v2, vrid is not there to refuse: runc's shim cannot
		// read vrid's runtime options, which the checkpoint carries (the
		// test's containers have them)...
		{name: "vrid checkpoint under runc.v2", ref: "vrid-test/ckbad:1", edit: func(a *ociArchive) error {
			return a.setRuntime(runcRuntime)
		}, want: "type with url runtimeoptions.v1.Options: not found"},
		// ...and without them CRIU fails: the images map the layer from
		// /dev/.vrid, which runc.v2 does not mount.
		{name: "vrid checkpoint without options under runc.v2", ref: "vrid-test/ckbad:1", edit: func(a *ociArchive) error {
			return errors.Join(a.setRuntime(runcRuntime), a.dropRuntimeOptions())
		}, want: "OCI runtime restore failed: criu failed: type RESTORE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := e.editedImage(t, tt.ref, tt.edit)
			before := chainAIDs(t, e.stateDir)
			restored := "vt-ckbad-r"
			err := e.restore(t, restored, ref)
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), `\"`, `"`), tt.want) {
				t.Errorf("restore: %v, want an error saying %q", err, tt.want)
			}
			if got := chainAIDs(t, e.stateDir); !slices.Equal(got, before) {
				t.Errorf("chains %v after the refused restore, were %v", got, before)
			}
			e.remove(restored)
		})
	}
}

// editedImage exports ref, edits it, and imports it under a new name.
func (e *env) editedImage(t *testing.T, ref string, edit func(*ociArchive) error) string {
	t.Helper()
	dir := t.TempDir()
	archive := filepath.Join(dir, "in.tar")
	if _, err := e.ctr("images", "export", "--local", "--skip-manifest-json", "--all-platforms", archive, ref); err != nil {
		t.Fatal(err)
	}
	a, err := readOCIArchive(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(a); err != nil {
		t.Fatal(err)
	}
	newRef := ref + "-edited"
	a.rename(newRef)
	edited := filepath.Join(dir, "out.tar")
	if err := a.write(edited); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = e.ctr("images", "rm", newRef) })
	if _, err := e.ctr("images", "import", "--all-platforms", edited); err != nil {
		t.Fatal(err)
	}
	return newRef
}
