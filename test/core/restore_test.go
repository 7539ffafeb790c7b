package core_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Snapshot and restore of vrid run chains (issue 8), zdtm-style: the
// programs remember their ids before the snapshot and check them after
// the restore themselves, printing PASS or FAIL lines with exact values.

// stackCRIU is the CRIU vrid snapshot finds by default.
const stackCRIU = "/opt/vrid-stack/bin/criu"

func needCRIU(t *testing.T) {
	t.Helper()
	needSetup(t)
	if _, err := os.Stat(stackCRIU); err != nil {
		t.Skipf("no %s: run scripts/install-stack.sh", stackCRIU)
	}
}

// snapChain is a detached chain of a zdtm-style program.
type snapChain struct {
	stateDir string
	name     string
	report   string // the program's report file
}

// startSnapChain runs prog REPORT as chain name, detached, and waits until
// it has reported "ready".
func startSnapChain(t *testing.T, stateDir, name, prog string) *snapChain {
	t.Helper()
	c := &snapChain{stateDir: stateDir, name: name, report: filepath.Join(t.TempDir(), "report")}
	res := vrid(t, stateDir, "run", "--detach", "--name", name, "--ids", "sequential", "--", program(prog), c.report)
	if res.Code != 0 {
		t.Fatalf("vrid run --detach %s:\n%s", prog, res)
	}
	c.waitLine(t, "ready")
	// The supervisor records the root after starting it: a snapshot
	// before that is refused.
	poll(t, name+"'s root in the registry", func() bool { return registry(t, stateDir)[name].RootPid > 0 })
	return c
}

// lines reads the report.
func (c *snapChain) lines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(c.report)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// waitLine waits for a report line starting with prefix and returns it;
// a FAIL line fails the test at once.
func (c *snapChain) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	var found string
	poll(t, fmt.Sprintf("%s reports %q", c.name, prefix), func() bool {
		for _, l := range c.lines(t) {
			if strings.HasPrefix(l, "FAIL") {
				t.Fatalf("%s: %s\nreport:\n%s", c.name, l, strings.Join(c.lines(t), "\n"))
			}
			if strings.HasPrefix(l, prefix) {
				found = l
			}
		}
		return found != ""
	})
	return found
}

// registered is the registry's entry of a chain, by name.
type registered struct {
	AID     int    `json:"aid"`
	Name    string `json:"name"`
	RootPid int    `json:"root_pid"`
	Owner   struct {
		Pid int `json:"pid"`
	} `json:"owner"`
}

func registry(t *testing.T, stateDir string) map[string]registered {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "registry.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		Chains []registered `json:"chains"`
	}
	if err := json.Unmarshal(data, &reg); err != nil {
		t.Fatalf("registry.json: %v\n%s", err, data)
	}
	out := map[string]registered{}
	for _, c := range reg.Chains {
		out[c.Name] = c
	}
	return out
}

// wake sends SIGUSR1 to a chain's root, by the system pid the registry
// has for it.
func (c *snapChain) wake(t *testing.T) {
	t.Helper()
	root := registry(t, c.stateDir)[c.name].RootPid
	if root <= 0 {
		t.Fatalf("chain %s: no root pid in the registry %v", c.name, registry(t, c.stateDir))
	}
	if err := unix.Kill(root, unix.SIGUSR1); err != nil {
		t.Fatalf("wake chain %s root %d: %v", c.name, root, err)
	}
}

// waitGone waits until the supervisor of a chain has exited and reaps it.
func waitSupervisor(t *testing.T, pid int) {
	t.Helper()
	poll(t, fmt.Sprintf("supervisor %d exits", pid), func() bool {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		return got == pid || err == unix.ECHILD
	})
}

