package vresource

import (
	"sync/atomic"
	"unsafe"
)

// IPCRecord is what identified a System V object when a process of the
// chain created it, as the preload layer wrote it (struct
// vrid_ipc_record): ids are as the creator's user and pid namespaces
// showed them.  The chain can write anything there; teardown uses a
// record to tell an object from a later one that reuses its id, never to
// decide whether the chain may remove it.
type IPCRecord struct {
	Type  ResourceType // Sem, Shm or Msg
	Sys   int32
	Key   int32 // the system key; IPC_PRIVATE is 0
	CUID  uint32
	CGID  uint32
	CPID  int32  // shm only, else 0
	CTime int64  // shm and msg: *_ctime in seconds; sem: 0
	Size  uint64 // sem: nsems; shm: bytes; msg: 0
}

// RecordKey names the record of one object.
type RecordKey struct {
	Type ResourceType
	Sys  int32
}

// recordsAt views the head of the records section s of mem, which
// checkSections has found inside it.
func recordsAt(mem []byte, s section) *ipcRecordsHead {
	return (*ipcRecordsHead)(unsafe.Pointer(&mem[s.Offset]))
}

// recordsSection finds the IPC records section of a checked header.
func recordsSection(h *header) (section, bool) {
	for i := range min(h.NSections, SectionsMax) {
		if h.Sections[i].Kind == SectionIPCRecords {
			return h.Sections[i], true
		}
	}
	return section{}, false
}

// IPCRecords returns the records the chain wrote, by object; the first
// of two records of one object wins.  The head's counts are the chain's
// to write: they are bounded by the section's size, found when the file
// was opened.  A file without the section has no records.
func (t *Tables) IPCRecords() map[RecordKey]IPCRecord {
	out := map[RecordKey]IPCRecord{}
	if !t.hasRecords {
		return out
	}
	head := recordsAt(t.mem, t.records)
	limit := uint32((t.records.Size - recordsHead) / recordStruct)
	n := min(atomic.LoadUint32(&head.Used), atomic.LoadUint32(&head.Capacity), limit)
	for i := range n {
		off := t.records.Offset + recordsHead + uint64(i)*recordStruct
		r := (*ipcRecord)(unsafe.Pointer(&t.mem[off]))
		typ := ResourceType(atomic.LoadUint32(&r.Type))
		if typ != Sem && typ != Shm && typ != Msg {
			continue
		}
		key := RecordKey{typ, r.Sys}
		if _, dup := out[key]; dup {
			continue
		}
		out[key] = IPCRecord{Type: typ, Sys: r.Sys, Key: r.Key, CUID: r.CUID, CGID: r.CGID,
			CPID: r.CPID, CTime: r.CTime, Size: r.Size}
	}
	return out
}
