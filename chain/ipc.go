package chain

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// ipcPerm is the head of the kernel's semid64_ds, shmid64_ds and
// msqid64_ds on 64-bit Linux: the key comes first in each.
type ipcPerm struct {
	Key int32
	_   [44]byte
}

// The *ctl system calls, without libc.  64-bit kernels have only the
// 64-bit layouts, and refuse the IPC_64 flag libc adds on 32-bit ones.
var ctlCall = map[vresource.ResourceType]uintptr{
	vresource.Sem: unix.SYS_SEMCTL,
	vresource.Shm: unix.SYS_SHMCTL,
	vresource.Msg: unix.SYS_MSGCTL,
}

func ipcCtl(rt vresource.ResourceType, sysID int32, cmd int, buf unsafe.Pointer) error {
	var err unix.Errno
	if rt == vresource.Sem {
		_, _, err = unix.Syscall6(ctlCall[rt], uintptr(sysID), 0, uintptr(cmd), uintptr(buf), 0, 0)
	} else {
		_, _, err = unix.Syscall(ctlCall[rt], uintptr(sysID), uintptr(cmd), uintptr(buf))
	}
	if err != 0 {
		return err
	}
	return nil
}

// RemoveIPC removes the System V objects the chain's tables name.  An id
// whose object carries a key the chain never used belongs to someone else
// by now, and is left alone.
func RemoveIPC(t *vresource.Tables) error {
	ours := map[int32]bool{0: true} // IPC_PRIVATE
	for _, e := range t.Entries(vresource.IPCKey) {
		ours[e.Sys] = true
	}
	var errs []error
	for _, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg} {
		for _, e := range t.Entries(rt) {
			var buf [512]byte // larger than any *id64_ds
			if err := ipcCtl(rt, e.Sys, unix.IPC_STAT, unsafe.Pointer(&buf[0])); err != nil {
				continue // already gone
			}
			perm := (*ipcPerm)(unsafe.Pointer(&buf[0]))
			if !ours[perm.Key] {
				continue
			}
			if err := ipcCtl(rt, e.Sys, unix.IPC_RMID, nil); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EIDRM) {
				errs = append(errs, fmt.Errorf("remove %s %d (virtual %d): %w", rt, e.Sys, e.Virt, err))
			}
		}
	}
	return errors.Join(errs...)
}
