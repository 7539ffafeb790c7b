package vresource

import (
	"maps"
	"testing"
)

// madeUp is the record the C driver's bindrec writes for sys.
func madeUp(rt ResourceType, sys int32) IPCRecord {
	return IPCRecord{Type: rt, Sys: sys, Key: sys + 1, CUID: 1000 + uint32(sys), CGID: 2000 + uint32(sys),
		CPID: 3 * sys, CTime: 7 * int64(sys), Size: 11 * uint64(sys)}
}

// TestIPCRecordsFromC has table.c and record.c write records, and Go read
// them: a bind that makes an entry records it, a bind of a known id
// leaves the record, a removal frees it, and a freed record is reused.
func TestIPCRecordsFromC(t *testing.T) {
	driver := buildDriver(t)
	tests := []struct {
		name   string
		script string
		want   []IPCRecord
	}{
		{"none", "bind 1 5\n", nil},
		{"one of each type", "bindrec 1 5\nbindrec 2 6\nbindrec 3 7\n",
			[]IPCRecord{madeUp(Sem, 5), madeUp(Shm, 6), madeUp(Msg, 7)}},
		{"same id, two types", "bindrec 1 5\nbindrec 3 5\n", []IPCRecord{madeUp(Sem, 5), madeUp(Msg, 5)}},
		{"a known id is not recorded again", "bind 1 5\nbindrec 1 5\n", nil},
		{"removed by system id", "bindrec 1 5\nbindrec 1 6\nremove-sys 1 5\n", []IPCRecord{madeUp(Sem, 6)}},
		{"removed by virtual id", "bindrec 2 5\nremove-virt 2 5\n", nil},
		{"a freed record is reused", "bindrec 1 5\nbindrec 1 6\nremove-sys 1 5\nbindrec 1 9\n",
			[]IPCRecord{madeUp(Sem, 6), madeUp(Sem, 9)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(t, TableOptions{Slots: small()})
			runC(t, driver, tb.path, tt.script)
			want := map[RecordKey]IPCRecord{}
			for _, r := range tt.want {
				want[RecordKey{r.Type, r.Sys}] = r
			}
			if got := tb.IPCRecords(); !maps.Equal(got, want) {
				t.Errorf("records %v, want %v", got, want)
			}
		})
	}
}

// TestIPCRecordsBounded: the head's counts are the chain's to write; a
// reader never looks past the section, whatever they say.
func TestIPCRecordsBounded(t *testing.T) {
	driver := buildDriver(t)
	tb := newTables(t, TableOptions{Slots: small()})
	runC(t, driver, tb.path, "bindrec 1 5\n")
	head := recordsAt(tb.mem, hdrOf(tb).Sections[0])
	if head.Capacity != 48 || head.Used != 1 {
		t.Fatalf("head says capacity %d, used %d; want 48, 1", head.Capacity, head.Used)
	}
	head.Capacity, head.Used = 1<<31, 1<<31
	want := map[RecordKey]IPCRecord{{Sem, 5}: madeUp(Sem, 5)}
	if got := tb.IPCRecords(); !maps.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}
