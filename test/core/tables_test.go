package core_test

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A table of 16 pid slots holds 12 entries: the root and 11 children.  The
// next fork fails with EAGAIN, and the harness says what to raise.
func TestFullPIDTable(t *testing.T) {
	needSetup(t)
	conf := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(conf, []byte("[tables]\npid_slots = 16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runChain(t, []string{"--config", conf}, "--ids", "sequential", "--", program("full_table"))
	if res.Code != 0 {
		t.Errorf("want exit status 0\n%s", res)
	}
	for _, want := range []string{"pid table full", "raise [tables] pid_slots"} {
		if !strings.Contains(res.Stderr, want) {
			t.Errorf("stderr lacks %q\n%s", want, res)
		}
	}
	checkGolden(t, "full_table", res.Stdout)
}

// Offsets in the table header (vresource/preload/vrid_abi.h).
const (
	offMagic      = 0
	offVersion    = 4
	offTableSlots = 128 + 4 // tables[0].slots
)

// validTables is a well-formed table file of AID 1: a copy that a chain
// makes of its own tables, so that no writer but the CLI's is trusted.
func validTables(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tables")
	res := runChain(t, nil, "--ids", "sequential", "--", "sh", "-c", `test "$VRID_AID" = 1 && cp "$VRID_TABLE" "$0"`, path)
	if res.Code != 0 {
		t.Fatalf("copy a chain's tables:\n%s", res)
	}
	return path
}

// patched is a valid table file with some bytes overwritten.
func patched(off int, value []byte) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		path := validTables(t, dir)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		copy(data[off:], value)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// garbage is a file of n bytes that is no table (a fixed pattern, so
// that the test is the same each run).
func garbage(n int) func(*testing.T, string) string {
	return func(t *testing.T, dir string) string {
		path := filepath.Join(dir, "tables")
		data := make([]byte, n)
		x := uint32(2463534242)
		for i := range data {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			data[i] = byte(x)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

// A program run straight under the layer with unusable tables: every
// translating call fails with ENOTRECOVERABLE, getpid() answers the
// system pid, and the layer says why on stderr.
func TestBrokenTables(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name   string
		tables func(*testing.T, string) string
		aid    string // VRID_AID; "" leaves it unset
		stderr string // after "vrid: layer: ", with <path> for the path
	}{
		{"garbage", garbage(8192), "1", "tables <path> unusable: bad magic"},
		{"wrong magic", patched(offMagic, u32(0x12345678)), "1", "tables <path> unusable: bad magic"},
		{"wrong version", patched(offVersion, []byte{99, 0}), "1", "tables <path> unusable: unsupported version"},
		{"another AID", validTables, "2", "tables <path> unusable: belongs to another AID"},
		{"corrupt descriptor", patched(offTableSlots, u32(3)), "1", "tables <path> unusable: pid table: 3 slots, want a power of two from 16 to 16777216"},
		{"truncated", garbage(100), "1", "tables <path> unusable: 100 bytes, shorter than the header"},
		{"missing", func(t *testing.T, dir string) string { return filepath.Join(dir, "none") }, "1", "cannot open tables <path>"},
		{"no AID", validTables, "", "VRID_TABLE is set but VRID_AID is not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.tables(t, t.TempDir())
			ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
			defer cancel()
			cmd := bounded(exec.CommandContext(ctx, program("broken_table")))
			cmd.Env = append(cleanEnv(), "LD_PRELOAD="+libPath, "VRID_TABLE="+path)
			if tc.aid != "" {
				cmd.Env = append(cmd.Env, "VRID_AID="+tc.aid)
			}
			res := runProgram(t, ctx, cmd, "program broken_table", nil)
			if res.Code != 0 {
				t.Errorf("want exit status 0\n%s", res)
			}
			want := "vrid: layer: " + strings.ReplaceAll(tc.stderr, "<path>", path)
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("stderr lacks %q\n%s", want, res)
			}
			// getpid() is the system pid: the one we started.
			sysLine := "getpid=" + strconv.Itoa(cmd.Process.Pid) + "\n"
			if !strings.HasPrefix(res.Stdout, sysLine) {
				t.Errorf("want first line %q (the system pid)\n%s", sysLine, res)
			}
			checkGolden(t, "broken_table", strings.Replace(res.Stdout, sysLine, "getpid=SYSTEM\n", 1))
		})
	}
}
