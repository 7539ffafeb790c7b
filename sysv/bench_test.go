package sysv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// benchSegment makes a segment of size bytes, every page touched.
func benchSegment(b *testing.B, size int) Object {
	b.Helper()
	id := mustShmget(b, ipcPrivate, size, root(0o600))
	b.Cleanup(func() { remove(b, vresource.Shm, id) })
	mem, err := unix.SysvShmAttach(int(id), 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	pattern(mem)
	unix.SysvShmDetach(mem)
	return Object{Type: vresource.Shm, VirtID: 1, SysID: id}
}

// benchChain makes what 1+8 processes sharing System V objects own: per
// process a set of 4 semaphores, one of them held with SEM_UNDO, a
// touched 1 MiB segment and a queue of 16 messages of 256 bytes.
func benchChain(b *testing.B) ([]Object, []ProcessUndo) {
	b.Helper()
	var objs []Object
	var undo []ProcessUndo
	for p := range int32(9) {
		sem := mustSemget(b, ipcPrivate, 4, root(0o600))
		b.Cleanup(func() { remove(b, vresource.Sem, sem) })
		if err := semctl(sem, 0, setAll, unsafe.Pointer(&[]uint16{0, 1, 2, 3}[0])); err != nil {
			b.Fatal(err)
		}
		seg := benchSegment(b, MiB)
		msg := mustMsgget(b, ipcPrivate, root(0o600))
		b.Cleanup(func() { remove(b, vresource.Msg, msg) })
		msgs := make([]Message, 16)
		for i := range msgs {
			msgs[i] = Message{Type: int64(i + 1), Data: bytes.Repeat([]byte{byte(i)}, 256)}
		}
		if err := fillMsg(msg, Queue{Perm: root(0o600), QBytes: 16384, Messages: msgs}); err != nil {
			b.Fatal(err)
		}
		seg.VirtID = 100 + p
		objs = append(objs,
			Object{Type: vresource.Sem, VirtID: 100 + p, SysID: sem},
			seg,
			Object{Type: vresource.Msg, VirtID: 100 + p, SysID: msg})
		undo = append(undo, ProcessUndo{VirtPid: 1000 + p, Adjs: []SemAdj{{SemVirt: 100 + p, Num: 0, Adj: 1}}})
	}
	return objs, undo
}

func benchSaveRestore(b *testing.B, objs []Object, undo []ProcessUndo, bytes int64) {
	dir := b.TempDir()
	b.Run("save", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			if _, err := Save(dir, objs, undo); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(imageBytes(b, dir))/MiB, "image-MiB")
	})
	st, err := Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			rebinds, err := Restore(st, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := removeAll(rebinds); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

func BenchmarkSaveRestore(b *testing.B) {
	for _, size := range []int{100 * MiB, 1024 * MiB} {
		b.Run(fmt.Sprintf("shm-%dMiB", size/MiB), func(b *testing.B) {
			benchSaveRestore(b, []Object{benchSegment(b, size)}, nil, int64(size))
		})
	}
	b.Run("chain-1+8", func(b *testing.B) {
		objs, undo := benchChain(b)
		benchSaveRestore(b, objs, undo, 0)
	})
}

// imageBytes is the disk space of an image: holes take none.
func imageBytes(b *testing.B, dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		var fst unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, e.Name()), &fst); err != nil {
			b.Fatal(err)
		}
		n += fst.Blocks * 512
	}
	return n
}
