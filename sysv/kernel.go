package sysv

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// Flags and commands of <linux/ipc.h>, <linux/sem.h>, <linux/shm.h> and
// <linux/msg.h> that x/sys/unix does not define.
const (
	semUndo    = 0x1000  // SEM_UNDO
	getAll     = 13      // GETALL
	setAll     = 17      // SETALL
	shmLock    = 11      // SHM_LOCK
	shmDest    = 0o1000  // SHM_DEST, in shm_perm.mode
	shmLocked  = 0o2000  // SHM_LOCKED, in shm_perm.mode
	msgCopy    = 0o40000 // MSG_COPY: msgrcv copies the message at an index
	semValMax  = 32767   // SEMVMX
	permBits   = 0o777
	ipcPrivate = unix.IPC_PRIVATE
)

// semid64DS (sem_<arch>.go) and msqid64DS are the kernel's semid64_ds
// and msqid64_ds on 64-bit Linux; shmid64_ds is unix.SysvShmDesc.
type msqid64DS struct {
	Perm   unix.SysvIpcPerm
	Stime  int64
	Rtime  int64
	Ctime  int64
	Cbytes uint64
	Qnum   uint64
	Qbytes uint64
	Lspid  int32
	Lrpid  int32
	_      [2]uint64
}

func errnoErr(e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// The System V calls, without libc.  64-bit kernels have only the 64-bit
// layouts, and refuse the IPC_64 flag libc adds on 32-bit ones.

func semget(key int32, nsems, flags int) (int32, error) {
	id, _, e := unix.Syscall(unix.SYS_SEMGET, uintptr(key), uintptr(nsems), uintptr(flags))
	return int32(id), errnoErr(e)
}

func semctl(id int32, num, cmd int, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), uintptr(num), uintptr(cmd), uintptr(arg), 0, 0)
	return errnoErr(e)
}

func semop(id int32, sops []Sembuf) error {
	if len(sops) == 0 {
		return nil
	}
	_, _, e := unix.Syscall(unix.SYS_SEMOP, uintptr(id), uintptr(unsafe.Pointer(&sops[0])), uintptr(len(sops)))
	return errnoErr(e)
}

func msgget(key int32, flags int) (int32, error) {
	id, _, e := unix.Syscall(unix.SYS_MSGGET, uintptr(key), uintptr(flags), 0)
	return int32(id), errnoErr(e)
}

func msgctl(id int32, cmd int, ds *msqid64DS) error {
	_, _, e := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), uintptr(cmd), uintptr(unsafe.Pointer(ds)))
	return errnoErr(e)
}

// msgbuf is struct msgbuf: the type, then the text.
const mtypeSize = 8

func msgsnd(id int32, buf []byte, flags int) error {
	_, _, e := unix.Syscall6(unix.SYS_MSGSND, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)-mtypeSize), uintptr(flags), 0, 0)
	return errnoErr(e)
}

func msgrcv(id int32, buf []byte, typ int64, flags int) (int, error) {
	n, _, e := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)-mtypeSize), uintptr(typ), uintptr(flags), 0)
	return int(n), errnoErr(e)
}

func shmget(key int32, size uint64, flags int) (int32, error) {
	id, _, e := unix.Syscall(unix.SYS_SHMGET, uintptr(key), uintptr(size), uintptr(flags))
	return int32(id), errnoErr(e)
}

func shmctl(id int32, cmd int, ds *unix.SysvShmDesc) error {
	_, _, e := unix.Syscall(unix.SYS_SHMCTL, uintptr(id), uintptr(cmd), uintptr(unsafe.Pointer(ds)))
	return errnoErr(e)
}

