package vresource

// The table engine is the preload layer's own C code (preload/table.c,
// lock.c, record.c, tablecheck.c), compiled into this package as well,
// as runc compiles nsexec into its Go binary: the engine_*.c files here
// include those sources, and engine_host.c gives them what the layer
// would (type ops, logging) and guards every call.  Go and the chain's
// processes so run one engine on one file.

/*
#cgo CFLAGS: -I${SRCDIR}/preload -std=gnu11 -D_GNU_SOURCE -fvisibility=hidden
#cgo CFLAGS: -Wall -Wextra -Werror -Wshadow
#include <stdlib.h>
#include "engine_host.h"

// The Makefile's hash of the preload sources this package was built from
// (0: built without it).  Go's build cache does not watch files included
// from another directory; a hash in CGO_CFLAGS makes it rebuild.
#ifndef VRID_ENGINE_SOURCES
#define VRID_ENGINE_SOURCES 0
#endif
static unsigned long long engine_sources(void) { return VRID_ENGINE_SOURCES; }
*/
import "C"

import (
	"syscall"
	"time"
	"unsafe"
)

// engine is a handle of the C engine (struct vrid_host) on one mapping
// or private copy.  The handle lives in C memory: the engine keeps
// pointers into the table, which Go memory may not hold.
type engine struct {
	h *C.struct_vrid_host
}

// errnoOf turns an engine result, 0 or a negative errno, into an errno.
func errnoOf(ret C.int) syscall.Errno {
	if ret >= 0 {
		return 0
	}
	return syscall.Errno(-ret)
}

// openEngine checks the size bytes at mem and attaches a new handle to
// them.  lockFD is the description of the file at path that the handle
// locks through, and owns from then on, even on failure; -1 for a
// private copy.  The header is copied into hdr.  A file that fails the
// checks gives EINVAL and says why.
func openEngine(mem unsafe.Pointer, size uint64, path string, lockFD int, private bool, wait time.Duration,
	hdr *header) (engine, string, syscall.Errno) {
	var flags C.uint = C.VRID_TABLE_BOUNDED
	if private {
		flags |= C.VRID_TABLE_PRIVATE
	}
	e := engine{h: (*C.struct_vrid_host)(C.calloc(1, C.sizeof_struct_vrid_host))}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var why [256]C.char
	ret := C.vrid_host_open(e.h, mem, C.uint64_t(size), cpath, C.int(lockFD), flags, C.int64_t(wait.Nanoseconds()),
		(*C.struct_vrid_header)(unsafe.Pointer(hdr)), &why[0], C.size_t(len(why)))
	if ret < 0 {
		if lockFD >= 0 && e.h.t.lock_fd < 0 {
			syscall.Close(lockFD)
		}
		e.close()
		return engine{}, C.GoString(&why[0]), errnoOf(ret)
	}
	return e, "", 0
}

// close gives back the lock description and the handle; the caller
// unmaps or frees the table.
func (e engine) close() {
	C.vrid_host_close(e.h)
	C.free(unsafe.Pointer(e.h))
}

// faultOffset is where in the table the last EFAULT faulted.
func (e engine) faultOffset() uint64 {
	return uint64(e.h.fault_off)
}

func (e engine) slots(rt ResourceType) uint32 {
	return uint32(e.h.t.idx[rt].mask) + 1
}

func (e engine) lookup(rt ResourceType, id int32, bySys bool) (int32, syscall.Errno) {
	var out C.int32_t
	ret := C.vrid_host_lookup(e.h, C.uint32_t(rt), C.int32_t(id), cBool(bySys), &out)
	return int32(out), errnoOf(ret)
}

func (e engine) bind(rt ResourceType, sys int32) (int32, syscall.Errno) {
	var virt C.int32_t
	ret := C.vrid_host_bind(e.h, C.uint32_t(rt), C.int32_t(sys), &virt)
	return int32(virt), errnoOf(ret)
}

func (e engine) bindKey(vkey int32, attempt uint32) (skey int32, created bool, errno syscall.Errno) {
	var out C.int32_t
	var made C.int
	ret := C.vrid_host_bind_key(e.h, C.int32_t(vkey), C.uint32_t(attempt), &out, &made)
	return int32(out), made != 0, errnoOf(ret)
}

func (e engine) insert(rt ResourceType, virt, sys int32) syscall.Errno {
	return errnoOf(C.vrid_host_insert(e.h, C.uint32_t(rt), C.int32_t(virt), C.int32_t(sys)))
}

