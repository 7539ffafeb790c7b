package sysv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// KeyFunc gives the private system key of a virtual key (never called for
// IPC_PRIVATE, which stays private).  A nil KeyFunc restores private
// objects only.
type KeyFunc func(virtKey int32) (sysKey int32, err error)

// Restore creates every object of st afresh in the caller's IPC
// namespace, under the system keys keyFor gives, with whatever ids the
// kernel hands out: owner, creator, mode, values, contents, messages and
// queue size as saved.  Semaphores that have undo adjustments get their
// saved values too: the processes' UndoPlan operations leave them as they
// are.  It returns one Rebind per object.  All or nothing: on an error it
// removes every object it created.
func Restore(st *State, keyFor KeyFunc) (rebinds []Rebind, err error) {
	if st.dir == "" {
		return nil, errors.New("restore sysv state: the state has no image directory (get it from Load or Save)")
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("restore sysv state: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, removeAll(rebinds))
			rebinds = nil
		}
	}()
	for _, s := range st.Sems {
		rebinds, err = restoreOne(rebinds, vresource.Sem, s.Ident, s.Perm, keyFor,
			func(key int32) (int32, error) { return semget(key, len(s.Values), createFlags) },
			func(sys int32) error { return fillSem(sys, s) })
		if err != nil {
			return rebinds, err
		}
	}
	for _, s := range st.Shms {
		rebinds, err = restoreOne(rebinds, vresource.Shm, s.Ident, s.Perm, keyFor,
			func(key int32) (int32, error) { return createShm(key, s.Size) },
			func(sys int32) error { return st.fillShm(sys, s) })
		if err != nil {
			return rebinds, err
		}
		rebinds[len(rebinds)-1].MarkRemoved = s.Removed
	}
	for _, q := range st.Msgs {
		rebinds, err = restoreOne(rebinds, vresource.Msg, q.Ident, q.Perm, keyFor,
			func(key int32) (int32, error) { return msgget(key, createFlags) },
			func(sys int32) error { return fillMsg(sys, q) })
		if err != nil {
			return rebinds, err
		}
	}
	return rebinds, nil
}

// createFlags: a new object or an error, owner-only until IPC_SET gives it
// its saved mode.
const createFlags = unix.IPC_CREAT | unix.IPC_EXCL | 0o600

// restoreOne creates one object as its creator and fills it, and appends
// its Rebind as soon as it exists, so that a failure removes it too.
func restoreOne(rebinds []Rebind, rt vresource.ResourceType, id Ident, perm Perm, keyFor KeyFunc,
	create func(key int32) (int32, error), fill func(sys int32) error) ([]Rebind, error) {
	key := int32(ipcPrivate)
	if id.VirtKey != ipcPrivate {
		if keyFor == nil {
			return rebinds, fmt.Errorf("restore %s %d: key %#x, and no key mapping given", rt, id.VirtID, uint32(id.VirtKey))
		}
		var err error
		if key, err = keyFor(id.VirtKey); err != nil {
			return rebinds, fmt.Errorf("restore %s %d: key for %#x: %w", rt, id.VirtID, uint32(id.VirtKey), err)
		}
	}
	var sys int32
	err := asCreator(perm.CUID, perm.CGID, func() (err error) {
		sys, err = create(key)
		return err
	})
	if err != nil {
		return rebinds, fmt.Errorf("restore %s %d: create with key %#x: %w", rt, id.VirtID, uint32(key), err)
	}
	rebinds = append(rebinds, Rebind{Type: rt, Virt: id.VirtID, OldSys: id.SysID, NewSys: sys})
	if err := fill(sys); err != nil {
		return rebinds, fmt.Errorf("restore %s %d (now %d): %w", rt, id.VirtID, sys, err)
	}
	return rebinds, nil
}

func createShm(key int32, size uint64) (int32, error) {
	id, err := shmget(key, size, createFlags)
	if errors.Is(err, unix.EINVAL) {
		return id, fmt.Errorf("%w (size %d: over kernel.shmmax here? raise /proc/sys/kernel/shmmax)", err, size)
	}
	return id, err
}

