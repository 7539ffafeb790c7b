package sysv

import (
	"cmp"
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

// Save reads every object and writes its state into dir: one file per
// segment, then sysv.json, each through a temporary file and a rename, and
// returns the state.  The chain must be frozen.  Reading takes nothing
// away: messages are copied (MSG_COPY), segments attached read-only.  The
// same objects give the same bytes.  Save does not fsync: the caller syncs
// the image directory once, before its manifest.  On an error, the files
// Save wrote are removed.
func Save(dir string, objects []Object, undo []ProcessUndo) (_ *State, err error) {
	st := &State{Version: Version, Sems: []SemSet{}, Shms: []Segment{}, Msgs: []Queue{}, Undo: []ProcessUndo{}, dir: dir}
	defer func() {
		if err != nil {
			for _, s := range st.Shms {
				os.Remove(filepath.Join(dir, s.File))
			}
		}
	}()
	objects = slices.Clone(objects)
	slices.SortFunc(objects, func(a, b Object) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.VirtID, b.VirtID))
	})
	for _, o := range objects {
		id := Ident{VirtID: o.VirtID, SysID: o.SysID, VirtKey: o.VirtKey}
		switch o.Type {
		case vresource.Sem:
			err = st.saveSem(o, id)
		case vresource.Shm:
			err = st.saveShm(o, id)
		case vresource.Msg:
			err = st.saveMsg(o, id)
		default:
			err = fmt.Errorf("not a System V object type")
		}
		if err != nil {
			return nil, fmt.Errorf("save %s %d (system %d): %w", o.Type, o.VirtID, o.SysID, err)
		}
	}
	for _, p := range undo {
		p.Adjs = slices.Clone(p.Adjs)
		slices.SortFunc(p.Adjs, func(a, b SemAdj) int {
			return cmp.Or(cmp.Compare(a.SemVirt, b.SemVirt), cmp.Compare(a.Num, b.Num))
		})
		st.Undo = append(st.Undo, p)
	}
	slices.SortFunc(st.Undo, func(a, b ProcessUndo) int { return cmp.Compare(a.VirtPid, b.VirtPid) })
	if err = st.check(); err != nil {
		return nil, fmt.Errorf("save sysv state: %w", err)
	}
	if err = st.write(); err != nil {
		return nil, fmt.Errorf("save sysv state: %w", err)
	}
	return st, nil
}

func permOf(p unix.SysvIpcPerm) Perm {
	return Perm{UID: p.Uid, GID: p.Gid, CUID: p.Cuid, CGID: p.Cgid, Mode: p.Mode & permBits}
}

// checkKey makes sure the id still holds the chain's object: an id whose
// object has another key was removed and reused.
func checkKey(o Object, key int32) error {
	if key != o.SysKey {
		return fmt.Errorf("%w: key %#x, the tables say %#x", ErrChanged, uint32(key), uint32(o.SysKey))
	}
	return nil
}

func (st *State) saveSem(o Object, id Ident) error {
	var ds semid64DS
	if err := semctl(o.SysID, 0, unix.IPC_STAT, unsafe.Pointer(&ds)); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if err := checkKey(o, ds.Perm.Key); err != nil {
		return err
	}
	values := make([]uint16, ds.Nsems)
	if err := semctl(o.SysID, 0, getAll, unsafe.Pointer(unsafe.SliceData(values))); err != nil {
		return fmt.Errorf("GETALL: %w", err)
	}
	st.Sems = append(st.Sems, SemSet{Ident: id, Perm: permOf(ds.Perm), Values: values})
	return nil
}

func (st *State) saveMsg(o Object, id Ident) error {
	var ds msqid64DS
	if err := msgctl(o.SysID, unix.IPC_STAT, &ds); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if err := checkKey(o, ds.Perm.Key); err != nil {
		return err
	}
	q := Queue{Ident: id, Perm: permOf(ds.Perm), QBytes: ds.Qbytes, Messages: []Message{}}
	// No message is longer than all the queue's bytes together.
	buf := make([]byte, mtypeSize+ds.Cbytes)
	for i := range ds.Qnum {
		n, err := msgrcv(o.SysID, buf, int64(i), unix.IPC_NOWAIT|msgCopy)
		if errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("copy message %d: %w (MSG_COPY needs a kernel built with CONFIG_CHECKPOINT_RESTORE)", i, err)
		}
		if err != nil {
			return fmt.Errorf("copy message %d of %d: %w", i, ds.Qnum, err)
		}
		q.Messages = append(q.Messages, Message{
			Type: int64(binary.NativeEndian.Uint64(buf)),
			Data: slices.Clone(buf[mtypeSize : mtypeSize+n]),
		})
	}
	st.Msgs = append(st.Msgs, q)
	return nil
}

func (st *State) saveShm(o Object, id Ident) error {
	var ds unix.SysvShmDesc
	if err := shmctl(o.SysID, unix.IPC_STAT, &ds); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	removed := ds.Perm.Mode&shmDest != 0
	if !removed { // IPC_RMID makes the key IPC_PRIVATE
		if err := checkKey(o, ds.Perm.Key); err != nil {
			return err
		}
	}
	seg := Segment{
		Ident:   id,
		Perm:    permOf(ds.Perm),
		Size:    ds.Segsz,
		Locked:  ds.Perm.Mode&shmLocked != 0,
		Removed: removed,
		File:    segmentFile(o.VirtID),
	}
	src, err := openSegment(o.SysID, false)
	if err != nil {
		return err
	}
	defer src.Close()
	err = writeFile(st.dir, seg.File, func(f *os.File) error {
		if err := copyData(f, src, int64(seg.Size)); err != nil {
			return fmt.Errorf("copy contents: %w", err)
		}
		return f.Truncate(int64(seg.Size))
	})
	if err != nil {
		return err
	}
	st.Shms = append(st.Shms, seg)
	return nil
}
