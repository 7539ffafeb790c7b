// Package cgroup owns a chain's cgroup: the kernel's record of which
// processes belong to the chain, which the chain cannot forge the way it
// can write its own table.  For a chain of `vrid run` it makes the cgroup,
// starts the chain's root inside it with no window in which the root
// could fork outside, lists its members, kills them all and removes it.
// For a container it reads the cgroup runc made, to list its members.
//
// A cgroup is named by the absolute path of its directory, and that is
// the string vresource.Facts.Cgroup records, for example
// /sys/fs/cgroup/unified/vrid/3f2a9c0e5b7d1a42-7; a chain that several
// containers share records one path a line, its owner's first (List).
// The directory lies in
// the cgroup v2 hierarchy (mounted at /sys/fs/cgroup, or at
// /sys/fs/cgroup/unified on a hybrid host) or, where there is none, in the
// cgroup v1 freezer hierarchy (/sys/fs/cgroup/freezer).  Which of the two
// it is comes from the file system (statfs), never from the string.
//
// vrid run puts a chain's cgroup at <hierarchy>/vrid/<state>-<aid>, where
// <state> is a hash of the state directory: AIDs count from 1 in every
// state directory, and two of them must not share cgroups.
package cgroup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// Where the hierarchies vrid uses are mounted: pure v2, hybrid (v2 beside
// v1) and the v1 freezer.
const (
	v2Root       = "/sys/fs/cgroup"
	v2HybridRoot = "/sys/fs/cgroup/unified"
	freezerRoot  = "/sys/fs/cgroup/freezer"
)

// parentName is the cgroup, in each hierarchy, under which vrid run makes
// its chains' cgroups.
const parentName = "vrid"

// ErrNoHierarchy means neither a cgroup v2 nor a v1 freezer hierarchy is
// mounted where vrid looks.
var ErrNoHierarchy = errors.New("no cgroup v2 hierarchy at " + v2Root + " or " + v2HybridRoot +
	", and no v1 freezer hierarchy at " + freezerRoot + ": mount one")

// hierarchy is a mounted cgroup hierarchy.
type hierarchy struct {
	root string
	v2   bool
}

// mounted finds the hierarchies once per process: a few statfs calls.
var mounted = sync.OnceValues(func() (v2, freezer *hierarchy) {
	for _, root := range []string{v2Root, v2HybridRoot} {
		if fsMagic(root) == unix.CGROUP2_SUPER_MAGIC {
			v2 = &hierarchy{root: root, v2: true}
			break
		}
	}
	if fsMagic(freezerRoot) == unix.CGROUP_SUPER_MAGIC {
		freezer = &hierarchy{root: freezerRoot}
	}
	return v2, freezer
})

func fsMagic(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	return int64(st.Type)
}

// preferred is the hierarchy vrid run makes cgroups in: v2, whose
// CLONE_INTO_CGROUP and cgroup.kill need no tricks, else the v1 freezer.
func preferred() (*hierarchy, error) {
	v2, freezer := mounted()
	switch {
	case v2 != nil:
		return v2, nil
	case freezer != nil:
		return freezer, nil
	}
	return nil, ErrNoHierarchy
}

// stateID tells the chains of one state directory from another's.
func stateID(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return hex.EncodeToString(sum[:8])
}

// ChainPaths names the cgroups vrid run makes for the chains of
// stateDir, one per AID.
func ChainPaths(stateDir string) (func(vresource.AID) string, error) {
	h, err := preferred()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(h.root, parentName, stateID(stateDir)) + "-"
	return func(aid vresource.AID) string { return prefix + aid.String() }, nil
}

// ChainPattern is a filepath.Glob pattern that matches the cgroups of
// every chain of stateDir that ChainPaths names.
func ChainPattern(stateDir string) (string, error) {
	h, err := preferred()
	if err != nil {
		return "", err
	}
	return filepath.Join(h.root, parentName, stateID(stateDir)+"-*"), nil
}

// Cgroup is one cgroup directory.
type Cgroup struct {
	Path string
	v2   bool
}

// Open finds the cgroup at path, which must exist (else an error that
// matches fs.ErrNotExist) and lie in a cgroup file system.
func Open(path string) (*Cgroup, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("cgroup %q: not an absolute path", path)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, &fs.PathError{Op: "statfs", Path: path, Err: err})
	}
	switch int64(st.Type) {
	case unix.CGROUP2_SUPER_MAGIC:
		return &Cgroup{Path: path, v2: true}, nil
	case unix.CGROUP_SUPER_MAGIC:
		return &Cgroup{Path: path}, nil
	}
	return nil, fmt.Errorf("cgroup %s: not in a cgroup file system", path)
}

