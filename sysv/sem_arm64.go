package sysv

import "golang.org/x/sys/unix"

// semid64DS is struct semid64_ds of asm-generic on 64-bit.
type semid64DS struct {
	Perm  unix.SysvIpcPerm
	Otime int64
	Ctime int64
	Nsems uint64
	_     [2]uint64
}
