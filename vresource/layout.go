package vresource

import (
	"math"
	"unsafe"
)

// The table-file layout, mirrored from preload/vrid_abi.h.  layout_test.go
// compiles that header and checks every offset, size and value below.
const (
	TableMagic      = 0x44495256 // "VRID" little-endian
	TableVersion    = 3
	TableHeaderSize = 4096
	TableNameMax    = 64 // bytes, NUL included

	SlotEmpty = 0
	SlotTomb  = 1

	// KeyBias maps every id >= 0, and every IPC key but math.MinInt32, to
	// a non-zero slot key; math.MinInt32 can't be stored.
	KeyBias = 0x80000000
	HashMul = 0x9e3779b1

	FlagSequential = 0x1 // never reuse the system id as virtual id

	// SectionsMax is the room of the header's section directory.  A
	// reader skips a kind it does not know.
	SectionsMax       = 8
	SectionUnused     = 0
	SectionIPCRecords = 1 // ipcRecordsHead, then ipcRecord each
	SectionSemAdj     = 2 // semAdjHead, then semAdj each

	// The quiesce protocol (package quiesce): the layer's signal is
	// SIGRTMAX minus QuiesceSignalOffset, and si_value says what to do.
	QuiesceSignalOffset = 1
	QuiesceDetach       = 0x56510001
	QuiesceAttach       = 0x56510002
	QuiesceUndo         = 0x56510003 // after a restore: apply the recorded SEM_UNDO adjustments again
)

// Defaults and bounds of the tables Go creates.  The C side only reads
// them from the file.
const (
	DefaultPIDSlots = 16384
	DefaultIPCSlots = 4096 // sem, shm, msg and ipckey each

	MinSlots = 16
	MaxSlots = 1 << 24

	// Fresh pids start above the ids of early system daemons and end at
	// the kernel's PID_MAX_LIMIT, so they look like pids.
	PIDFreshBase = 1000
	PIDFreshMax  = 4194304
	IPCFreshBase = 1
	IPCFreshMax  = math.MaxInt32

	slotBytes     = 8
	indexAlign    = 64 // a cache line: no index shares one with another
	fileAlign     = 4096
	headerStruct  = 568 // sizeof(struct vrid_header)
	descStruct    = 48  // sizeof(struct vrid_table_desc)
	sectionStruct = 24  // sizeof(struct vrid_section)
	recordStruct  = 48  // sizeof(struct vrid_ipc_record)
	recordsHead   = 64  // sizeof(struct vrid_ipc_records), before its records
	semAdjStruct  = 16  // sizeof(struct vrid_semadj)
	semAdjsHead   = 64  // sizeof(struct vrid_semadj_area), before its entries
)

// tableDesc is struct vrid_table_desc.  Live, FreshNext and the
// tombstone counts are shared with other processes and change under the
// writer lock; Rebuilds too, and lock-free readers load it.
type tableDesc struct {
	Type        uint32
	Slots       uint32 // power of two, per index
	Shift       uint32 // 32 - log2(Slots)
	Live        uint32
	ByVirtOff   uint64 // from file start; by_sys follows it
	FreshNext   uint32
	FreshBase   uint32
	FreshMax    uint32
	TombsByVirt uint32 // removed slots in by_virt
	TombsBySys  uint32 // removed slots in by_sys
	Rebuilds    uint32 // odd while a rebuild of the two indexes runs
}

// header is struct vrid_header, laid over the first bytes of the mapping.
// Go and C give both structs the same natural alignment on every
// architecture the preload layer supports (amd64, arm64), so an overlay
// is exact there; the size checks below catch any other outcome.
type header struct {
	Magic      uint32
	Version    uint16
	HeaderSize uint16
	Generation uint32
	Flags      uint32
	AID        uint64
	FileSize   uint64
	Dirty      uint32 // type + 1 of a write in progress, or 0
	ShmDoomed  uint32
	Reserved   [6]uint32
	Name       [TableNameMax]byte
	Tables     [NumResourceTypes]tableDesc
	NSections  uint32 // used entries of Sections
	Reserved2  uint32
	Sections   [SectionsMax]section
}

// section is struct vrid_section: one area of the file past the header.
type section struct {
	Kind      uint32
	EntrySize uint32 // bytes per entry of an array kind, else 0
	Offset    uint64 // from file start
	Size      uint64
}

// ipcRecordsHead is struct vrid_ipc_records without its records.
type ipcRecordsHead struct {
	Capacity uint32
	Used     uint32 // records past Used are free
	Reserved [14]uint32
}

