package sysv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vrid/vrid/vresource"
)

// Version is the format of sysv.json.  A reader refuses any other.
const Version = 1

// StateFile is the description's name in the image directory.
const StateFile = "sysv.json"

var (
	// ErrCorrupt: the saved state is damaged or inconsistent.
	ErrCorrupt = errors.New("sysv state is corrupt")
	// ErrVersion: the saved state has a format this vrid does not read.
	ErrVersion = errors.New("sysv state has an unknown format version")
	// ErrChanged: an object is not the one the tables name any more.
	ErrChanged = errors.New("object changed under the snapshot")
	// ErrUndo: the SEM_UNDO adjustments can't be re-applied from any value
	// a semaphore can hold.
	ErrUndo = errors.New("semaphore undo adjustments can't be recreated")
)

// Object is one System V object of a chain, as its tables name it.  Keys
// are IPC_PRIVATE (0) in both spaces for a private object.
type Object struct {
	Type    vresource.ResourceType // Sem, Shm or Msg
	VirtID  int32
	SysID   int32
	VirtKey int32
	SysKey  int32
}

// State is the saved state of a chain's objects, under virtual ids and
// keys.  It is what sysv.json holds; the contents of segments are in
// files beside it.
type State struct {
	Version int           `json:"version"`
	Sems    []SemSet      `json:"sems"`
	Shms    []Segment     `json:"shms"`
	Msgs    []Queue       `json:"msgs"`
	Undo    []ProcessUndo `json:"undo"`
	dir     string        // where the segment files are
}

// Ident names an object.  SysID is the id it had when saved, for the
// record; Restore gets a new one.
type Ident struct {
	VirtID  int32 `json:"virt_id"`
	SysID   int32 `json:"sys_id"`
	VirtKey int32 `json:"virt_key"`
}

// Perm is what IPC_SET restores (UID, GID, Mode) and what the creator's
// effective ids give (CUID, CGID).  Mode has the permission bits only.
type Perm struct {
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	CUID uint32 `json:"cuid"`
	CGID uint32 `json:"cgid"`
	Mode uint32 `json:"mode"`
}

// SemSet is a semaphore set: its nsems is len(Values).
type SemSet struct {
	Ident
	Perm
	Values []uint16 `json:"values"`
}

// Segment is a shared memory segment.  File, in the image directory,
// holds its Size bytes, with holes where they are zero.
type Segment struct {
	Ident
	Perm
	Size   uint64 `json:"size"`
	Locked bool   `json:"locked,omitempty"` // SHM_LOCK
	// Removed: IPC_RMID'd while still attached (SHM_DEST).  Restore
	// leaves it in place for the attachments to come back, and says so
	// in its Rebind.
	Removed bool   `json:"removed,omitempty"`
	File    string `json:"file"`
}

// Queue is a message queue with its messages, oldest first.
type Queue struct {
	Ident
	Perm
	QBytes   uint64    `json:"qbytes"`
	Messages []Message `json:"messages"`
}

// Message is one queued message.
type Message struct {
	Type int64  `json:"type"`
	Data []byte `json:"data"`
}

// Rebind is one object recreated: the caller rebinds Virt to NewSys in the
// tables of Type.
type Rebind struct {
	Type   vresource.ResourceType
	Virt   int32
	OldSys int32
	NewSys int32
	// MarkRemoved: a segment to IPC_RMID once the processes have attached
	// it again.
	MarkRemoved bool
}

// Files lists the files of the state in its directory, sysv.json last, for
// the caller's manifest.
func (st *State) Files() []string {
	var out []string
	for _, s := range st.Shms {
		out = append(out, s.File)
	}
	return append(out, StateFile)
}

func segmentFile(virt int32) string { return fmt.Sprintf("sysv-shm-%d.img", virt) }

