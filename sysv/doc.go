// Package sysv owns the state of a chain's System V objects across a
// snapshot: what is saved of each semaphore set, shared memory segment and
// message queue, under the chain's virtual ids and keys, and how each is
// recreated with whatever id the kernel gives, so that only the table's
// system side changes.
//
// Save writes the state into an image directory: sysv.json (the
// description, format Version) and one sparse file per segment with its
// contents.  Load reads and checks it all before anything is created;
// Restore creates the objects afresh under the keys the caller maps the
// virtual keys to, and returns the rebinds for the tables.  Restore is all
// or nothing.
//
// What the kernel sets and no system call restores is not kept: the
// times (sem_otime, sem_ctime, shm_atime/dtime/ctime, msg_stime/rtime/
// ctime), the last pids (sempid, shm_cpid/lpid, msg_lspid/lrpid), the
// sequence numbers inside ipc_perm and shm_nattch, which counts attachments
// the processes make again.  The creator's uid and gid (cuid, cgid) are
// kept: Restore creates each object with them as its effective ids.
//
// SEM_UNDO adjustments live in the kernel per process, and no interface
// shows them; the preload layer records them (docs/sysv-state.md).  Save
// takes them from the caller; Restore brings each semaphore back at its
// saved value, and each process gives its undo list its adjustments
// again with operation pairs that leave the value as it is (UndoPlan,
// ApplyUndo, and the layer's own in C).
package sysv