// asCreator runs create with cuid and cgid as the thread's effective ids,
// so that the kernel records them as the object's creator: no IPC_SET
// can change cuid and cgid afterwards.  Credentials are per thread in
// Linux, so it runs on a locked thread of its own, and a thread that
// cannot get its ids back is never returned to the scheduler: it ends
// with its goroutine.
func asCreator(cuid, cgid uint32, create func() error) error {
	if uint32(unix.Geteuid()) == cuid && uint32(unix.Getegid()) == cgid {
		return create()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		euid, egid := unix.Geteuid(), unix.Getegid()
		if err := setEffective(unix.SYS_SETRESGID, int(cgid)); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("set effective gid %d: %w", cgid, err)
			return
		}
		if err := setEffective(unix.SYS_SETRESUID, int(cuid)); err != nil {
			done <- fmt.Errorf("set effective uid %d: %w", cuid, errBack(err, egid))
			return
		}
		err := create()
		// The uid first: going back to euid 0 gives back the capabilities
		// that setting the gid back needs.
		if e1 := setEffective(unix.SYS_SETRESUID, euid); e1 != nil {
			done <- fmt.Errorf("get back effective uid %d: %w", euid, e1)
			return
		}
		if e2 := setEffective(unix.SYS_SETRESGID, egid); e2 != nil {
			done <- fmt.Errorf("get back effective gid %d: %w", egid, e2)
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// errBack sets the effective gid back after a failed uid change, and
// keeps the thread locked (so that it dies) if even that fails.
func errBack(err error, egid int) error {
	if e := setEffective(unix.SYS_SETRESGID, egid); e != nil {
		return fmt.Errorf("%w (and get back effective gid %d: %v)", err, egid, e)
	}
	runtime.UnlockOSThread()
	return err
}

// setEffective changes this thread's effective id alone: the raw system
// call, not the Go runtime's, which changes every thread.
func setEffective(call uintptr, id int) error {
	_, _, e := unix.RawSyscall(call, ^uintptr(0), uintptr(id), ^uintptr(0))
	return errnoErr(e)
}

// Stat is what IPC_STAT says of an object that tells it from another:
// its key, owner, creator, and for some types its creator's pid, change
// time and size.
type Stat struct {
	Key   int32
	UID   uint32 // owner
	CUID  uint32 // creator
	CGID  uint32
	CPID  int32  // shm
	CTime int64  // shm, msg
	Size  uint64 // sem: nsems; shm: bytes
}

// StatObject asks the kernel about the object of type rt and system id
// sys, in the caller's IPC namespace.
func StatObject(rt vresource.ResourceType, sys int32) (Stat, error) {
	statOf := func(p *unix.SysvIpcPerm, cpid int32, ctime int64, size uint64) Stat {
		return Stat{Key: p.Key, UID: p.Uid, CUID: p.Cuid, CGID: p.Cgid, CPID: cpid, CTime: ctime, Size: size}
	}
	switch rt {
	case vresource.Sem:
		var ds semid64DS
		err := semctl(sys, 0, unix.IPC_STAT, unsafe.Pointer(&ds))
		return statOf(&ds.Perm, 0, 0, ds.Nsems), err
	case vresource.Shm:
		var ds unix.SysvShmDesc
		err := shmctl(sys, unix.IPC_STAT, &ds)
		return statOf(&ds.Perm, ds.Cpid, ds.Ctime, ds.Segsz), err
	case vresource.Msg:
		var ds msqid64DS
		err := msgctl(sys, unix.IPC_STAT, &ds)
		return statOf(&ds.Perm, 0, ds.Ctime, 0), err
	}
	return Stat{}, fmt.Errorf("%s is no System V type", rt)
}

// RemoveObject removes the object of type rt and system id sys (IPC_RMID).
func RemoveObject(rt vresource.ResourceType, sys int32) error {
	switch rt {
	case vresource.Sem:
		return semctl(sys, 0, unix.IPC_RMID, nil)
	case vresource.Shm:
		return shmctl(sys, unix.IPC_RMID, nil)
	case vresource.Msg:
		return msgctl(sys, unix.IPC_RMID, nil)
	}
	return fmt.Errorf("%s is no System V type", rt)
}