// ipcRecord is struct vrid_ipc_record: what identified a System V object
// when the chain created it, as the chain wrote it.
type ipcRecord struct {
	Type     uint32 // Sem, Shm or Msg; 0: free
	Sys      int32
	Key      int32
	CUID     uint32
	CGID     uint32
	CPID     int32
	CTime    int64
	Size     uint64
	Reserved [2]uint32
}

// semAdj is struct vrid_semadj: one process's SEM_UNDO adjustment of one
// semaphore, as the layer recorded it.
type semAdj struct {
	PidVirt    int32 // 0: free
	SemVirt    int32
	Num        uint16
	Adj        int16
	Generation uint32 // the header's generation when the process's undo list last held Adj
}

// semAdjHead is struct vrid_semadj_area without its entries.
type semAdjHead struct {
	Capacity uint32
	Used     uint32 // entries past Used are free
	Lost     uint32 // adjustments the layer had no room to record
	Reserved [13]uint32
}

// Compile-time checks: each array has a negative length, and the build
// fails, if a struct's size differs from C's.
var (
	_ [unsafe.Sizeof(header{}) - headerStruct]byte
	_ [headerStruct - unsafe.Sizeof(header{})]byte
	_ [unsafe.Sizeof(tableDesc{}) - descStruct]byte
	_ [descStruct - unsafe.Sizeof(tableDesc{})]byte
	_ [unsafe.Sizeof(section{}) - sectionStruct]byte
	_ [sectionStruct - unsafe.Sizeof(section{})]byte
	_ [unsafe.Sizeof(ipcRecord{}) - recordStruct]byte
	_ [recordStruct - unsafe.Sizeof(ipcRecord{})]byte
	_ [unsafe.Sizeof(ipcRecordsHead{}) - recordsHead]byte
	_ [recordsHead - unsafe.Sizeof(ipcRecordsHead{})]byte
	_ [unsafe.Sizeof(semAdj{}) - semAdjStruct]byte
	_ [semAdjStruct - unsafe.Sizeof(semAdj{})]byte
	_ [unsafe.Sizeof(semAdjHead{}) - semAdjsHead]byte
	_ [semAdjsHead - unsafe.Sizeof(semAdjHead{})]byte
)

// freshRange is the range fresh virtual ids of a type are drawn from.
func freshRange(rt ResourceType) (base, limit uint32) {
	if rt == PID {
		return PIDFreshBase, PIDFreshMax
	}
	return IPCFreshBase, IPCFreshMax
}

func defaultSlots(rt ResourceType) uint32 {
	if rt == PID {
		return DefaultPIDSlots
	}
	return DefaultIPCSlots
}

func alignUp(n, to uint64) uint64 {
	return (n + to - 1) / to * to
}

// recordCapacity is how many IPC records a file holds: one per slot of
// the sem, shm and msg indexes, more than their entries can ever be.
func recordCapacity(slots [NumResourceTypes]uint32) uint32 {
	return slots[Sem] + slots[Shm] + slots[Msg]
}

// semAdjCapacity is how many SEM_UNDO adjustments a file holds: one per
// slot of the sem indexes, which a process's dead entries make room in.
func semAdjCapacity(slots [NumResourceTypes]uint32) uint32 {
	return slots[Sem]
}

// layout is where fileLayout puts everything.
type layout struct {
	offs    [NumResourceTypes]uint64 // by_virt of each type
	records section                  // the SectionIPCRecords area
	semAdjs section                  // the SectionSemAdj area
	size    uint64                   // of the file
}

// fileLayout places the indexes after the header, in type order, each
// pair of indexes at a 64-byte boundary, then the IPC records and the
// SEM_UNDO adjustments, each at the next.
func fileLayout(slots [NumResourceTypes]uint32) layout {
	var l layout
	end := uint64(TableHeaderSize)
	for rt := range l.offs {
		l.offs[rt] = alignUp(end, indexAlign)
		end = l.offs[rt] + 2*slotBytes*uint64(slots[rt])
	}
	l.records = section{
		Kind:      SectionIPCRecords,
		EntrySize: recordStruct,
		Offset:    alignUp(end, indexAlign),
		Size:      recordsHead + recordStruct*uint64(recordCapacity(slots)),
	}
	l.semAdjs = section{
		Kind:      SectionSemAdj,
		EntrySize: semAdjStruct,
		Offset:    alignUp(l.records.Offset+l.records.Size, indexAlign),
		Size:      semAdjsHead + semAdjStruct*uint64(semAdjCapacity(slots)),
	}
	l.size = alignUp(l.semAdjs.Offset+l.semAdjs.Size, fileAlign)
	return l
}
