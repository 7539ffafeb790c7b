package hooks

import (
	"os"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vrid/vrid/vresource"
)

// TestContainerFacts: the host uids a container runs as, and whether it
// may remove any IPC object, from its spec.
func TestContainerFacts(t *testing.T) {
	userNS := []specs.LinuxNamespace{{Type: specs.UserNamespace}, {Type: specs.IPCNamespace}}
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	ranges := []vresource.IDRange{{Inside: 0, Host: 100000, Size: 65536}}
	admin := &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}, Permitted: []string{"CAP_SYS_ADMIN"}}
	boundOnly := &specs.LinuxCapabilities{Bounding: []string{"CAP_SYS_ADMIN"}}
	tests := []struct {
		name     string
		uid      uint32
		caps     *specs.LinuxCapabilities
		ns       []specs.LinuxNamespace
		uidMap   []specs.LinuxIDMapping
		uids     []uint32
		ipcAdmin bool
		idRanges []vresource.IDRange
	}{
		{"uid 1000", 1000, nil, nil, nil, []uint32{1000}, false, nil},
		{"root without CAP_SYS_ADMIN", 0, &specs.LinuxCapabilities{}, nil, nil, []uint32{0}, false, nil},
		{"root with it", 0, admin, nil, nil, []uint32{0}, true, nil},
		{"root with it in the bounding set", 0, boundOnly, nil, nil, []uint32{0}, true, nil},
		{"uid 1000 with it in the bounding set only", 1000, boundOnly, nil, nil, []uint32{1000}, false, nil},
		{"uid 1000 with it permitted", 1000, admin, nil, nil, []uint32{1000}, true, nil},
		{"user namespace: root maps to 100000", 0, admin, userNS, maps, []uint32{100000}, false, ranges},
		{"user namespace: uid 1000 maps to 101000", 1000, nil, userNS, maps, []uint32{101000}, false, ranges},
		{"user namespace: unmapped uid", 70000, nil, userNS, maps, nil, false, ranges},
		{"user namespace joined, no mappings", 0, nil, userNS, nil, nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &specs.Spec{
				Process: &specs.Process{User: specs.User{UID: tt.uid}, Capabilities: tt.caps},
				Linux:   &specs.Linux{Namespaces: tt.ns, UIDMappings: tt.uidMap, GIDMappings: tt.uidMap},
			}
			f, err := containerFacts(&specs.State{Pid: os.Getpid()}, spec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f.UIDs, tt.uids) || f.IPCAdmin != tt.ipcAdmin ||
				!reflect.DeepEqual(f.UIDMap, tt.idRanges) || !reflect.DeepEqual(f.GIDMap, tt.idRanges) {
				t.Errorf("uids %v, IPC admin %v, maps %v %v; want %v, %v, %v", f.UIDs, f.IPCAdmin, f.UIDMap, f.GIDMap,
					tt.uids, tt.ipcAdmin, tt.idRanges)
			}
		})
	}
}

// TestJoinFacts: a joiner adds its uids and its cgroup; the owner's
// namespace stays.
func TestJoinFacts(t *testing.T) {
	owner := vresource.Facts{IPCNS: vresource.NamespaceID{Dev: 4, Ino: 1}, UIDs: []uint32{1000}, Cgroup: "/sys/fs/cgroup/a"}
	joiner := vresource.Facts{IPCNS: vresource.NamespaceID{Dev: 4, Ino: 2}, UIDs: []uint32{1000, 2000}, IPCAdmin: true,
		Cgroup: "/sys/fs/cgroup/b"}
	var f vresource.Facts
	joinFacts(&f, owner)
	joinFacts(&f, joiner)
	joinFacts(&f, joiner) // Created run again
	want := vresource.Facts{IPCNS: owner.IPCNS, UIDs: []uint32{1000, 2000}, Cgroup: "/sys/fs/cgroup/a\n/sys/fs/cgroup/b"}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("facts %+v, want %+v", f, want)
	}
}
