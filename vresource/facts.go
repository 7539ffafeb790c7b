package vresource

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Facts are what host-side vrid knows of a chain from the kernel or from
// its own configuration, recorded in the registry when the chain is set
// up: the only ground on which root acts for a chain.
type Facts struct {
	// Cgroup is the chain's cgroup, whose members are the chain's
	// processes (package cgroup says how it is written).
	Cgroup string `json:"cgroup,omitempty"`
	// IPCNS and PIDNS are the namespaces the chain's processes live in.
	IPCNS NamespaceID `json:"ipc_ns,omitzero"`
	PIDNS NamespaceID `json:"pid_ns,omitzero"`
	// UIDs are the host uids the chain's processes run as: an IPC object
	// owned or created by none of them is not the chain's to remove.
	UIDs []uint32 `json:"uids,omitempty"`
	// IPCAdmin: the chain's processes hold CAP_SYS_ADMIN in the user
	// namespace that owns IPCNS, so they could remove any object there
	// themselves (root without a user namespace, for one).
	IPCAdmin bool `json:"ipc_admin,omitempty"`
	// UIDMap and GIDMap are the chain's user namespace mappings, empty
	// without one: the layer's IPC records name ids as the chain sees
	// them, and these turn them into host ids.
	UIDMap []IDRange `json:"uid_map,omitempty"`
	GIDMap []IDRange `json:"gid_map,omitempty"`
	// Joinable: containers other than the owner may join the chain
	// (annotation io.vrid.joinable=true).  Sandbox is the CRI pod
	// sandbox id, whose containers may join without it.
	Joinable bool   `json:"joinable,omitempty"`
	Sandbox  string `json:"sandbox,omitempty"`
}

// IDRange maps Size ids from Inside, as the chain sees them, to Host on.
type IDRange struct {
	Inside uint32 `json:"inside"`
	Host   uint32 `json:"host"`
	Size   uint32 `json:"size"`
}

// MapID turns an id the chain sees into a host id, through ranges; no
// ranges is no user namespace, where ids are the host's.  An id no range
// covers has no host id.
func MapID(ranges []IDRange, id uint32) (uint32, bool) {
	if len(ranges) == 0 {
		return id, true
	}
	for _, r := range ranges {
		if id >= r.Inside && id-r.Inside < r.Size {
			return r.Host + (id - r.Inside), true
		}
	}
	return 0, false
}

// NamespaceID names a namespace as the kernel does: the device and inode
// of its nsfs file.  The zero value is "unknown".
type NamespaceID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// IsZero reports an unknown namespace.
func (n NamespaceID) IsZero() bool { return n == NamespaceID{} }

func (n NamespaceID) String() string {
	if n.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%d:%d", n.Dev, n.Ino)
}

// NamespaceOf names the namespace behind a file such as
// /proc/<pid>/ns/ipc or an open namespace descriptor's path.
func NamespaceOf(path string) (NamespaceID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return NamespaceID{}, fmt.Errorf("namespace %s: %w", path, &os.PathError{Op: "stat", Path: path, Err: err})
	}
	return NamespaceID{Dev: st.Dev, Ino: st.Ino}, nil
}

// NamespaceOfFD names the namespace behind an open nsfs descriptor.
func NamespaceOfFD(fd int) (NamespaceID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return NamespaceID{}, fmt.Errorf("namespace of fd %d: %w", fd, err)
	}
	return NamespaceID{Dev: st.Dev, Ino: st.Ino}, nil
}

// InnermostID reads a per-namespace id of process pid from the last field
// of an NS line of /proc/<pid>/status (field "NSpid", "NSpgid" or
// "NSsid"): the id as the process's own pid namespace numbers it, where 0
// means the leader lives in an ancestor namespace.
func InnermostID(pid int, field string) (int, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", path, field, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}
