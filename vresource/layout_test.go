package vresource

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"unsafe"
)

// TestLayoutMatchesC compiles testdata/layout.c against vrid_abi.h and
// checks every offset, size and constant it prints against Go's.
func TestLayoutMatchesC(t *testing.T) {
	out, err := exec.Command(buildC(t, "layout", "testdata/layout.c")).Output()
	if err != nil {
		t.Fatalf("run layout: %v", err)
	}
	// name -> "offset size", or constant name -> value
	fromC := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "const" {
			f = f[1:]
		}
		if len(f) < 2 {
			t.Fatalf("layout.c printed %q", line)
		}
		fromC[f[0]] = strings.Join(f[1:], " ")
	}

	var h header
	var d tableDesc
	var s section
	var r ipcRecord
	var rh ipcRecordsHead
	var a semAdj
	var ah semAdjHead
	field := func(off, size uintptr) string { return fmt.Sprintf("%d %d", off, size) }
	tests := []struct{ name, goSide string }{
		{"header", field(0, unsafe.Sizeof(h))},
		{"header.magic", field(unsafe.Offsetof(h.Magic), unsafe.Sizeof(h.Magic))},
		{"header.version", field(unsafe.Offsetof(h.Version), unsafe.Sizeof(h.Version))},
		{"header.header_size", field(unsafe.Offsetof(h.HeaderSize), unsafe.Sizeof(h.HeaderSize))},
		{"header.generation", field(unsafe.Offsetof(h.Generation), unsafe.Sizeof(h.Generation))},
		{"header.flags", field(unsafe.Offsetof(h.Flags), unsafe.Sizeof(h.Flags))},
		{"header.aid", field(unsafe.Offsetof(h.AID), unsafe.Sizeof(h.AID))},
		{"header.file_size", field(unsafe.Offsetof(h.FileSize), unsafe.Sizeof(h.FileSize))},
		{"header.dirty", field(unsafe.Offsetof(h.Dirty), unsafe.Sizeof(h.Dirty))},
		{"header.shm_doomed", field(unsafe.Offsetof(h.ShmDoomed), unsafe.Sizeof(h.ShmDoomed))},
		{"header.reserved", field(unsafe.Offsetof(h.Reserved), unsafe.Sizeof(h.Reserved))},
		{"header.name", field(unsafe.Offsetof(h.Name), unsafe.Sizeof(h.Name))},
		{"header.tables", field(unsafe.Offsetof(h.Tables), unsafe.Sizeof(h.Tables))},
		{"header.nsections", field(unsafe.Offsetof(h.NSections), unsafe.Sizeof(h.NSections))},
		{"header.reserved2", field(unsafe.Offsetof(h.Reserved2), unsafe.Sizeof(h.Reserved2))},
		{"header.sections", field(unsafe.Offsetof(h.Sections), unsafe.Sizeof(h.Sections))},
		{"section", field(0, unsafe.Sizeof(s))},
		{"section.kind", field(unsafe.Offsetof(s.Kind), unsafe.Sizeof(s.Kind))},
		{"section.entry_size", field(unsafe.Offsetof(s.EntrySize), unsafe.Sizeof(s.EntrySize))},
		{"section.offset", field(unsafe.Offsetof(s.Offset), unsafe.Sizeof(s.Offset))},
		{"section.size", field(unsafe.Offsetof(s.Size), unsafe.Sizeof(s.Size))},
		{"record", field(0, unsafe.Sizeof(r))},
		{"record.type", field(unsafe.Offsetof(r.Type), unsafe.Sizeof(r.Type))},
		{"record.sys", field(unsafe.Offsetof(r.Sys), unsafe.Sizeof(r.Sys))},
		{"record.key", field(unsafe.Offsetof(r.Key), unsafe.Sizeof(r.Key))},
		{"record.cuid", field(unsafe.Offsetof(r.CUID), unsafe.Sizeof(r.CUID))},
		{"record.cgid", field(unsafe.Offsetof(r.CGID), unsafe.Sizeof(r.CGID))},
		{"record.cpid", field(unsafe.Offsetof(r.CPID), unsafe.Sizeof(r.CPID))},
		{"record.ctime", field(unsafe.Offsetof(r.CTime), unsafe.Sizeof(r.CTime))},
		{"record.size", field(unsafe.Offsetof(r.Size), unsafe.Sizeof(r.Size))},
		{"record.reserved", field(unsafe.Offsetof(r.Reserved), unsafe.Sizeof(r.Reserved))},
		{"records", field(0, unsafe.Sizeof(rh))},
		{"records.capacity", field(unsafe.Offsetof(rh.Capacity), unsafe.Sizeof(rh.Capacity))},
		{"records.used", field(unsafe.Offsetof(rh.Used), unsafe.Sizeof(rh.Used))},
		{"records.reserved", field(unsafe.Offsetof(rh.Reserved), unsafe.Sizeof(rh.Reserved))},
		{"records.records", field(unsafe.Sizeof(rh), 0)},
		{"semadj", field(0, unsafe.Sizeof(a))},
		{"semadj.pid_virt", field(unsafe.Offsetof(a.PidVirt), unsafe.Sizeof(a.PidVirt))},
		{"semadj.sem_virt", field(unsafe.Offsetof(a.SemVirt), unsafe.Sizeof(a.SemVirt))},
		{"semadj.num", field(unsafe.Offsetof(a.Num), unsafe.Sizeof(a.Num))},
		{"semadj.adj", field(unsafe.Offsetof(a.Adj), unsafe.Sizeof(a.Adj))},
		{"semadj.generation", field(unsafe.Offsetof(a.Generation), unsafe.Sizeof(a.Generation))},
		{"semadjs", field(0, unsafe.Sizeof(ah))},
		{"semadjs.capacity", field(unsafe.Offsetof(ah.Capacity), unsafe.Sizeof(ah.Capacity))},
		{"semadjs.used", field(unsafe.Offsetof(ah.Used), unsafe.Sizeof(ah.Used))},
		{"semadjs.lost", field(unsafe.Offsetof(ah.Lost), unsafe.Sizeof(ah.Lost))},
		{"semadjs.reserved", field(unsafe.Offsetof(ah.Reserved), unsafe.Sizeof(ah.Reserved))},
		{"semadjs.entries", field(unsafe.Sizeof(ah), 0)},
		{"desc", field(0, unsafe.Sizeof(d))},
		{"desc.type", field(unsafe.Offsetof(d.Type), unsafe.Sizeof(d.Type))},
		{"desc.slots", field(unsafe.Offsetof(d.Slots), unsafe.Sizeof(d.Slots))},
		{"desc.shift", field(unsafe.Offsetof(d.Shift), unsafe.Sizeof(d.Shift))},
		{"desc.live", field(unsafe.Offsetof(d.Live), unsafe.Sizeof(d.Live))},
		{"desc.by_virt_off", field(unsafe.Offsetof(d.ByVirtOff), unsafe.Sizeof(d.ByVirtOff))},
		{"desc.fresh_next", field(unsafe.Offsetof(d.FreshNext), unsafe.Sizeof(d.FreshNext))},
		{"desc.fresh_base", field(unsafe.Offsetof(d.FreshBase), unsafe.Sizeof(d.FreshBase))},
		{"desc.fresh_max", field(unsafe.Offsetof(d.FreshMax), unsafe.Sizeof(d.FreshMax))},
		{"desc.tombs_by_virt", field(unsafe.Offsetof(d.TombsByVirt), unsafe.Sizeof(d.TombsByVirt))},
		{"desc.tombs_by_sys", field(unsafe.Offsetof(d.TombsBySys), unsafe.Sizeof(d.TombsBySys))},
		{"desc.rebuilds", field(unsafe.Offsetof(d.Rebuilds), unsafe.Sizeof(d.Rebuilds))},
		{"VRID_MAGIC", fmt.Sprint(TableMagic)},
		{"VRID_VERSION", fmt.Sprint(TableVersion)},
		{"VRID_HEADER_SIZE", fmt.Sprint(TableHeaderSize)},
		{"VRID_NAME_MAX", fmt.Sprint(TableNameMax)},
		{"VRID_SLOT_TOMB", fmt.Sprint(SlotTomb)},
		{"VRID_KEY_BIAS", fmt.Sprint(KeyBias)},
		{"VRID_HASH_MUL", fmt.Sprint(HashMul)},
		{"VRID_FLAG_SEQUENTIAL", fmt.Sprint(FlagSequential)},
		{"VRID_PID", fmt.Sprint(uint32(PID))},
		{"VRID_SEM", fmt.Sprint(uint32(Sem))},
		{"VRID_SHM", fmt.Sprint(uint32(Shm))},
		{"VRID_MSG", fmt.Sprint(uint32(Msg))},
		{"VRID_IPCKEY", fmt.Sprint(uint32(IPCKey))},
		{"VRID_NTYPES", fmt.Sprint(NumResourceTypes)},
		{"VRID_SECTIONS_MAX", fmt.Sprint(SectionsMax)},
		{"VRID_SECTION_UNUSED", fmt.Sprint(SectionUnused)},
		{"VRID_SECTION_IPC_RECORDS", fmt.Sprint(SectionIPCRecords)},
		{"VRID_SECTION_SEMADJ", fmt.Sprint(SectionSemAdj)},
		{"VRID_SIGNAL_OFFSET", fmt.Sprint(QuiesceSignalOffset)},
		{"VRID_QUIESCE_DETACH", fmt.Sprint(QuiesceDetach)},
		{"VRID_QUIESCE_ATTACH", fmt.Sprint(QuiesceAttach)},
		{"VRID_QUIESCE_UNDO", fmt.Sprint(QuiesceUndo)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cSide, ok := fromC[tt.name]
			if !ok {
				t.Fatalf("layout.c printed no %s", tt.name)
			}
			if cSide != tt.goSide {
				t.Errorf("%s: C says %q, Go says %q", tt.name, cSide, tt.goSide)
			}
			delete(fromC, tt.name)
		})
	}
	for name := range fromC {
		t.Errorf("layout.c printed %s, which Go does not check", name)
	}
}
