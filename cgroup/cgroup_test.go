package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

func TestPickCgroup(t *testing.T) {
	pureV2 := &hierarchy{root: v2Root, v2: true}
	hybridV2 := &hierarchy{root: v2HybridRoot, v2: true}
	freezer := &hierarchy{root: freezerRoot}
	const (
		v2Only = "0::/ctr/abc\n"
		// runc on a hybrid host puts the process in the same path of
		// every hierarchy, the unified one included.
		hybridJoined = "9:name=systemd:/ctr/abc\n6:freezer:/ctr/abc\n1:cpu,cpuacct:/ctr/abc\n0::/ctr/abc\n"
		// A runtime that left the unified hierarchy alone: its v2 path is
		// whatever the process inherited.
		hybridV1Only = "6:freezer:/ctr/abc\n0::/\n"
		v1Only       = "7:pids:/ctr/abc\n6:blkio,freezer:/ctr/abc\n"
	)
	for _, tc := range []struct {
		name       string
		proc       string
		v2, frozen *hierarchy
		want       string
		wantErr    error
	}{
		{"pure v2", v2Only, pureV2, nil, "/sys/fs/cgroup/ctr/abc", nil},
		{"pure v2 with a freezer mounted", hybridV1Only, pureV2, freezer, "/sys/fs/cgroup", nil},
		{"hybrid, runtime joined v2", hybridJoined, hybridV2, freezer, "/sys/fs/cgroup/unified/ctr/abc", nil},
		{"hybrid, runtime used v1 alone", hybridV1Only, hybridV2, freezer, "/sys/fs/cgroup/freezer/ctr/abc", nil},
		{"v1, freezer beside another controller", v1Only, nil, freezer, "/sys/fs/cgroup/freezer/ctr/abc", nil},
		{"v1 without a freezer", v1Only, nil, nil, "", ErrNoHierarchy},
		{"no freezer line", "7:pids:/ctr/abc\n", nil, freezer, "", ErrNoHierarchy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickCgroup(tc.proc, tc.v2, tc.frozen)
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("pickCgroup = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestList(t *testing.T) {
	var l List
	for _, tc := range []struct {
		add  string
		want []string
	}{
		{"/sys/fs/cgroup/a", []string{"/sys/fs/cgroup/a"}},
		{"/sys/fs/cgroup/b", []string{"/sys/fs/cgroup/a", "/sys/fs/cgroup/b"}},
		{"/sys/fs/cgroup/a", []string{"/sys/fs/cgroup/a", "/sys/fs/cgroup/b"}},
		{"", []string{"/sys/fs/cgroup/a", "/sys/fs/cgroup/b"}},
	} {
		l = l.Add(tc.add)
		if got := l.Paths(); !slices.Equal(got, tc.want) {
			t.Errorf("after Add(%q): %q, want %q", tc.add, got, tc.want)
		}
	}
	if got := List("").Paths(); got != nil {
		t.Errorf("empty list: %q", got)
	}
}

func TestChainPaths(t *testing.T) {
	needRoot(t)
	var paths [3]func(vresource.AID) string
	for i, dir := range []string{"/run/a", "/run/a/", "/run/b"} {
		var err error
		if paths[i], err = ChainPaths(dir); err != nil {
			t.Fatal(err)
		}
	}
	a1, a1Again, a2, b1 := paths[0](1), paths[1](1), paths[0](2), paths[2](1)
	if a1 != a1Again || a1 == a2 || a1 == b1 {
		t.Errorf("ChainPaths: /run/a 1 %s, /run/a/ 1 %s, /run/a 2 %s, /run/b 1 %s: want one path per state directory and AID", a1, a1Again, a2, b1)
	}
	pattern, err := ChainPattern("/run/a")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{a1: true, a2: true, b1: false} {
		if got, _ := filepath.Match(pattern, path); got != want {
			t.Errorf("ChainPattern(/run/a) %s matches %s: %v, want %v", pattern, path, got, want)
		}
	}
}

// hierarchies are those of this host that tests can make cgroups in.
func hierarchies(t *testing.T) []*hierarchy {
	v2, freezer := mounted()
	var out []*hierarchy
	for _, h := range []*hierarchy{v2, freezer} {
		if h != nil {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		t.Skip(ErrNoHierarchy)
	}
	return out
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func kind(h *hierarchy) string {
	if h.v2 {
		return "v2"
	}
	return "v1 freezer"
}

// killWays are the ways Kill has on a hierarchy: v2 has cgroup.kill, and
// the freezer for kernels before 5.14.
func killWays(h *hierarchy) map[string]func(*Cgroup) error {
	ways := map[string]func(*Cgroup) error{
		"freezing": func(c *Cgroup) error {
			members, err := c.Members()
			if err != nil {
				return err
			}
			return c.killByFreezing(members)
		},
	}
	if h.v2 {
		ways["cgroup.kill"] = (*Cgroup).Kill
	}
	return ways
}

// A program that forks at once is started in the cgroup with its child;
// Kill ends both, and a child cgroup's member, and no process outside;
// Remove leaves nothing.
func TestStartKillRemove(t *testing.T) {
	needRoot(t)
	for _, h := range hierarchies(t) {
		for way, kill := range killWays(h) {
			t.Run(kind(h)+" "+way, func(t *testing.T) { testStartKillRemove(t, h, kill) })
		}
	}
}

func testStartKillRemove(t *testing.T, h *hierarchy, kill func(*Cgroup) error) {
	path := filepath.Join(h.root, parentName, "test-"+strconv.Itoa(os.Getpid()))
	c, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Kill(); _ = c.Remove() })
	if c.v2 != h.v2 {
		t.Fatalf("Open(%s) says v2 = %v", path, c.v2)
	}

	outsider := exec.Command("sleep", "1000")
	if err := outsider.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = outsider.Process.Kill(); _ = outsider.Wait() })

	root := exec.Command("sh", "-c", "sleep 1000 & exec sleep 1001")
	if err := c.Start(root); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- root.Wait() }()

	var members []int
	waitFor(t, "two members", func() bool {
		members, err = c.Members()
		return err == nil && len(members) == 2
	})
	if !slices.Contains(members, root.Process.Pid) || slices.Contains(members, os.Getpid()) {
		t.Errorf("members %v: want the root %d and its child, not us (%d)", members, root.Process.Pid, os.Getpid())
	}

	// A member that moves to a cgroup below is still one.
	sub, err := Create(filepath.Join(path, "sub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := enter(sub.Path, root.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if members, _ := c.Members(); len(members) != 2 {
		t.Errorf("members %v after one moved below: want both", members)
	}

	if err := kill(c); err != nil {
		t.Fatal(err)
	}
	if members, err := c.Members(); err != nil || len(members) != 0 {
		t.Errorf("members after Kill: %v, %v", members, err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the root ended with %v, want killed", err)
	}
	if err := unix.Kill(outsider.Process.Pid, 0); err != nil {
		t.Errorf("a process outside the cgroup: %v, want it alive", err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after Remove: %v", path, err)
	}
	if err := c.Remove(); err != nil {
		t.Errorf("Remove again: %v, want no error", err)
	}
}

// Create takes an empty leftover, even one killed through, and refuses
// one with members.
func TestCreateOverLeftover(t *testing.T) {
	needRoot(t)
	for _, h := range hierarchies(t) {
		t.Run(kind(h), func(t *testing.T) {
			path := filepath.Join(h.root, parentName, "leftover-"+strconv.Itoa(os.Getpid()))
			c, err := Create(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Kill(); _ = c.Remove() })
			killed := exec.Command("sleep", "1000")
			if err := c.Start(killed); err != nil {
				t.Fatal(err)
			}
			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = killed.Wait()
			if c, err = Create(path); err != nil {
				t.Fatalf("Create over an empty one: %v", err)
			}
			// A process started in it runs as in a new one.
			if out, err := startAndWait(c, "echo", "fine"); err != nil || out != "fine\n" {
				t.Errorf("echo fine in the leftover: %q, %v", out, err)
			}
			sleeper := exec.Command("sleep", "1000")
			if err := c.Start(sleeper); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Kill(); _ = sleeper.Wait() })
			_, err = Create(path)
			if err == nil || !strings.Contains(err.Error(), path+" already there with processes ["+strconv.Itoa(sleeper.Process.Pid)+"]") {
				t.Errorf("Create over one with a member: %v", err)
			}
		})
	}
}