// hashDir is the sha256 of every file under dir, by path.
func hashDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(path, dir)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameHashes(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// copyImage copies an image directory, for a test that damages it.
func copyImage(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "image")
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", from, to, err, out)
	}
	return to
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Bad input, case (i): each is refused with a clear error, and changes
// nothing: the image stays byte for byte, no chain, object or process is
// left, and the chain that was snapshotted with --leave-running runs on
// and passes its own checks afterwards.
func TestRestoreBadInput(t *testing.T) {
	needCRIU(t)
	stateDir := t.TempDir()
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	orig := startSnapChain(t, stateDir, "orig", "snap_ids")
	supervisor := registry(t, stateDir)["orig"].Owner.Pid
	image := filepath.Join(t.TempDir(), "image")
	if res := vrid(t, stateDir, "snapshot", "orig", "--image", image, "--leave-running"); res.Code != 0 ||
		res.Stdout != fmt.Sprintf("chain orig (AID 1) snapshotted to %s\n", image) {
		t.Fatalf("vrid snapshot orig --leave-running:\n%s", res)
	}
	noCRIU := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(noCRIU, []byte("criu = \"/nonexistent/criu\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		damage func(t *testing.T, dir string) // on a copy of the image
		args   []string                       // after the image's; the global flags before "restore"
		want   string
	}{
		{
			name: "truncated page image",
			damage: func(t *testing.T, dir string) {
				pages, _ := filepath.Glob(filepath.Join(dir, "criu", "pages-*.img"))
				if len(pages) == 0 {
					t.Fatal("no pages image")
				}
				if err := os.Truncate(pages[0], 4096); err != nil {
					t.Fatal(err)
				}
			},
			want: "image is corrupt: criu/pages-1.img has checksum ",
		},
		{
			name: "corrupt tables",
			damage: func(t *testing.T, dir string) {
				f, err := os.OpenFile(filepath.Join(dir, "tables.img"), os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte{0xff}, 100); err != nil {
					t.Fatal(err)
				}
			},
			want: "image is corrupt: tables.img has checksum ",
		},
		{
			name:   "missing file",
			damage: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "sysv.json")) },
			want:   "image is corrupt: sysv.json is missing",
		},
		{
			name: "newer format",
			damage: func(t *testing.T, dir string) {
				editJSON(t, filepath.Join(dir, "manifest.json"), func(m map[string]any) { m["format"] = 3 })
			},
			want: "unknown image format 3: this vrid reads format 2 (restore with the vrid that took the snapshot)",
		},
		{
			name: "format 1, sha256 checksums",
			damage: func(t *testing.T, dir string) {
				editJSON(t, filepath.Join(dir, "manifest.json"), func(m map[string]any) { m["format"] = 1 })
			},
			want: "unknown image format 1: this vrid reads format 2 (restore with the vrid that took the snapshot)",
		},
		{
			name: "other libvrid build",
			damage: func(t *testing.T, dir string) {
				editJSON(t, filepath.Join(dir, "manifest.json"), func(m map[string]any) { m["libvrid_build_id"] = "0123abcd" })
			},
			want: "image made by another libvrid build: the image needs libvrid build 0123abcd, and ",
		},
		{
			name:   "no manifest",
			damage: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "manifest.json")) },
			want:   "not a vrid image: no manifest.json",
		},
		{
			name: "missing CRIU",
			args: []string{"--config", noCRIU},
			want: "criu not found: install it with scripts/install-stack.sh",
		},
		{
			name: "onto a running name",
			want: `chain name "orig" is already running as AID 1; pick another --name or stop it`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyImage(t, image)
			if tc.damage != nil {
				tc.damage(t, dir)
			}
			before, ipcBefore := hashDir(t, dir), readIPC(t)
			for _, detach := range []bool{false, true} {
				args := append(append([]string{}, tc.args...), "restore", "--image", dir)
				if detach {
					args = append(args, "--detach")
				}
				res := vrid(t, stateDir, args...)
				if res.Code != 1 || !strings.Contains(res.Stderr, tc.want) {
					t.Errorf("vrid %s: want exit status 1 and %q\n%s", strings.Join(args, " "), tc.want, res)
				}
			}
			if after := hashDir(t, dir); !sameHashes(before, after) {
				t.Errorf("the image changed:\nbefore %v\nafter  %v", before, after)
			}
			if reg := registry(t, stateDir); len(reg) != 1 || reg["orig"].AID != 1 {
				t.Errorf("registry after a refused restore: %v, want orig alone", reg)
			}
			if objs := newIPC(ipcBefore, readIPC(t)); len(objs) > 0 {
				t.Errorf("a refused restore left IPC objects %v", objs)
				removeIPC(objs)
			}
			if procs := chainProcesses(stateDir); len(procs) != 2 {
				t.Errorf("processes of the chains after a refused restore: %v, want orig's 2", procs)
			}
		})
	}

	t.Run("snapshot refusals", func(t *testing.T) {
		full := t.TempDir()
		if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"snapshot", "nosuch", "--image", filepath.Join(t.TempDir(), "img")}, "snapshot nosuch: unknown chain (vrid ps lists the running ones)"},
			{[]string{"snapshot", "orig", "--image", full}, full + ": image directory exists and is not empty: choose a new --image"},
			{[]string{"snapshot", "--image", full}, "snapshot: name a chain and an image"},
		} {
			res := vrid(t, stateDir, tc.args...)
			if res.Code != 1 || !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("vrid %s: want exit status 1 and %q\n%s", strings.Join(tc.args, " "), tc.want, res)
			}
		}
		if entries, _ := os.ReadDir(full); len(entries) != 1 {
			t.Errorf("a refused snapshot wrote into %s: %v", full, entries)
		}
	})

	// The original ran on through all of it.
	orig.wake(t)
	if got := orig.waitLine(t, "after"); got != "after pid=1000 child=1001 sem=1 msg=1 shm=1" {
		t.Errorf("orig after its --leave-running snapshot: %q", got)
	}
	orig.waitLine(t, "PASS")
	waitSupervisor(t, supervisor)
}