// Load reads the state Save wrote into dir and checks all of it, the
// sizes of the segment files included, so that Restore starts only on
// input it can finish.
func Load(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("load sysv state: %w", err)
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("load sysv state %s: %w: %v", filepath.Join(dir, StateFile), ErrCorrupt, err)
	}
	if head.Version != Version {
		return nil, fmt.Errorf("load sysv state %s: %w: %d, this vrid reads %d (restore with the vrid that took the snapshot)",
			filepath.Join(dir, StateFile), ErrVersion, head.Version, Version)
	}
	st := &State{dir: dir}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("load sysv state %s: %w: %v", filepath.Join(dir, StateFile), ErrCorrupt, err)
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("load sysv state %s: %w", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// check is every rule Restore relies on.
func (st *State) check() error {
	if err := checkIdents(vresource.Sem, len(st.Sems), func(i int) (Ident, Perm) { return st.Sems[i].Ident, st.Sems[i].Perm }); err != nil {
		return err
	}
	if err := checkIdents(vresource.Shm, len(st.Shms), func(i int) (Ident, Perm) { return st.Shms[i].Ident, st.Shms[i].Perm }); err != nil {
		return err
	}
	if err := checkIdents(vresource.Msg, len(st.Msgs), func(i int) (Ident, Perm) { return st.Msgs[i].Ident, st.Msgs[i].Perm }); err != nil {
		return err
	}
	for _, s := range st.Sems {
		if len(s.Values) == 0 {
			return fmt.Errorf("%w: sem %d has no semaphores", ErrCorrupt, s.VirtID)
		}
		for n, v := range s.Values {
			if v > semValMax {
				return fmt.Errorf("%w: sem %d semaphore %d has value %d, over %d", ErrCorrupt, s.VirtID, n, v, semValMax)
			}
		}
	}
	for _, s := range st.Shms {
		if err := st.checkSegment(s); err != nil {
			return err
		}
	}
	for _, q := range st.Msgs {
		for i, m := range q.Messages {
			if m.Type <= 0 {
				return fmt.Errorf("%w: msg %d message %d has type %d, not positive", ErrCorrupt, q.VirtID, i, m.Type)
			}
		}
	}
	_, err := st.semBases()
	return err
}

func checkIdents(rt vresource.ResourceType, n int, at func(int) (Ident, Perm)) error {
	seen := make(map[int32]bool, n)
	for i := range n {
		id, perm := at(i)
		if seen[id.VirtID] {
			return fmt.Errorf("%w: %s %d saved twice", ErrCorrupt, rt, id.VirtID)
		}
		seen[id.VirtID] = true
		if perm.Mode&^permBits != 0 {
			return fmt.Errorf("%w: %s %d has mode %#o, more than permission bits", ErrCorrupt, rt, id.VirtID, perm.Mode)
		}
	}
	return nil
}

func (st *State) checkSegment(s Segment) error {
	if s.Size == 0 {
		return fmt.Errorf("%w: shm %d has size 0", ErrCorrupt, s.VirtID)
	}
	if s.File != segmentFile(s.VirtID) {
		return fmt.Errorf("%w: shm %d has file %q, want %q", ErrCorrupt, s.VirtID, s.File, segmentFile(s.VirtID))
	}
	fi, err := os.Stat(filepath.Join(st.dir, s.File))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: shm %d: %v", ErrCorrupt, s.VirtID, err)
	}
	if err != nil {
		return fmt.Errorf("shm %d: %w", s.VirtID, err)
	}
	if !fi.Mode().IsRegular() || uint64(fi.Size()) != s.Size {
		return fmt.Errorf("%w: shm %d: %s has %d bytes, want %d", ErrCorrupt, s.VirtID, s.File, fi.Size(), s.Size)
	}
	return nil
}

// writeFile writes name in dir through a temporary file and a rename.
func writeFile(dir, name string, fill func(*os.File) error) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// write writes sysv.json; the same state gives the same bytes.
func (st *State) write() error {
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return err
	}
	return writeFile(st.dir, StateFile, func(f *os.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	})
}
