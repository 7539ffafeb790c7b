package sysv

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// smallImage saves a set with a fixed key, a private segment of two pages
// and a queue with a fixed key and one message, removes them, and returns
// the image directory and the state.
func smallImage(t *testing.T, qbytes uint64) (string, *State) {
	t.Helper()
	sem := mustSemget(t, 0x10|oldKeyBits, 2, root(0o600))
	if err := semctl(sem, 0, setAll, unsafe.Pointer(&[]uint16{3, 4}[0])); err != nil {
		t.Fatal(err)
	}
	shm := mustShmget(t, ipcPrivate, 8192, root(0o600))
	msg := mustMsgget(t, 0x30|oldKeyBits, root(0o600))
	if err := fillMsg(msg, Queue{Perm: root(0o600), QBytes: qbytes, Messages: []Message{{Type: 1, Data: bytes.Repeat([]byte("q"), 5000)}}}); err != nil {
		t.Fatal(err)
	}
	objs := []Object{
		{vresource.Sem, 1, sem, 0x10, 0x10 | oldKeyBits},
		{vresource.Shm, 2, shm, 0, 0},
		{vresource.Msg, 3, msg, 0x30, 0x30 | oldKeyBits},
	}
	dir := t.TempDir()
	st, err := Save(dir, objs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		remove(t, o.Type, o.SysID)
	}
	return dir, st
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for name, b := range readDir(t, from) {
		mustWrite(t, filepath.Join(to, name), b)
	}
	return to
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLoadBadInput: every damage gives a clear error, and nothing is
// created.
func TestLoadBadInput(t *testing.T) {
	image, _ := smallImage(t, 16384)
	stateFile := func(dir string) string { return filepath.Join(dir, StateFile) }
	edit := func(f func(*State)) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			st, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			f(st)
			if err := st.write(); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		damage  func(*testing.T, string)
		wantErr error
		wantMsg string
	}{
		{"truncated state file", func(t *testing.T, dir string) {
			b := readDir(t, dir)[StateFile]
			mustWrite(t, stateFile(dir), b[:len(b)/2])
		}, ErrCorrupt, "unexpected end of JSON input"},
		{"empty state file", func(t *testing.T, dir string) { mustWrite(t, stateFile(dir), nil) }, ErrCorrupt, ""},
		{"not JSON", func(t *testing.T, dir string) { mustWrite(t, stateFile(dir), []byte("\x00garbage")) }, ErrCorrupt, ""},
		{"a field of the wrong type", func(t *testing.T, dir string) {
			b := readDir(t, dir)[StateFile]
			mustWrite(t, stateFile(dir), bytes.Replace(b, []byte(`"size": 8192`), []byte(`"size": "8192"`), 1))
		}, ErrCorrupt, "size"},
		{"newer format", func(t *testing.T, dir string) {
			b := readDir(t, dir)[StateFile]
			mustWrite(t, stateFile(dir), bytes.Replace(b, []byte(`"version": 1`), []byte(`"version": 2`), 1))
		}, ErrVersion, "restore with the vrid that took the snapshot"},
		{"no state file", func(t *testing.T, dir string) { os.Remove(stateFile(dir)) }, fs.ErrNotExist, ""},
		{"truncated segment", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, segmentFile(2)), 4096)
		}, ErrCorrupt, "has 4096 bytes, want 8192"},
		{"no segment file", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, segmentFile(2))) }, ErrCorrupt, "no such file"},
		{"segment file outside the image", edit(func(st *State) { st.Shms[0].File = "../sysv-shm-2.img" }), ErrCorrupt, "want \"sysv-shm-2.img\""},
		{"value over SEMVMX", edit(func(st *State) { st.Sems[0].Values[1] = 40000 }), ErrCorrupt, "value 40000"},
		{"empty set", edit(func(st *State) { st.Sems[0].Values = nil }), ErrCorrupt, "no semaphores"},
		{"mode beyond permissions", edit(func(st *State) { st.Msgs[0].Mode = 0o4600 }), ErrCorrupt, "mode"},
		{"message type 0", edit(func(st *State) { st.Msgs[0].Messages[0].Type = 0 }), ErrCorrupt, "type 0"},
		{"object saved twice", edit(func(st *State) { st.Msgs = append(st.Msgs, st.Msgs[0]) }), ErrCorrupt, "msg 3 saved twice"},
		{"undo on a set not saved", edit(func(st *State) {
			st.Undo = []ProcessUndo{{VirtPid: 5, Adjs: []SemAdj{{SemVirt: 9, Adj: 1}}}}
		}), ErrCorrupt, "sem 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, image)
			tt.damage(t, dir)
			before := countAll(t)
			st, err := Load(dir)
			if err == nil {
				_, err = Restore(st, func(v int32) (int32, error) { return v | newKeyBits, nil })
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err %v, want %v with %q", err, tt.wantErr, tt.wantMsg)
			}
			if after := countAll(t); after != before {
				t.Errorf("objects %v after a refused restore, %v before", after, before)
			}
		})
	}
}

