package hooks

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/vresource"
)

// containerFacts are what the kernel and the runtime's spec say of a
// container's processes, read by Created, when the process at
// state.Pid is still runc's own init and its pid can't have been reused.
// Ids are the host's: a user namespace maps the spec's user through
// uidMappings.  A uid the mappings do not cover gives no uid: teardown
// then removes nothing that rule 1 would need it for.
func containerFacts(state *specs.State, spec *specs.Spec) (vresource.Facts, error) {
	var f vresource.Facts
	var err error
	proc := fmt.Sprintf("/proc/%d/ns/", state.Pid)
	if f.IPCNS, err = vresource.NamespaceOf(proc + "ipc"); err != nil {
		return f, err
	}
	if f.PIDNS, err = vresource.NamespaceOf(proc + "pid"); err != nil {
		return f, err
	}
	if f.Cgroup, err = cgroup.OfProcess(state.Pid); err != nil {
		return f, err
	}
	userNS := spec.Linux != nil && slices.ContainsFunc(spec.Linux.Namespaces,
		func(ns specs.LinuxNamespace) bool { return ns.Type == specs.UserNamespace })
	if userNS {
		f.UIDMap, f.GIDMap = idRanges(spec.Linux.UIDMappings), idRanges(spec.Linux.GIDMappings)
	}
	if spec.Process == nil {
		return f, nil
	}
	if uid, ok := vresource.MapID(f.UIDMap, spec.Process.User.UID); ok && (!userNS || len(f.UIDMap) > 0) {
		f.UIDs = []uint32{uid}
	}
	f.IPCAdmin = !userNS && holdsSysAdmin(spec.Process)
	return f, nil
}

func idRanges(maps []specs.LinuxIDMapping) []vresource.IDRange {
	var out []vresource.IDRange
	for _, m := range maps {
		out = append(out, vresource.IDRange{Inside: m.ContainerID, Host: m.HostID, Size: m.Size})
	}
	return out
}

// holdsSysAdmin: the process starts with CAP_SYS_ADMIN, or can raise it
// (permitted); root also gets the bounding set back at its next execve.
func holdsSysAdmin(p *specs.Process) bool {
	c := p.Capabilities
	if c == nil {
		return false
	}
	const sysAdmin = "CAP_SYS_ADMIN"
	return slices.Contains(c.Effective, sysAdmin) || slices.Contains(c.Permitted, sysAdmin) ||
		p.User.UID == 0 && slices.Contains(c.Bounding, sysAdmin)
}

// joinFacts adds the facts of one more container to its chain's: the
// owner's namespaces stay, and the uids and cgroups add up.
func joinFacts(c *vresource.Facts, more vresource.Facts) {
	c.Cgroup = string(cgroup.List(c.Cgroup).Add(more.Cgroup))
	if c.IPCNS.IsZero() {
		c.IPCNS, c.PIDNS = more.IPCNS, more.PIDNS
		c.UIDMap, c.GIDMap = more.UIDMap, more.GIDMap
		c.IPCAdmin = more.IPCAdmin
	}
	for _, uid := range more.UIDs {
		if !slices.Contains(c.UIDs, uid) {
			c.UIDs = append(c.UIDs, uid)
		}
	}
}