// occupyPids holds the given system pids with criu/testdata/occupy until
// the test ends.
func occupyPids(t *testing.T, pids []int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "occupy")
	if out, err := exec.Command("gcc", "-O1", "-o", bin, filepath.Join(repoRoot, "criu", "testdata", "occupy.c")).CombinedOutput(); err != nil {
		t.Fatalf("gcc occupy: %v\n%s", err, out)
	}
	var args []string
	for _, p := range pids {
		args = append(args, strconv.Itoa(p))
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			return
		}
		if !strings.HasPrefix(line, "taken ") {
			t.Fatalf("occupy: %s", line)
		}
	}
	t.Fatalf("occupy ended before it was ready: %v", sc.Err())
}

// occupyIPC makes an object of each kind with exactly the given system id,
// through /proc/sys/kernel/*_next_id of this private IPC namespace, and
// removes them when the test ends.
func occupyIPC(t *testing.T, kind string, id int) {
	t.Helper()
	occupyIPCKey(t, kind, id, 0)
}

// occupyIPCKey is occupyIPC with a key (0: IPC_PRIVATE).
func occupyIPCKey(t *testing.T, kind string, id int, key uintptr) {
	t.Helper()
	next := map[string]string{"sem": "sem_next_id", "msg": "msg_next_id", "shm": "shm_next_id"}[kind]
	if err := os.WriteFile("/proc/sys/kernel/"+next, []byte(strconv.Itoa(id)), 0); err != nil {
		t.Fatal(err)
	}
	var got uintptr
	var err error
	switch kind {
	case "sem":
		got, _, err = unix.Syscall(unix.SYS_SEMGET, key, 1, unix.IPC_CREAT|0o600)
	case "msg":
		got, _, err = unix.Syscall(unix.SYS_MSGGET, key, unix.IPC_CREAT|0o600, 0)
	case "shm":
		got, _, err = unix.Syscall(unix.SYS_SHMGET, key, 4096, unix.IPC_CREAT|0o600)
	}
	if err.(unix.Errno) != 0 || int(got) != id {
		t.Fatalf("take %s id %d: got %d, %v", kind, id, got, err)
	}
	t.Cleanup(func() { removeIPC([]ipcObject{{Kind: kind, ID: id}}) })
}

// sysIDs are a chain's system ids by type and virtual id, from vrid tables.
func sysIDs(t *testing.T, stateDir, chain string) map[string]map[int32]int32 {
	t.Helper()
	got := map[string]map[int32]int32{}
	for _, e := range tablesJSON(t, stateDir, chain).Entries {
		if got[e.Type] == nil {
			got[e.Type] = map[int32]int32{}
		}
		got[e.Type][e.Virt] = e.Sys
	}
	return got
}

