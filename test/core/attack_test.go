package core_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A process of a chain truncates or grows its table file, or a process
// holds the table's writer lock forever in the middle of a write or of a
// rebuild.  vrid ps and vrid tables fail, saying why, within their
// bounded wait; vrid run's supervisor lives through it, its teardown
// still removes the chain's processes, directory and AID, and with the
// table still readable, the chain's semaphore set.  A lock held over a
// table at rest holds no reader up.
func TestHostileTable(t *testing.T) {
	needSetup(t)
	const (
		wedged = "tables of chain 1: writer lock held for 2s by another process; the chain may be wedged"
		// Offsets in the header (vrid_abi.h).
		offDirty       = 32
		offPIDRebuilds = 128 + 44 // tables[0].rebuilds
	)
	tests := []struct {
		name      string
		attack    string // table_attack's argument
		lock      bool   // the test holds the writer lock throughout
		mark      int64  // and sets the odd bit of the header word at mark
		printed   string // table_attack's report
		readErr   string // what vrid ps, vrid tables and the teardown say; "": they succeed
		removeSem bool   // teardown could read the tables
	}{
		{"truncate", "truncate", false, 0, "truncate.errno=none", "corrupt table file: 0 bytes, outside 4096..", false},
		{"grow", "grow", false, 0, "grow.errno=none", "corrupt table file: header says", false},
		{"writer stuck in a write", "none", true, offDirty, "none.errno=none", wedged, true},
		{"writer stuck in a rebuild", "none", true, offPIDRebuilds, "none.errno=none", wedged, true},
		{"writer lock held at rest", "none", true, 0, "none.errno=none", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stateDir := t.TempDir()
			before := readIPC(t)
			ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
			defer cancel()
			args := []string{"run", "--name", "hostile", "--ids", "sequential", "--", program("table_attack"), tt.attack}
			if tt.removeSem {
				args = append(args, "sem")
			}
			c := startChain(t, ctx, stateDir, args...)
			select {
			case <-c.ready:
			case <-c.done:
				t.Fatalf("table_attack ended early\n%s\n%s", c.stdout(), c.stderr.String())
			}
			if !strings.Contains(c.stdout(), tt.printed+"\n") {
				t.Errorf("table_attack printed %q, want %q", c.stdout(), tt.printed)
			}
			if tt.lock {
				holdWriterLock(t, filepath.Join(stateDir, "chains", "1", "tables"), tt.mark)
			}
			for _, args := range [][]string{{"ps"}, {"tables", "hostile"}} {
				res := vrid(t, stateDir, args...)
				switch {
				case tt.readErr == "" && (res.Code != 0 || !strings.Contains(res.Stdout, "1000")):
					t.Errorf("vrid %s: want exit status 0 and virtual pid 1000\n%s", strings.Join(args, " "), res)
				case tt.readErr != "" && (res.Code != 1 || !strings.Contains(res.Stderr, tt.readErr)):
					t.Errorf("vrid %s: want exit status 1 saying %q\n%s", strings.Join(args, " "), tt.readErr, res)
				}
			}
			res := c.finish(t)
			if res.Code != 0 || !strings.Contains(res.Stderr, tt.readErr) || tt.readErr == "" && res.Stderr != "" {
				t.Errorf("vrid run: want exit status 0 and a teardown saying %q\n%s", tt.readErr, res)
			}
			if !tt.removeSem {
				// Teardown can't know the objects of tables it can't read.
				before = readIPC(t)
			}
			checkNoLeaks(t, stateDir, before)
		})
	}
}

// holdWriterLock takes the table's writer lock through a description of
// the test's own, as a wedged process of the chain would hold it, and
// unless mark is 0 sets the odd bit of the header word at mark: the
// Dirty mark of a write, or a Rebuilds count.  Both last until the test
// ends.
func holdWriterLock(t *testing.T, path string, mark int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatalf("take the writer lock: %v", err)
	}
	if mark == 0 {
		return
	}
	var raw [4]byte
	if _, err := f.ReadAt(raw[:], mark); err != nil {
		t.Fatal(err)
	}
	odd := binary.LittleEndian.Uint32(raw[:]) | 1
	if _, err := f.WriteAt(binary.LittleEndian.AppendUint32(nil, odd), mark); err != nil {
		t.Fatal(err)
	}
}

// A symlink planted in a running chain's directory, in place of its table
// file, aims at a host file: vrid ps, vrid tables and the supervisor's
// teardown refuse to follow it, say so, and leave the file as it was;
// teardown still removes the chain.
func TestPlantedSymlink(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("host data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChain(t, ctx, stateDir, "run", "--name", "planted", "--ids", "sequential", "--", program("table_attack"), "none")
	select {
	case <-c.ready:
	case <-c.done:
		t.Fatalf("table_attack ended early\n%s\n%s", c.stdout(), c.stderr.String())
	}
	tables := filepath.Join(stateDir, "chains", "1", "tables")
	if err := os.Remove(tables); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, tables); err != nil {
		t.Fatal(err)
	}
	const refused = "chains/1/tables: a symlink, which vrid never follows"
	for _, args := range [][]string{{"ps"}, {"tables", "planted"}} {
		res := vrid(t, stateDir, args...)
		if res.Code != 1 || !strings.Contains(res.Stderr, refused) {
			t.Errorf("vrid %s: want exit status 1 saying %q\n%s", strings.Join(args, " "), refused, res)
		}
	}
	res := c.finish(t)
	if res.Code != 0 || !strings.Contains(res.Stderr, refused) {
		t.Errorf("vrid run: want exit status 0 and a teardown saying %q\n%s", refused, res)
	}
	st, err := os.Lstat(victim)
	data, rerr := os.ReadFile(victim)
	if err != nil || rerr != nil || st.Mode() != 0o600 || string(data) != "host data\n" {
		t.Errorf("victim is now %v %q (%v, %v), want -rw------- \"host data\\n\"", st.Mode(), data, err, rerr)
	}
	checkNoLeaks(t, stateDir, readIPC(t))
}