func TestKillRefusesRoots(t *testing.T) {
	needRoot(t)
	for _, h := range hierarchies(t) {
		c, err := Open(h.root)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Kill(); err == nil || !strings.Contains(err.Error(), "refusing a hierarchy's root") {
			t.Errorf("Kill(%s): %v, want a refusal", h.root, err)
		}
	}
}

func TestOpenMissing(t *testing.T) {
	needRoot(t)
	for _, h := range hierarchies(t) {
		if _, err := Open(filepath.Join(h.root, parentName, "no-such-cgroup")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open of a missing cgroup: %v, want fs.ErrNotExist", err)
		}
	}
	if _, err := Open(os.TempDir()); err == nil || !strings.Contains(err.Error(), "not in a cgroup file system") {
		t.Errorf("Open(%s): %v", os.TempDir(), err)
	}
}

func startAndWait(c *Cgroup, args ...string) (string, error) {
	var out strings.Builder
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = &out
	if err := c.Start(cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}

func waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A cgroup removed between the open of its file and the read answers
// ENODEV (seen: vrid rm racing the supervisor's teardown); it counts as
// gone, as one removed before the open.
func TestRemovedAsNotExist(t *testing.T) {
	for _, tt := range []struct {
		err      error
		notExist bool
	}{
		{nil, false},
		{&fs.PathError{Op: "read", Path: "cgroup.procs", Err: unix.ENODEV}, true},
		{&fs.PathError{Op: "open", Path: "cgroup.procs", Err: unix.ENOENT}, true},
		{&fs.PathError{Op: "read", Path: "cgroup.procs", Err: unix.EACCES}, false},
	} {
		_, err := removedAsNotExist(nil, tt.err)
		if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist || (tt.err == nil) != (err == nil) {
			t.Errorf("removedAsNotExist(%v) = %v, want fs.ErrNotExist %v", tt.err, err, tt.notExist)
		}
		if tt.err != nil && !errors.Is(err, tt.err.(*fs.PathError).Err) {
			t.Errorf("removedAsNotExist(%v) = %v, lost the cause", tt.err, err)
		}
	}
}

// Freeze and Thaw settle on a live cgroup; on one already removed, Thaw
// is no error (its members went with it) and Freeze says it is gone.
func TestFreezeThaw(t *testing.T) {
	needRoot(t)
	for _, h := range hierarchies(t) {
		t.Run(kind(h), func(t *testing.T) {
			c, err := Create(filepath.Join(h.root, parentName, "freeze-"+strconv.Itoa(os.Getpid())))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Kill(); _ = c.Remove() })
			sleeper := exec.Command("sleep", "1000")
			if err := c.Start(sleeper); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
			if err := c.Freeze(time.Second); err != nil {
				t.Fatalf("Freeze: %v", err)
			}
			state, want := filepath.Join(c.Path, "freezer.state"), "FROZEN"
			if h.v2 {
				state, want = filepath.Join(c.Path, "cgroup.events"), "frozen 1"
			}
			if data, err := os.ReadFile(state); err != nil || !strings.Contains(string(data), want) {
				t.Errorf("after Freeze %s reads %q (%v), want %q in it", state, data, err, want)
			}
			if err := c.Thaw(time.Second); err != nil {
				t.Fatalf("Thaw: %v", err)
			}
			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = sleeper.Wait()
			if err := c.Remove(); err != nil {
				t.Fatal(err)
			}
			if err := c.Thaw(time.Second); err != nil {
				t.Errorf("Thaw of a removed cgroup: %v, want none", err)
			}
			if err := c.Freeze(time.Second); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Freeze of a removed cgroup: %v, want fs.ErrNotExist", err)
			}
		})
	}
}
