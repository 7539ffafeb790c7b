package quiesce

import (
	"os"
	"strings"
	"testing"
)

func TestParseMaps(t *testing.T) {
	f, err := os.Open("testdata/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := ParseMaps(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		m              Mapping
		sysv, reserved bool
	}{
		{Mapping{0x55d0c8a00000, 0x55d0c8a01000, "r--p", 0, 1049112, "/tmp/vrid-core-test-1/programs/quiesce shm"}, false, false},
		{Mapping{0x7f2a10000000, 0x7f2a10004000, "rw-s", 0, 32769, "/SYSV00000000 (deleted)"}, true, false},
		{Mapping{0x7f2a10004000, 0x7f2a10005000, "r--s", 0x4000, 32769, "/SYSV00000000 (deleted)"}, true, false},
		{Mapping{0x7f2a10005000, 0x7f2a10009000, "---p", 0, 0, ""}, false, true},
		{Mapping{0x7f2a10009000, 0x7f2a1000a000, "rw-s", 0, 5, "/SYSV3f8a5151 (deleted)"}, true, false},
		{Mapping{0x7f2a1000a000, 0x7f2a1000b000, "rw-p", 0, 0, ""}, false, false},
		{Mapping{0x7ffd4a1c0000, 0x7ffd4a1e1000, "rw-p", 0, 0, "[stack]"}, false, false},
	}
	if len(maps) != len(want) {
		t.Fatalf("got %d mappings, want %d: %v", len(maps), len(want), maps)
	}
	for i, w := range want {
		t.Run(w.m.String(), func(t *testing.T) {
			if maps[i] != w.m {
				t.Errorf("got %+v, want %+v", maps[i], w.m)
			}
			if maps[i].SysV() != w.sysv || maps[i].Reserved() != w.reserved {
				t.Errorf("SysV %v Reserved %v, want %v %v", maps[i].SysV(), maps[i].Reserved(), w.sysv, w.reserved)
			}
		})
	}
	if got := sysV(maps); len(got) != 3 || got[2].Inode != 5 {
		t.Errorf("sysV: %v, want the three /SYSV mappings", got)
	}
}

func TestParseMapsBad(t *testing.T) {
	for _, tc := range []struct{ name, text, err string }{
		{"short", "7f00-7f01 rw-p 0 00:00\n", "line 1: \"7f00-7f01 rw-p 0 00:00\": want at least 5 fields"},
		{"no range", "7f00 rw-p 0 00:00 0\n", "line 1: \"7f00 rw-p 0 00:00 0\": no address range"},
		{"bad inode", "7f00-7f01 rw-p 0 00:00 x\n", `line 1: "7f00-7f01 rw-p 0 00:00 x": strconv.ParseUint: parsing "x": invalid syntax`},
		{"bad start", "g-7f01 rw-p 0 00:00 0\n", `line 1: "g-7f01 rw-p 0 00:00 0": strconv.ParseUint: parsing "g": invalid syntax`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMaps(strings.NewReader(tc.text))
			if err == nil || err.Error() != tc.err {
				t.Errorf("got %v, want %s", err, tc.err)
			}
		})
	}
}

func TestParseSignalMasks(t *testing.T) {
	for _, tc := range []struct {
		name, status    string
		caught, blocked uint64
		err             string
	}{
		{"layer", "Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t4000000000000200\n",
			1<<62 | 1<<9, 0, ""},
		{"blocked", "SigBlk:\t4000000000000000\nSigCgt:\t0000000000000000\n", 0, 1 << 62, ""},
		{"missing", "Name:\tx\n", 0, 0, "status: no SigCgt and SigBlk lines"},
		{"garbage", "SigBlk:\tzz\nSigCgt:\t0\n", 0, 0, `status SigBlk: strconv.ParseUint: parsing "zz": invalid syntax`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caught, blocked, err := parseSignalMasks(tc.status)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("got %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || caught != tc.caught || blocked != tc.blocked {
				t.Errorf("got %#x %#x %v, want %#x %#x", caught, blocked, err, tc.caught, tc.blocked)
			}
		})
	}
	if sigBit(Signal) != 1<<62 {
		t.Errorf("signal %d: bit %#x, want 1<<62", Signal, sigBit(Signal))
	}
}
