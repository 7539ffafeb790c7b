package vresource

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenCorrupt spoils copies of a good file one field at a time and
// wants OpenTables to refuse each, saying why, and the preload layer's
// own attach (testdata/attach.c, which includes layer.c) to refuse it
// too, saying the same: both run the engine's checks.  Files at the
// limits of the checks must open on both sides.
func TestOpenCorrupt(t *testing.T) {
	attach := buildC(t, "attach", "testdata/attach.c", "preload/lock.c", "preload/table.c", "preload/record.c", "preload/semadj.c",
		"preload/tablecheck.c", "-ldl")
	good := newTables(t, TableOptions{Slots: small()})
	pristine, err := os.ReadFile(good.path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func(h *header) // applied to a copy of the file
		size  int             // the copy's length, if not the whole
		want  string          // in Go's error and C's log; "" if the file is good
	}{
		{"pristine", nil, 0, ""},
		{"bad magic", func(h *header) { h.Magic = 0x12345678 }, 0, "bad magic 0x12345678"},
		{"version 1, before dirty", func(h *header) { h.Version = 1 }, 0, "unsupported version 1"},
		{"bad header size", func(h *header) { h.HeaderSize = 2048 }, 0, "header size 2048"},
		{"shorter than a header", nil, 100, "100 bytes, shorter than the header"},
		{"truncated", nil, len(pristine) - fileAlign, "header says 8192 bytes, file has 4096"},
		{"name without NUL", func(h *header) { copy(h.Name[:], strings.Repeat("x", 64)) }, 0, "name not NUL-terminated"},
		{"name of 63 bytes", func(h *header) { copy(h.Name[:], strings.Repeat("x", 63)) }, 0, ""},
		{"wrong type", func(h *header) { h.Tables[Shm].Type = 0 }, 0, "shm table: type 0"},
		{"slots not a power of two", func(h *header) { h.Tables[Sem].Slots = 24 }, 0, "sem table: 24 slots"},
		{"slots too few", func(h *header) { h.Tables[Sem].Slots, h.Tables[Sem].Shift = 8, 29 }, 0, "sem table: 8 slots"},
		{"slots too many", func(h *header) { h.Tables[Sem].Slots, h.Tables[Sem].Shift = 1<<25, 7 }, 0, "sem table: 33554432 slots"},
		{"bad shift", func(h *header) { h.Tables[Msg].Shift = 27 }, 0, "msg table: shift 27 for 16 slots"},
		{"offset not aligned", func(h *header) { h.Tables[PID].ByVirtOff += 8 }, 0, "pid table: offset 4104 not 64-aligned"},
		{"index inside the header", func(h *header) { h.Tables[PID].ByVirtOff = 0 }, 0, "pid table: indexes at 0..256"},
		{"index just below the header's end", func(h *header) { h.Tables[PID].ByVirtOff = TableHeaderSize - 64 }, 0, "pid table: indexes at 4032..4288"},
		{"index past the end", func(h *header) { h.Tables[IPCKey].ByVirtOff = 1 << 20 }, 0, "ipckey table: indexes at 1048576"},
		{"index over the end", func(h *header) { h.Tables[IPCKey].ByVirtOff = 8192 - 192 }, 0, "ipckey table: indexes at 8000..8256"},
		{"offset that wraps around", func(h *header) { h.Tables[IPCKey].ByVirtOff = 1<<64 - 64 }, 0, "ipckey table: indexes at"},
		{"overlapping indexes", func(h *header) { h.Tables[Sem].ByVirtOff = h.Tables[PID].ByVirtOff + 64 }, 0, "pid and sem indexes overlap"},
		{"indexes sharing 64 bytes", func(h *header) { h.Tables[Msg].ByVirtOff = h.Tables[Shm].ByVirtOff + 256 - 64 }, 0, "shm and msg indexes overlap"},
		{"indexes out of order", func(h *header) {
			h.Tables[PID].ByVirtOff, h.Tables[IPCKey].ByVirtOff = h.Tables[IPCKey].ByVirtOff, h.Tables[PID].ByVirtOff
		}, 0, ""},
		{"fresh range upside down", func(h *header) { h.Tables[PID].FreshBase = PIDFreshMax + 1 }, 0, "pid table: fresh range 4194305..4194304"},
		{"fresh range past int32", func(h *header) { h.Tables[Sem].FreshMax = 1 << 31 }, 0, "sem table: fresh range 1..2147483648"},
		{"fresh_next below", func(h *header) { h.Tables[PID].FreshNext = 0 }, 0, "pid table: fresh_next 0 outside 1000..4194304"},
		{"fresh_next above", func(h *header) { h.Tables[Shm].FreshMax, h.Tables[Shm].FreshNext = 9, 10 }, 0, "shm table: fresh_next 10 outside 1..9"},
		{"fresh_next at the top", func(h *header) { h.Tables[Shm].FreshMax, h.Tables[Shm].FreshNext = 9, 9 }, 0, ""},
		{"live above slots", func(h *header) { h.Tables[Sem].Live = 17 }, 0, "sem table: 17 live entries in 16 slots"},
		{"live at slots", func(h *header) { h.Tables[Sem].Live = 16 }, 0, ""},
		{"removed by_virt slots above slots", func(h *header) { h.Tables[Msg].TombsByVirt = 17 }, 0, "msg table: 17 removed slots of 16 in by_virt"},
		{"removed by_sys slots above slots", func(h *header) { h.Tables[IPCKey].TombsBySys = 1 << 31 }, 0, "ipckey table: 2147483648 removed slots of 16 in by_sys"},
		{"removed slots at slots", func(h *header) { h.Tables[Msg].TombsByVirt, h.Tables[Msg].TombsBySys = 16, 16 }, 0, ""},
		{"no sections", func(h *header) { h.NSections = 0 }, 0, ""},
		{"too many sections", func(h *header) { h.NSections = SectionsMax + 1 }, 0, "9 sections, at most 8"},
		{"section not aligned", func(h *header) { h.Sections[0].Offset += 8 }, 0, "section 0: offset 5384 not 64-aligned"},
		{"section in the header", func(h *header) { h.Sections[0].Offset = 0 }, 0, "section 0: 0..2368 outside 4096..8192"},
		{"section past the end", func(h *header) { h.Sections[0].Offset = 1 << 20 }, 0, "section 0: 1048576.."},
		{"section over the end", func(h *header) { h.Sections[0].Size = 8192 - 5376 + 1 }, 0, "section 0: 5376..8193 outside"},
		{"section size that wraps around", func(h *header) { h.Sections[0].Size = 1<<64 - 64 }, 0, "section 0: 5376.."},
		{"section over the indexes", func(h *header) { h.Sections[0].Offset = h.Tables[Msg].ByVirtOff }, 0, "section 0 overlaps the msg indexes"},
		{"sections overlapping", func(h *header) {
			h.NSections, h.Sections[1] = 2, section{Kind: 7, Offset: h.Sections[0].Offset + 64, Size: 64}
		}, 0, "sections 0 and 1 overlap"},
		{"unknown kind", func(h *header) {
			h.NSections, h.Sections[1] = 2, section{Kind: 7, Offset: 8192 - 64, Size: 64}
		}, 0, ""},
		{"records of another size", func(h *header) { h.Sections[0].EntrySize = 40 }, 0, "section 0: IPC records of 40 bytes"},
		{"records without a head", func(h *header) { h.Sections[0].Size = 32 }, 0, "section 0: IPC records of 48 bytes in 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := append([]byte(nil), pristine...)
			if tt.spoil != nil {
				tt.spoil(overlay(data))
			}
			if tt.size != 0 {
				data = data[:tt.size]
			}
			path := filepath.Join(t.TempDir(), "tables")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			tb, err := OpenTables(path)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("good file refused: %v", err)
			case tt.want == "" && err == nil:
				tb.Close()
			case err == nil:
				tb.Close()
				t.Error("opened")
			case !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q, want ErrCorrupt saying %q", err, tt.want)
			}
			checkAttach(t, attach, path, tt.want)
		})
	}
}

// checkAttach runs the C attach on path and wants it on if why is "",
// else broken, saying why.
func checkAttach(t *testing.T, attach, path, why string) {
	t.Helper()
	cmd := exec.Command(attach)
	cmd.Env = []string{"VRID_TABLE=" + path, fmt.Sprintf("VRID_AID=%d", testAID)}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("C attach: %v\n%s", err, stderr.String())
	}
	state := strings.TrimSpace(string(out))
	switch {
	case why == "" && state != "on":
		t.Errorf("C attach of a good file: %s\n%s", state, stderr.String())
	case why != "" && (state != "broken" || !strings.Contains(stderr.String(), why)):
		t.Errorf("C attach: %s, want broken saying %q\n%s", state, why, stderr.String())
	}
}
