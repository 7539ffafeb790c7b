package snapshot

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"

	"github.com/vrid/vrid/criu"
)

// glibc caches each thread's tid in its struct pthread, which the thread
// pointer (fs_base on x86_64) points to, and uses the cache in
// pthread_kill, pthread_mutex_* (owner checks, robust lists) and
// raise.  A restored thread has a new tid, so before the tree resumes
// the cache gets it.  Where the field lies glibc says itself, for
// debuggers: the symbol _thread_db_pthread_tid is a descriptor of three
// 32-bit words, the field's size in bits, a count and its byte offset.

const tidSymbol = "_thread_db_pthread_tid"

// errNoLibc: the process maps no glibc, so it has no cache to patch.
var errNoLibc = errors.New("no libc.so.6 mapped")

// patchTids writes the new tid of every thread of the restored tree into
// its glibc cache.  dir holds the rewritten images (core-<tid>.img under
// the new tids), tree is the tree as it was dumped and pids maps its ids
// to the new ones.  proc is a procfs of the pid namespace the tree lives
// in, where its pids name it: /proc for a chain of vrid run.
func patchTids(proc, dir string, tree *criu.Tree, pids map[int]int) error {
	offsets := map[string]uint32{} // by libc file, as map_files names it
	for _, p := range tree.Procs {
		pid := pids[p.Pid]
		lib, err := libcOf(proc, pid)
		if errors.Is(err, errNoLibc) {
			continue
		}
		if err != nil {
			return fmt.Errorf("patch tids of %d: %w", pid, err)
		}
		off, ok := offsets[lib.id]
		if !ok {
			if off, err = tidOffset(lib.path); err != nil {
				return fmt.Errorf("patch tids of %d: %w", pid, err)
			}
			offsets[lib.id] = off
		}
		mem, err := os.OpenFile(fmt.Sprintf("%s/%d/mem", proc, pid), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("patch tids of %d: %w", pid, err)
		}
		for _, old := range p.Threads {
			tid := pids[old]
			base, err := fsBase(dir, tid)
			if err == nil && base == 0 {
				err = fmt.Errorf("thread %d has no thread pointer", tid)
			}
			if err == nil {
				var b [4]byte
				binary.LittleEndian.PutUint32(b[:], uint32(tid))
				_, err = mem.WriteAt(b[:], int64(base+uint64(off)))
			}
			if err != nil {
				mem.Close()
				return fmt.Errorf("patch tid of thread %d (was %d) of %d: %w", tid, old, pid, err)
			}
		}
		mem.Close()
	}
	return nil
}

// mappedLib is a library a process maps: a path that opens it whatever
// the process's mount namespace (its map_files link), and an identity.
type mappedLib struct {
	path string
	id   string // device and inode
}

// libcOf finds the glibc that process pid of procfs proc maps.
func libcOf(proc string, pid int) (mappedLib, error) {
	f, err := os.Open(fmt.Sprintf("%s/%d/maps", proc, pid))
	if err != nil {
		return mappedLib{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || filepath.Base(fields[5]) != "libc.so.6" {
			continue
		}
		return mappedLib{
			path: fmt.Sprintf("%s/%d/map_files/%s", proc, pid, fields[0]),
			id:   fields[3] + ":" + fields[4],
		}, nil
	}
	if err := sc.Err(); err != nil {
		return mappedLib{}, err
	}
	return mappedLib{}, errNoLibc
}

// tidOffset reads where struct pthread keeps the tid from the glibc at
// path.
func tidOffset(path string) (uint32, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("glibc %s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return 0, fmt.Errorf("glibc %s: %w", path, err)
	}
	for _, s := range syms {
		if s.Name != tidSymbol {
			continue
		}
		if int(s.Section) >= len(f.Sections) || s.Size != 12 {
			break
		}
		sec := f.Sections[s.Section]
		var desc [12]byte
		if _, err := sec.ReadAt(desc[:], int64(s.Value-sec.Addr)); err != nil {
			return 0, fmt.Errorf("glibc %s: %s: %w", path, tidSymbol, err)
		}
		bits := binary.LittleEndian.Uint32(desc[0:])
		count := binary.LittleEndian.Uint32(desc[4:])
		off := binary.LittleEndian.Uint32(desc[8:])
		if bits != 32 || count != 1 {
			return 0, fmt.Errorf("glibc %s: %s describes %d×%d bits, not one 32-bit tid", path, tidSymbol, count, bits)
		}
		return off, nil
	}
	return 0, fmt.Errorf("glibc %s: no 12-byte %s: this glibc does not say where it caches thread ids", path, tidSymbol)
}

// fsBase reads a thread's thread pointer from its core image.
func fsBase(dir string, tid int) (uint64, error) {
	f, err := os.Open(filepath.Join(dir, "core-"+strconv.Itoa(tid)+".img"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, false).Decode(&criu_core.CoreEntry{})
	if err != nil {
		return 0, fmt.Errorf("core of %d: %w", tid, err)
	}
	if len(img.Entries) != 1 {
		return 0, fmt.Errorf("core of %d: %d entries", tid, len(img.Entries))
	}
	core := img.Entries[0].Message.(*criu_core.CoreEntry)
	return core.GetThreadInfo().GetGpregs().GetFsBase(), nil
}
