package vresource

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCorrupt(t *testing.T) {
	good := newTables(t, TableOptions{Slots: small()})
	pristine, err := os.ReadFile(good.path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		spoil func(h *header) // applied to a copy of the file
		size  int             // the copy's length, if not the whole
		want  string
	}{
		{"bad magic", func(h *header) { h.Magic = 0x12345678 }, 0, "bad magic 0x12345678"},
		{"bad version", func(h *header) { h.Version = 2 }, 0, "unsupported version 2"},
		{"bad header size", func(h *header) { h.HeaderSize = 2048 }, 0, "header size 2048"},
		{"shorter than a header", nil, 100, "100 bytes, shorter than the header"},
		{"truncated", nil, len(pristine) - fileAlign, "header says 8192 bytes, file has 4096"},
		{"name without NUL", func(h *header) { copy(h.Name[:], strings.Repeat("x", 64)) }, 0, "name not NUL-terminated"},
		{"wrong type", func(h *header) { h.Tables[Shm].Type = 0 }, 0, "shm table: type 0"},
		{"slots not a power of two", func(h *header) { h.Tables[Sem].Slots = 24 }, 0, "sem table: 24 slots"},
		{"slots too few", func(h *header) { h.Tables[Sem].Slots, h.Tables[Sem].Shift = 8, 29 }, 0, "sem table: 8 slots"},
		{"slots too many", func(h *header) { h.Tables[Sem].Slots, h.Tables[Sem].Shift = 1<<25, 7 }, 0, "sem table: 33554432 slots"},
		{"bad shift", func(h *header) { h.Tables[Msg].Shift = 27 }, 0, "msg table: shift 27 for 16 slots"},
		{"offset not aligned", func(h *header) { h.Tables[PID].ByVirtOff += 8 }, 0, "pid table: offset 4104 not 64-aligned"},
		{"index inside the header", func(h *header) { h.Tables[PID].ByVirtOff = 0 }, 0, "pid table: indexes at 0..256"},
		{"index past the end", func(h *header) { h.Tables[IPCKey].ByVirtOff = 1 << 20 }, 0, "ipckey table: indexes at 1048576"},
		{"offset that wraps around", func(h *header) { h.Tables[IPCKey].ByVirtOff = 1<<64 - 64 }, 0, "ipckey table: indexes at"},
		{"overlapping indexes", func(h *header) { h.Tables[Sem].ByVirtOff = h.Tables[PID].ByVirtOff + 64 }, 0, "pid and sem indexes overlap"},
		{"fresh range upside down", func(h *header) { h.Tables[PID].FreshBase = PIDFreshMax + 1 }, 0, "pid table: fresh range 4194305..4194304"},
		{"fresh range past int32", func(h *header) { h.Tables[Sem].FreshMax = 1 << 31 }, 0, "sem table: fresh range 1..2147483648"},
		{"fresh_next outside", func(h *header) { h.Tables[PID].FreshNext = 0 }, 0, "pid table: fresh_next 0 outside 1000..4194304"},
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
			if err == nil {
				tb.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrCorrupt saying %q", err, tt.want)
			}
		})
	}
}
