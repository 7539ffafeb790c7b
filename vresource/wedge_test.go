package vresource

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lowWaitLimit makes the waits of a test short; the tests assert on the
// outcome of a wait, never on its length.
func lowWaitLimit(t *testing.T) {
	old := WaitLimit
	WaitLimit = 50 * time.Millisecond
	t.Cleanup(func() { WaitLimit = old })
}

// TestWedged holds the writer lock in another description, with or
// without a rebuild left running, and wants every Go operation that
// would wait on it to fail with ErrWedged, saying what holds it up.
func TestWedged(t *testing.T) {
	lowWaitLimit(t)
	lockHeld := fmt.Sprintf("tables of chain %d: writer lock held for 50ms by another process; the chain may be wedged", testAID)
	tests := []struct {
		name    string
		rebuild bool // leave the pid table's rebuild running
		op      func(tb *Tables) error
		want    string
	}{
		{"bind", false, func(tb *Tables) error { _, err := tb.Bind(PID, 42); return err }, lockHeld},
		{"remove", false, func(tb *Tables) error { return tb.RemoveSys(PID, 7) }, lockHeld},
		{"bind key", false, func(tb *Tables) error { _, _, err := tb.BindKey(5); return err }, lockHeld},
		{"bind in a rebuild", true, func(tb *Tables) error { _, err := tb.Bind(PID, 42); return err }, lockHeld},
		{"list in a rebuild", true, func(tb *Tables) error { _, err := tb.List(PID); return err }, lockHeld},
		{"private copy", false, func(tb *Tables) error {
			atomic.StoreUint32(&hdrOf(tb).Dirty, uint32(PID)+1)
			return readCopyOf(tb)
		}, lockHeld},
		{"private copy in a rebuild", true, func(tb *Tables) error { return readCopyOf(tb) }, lockHeld},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(t, TableOptions{Slots: small()})
			mustBind(t, tb, PID, 7)
			held := holdInProcess(t, tb.path)
			defer held.unlock()
			if tt.rebuild {
				beginRebuild(tb, PID)
			}
			err := tt.op(tb)
			if !errors.Is(err, ErrWedged) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrWedged saying %q", err, tt.want)
			}
		})
	}
}

func readCopyOf(tb *Tables) error {
	f, err := os.Open(tb.path)
	if err != nil {
		return err
	}
	cp, err := ReadTables(f)
	if err != nil {
		f.Close()
		return err
	}
	return cp.Close()
}

// TestReadTables: a private copy lists what the file holds, repairs in
// itself what a writer that died left, leaving the file as it is, takes
// no writes, and refuses a file of the wrong size.
func TestReadTables(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	mustBind(t, tb, PID, 7)
	mustBind(t, tb, Sem, 9)
	beginRebuild(tb, PID) // its writer died: nobody holds the lock
	open := func() *Tables {
		t.Helper()
		f, err := os.Open(tb.path)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := ReadTables(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cp.Close() })
		return cp
	}
	cp := open()
	if got, err := cp.List(PID); err != nil || len(got) != 1 || got[0] != (Entry{PID, 7, 7}) {
		t.Errorf("pid entries %v, %v; want [{pid 7 7}]", got, err)
	}
	if got := atomic.LoadUint32(&descOf(tb, PID).Rebuilds); got&1 == 0 {
		t.Errorf("the copy's repair reached the file: rebuilds %d", got)
	}
	if _, err := cp.Bind(PID, 8); !errors.Is(err, errPrivate) {
		t.Errorf("bind in a copy: %v, want %v", err, errPrivate)
	}
	// A copy is the file as it was.
	mustBind(t, tb, Sem, 10)
	if got := cp.Entries(Sem); len(got) != 1 {
		t.Errorf("the copy changed with the file: %v", got)
	}
	for _, size := range []int64{TableHeaderSize - 1, 4096, 3 * 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if err := os.Truncate(tb.path, size); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(tb.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if cp, err := ReadTables(f); !errors.Is(err, ErrCorrupt) {
				if err == nil {
					cp.Close()
				}
				t.Errorf("read a file of %d bytes: %v, want ErrCorrupt", size, err)
			}
		})
	}
}

// TestShrunkUnderMapping truncates the file under a shared mapping: the
// host process that maps it gets ErrShrunk, or reads nothing, not SIGBUS
// in the engine's C code.
func TestShrunkUnderMapping(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	mustBind(t, tb, PID, 7)
	if err := os.Truncate(tb.path, 0); err != nil {
		t.Fatal(err)
	}
	ops := map[string]func() error{
		"bind":   func() error { _, err := tb.Bind(PID, 42); return err },
		"remove": func() error { return tb.RemoveSys(PID, 7) },
		"list":   func() error { _, err := tb.List(PID); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			if err := op(); !errors.Is(err, ErrShrunk) {
				t.Errorf("%v, want ErrShrunk", err)
			}
		})
	}
	t.Run("reads", func(t *testing.T) {
		_, found := tb.Lookup(PID, 7)
		_, foundSys := tb.Reverse(PID, 7)
		if found || foundSys || tb.Live(PID) != 0 || tb.Generation() != 0 || len(tb.IPCRecords()) != 0 {
			t.Errorf("lookup %v, reverse %v, live %d, generation %d, records %v: want nothing",
				found, foundSys, tb.Live(PID), tb.Generation(), tb.IPCRecords())
		}
	})
}