func setPerm(p *unix.SysvIpcPerm, perm Perm) {
	p.Uid, p.Gid, p.Mode = perm.UID, perm.GID, perm.Mode
}

func fillSem(sys int32, s SemSet) error {
	values := slices.Clone(s.Values)
	if err := semctl(sys, 0, setAll, unsafe.Pointer(unsafe.SliceData(values))); err != nil {
		return fmt.Errorf("SETALL: %w", err)
	}
	var ds semid64DS
	setPerm(&ds.Perm, s.Perm)
	if err := semctl(sys, 0, unix.IPC_SET, unsafe.Pointer(&ds)); err != nil {
		return fmt.Errorf("IPC_SET: %w", err)
	}
	return nil
}

func (st *State) fillShm(sys int32, s Segment) error {
	img, err := os.Open(filepath.Join(st.dir, s.File))
	if err != nil {
		return err
	}
	defer img.Close()
	dst, err := openSegment(sys, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := copyData(dst, img, int64(s.Size)); err != nil {
		return fmt.Errorf("copy contents from %s: %w", s.File, err)
	}
	var ds unix.SysvShmDesc
	setPerm(&ds.Perm, s.Perm)
	if err := shmctl(sys, unix.IPC_SET, &ds); err != nil {
		return fmt.Errorf("IPC_SET: %w", err)
	}
	if s.Locked {
		if err := shmctl(sys, shmLock, nil); err != nil {
			return fmt.Errorf("SHM_LOCK: %w", err)
		}
	}
	return nil
}

func fillMsg(sys int32, q Queue) error {
	// A queue may hold more than its qbytes, if IPC_SET lowered it after
	// the messages came; the kernel bounds both the bytes and the number
	// of messages by qbytes while sending.
	var bytes uint64
	for _, m := range q.Messages {
		bytes += uint64(len(m.Data))
	}
	room := max(uint64(len(q.Messages)), bytes, q.QBytes)
	if err := setQueue(sys, q.Perm, room); err != nil {
		return err
	}
	for i, m := range q.Messages {
		buf := make([]byte, mtypeSize+len(m.Data))
		binary.NativeEndian.PutUint64(buf, uint64(m.Type))
		copy(buf[mtypeSize:], m.Data)
		err := msgsnd(sys, buf, unix.IPC_NOWAIT)
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("send message %d (%d bytes): %w (is kernel.msgmax smaller here? raise /proc/sys/kernel/msgmax)", i, len(m.Data), err)
		}
		if err != nil {
			return fmt.Errorf("send message %d (%d bytes): %w", i, len(m.Data), err)
		}
	}
	if room != q.QBytes {
		return setQueue(sys, q.Perm, q.QBytes)
	}
	return nil
}

func setQueue(sys int32, perm Perm, qbytes uint64) error {
	ds := msqid64DS{Qbytes: qbytes}
	setPerm(&ds.Perm, perm)
	err := msgctl(sys, unix.IPC_SET, &ds)
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("IPC_SET (qbytes %d): %w (over kernel.msgmnb without CAP_SYS_RESOURCE? raise /proc/sys/kernel/msgmnb)", qbytes, err)
	}
	if err != nil {
		return fmt.Errorf("IPC_SET (qbytes %d): %w", qbytes, err)
	}
	return nil
}

// Remove removes the objects Restore made, for a caller whose later step
// failed.
func Remove(rebinds []Rebind) error {
	return removeAll(rebinds)
}

// removeAll removes the objects a failed Restore created.
func removeAll(rebinds []Rebind) error {
	var errs []error
	for _, r := range rebinds {
		if err := RemoveObject(r.Type, r.NewSys); err != nil {
			errs = append(errs, fmt.Errorf("remove %s %d, created for virtual %d: %w", r.Type, r.NewSys, r.Virt, err))
		}
	}
	return errors.Join(errs...)
}