// Case (a): on the same host, with every original pid and SysV id taken
// by others, plain criu restore of the image fails and vrid restore
// brings the chain back: same virtual ids, new system ones, everything
// working.  The supervisor of the snapshotted chain exits 0 and says
// where the chain went.
func TestRestoreOntoTakenIds(t *testing.T) {
	needCRIU(t)
	stateDir := t.TempDir()
	ipcBefore := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	orig := startSnapChain(t, stateDir, "orig", "snap_ids")
	old := sysIDs(t, stateDir, "orig")
	supervisor := registry(t, stateDir)["orig"].Owner.Pid
	image := filepath.Join(t.TempDir(), "image")
	if res := vrid(t, stateDir, "snapshot", "orig", "--image", image); res.Code != 0 {
		t.Fatalf("vrid snapshot orig:\n%s", res)
	}
	waitSupervisor(t, supervisor)
	logData, _ := os.ReadFile(filepath.Join(stateDir, "logs", "1.log"))
	if want := "vrid: chain orig (1) was snapshotted to " + image + "\n"; string(logData) != want {
		t.Errorf("the supervisor's output: %q, want %q", logData, want)
	}
	if reg := registry(t, stateDir); len(reg) != 0 {
		t.Errorf("registry after the snapshot ended the chain: %v", reg)
	}

	var pids []int
	for _, sys := range old["pid"] {
		pids = append(pids, int(sys))
	}
	occupyPids(t, pids)
	for kind, ids := range old {
		if kind == "sem" || kind == "msg" || kind == "shm" {
			for _, sys := range ids {
				occupyIPC(t, kind, int(sys))
			}
		}
	}

	// Plain CRIU, with its logs outside the image, and cgroups left alone
	// as vrid restore leaves them: CRIU would make the dumped chain's again.
	work := t.TempDir()
	plain := exec.Command(stackCRIU, "restore", "-D", filepath.Join(image, "criu"), "-W", work, "-o", "restore.log",
		"--shell-job", "--file-locks", "--manage-cgroups=ignore", "-d", "-v4")
	if out, err := plain.CombinedOutput(); err == nil {
		t.Errorf("plain criu restore onto taken pids succeeded:\n%s", out)
	}
	crlog, _ := os.ReadFile(filepath.Join(work, "restore.log"))
	if !strings.Contains(string(crlog), "File exists") {
		t.Errorf("plain criu restore: want its log to say a pid is taken (File exists); its log ends:\n%s", tail(string(crlog), 10))
	}

	before := hashDir(t, image)
	res := vrid(t, stateDir, "restore", "--image", image, "--detach")
	if res.Code != 0 || res.Stdout != "2\n" {
		t.Fatalf("vrid restore --detach: want AID 2\n%s", res)
	}
	restored := &snapChain{stateDir: stateDir, name: "orig", report: orig.report}
	now := sysIDs(t, stateDir, "orig")
	for kind, ids := range old {
		for virt, sys := range ids {
			if kind != "ipckey" && (now[kind][virt] == 0 || now[kind][virt] == sys) {
				t.Errorf("%s %d: system id %d after the restore, was %d (taken)", kind, virt, now[kind][virt], sys)
			}
		}
	}
	supervisor = registry(t, stateDir)["orig"].Owner.Pid
	restored.wake(t)
	if got := restored.waitLine(t, "after"); got != "after pid=1000 child=1001 sem=1 msg=1 shm=1" {
		t.Errorf("after the restore: %q", got)
	}
	restored.waitLine(t, "PASS")
	waitSupervisor(t, supervisor)
	if after := hashDir(t, image); !sameHashes(before, after) {
		t.Errorf("the restore changed the image")
	}
	checkNoLeaks(t, stateDir, append(ipcBefore, takenIPC(old)...))
}