// TestRestoreAllOrNothing: a failure at any object removes the objects
// created before it, and leaves the image as it was.
func TestRestoreAllOrNothing(t *testing.T) {
	image, _ := smallImage(t, 16384)
	errKeys := errors.New("no key for you")
	keyFor := func(v int32) (int32, error) { return v | newKeyBits, nil }
	tests := []struct {
		name    string
		prepare func(t *testing.T)
		keyFor  KeyFunc
		wantErr error
		wantMsg string
	}{
		{"queue key taken", func(t *testing.T) {
			id := mustMsgget(t, 0x30|newKeyBits, root(0o600))
			t.Cleanup(func() { remove(t, vresource.Msg, id) })
		}, keyFor, fs.ErrExist, "restore msg 3: create with key 0x3c000030"},
		{"no key", nil, func(v int32) (int32, error) {
			if v == 0x30 {
				return 0, errKeys
			}
			return keyFor(v)
		}, errKeys, "restore msg 3: key for 0x30"},
		{"no key mapping", nil, nil, nil, "restore sem 1: key 0x10, and no key mapping given"},
		{"segment over shmmax", func(t *testing.T) { setSysctl(t, "shmmax", "4096") }, keyFor, unix.EINVAL, "restore shm 2: create with key 0x0: invalid argument (size 8192: over kernel.shmmax here?"},
		{"message over msgmax", func(t *testing.T) { setSysctl(t, "msgmax", "4096") }, keyFor, unix.EINVAL, "raise /proc/sys/kernel/msgmax"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare(t)
			}
			files := readDir(t, image)
			before := countAll(t)
			st, err := Load(image)
			if err != nil {
				t.Fatal(err)
			}
			rebinds, err := Restore(st, tt.keyFor)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err %v, want %v with %q", err, tt.wantErr, tt.wantMsg)
			}
			if rebinds != nil {
				t.Errorf("rebinds %v from a failed restore", rebinds)
			}
			if after := countAll(t); after != before {
				t.Errorf("objects %v after a failed restore, %v before", after, before)
			}
			for name, b := range readDir(t, image) {
				if !bytes.Equal(files[name], b) {
					t.Errorf("%s changed", name)
				}
			}
		})
	}
}

func TestSaveRefuses(t *testing.T) {
	sem := mustSemget(t, 0x40|oldKeyBits, 1, root(0o600))
	defer remove(t, vresource.Sem, sem)
	shm := mustShmget(t, ipcPrivate, 4096, root(0o600))
	defer remove(t, vresource.Shm, shm)
	tests := []struct {
		name    string
		objects []Object
		undo    []ProcessUndo
		wantErr error
		wantMsg string
	}{
		{"key changed", []Object{{vresource.Shm, 1, shm, 0, 0}, {vresource.Sem, 2, sem, 0x41, 0x41 | oldKeyBits}}, nil,
			ErrChanged, "save sem 2 (system " /* the segment was saved first, and is removed again */},
		{"object gone", []Object{{vresource.Shm, 1, shm, 0, 0}, {vresource.Msg, 3, 999999, 0, 0}}, nil, unix.EINVAL, "save msg 3"},
		{"not a System V type", []Object{{vresource.PID, 1, 1, 0, 0}}, nil, nil, "not a System V object type"},
		{"undo that no semop rebuilds", []Object{{vresource.Shm, 1, shm, 0, 0}, {vresource.Sem, 2, sem, 0x40, 0x40 | oldKeyBits}},
			[]ProcessUndo{{VirtPid: 7, Adjs: []SemAdj{{SemVirt: 2, Adj: -1}}}}, ErrUndo, "sem 2 semaphore 0 holds 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := Save(dir, tt.objects, tt.undo)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err %v, want %v with %q", err, tt.wantErr, tt.wantMsg)
			}
			if left := readDir(t, dir); len(left) != 0 {
				t.Errorf("files left after a failed Save: %d", len(left))
			}
		})
	}
}

func TestObjectsOf(t *testing.T) {
	tb, err := vresource.CreateTables(filepath.Join(t.TempDir(), "tables"), 7, vresource.TableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	skey, _, err := tb.BindKey(0x77)
	if err != nil {
		t.Fatal(err)
	}
	sem := mustSemget(t, skey, 1, root(0o600))
	defer remove(t, vresource.Sem, sem)
	shm := mustShmget(t, ipcPrivate, 4096, root(0o600))
	defer remove(t, vresource.Shm, shm)
	stranger := mustMsgget(t, 0x4444, root(0o600)) // a key the chain never bound
	defer remove(t, vresource.Msg, stranger)
	for _, e := range []vresource.Entry{
		{Type: vresource.Sem, Virt: 3, Sys: sem},
		{Type: vresource.Shm, Virt: 4, Sys: shm},
		{Type: vresource.Msg, Virt: 5, Sys: stranger},
		{Type: vresource.Sem, Virt: 6, Sys: 999999}, // gone
	} {
		if err := tb.Insert(e.Type, e.Virt, e.Sys); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ObjectsOf(tb)
	if err != nil {
		t.Fatal(err)
	}
	want := []Object{
		{vresource.Sem, 3, sem, 0x77, skey},
		{vresource.Shm, 4, shm, 0, 0},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ObjectsOf = %+v, want %+v", got, want)
	}
}
