package sysv

import "golang.org/x/sys/unix"

// semid64DS is struct semid64_ds of x86_64, which pads each time.
type semid64DS struct {
	Perm  unix.SysvIpcPerm
	Otime int64
	_     uint64
	Ctime int64
	_     uint64
	Nsems uint64
	_     [2]uint64
}
