package vresource

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Owner is the process that runs a chain: the vrid run command, or the
// containerd shim.  A pid alone would outlive its process; the start time
// tells a reused pid from the owner.
type Owner struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // field 22 of /proc/<pid>/stat, in clock ticks
	Kind      string `json:"kind"`       // "run", "containerd"
}

// OwnerOf describes a running process as an Owner; Kind is left to the
// caller.
func OwnerOf(pid int) (Owner, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Owner{}, fmt.Errorf("owner of pid %d: %w", pid, err)
	}
	start, err := statStartTime(stat)
	if err != nil {
		return Owner{}, fmt.Errorf("owner of pid %d: %w", pid, err)
	}
	return Owner{Pid: pid, StartTime: start}, nil
}

// statStartTime reads field 22 of a /proc/<pid>/stat line.  The command
// name, field 2, may hold spaces and parentheses, so fields are counted
// from its closing parenthesis, the last one in the line.
func statStartTime(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("stat line without a command name")
	}
	fields := bytes.Fields(stat[end+1:])
	const startField = 22 - 3 // fields[0] is field 3, the state
	if len(fields) <= startField {
		return 0, fmt.Errorf("stat line has %d fields, want at least 22", len(fields)+2)
	}
	return strconv.ParseUint(string(fields[startField]), 10, 64)
}

// alive reports whether the owner still runs.  Only a missing process,
// or a dead one not yet reaped, counts as gone (ESRCH: it went between
// open and read); any other failure to read /proc leaves the chain alone.
func (o Owner) alive() bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(o.Pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return false
	}
	if err != nil {
		return true
	}
	start, err := statStartTime(stat)
	return err != nil || start == o.StartTime && !statZombie(stat)
}

// statZombie reads field 3 of a /proc/<pid>/stat line, the state: Z or X
// is a process that has exited.
func statZombie(stat []byte) bool {
	end := bytes.LastIndexByte(stat, ')')
	fields := bytes.Fields(stat[end+1:])
	return len(fields) > 0 && (fields[0][0] == 'Z' || fields[0][0] == 'X')
}
