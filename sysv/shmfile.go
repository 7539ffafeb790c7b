package sysv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openSegment opens the shmem file behind segment id through
// /proc/self/map_files, for pread and pwrite at offsets and SEEK_DATA over
// its pages, and detaches again: the descriptor keeps the file, and a
// segment of any size is copied through a small buffer, its untouched
// pages never faulted in.  Opening map_files needs CAP_SYS_ADMIN.
func openSegment(id int32, write bool) (*os.File, error) {
	flag, mode := unix.SHM_RDONLY, os.O_RDONLY
	if write {
		flag, mode = 0, os.O_RDWR
	}
	mem, err := unix.SysvShmAttach(int(id), 0, flag)
	if err != nil {
		return nil, fmt.Errorf("attach: %w", err)
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	page := uintptr(os.Getpagesize())
	end := (start + uintptr(len(mem)) + page - 1) &^ (page - 1)
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/map_files/%x-%x", start, end), mode, 0)
	if derr := unix.SysvShmDetach(mem); derr != nil && err == nil {
		f.Close()
		err = fmt.Errorf("detach: %w", derr)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

const copyChunk = 1 << 20

// copyData copies the first size bytes of src to dst at the same offsets,
// data regions only (SEEK_DATA, SEEK_HOLE), and skips chunks that are all
// zero: dst is a fresh file or segment, zero where nothing is written.
// Saving a segment leaves holes in its image, and restoring it leaves the
// new segment's pages untouched where the old one had none.  src is read
// through a shared read-only mapping, so each byte is copied once, and
// only its data regions are ever faulted in.
func copyData(dst, src *os.File, size int64) error {
	fd := int(src.Fd())
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map: %w", err)
	}
	defer unix.Munmap(mem)
	zero := make([]byte, copyChunk)
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // no data after off
		}
		if err != nil {
			return fmt.Errorf("seek data from %d: %w", off, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole from %d: %w", data, err)
		}
		hole = min(hole, size)
		for p := data; p < hole; {
			chunk := mem[p:min(p+copyChunk, hole)]
			if !bytes.Equal(chunk, zero[:len(chunk)]) {
				if _, err := dst.WriteAt(chunk, p); err != nil {
					return fmt.Errorf("write at %d: %w", p, err)
				}
			}
			p += int64(len(chunk))
		}
		off = hole
	}
	return nil
}