// takenIPC are the objects occupyIPC holds, for the leak check.
func takenIPC(old map[string]map[int32]int32) []ipcObject {
	var out []ipcObject
	for kind, ids := range old {
		for _, sys := range ids {
			if kind == "sem" || kind == "msg" || kind == "shm" {
				out = append(out, ipcObject{Kind: kind, ID: int(sys)})
			}
		}
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// The programs of the cases, each checking itself after a restore: (a)'s
// ids and objects, (c) several segments with a fixed key shared with a
// child that keeps writing, (f) threads onto new tids, and (e) calls
// blocked in semop, msgrcv, waitpid and sigsuspend.
var snapPrograms = []string{"snap_ids", "snap_shm", "snap_threads", "snap_blocked"}

// afterLine is what a program reports after the restore: the ids it
// reported ready with, unchanged.
func afterLine(ready string) string {
	return "after" + strings.TrimPrefix(ready, "ready")
}

// snapshotTo snapshots a chain and checks the verb's output.
func snapshotTo(t *testing.T, stateDir, name, image string, flags ...string) {
	t.Helper()
	args := append([]string{"snapshot", name, "--image", image}, flags...)
	res := vrid(t, stateDir, args...)
	if res.Code != 0 || !strings.HasSuffix(res.Stdout, " snapshotted to "+image+"\n") {
		t.Fatalf("vrid %s:\n%s", strings.Join(args, " "), res)
	}
}

// restoreFrom restores an image, detached, and returns the new AID.
func restoreFrom(t *testing.T, stateDir, image string, flags ...string) string {
	t.Helper()
	args := append([]string{"restore", "--image", image, "--detach"}, flags...)
	res := vrid(t, stateDir, args...)
	if res.Code != 0 {
		t.Fatalf("vrid %s:\n%s", strings.Join(args, " "), res)
	}
	return strings.TrimSpace(res.Stdout)
}

// Case (b), and (c) and (f) through their programs: snapshot, restore,
// snapshot the restored chain, restore again; the program checks itself
// on the third host of its ids.
func TestRestoreMovedTwice(t *testing.T) {
	needCRIU(t)
	for _, prog := range snapPrograms {
		t.Run(prog, func(t *testing.T) {
			stateDir := t.TempDir()
			ipcBefore := readIPC(t)
			t.Cleanup(func() { killChainProcesses(t, stateDir) })
			c := startSnapChain(t, stateDir, "moved", prog)
			ready := c.waitLine(t, "ready")
			for i, wantAID := range []string{"2", "3"} {
				supervisor := registry(t, stateDir)["moved"].Owner.Pid
				image := filepath.Join(t.TempDir(), "image")
				snapshotTo(t, stateDir, "moved", image)
				waitSupervisor(t, supervisor)
				if aid := restoreFrom(t, stateDir, image); aid != wantAID {
					t.Fatalf("restore %d: AID %s, want %s", i+1, aid, wantAID)
				}
			}
			supervisor := registry(t, stateDir)["moved"].Owner.Pid
			c.wake(t)
			if got := c.waitLine(t, "after"); got != afterLine(ready) {
				t.Errorf("after two moves: %q, want %q", got, afterLine(ready))
			}
			c.waitLine(t, "PASS")
			waitSupervisor(t, supervisor)
			checkNoLeaks(t, stateDir, ipcBefore)
		})
	}
}

// Case (h): a snapshot with --leave-running, then the copy restored under
// another name while the original runs; both pass their checks.  They
// share the report file, as the restored copy reopens the original's.
// snap_blocked is left out: the dump interrupts the original's semop and
// msgrcv, which return EINTR there (docs/restore.md).
func TestRestoreCopyBesideOriginal(t *testing.T) {
	needCRIU(t)
	for _, prog := range snapPrograms[:3] {
		t.Run(prog, func(t *testing.T) {
			stateDir := t.TempDir()
			ipcBefore := readIPC(t)
			t.Cleanup(func() { killChainProcesses(t, stateDir) })
			orig := startSnapChain(t, stateDir, "orig", prog)
			ready := orig.waitLine(t, "ready")
			image := filepath.Join(t.TempDir(), "image")
			snapshotTo(t, stateDir, "orig", image, "--leave-running")
			if aid := restoreFrom(t, stateDir, image, "--name", "copy"); aid != "2" {
				t.Fatalf("restore as copy: AID %s, want 2", aid)
			}
			reg := registry(t, stateDir)
			if len(reg) != 2 || reg["orig"].AID != 1 || reg["copy"].AID != 2 {
				t.Fatalf("registry: %v, want orig (1) and copy (2)", reg)
			}
			copy := &snapChain{stateDir: stateDir, name: "copy", report: orig.report}
			for _, c := range []*snapChain{orig, copy} {
				supervisor := registry(t, stateDir)[c.name].Owner.Pid
				before := strings.Count(strings.Join(c.lines(t), "\n"), "PASS")
				c.wake(t)
				poll(t, c.name+" passes", func() bool {
					return strings.Count(strings.Join(c.lines(t), "\n"), "PASS") == before+1
				})
				waitSupervisor(t, supervisor)
			}
			var after []string
			for _, l := range orig.lines(t) {
				if strings.HasPrefix(l, "FAIL") {
					t.Errorf("%s", l)
				}
				if strings.HasPrefix(l, "after") {
					after = append(after, l)
				}
			}
			if len(after) != 2 || after[0] != afterLine(ready) || after[1] != afterLine(ready) {
				t.Errorf("after lines %q, want %q twice", after, afterLine(ready))
			}
			checkNoLeaks(t, stateDir, ipcBefore)
		})
	}
}

// --sync makes the image durable before the command returns: every file
// of it is fsynced, as is each directory on the way; without it, as with
// CRIU's own dump, nothing of the image is (the sums at restore tell an
// image a crash cut).  strace watches vrid's fsyncs, and lets go of
// what it execs (CRIU traces processes itself).
func TestSnapshotSync(t *testing.T) {
	needCRIU(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("no strace (scripts/install-stack.sh installs it)")
	}
	stateDir := t.TempDir()
	ipcBefore := readIPC(t)
	t.Cleanup(func() { killChainProcesses(t, stateDir) })
	c := startSnapChain(t, stateDir, "durable", "snap_ids")
	c.waitLine(t, "ready")
	for _, tt := range []struct {
		flags      []string
		wantSynced bool
	}{
		{[]string{"--leave-running"}, false},
		{[]string{"--leave-running", "--sync"}, true},
	} {
		parent := t.TempDir()
		image := filepath.Join(parent, "image")
		trace := filepath.Join(t.TempDir(), "strace")
		ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
		cmd := vridCommand(ctx, stateDir, append([]string{"snapshot", "durable", "--image", image}, tt.flags...)...)
		cmd.Args = append([]string{strace, "-f", "--detach-on=execve", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", trace}, cmd.Args...)
		cmd.Path = strace
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("vrid snapshot %v: %v\n%s", tt.flags, err, out)
		}
		raw, err := os.ReadFile(trace)
		if err != nil {
			t.Fatal(err)
		}
		// fsync(7</tmp/.../.image.tmp-123/pages-1.img>) = 0: the path as
		// it was, under the temporary name the image is built under.  A
		// call another thread's interrupts is printed in two parts, the
		// path in the first (<unfinished ...>), the result in the second.
		if failed := regexp.MustCompile(`= -1 E`).FindString(string(raw)); failed != "" {
			t.Fatalf("snapshot %v: an fsync failed:\n%s", tt.flags, raw)
		}
		synced := map[string]bool{}
		for _, m := range regexp.MustCompile(`sync\(\d+<([^>]*)>`).FindAllStringSubmatch(string(raw), -1) {
			// The image's parent, synced after the rename, is not the image.
			if rel, err := filepath.Rel(parent, m[1]); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
				_, inImage, _ := strings.Cut(filepath.ToSlash(rel), "/")
				synced[inImage] = true // "" for the image's directory
			}
		}
		if !tt.wantSynced {
			if len(synced) != 0 {
				t.Errorf("snapshot %v synced %v, want nothing of the image", tt.flags, slices.Sorted(maps.Keys(synced)))
			}
			continue
		}
		files, err := listImage(image)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(files, "", ".manifest.json.tmp") {
			if !synced[f] {
				t.Errorf("snapshot %v did not sync %q of the image; synced %v", tt.flags, f, slices.Sorted(maps.Keys(synced)))
			}
		}
	}
	supervisor := registry(t, stateDir)["durable"].Owner.Pid
	c.wake(t)
	c.waitLine(t, "PASS")
	waitSupervisor(t, supervisor)
	checkNoLeaks(t, stateDir, ipcBefore)
}

// listImage lists the regular files of an image but its manifest, slash-separated.
func listImage(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err == nil && rel != "manifest.json" {
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	return out, err
}
