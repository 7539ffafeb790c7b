package chain

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// SelfFacts are the facts of a chain that starts as this process's
// children do, as under `vrid run`: its namespaces, its euid, and whether
// it holds CAP_SYS_ADMIN over its IPC namespace.  A chain of root without
// a user namespace could remove any object in that namespace, and so
// teardown may (rule 1 of ipc.go); its records still keep teardown from
// objects it did not make.
func SelfFacts() (vresource.Facts, error) {
	var f vresource.Facts
	var err error
	if f.IPCNS, err = vresource.NamespaceOf("/proc/self/ns/ipc"); err != nil {
		return f, err
	}
	if f.PIDNS, err = vresource.NamespaceOf("/proc/self/ns/pid"); err != nil {
		return f, err
	}
	f.UIDs = []uint32{uint32(os.Geteuid())}
	if f.IPCAdmin, err = selfIPCAdmin(); err != nil {
		return f, err
	}
	return f, nil
}

// selfIPCAdmin: CAP_SYS_ADMIN in the effective set, in the user namespace
// that owns our IPC namespace (it could be an ancestor of ours, over
// which we hold nothing).
func selfIPCAdmin() (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, fmt.Errorf("capget: %w", err)
	}
	if data[unix.CAP_SYS_ADMIN/32].Effective&(1<<(unix.CAP_SYS_ADMIN%32)) == 0 {
		return false, nil
	}
	ipc, err := os.Open("/proc/self/ns/ipc")
	if err != nil {
		return false, err
	}
	defer ipc.Close()
	owner, err := unix.IoctlRetInt(int(ipc.Fd()), unix.NS_GET_USERNS)
	if errors.Is(err, unix.EPERM) {
		return false, nil // owned outside our user namespace
	}
	if err != nil {
		return false, fmt.Errorf("owner of the IPC namespace: %w", err)
	}
	defer unix.Close(owner)
	ownerNS, err := vresource.NamespaceOfFD(owner)
	if err != nil {
		return false, err
	}
	ours, err := vresource.NamespaceOf("/proc/self/ns/user")
	return err == nil && ownerNS == ours, err
}