// Create makes the cgroup at path, and its parent if need be.  One that
// is already there with no members (a crash can leave one behind) is
// made anew: Linux 6.18 kills a process cloned into a cgroup that was
// once killed through cgroup.kill.
func Create(path string) (*Cgroup, error) {
	err := mkdir(path)
	if errors.Is(err, fs.ErrExist) {
		err = recreate(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	c, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("create %w", err)
	}
	return c, nil
}

func mkdir(path string) error {
	err := os.Mkdir(path, 0o755)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.Mkdir(path, 0o755)
		}
	}
	return err
}

// recreate removes the empty leftover at path and makes it again.
func recreate(path string) error {
	old, err := Open(path)
	if err != nil {
		return err
	}
	members, err := old.Members()
	if err != nil {
		return err
	}
	if len(members) > 0 {
		return fmt.Errorf("%s already there with processes %v", path, members)
	}
	if err := old.Remove(); err != nil {
		return err
	}
	return mkdir(path)
}

// OfProcess is the cgroup pid is in, as Open takes it: its v2 cgroup, or
// where that is not the one its runtime made for it (a hybrid host on
// which the runtime used only v1), its freezer cgroup.
func OfProcess(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	v2, freezer := mounted()
	path, err := pickCgroup(string(data), v2, freezer)
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	return path, nil
}

// pickCgroup chooses from the lines of /proc/<pid>/cgroup, given the
// hierarchies mounted (nil: none).
func pickCgroup(procCgroup string, v2, freezer *hierarchy) (string, error) {
	v2Path, freezerPath := parseProcCgroup(procCgroup)
	switch {
	case v2 != nil && v2Path != "" && (v2.root == v2Root || freezer == nil || v2Path == freezerPath):
		return filepath.Join(v2.root, v2Path), nil
	case freezer != nil && freezerPath != "":
		return filepath.Join(freezer.root, freezerPath), nil
	}
	return "", ErrNoHierarchy
}

// parseProcCgroup reads the v2 line ("0::/path") and the freezer line
// ("N:freezer:/path", or with other controllers beside it) of
// /proc/<pid>/cgroup.
func parseProcCgroup(procCgroup string) (v2Path, freezerPath string) {
	for _, line := range strings.Split(procCgroup, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		switch {
		case f[0] == "0" && f[1] == "":
			v2Path = f[2]
		case containsController(f[1], "freezer"):
			freezerPath = f[2]
		}
	}
	return v2Path, freezerPath
}

func containsController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// Members lists the processes in the cgroup and in the cgroups below it.
func (c *Cgroup) Members() ([]int, error) {
	var pids []int
	err := c.walk(func(dir string) error {
		data, err := removedAsNotExist(os.ReadFile(filepath.Join(dir, "cgroup.procs")))
		if err != nil {
			return err
		}
		for _, field := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(field)
			if err != nil {
				return fmt.Errorf("%s/cgroup.procs: %q", dir, field)
			}
			pids = append(pids, pid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("members of cgroup %s: %w", c.Path, err)
	}
	return pids, nil
}

// removedAsNotExist makes the answer of a cgroup removed between the
// open of one of its files and the read or write (ENODEV) the answer of
// one removed before the open: fs.ErrNotExist.
func removedAsNotExist(data []byte, err error) ([]byte, error) {
	if errors.Is(err, unix.ENODEV) {
		err = fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	return data, err
}

// walk calls fn on the cgroup, then on every cgroup below it.  One below
// that goes meanwhile is skipped.
func (c *Cgroup) walk(fn func(dir string) error) error {
	var visit func(dir string, top bool) error
	visit = func(dir string, top bool) error {
		err := fn(dir)
		var entries []os.DirEntry
		if err == nil {
			entries, err = os.ReadDir(dir)
		}
		if err != nil {
			if !top && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, e := range entries {
			if e.IsDir() {
				if err := visit(filepath.Join(dir, e.Name()), false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(c.Path, true)
}

// List holds the cgroups of a chain, as Facts.Cgroup records them: one
// path a line.
type List string

// Paths are the cgroups of the list.
func (l List) Paths() []string {
	var out []string
	for _, p := range strings.Split(string(l), "\n") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Add adds path to the list, once.
func (l List) Add(path string) List {
	if path == "" || slices.Contains(l.Paths(), path) {
		return l
	}
	if l == "" {
		return List(path)
	}
	return l + "\n" + List(path)
}
