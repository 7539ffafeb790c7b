package quiesce

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/<pid>/maps.
type Mapping struct {
	Start, End uint64
	Perms      string // "rw-s"
	Offset     uint64
	Inode      uint64 // a System V mapping's shmid
	Path       string // "" for an anonymous mapping
}

// SysV says whether m maps a System V shared memory segment: the kernel
// names those /SYSV<key> (deleted), as the layer's handler reads them.
func (m Mapping) SysV() bool {
	return strings.HasPrefix(m.Path, "/SYSV")
}

// Reserved says whether m is what the layer leaves over a detached
// segment: an anonymous private mapping that allows nothing.
func (m Mapping) Reserved() bool {
	return m.Path == "" && m.Inode == 0 && m.Perms == "---p"
}

func (m Mapping) String() string {
	return fmt.Sprintf("%x-%x %s %s", m.Start, m.End, m.Perms, m.Path)
}

// ReadMaps reads /proc/<pid>/maps.
func ReadMaps(pid int) ([]Mapping, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	maps, err := ParseMaps(f)
	if err != nil {
		return nil, fmt.Errorf("/proc/%d/maps: %w", pid, err)
	}
	return maps, nil
}

// ParseMaps parses the text of a /proc/<pid>/maps file.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var maps []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		m, err := parseMapsLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		maps = append(maps, m)
	}
	return maps, sc.Err()
}

// parseMapsLine parses "start-end perms offset dev inode [path]"; the
// path may hold spaces.
func parseMapsLine(line string) (Mapping, error) {
	var m Mapping
	f := strings.SplitN(line, " ", 6)
	if len(f) < 5 {
		return m, fmt.Errorf("%q: want at least 5 fields", line)
	}
	start, end, ok := strings.Cut(f[0], "-")
	var err error
	if !ok {
		return m, fmt.Errorf("%q: no address range", line)
	}
	if m.Start, err = strconv.ParseUint(start, 16, 64); err != nil {
		return m, fmt.Errorf("%q: %w", line, err)
	}
	if m.End, err = strconv.ParseUint(end, 16, 64); err != nil {
		return m, fmt.Errorf("%q: %w", line, err)
	}
	m.Perms = f[1]
	if m.Offset, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return m, fmt.Errorf("%q: %w", line, err)
	}
	if m.Inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return m, fmt.Errorf("%q: %w", line, err)
	}
	if len(f) == 6 {
		m.Path = strings.TrimLeft(f[5], " ")
	}
	return m, nil
}

// sysV keeps the System V mappings of maps.
func sysV(maps []Mapping) []Mapping {
	var out []Mapping
	for _, m := range maps {
		if m.SysV() {
			out = append(out, m)
		}
	}
	return out
}

// signalMasks reads the process-wide caught mask and the main thread's
// blocked mask from /proc/<pid>/status.
func signalMasks(pid int) (caught, blocked uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	return parseSignalMasks(string(data))
}

func parseSignalMasks(status string) (caught, blocked uint64, err error) {
	var seen int
	for _, line := range strings.Split(status, "\n") {
		name, value, _ := strings.Cut(line, ":")
		var dst *uint64
		switch name {
		case "SigCgt":
			dst = &caught
		case "SigBlk":
			dst = &blocked
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(strings.TrimSpace(value), 16, 64); err != nil {
			return 0, 0, fmt.Errorf("status %s: %w", name, err)
		}
		seen++
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("status: no SigCgt and SigBlk lines")
	}
	return caught, blocked, nil
}