func (e engine) rebind(rt ResourceType, virt, newSys int32) syscall.Errno {
	return errnoOf(C.vrid_host_rebind(e.h, C.uint32_t(rt), C.int32_t(virt), C.int32_t(newSys)))
}

func (e engine) remove(rt ResourceType, id int32, bySys bool) syscall.Errno {
	return errnoOf(C.vrid_host_remove(e.h, C.uint32_t(rt), C.int32_t(id), cBool(bySys)))
}

// list copies the entries of rt in slot order.
func (e engine) list(rt ResourceType) ([]Entry, syscall.Errno) {
	pairs := make([]int32, 2*e.slots(rt))
	var n C.uint32_t
	ret := C.vrid_host_list(e.h, C.uint32_t(rt), (*C.int32_t)(unsafe.Pointer(&pairs[0])), C.uint32_t(len(pairs)/2), &n)
	if ret < 0 {
		return nil, errnoOf(ret)
	}
	out := make([]Entry, 0, min(int(n), len(pairs)/2))
	for i := range cap(out) {
		out = append(out, Entry{Type: rt, Virt: pairs[2*i], Sys: pairs[2*i+1]})
	}
	return out, 0
}

// records copies the live IPC records, at most one per slot of the
// sem, shm and msg indexes.
func (e engine) records() ([]ipcRecord, syscall.Errno) {
	out := make([]ipcRecord, recordCapacity([NumResourceTypes]uint32{Sem: e.slots(Sem), Shm: e.slots(Shm), Msg: e.slots(Msg)}))
	var n C.uint32_t
	ret := C.vrid_host_records(e.h, (*C.struct_vrid_ipc_record)(unsafe.Pointer(&out[0])), C.uint32_t(len(out)), &n)
	if ret < 0 {
		return nil, errnoOf(ret)
	}
	return out[:n], 0
}

// semAdjs copies the SEM_UNDO adjustments recorded, and says how many
// found no room.
func (e engine) semAdjs() ([]semAdj, uint32, syscall.Errno) {
	out := make([]semAdj, max(int(e.h.t.semadj_cap), 1))
	var n, lost C.uint32_t
	ret := C.vrid_host_semadj(e.h, (*C.struct_vrid_semadj)(unsafe.Pointer(&out[0])), C.uint32_t(len(out)), &n, &lost)
	if ret < 0 {
		return nil, 0, errnoOf(ret)
	}
	return out[:n], uint32(lost), 0
}

func (e engine) pruneSemAdjs() syscall.Errno {
	return errnoOf(C.vrid_host_semadj_prune(e.h))
}

// addRecords records recs under the writer lock; added may fall short
// when the records section is full.
func (e engine) addRecords(recs []ipcRecord) (added int, errno syscall.Errno) {
	if len(recs) == 0 {
		return 0, 0
	}
	var n C.uint32_t
	ret := C.vrid_host_add_records(e.h, (*C.struct_vrid_ipc_record)(unsafe.Pointer(&recs[0])), C.uint32_t(len(recs)), &n)
	return int(n), errnoOf(ret)
}

// desc copies the descriptor of rt as the file has it now.
func (e engine) desc(rt ResourceType) (tableDesc, syscall.Errno) {
	var d tableDesc
	ret := C.vrid_host_desc(e.h, C.uint32_t(rt), (*C.struct_vrid_table_desc)(unsafe.Pointer(&d)))
	return d, errnoOf(ret)
}

func (e engine) generation() (uint32, syscall.Errno) {
	var g C.uint32_t
	ret := C.vrid_host_generation(e.h, &g)
	return uint32(g), errnoOf(ret)
}

func (e engine) bumpGeneration() (uint32, syscall.Errno) {
	var g C.uint32_t
	ret := C.vrid_host_bump_generation(e.h, &g)
	return uint32(g), errnoOf(ret)
}

// settle takes the writer lock and lets it go, which repairs what a
// writer that died left; in a private copy, the copy itself.
func (e engine) settle() syscall.Errno {
	return errnoOf(C.vrid_host_settle(e.h))
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// cAlloc allocates size zeroed bytes of C memory, for a private copy.
func cAlloc(size int) []byte {
	return unsafe.Slice((*byte)(C.calloc(1, C.size_t(size))), size)
}

func cFree(mem []byte) {
	C.free(unsafe.Pointer(&mem[0]))
}

// engineSources is the hash of the preload sources the engine was built
// from, as the Makefile computes it (0 outside make).
func engineSources() uint64 { return uint64(C.engine_sources()) }
