package vresource

import (
	"cmp"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// deadPid is a pid no process or group can have: above PID_MAX_LIMIT.
const deadPid = PIDFreshMax + 1

func TestFullPidTableDropsDeadProcesses(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	for i := range int32(11) {
		mustBind(t, tb, PID, deadPid+i)
	}
	self := int32(os.Getpid())
	mustBind(t, tb, PID, self)
	if got := mustBind(t, tb, PID, 4000); got != 4000 {
		t.Errorf("bind on a full table of dead pids: %d, want 4000", got)
	}
	want := []Entry{{PID, 4000, 4000}, {PID, self, self}}
	slices.SortFunc(want, func(a, b Entry) int { return cmp.Compare(a.Virt, b.Virt) })
	if got := tb.Entries(PID); !slices.Equal(got, want) || tb.Live(PID) != 2 {
		t.Errorf("entries %v live %d, want %v", tb.Entries(PID), tb.Live(PID), want)
	}
}

func TestFullPidTableOfLiveProcesses(t *testing.T) {
	tb := newTables(t, TableOptions{Slots: small()})
	for range 12 {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Skipf("start sleep: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		mustBind(t, tb, PID, int32(cmd.Process.Pid))
	}
	_, err := tb.Bind(PID, deadPid)
	want := "pid table full (12 entries in 16 slots); raise [tables] pid_slots in config.toml"
	if !errors.Is(err, ErrFull) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("bind 13th: %v\nwant ...%s", err, want)
	}
	if tb.Live(PID) != 12 {
		t.Errorf("live %d after a failed collection, want 12", tb.Live(PID))
	}
}
