package vresource

import "unsafe"

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

// recordsAt views the head of the records section s of mem, for a new
// file's header.
func recordsAt(mem []byte, s section) *ipcRecordsHead {
	return (*ipcRecordsHead)(unsafe.Pointer(&mem[s.Offset]))
}

// IPCRecords returns the records the chain wrote, by object; the first
// of two records of one object wins.  The head's counts are the chain's
// to write: the engine bounds them by the section's size, found when the
// file was opened.  A file without the section, or one that can't be
// read, has no records.
func (t *Tables) IPCRecords() map[RecordKey]IPCRecord {
	out := map[RecordKey]IPCRecord{}
	records, _ := t.eng.records()
	for _, r := range records {
		key := RecordKey{ResourceType(r.Type), r.Sys}
		if _, dup := out[key]; dup {
			continue
		}
		out[key] = IPCRecord{Type: key.Type, Sys: r.Sys, Key: r.Key, CUID: r.CUID, CGID: r.CGID,
			CPID: r.CPID, CTime: r.CTime, Size: r.Size}
	}
	return out
}
