package vresource

import (
	"bytes"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TableOptions shape a new table file.
type TableOptions struct {
	Name       string                  // the chain's name, at most TableNameMax-1 bytes
	Slots      map[ResourceType]uint32 // per index; absent or 0: the default
	Sequential bool                    // virtual ids are always fresh
	Mode       os.FileMode             // the file's; 0: 0600
}

// CreateTables makes the table file of a chain at path, which must not
// exist, as CreateTablesIn does in path's directory.
func CreateTables(path string, aid AID, opt TableOptions) (*Tables, error) {
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create tables %s: %w", path, err)
	}
	defer dir.Close()
	return CreateTablesIn(dir, filepath.Base(path), aid, opt)
}

// CreateTablesIn makes the table file of a chain as name in the open
// directory dir; name must not exist.  The file is built under a
// temporary name in the same directory and then linked into place, so
// that nobody ever maps half a header and an existing file is never
// replaced; neither step follows a symlink.  The file has opt.Mode, 0600
// if unset: chain processes running as another user need it handed over,
// as an fd (VRID_TABLE_FD) or by a wider mode.
func CreateTablesIn(dir *os.File, name string, aid AID, opt TableOptions) (*Tables, error) {
	path := filepath.Join(dir.Name(), name)
	slots, err := resolveSlots(opt.Slots)
	if err != nil {
		return nil, fmt.Errorf("create tables %s: %w", path, err)
	}
	if err := checkTableName(opt.Name); err != nil {
		return nil, fmt.Errorf("create tables %s: %w", path, err)
	}
	if aid == 0 {
		return nil, fmt.Errorf("create tables %s: aid 0 names no chain", path)
	}
	lay := fileLayout(slots)
	return createIn(dir, name, opt.Mode, int64(lay.size), func(mem []byte) error {
		writeHeader(mem, aid, opt, slots, lay)
		return nil
	})
}

// createIn makes name in dir with mode (0: 0600) and size bytes, which
// fill writes through a shared mapping before the file is linked into
// place under its name, and returns it mapped.  The file is built under a
// temporary name, so that nobody ever maps half a header, and linked, so
// that an existing file is never replaced; neither step follows a
// symlink.
func createIn(dir *os.File, name string, mode os.FileMode, size int64, fill func(mem []byte) error) (*Tables, error) {
	path := filepath.Join(dir.Name(), name)
	// The temporary file's description stays open for the writer lock.
	tmp := fmt.Sprintf(".%s.tmp-%d", name, rand.Uint64())
	fd, err := unix.Openat(int(dir.Fd()), tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create tables %s: %w", path, &os.PathError{Op: "create", Path: tmp, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer unix.Unlinkat(int(dir.Fd()), tmp, 0)
	fail := func(err error) (*Tables, error) {
		f.Close()
		return nil, fmt.Errorf("create tables %s: %w", path, err)
	}
	if mode != 0 {
		if err := f.Chmod(mode); err != nil {
			return fail(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("map: %w", err))
	}
	if err := fill(mem); err != nil {
		unix.Munmap(mem)
		return fail(err)
	}
	// Link, not rename: rename would silently replace an existing file.
	if err := unix.Linkat(int(dir.Fd()), tmp, int(dir.Fd()), name, 0); err != nil {
		unix.Munmap(mem)
		return fail(&os.LinkError{Op: "link", Old: tmp, New: path, Err: err})
	}
	t, err := attachShared(path, f, mem)
	if err != nil {
		return nil, fmt.Errorf("create tables %s: %w", path, err)
	}
	return t, nil
}

// FileSize is the size of the table file that CreateTables makes with opt.
func FileSize(opt TableOptions) (int64, error) {
	slots, err := resolveSlots(opt.Slots)
	if err != nil {
		return 0, err
	}
	return int64(fileLayout(slots).size), nil
}

func resolveSlots(want map[ResourceType]uint32) ([NumResourceTypes]uint32, error) {
	var slots [NumResourceTypes]uint32
	for rt := range want {
		if !rt.valid() {
			return slots, fmt.Errorf("slots for unknown resource type %d", uint32(rt))
		}
	}
	for rt := range slots {
		n := want[ResourceType(rt)]
		if n == 0 {
			n = defaultSlots(ResourceType(rt))
		}
		if !validSlots(n) {
			return slots, fmt.Errorf("%s slots %d: want a power of two from %d to %d",
				ResourceType(rt), n, MinSlots, MaxSlots)
		}
		slots[rt] = n
	}
	return slots, nil
}

func validSlots(n uint32) bool {
	return n >= MinSlots && n <= MaxSlots && n&(n-1) == 0
}

func checkTableName(name string) error {
	if len(name) >= TableNameMax {
		return fmt.Errorf("chain name %q is %d bytes; the limit is %d", name, len(name), TableNameMax-1)
	}
	if bytes.IndexByte([]byte(name), 0) >= 0 {
		return fmt.Errorf("chain name %q holds a NUL byte", name)
	}
	return nil
}

func overlay(mem []byte) *header {
	return (*header)(unsafe.Pointer(&mem[0]))
}

// writeHeader writes the header of a new file, and the heads of its IPC
// records and SEM_UNDO adjustments, into mem, the whole zeroed file.
func writeHeader(mem []byte, aid AID, opt TableOptions, slots [NumResourceTypes]uint32, lay layout) {
	h := overlay(mem)
	h.Magic = TableMagic
	h.Version = TableVersion
	h.HeaderSize = TableHeaderSize
	if opt.Sequential {
		h.Flags |= FlagSequential
	}
	h.AID = uint64(aid)
	h.FileSize = lay.size
	copy(h.Name[:], opt.Name)
	h.NSections = 2
	h.Sections[0] = lay.records
	h.Sections[1] = lay.semAdjs
	recordsAt(mem, lay.records).Capacity = recordCapacity(slots)
	(*semAdjHead)(unsafe.Pointer(&mem[lay.semAdjs.Offset])).Capacity = semAdjCapacity(slots)
	for rt := range h.Tables {
		base, limit := freshRange(ResourceType(rt))
		h.Tables[rt] = tableDesc{
			Type:      uint32(rt),
			Slots:     slots[rt],
			Shift:     32 - uint32(bits.TrailingZeros32(slots[rt])),
			ByVirtOff: lay.offs[rt],
			FreshNext: base,
			FreshBase: base,
			FreshMax:  limit,
		}
	}
}

// OpenTables maps an existing table file and checks it as the preload
// layer does when it attaches, with the same code, but for the AID,
// which it reads from the file.  The file stays open (close-on-exec) for
// the writer lock.
func OpenTables(path string) (*Tables, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open tables %s: %w", path, err)
	}
	return MapTables(f)
}

// MapTables maps the table file open read-write at f, shared, as
// OpenTables does, and owns f from then on, on failure too.
func MapTables(f *os.File) (*Tables, error) {
	path := f.Name()
	fail := func(err error) (*Tables, error) {
		return nil, fmt.Errorf("open tables %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fail(err)
	}
	if st.Size() < TableHeaderSize {
		// Too short to map whole pages of: the engine refuses it unmapped.
		f.Close()
		_, err := attachEngine(path, nil, uint64(st.Size()), -1, true)
		return fail(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return fail(fmt.Errorf("map: %w", err))
	}
	t, err := attachShared(path, f, mem)
	if err != nil {
		return fail(err)
	}
	return t, nil
}

// attachShared hands a shared mapping of the file open at f to a new
// engine handle, which checks it and locks through a description of its
// own.  f is closed; so is mem, on failure.
func attachShared(path string, f *os.File, mem []byte) (*Tables, error) {
	defer f.Close()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("keep a description for the writer lock: %w", err)
	}
	t, err := attachEngine(path, mem, uint64(len(mem)), fd, false)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return t, nil
}

// attachEngine opens an engine handle on mem, size bytes of a table file
// at path: a shared mapping, locked through lockFD, which the handle
// owns from then on, or a private copy in C memory (lockFD -1).
func attachEngine(path string, mem []byte, size uint64, lockFD int, private bool) (*Tables, error) {
	var h header
	var base unsafe.Pointer
	if len(mem) > 0 {
		base = unsafe.Pointer(&mem[0])
	}
	eng, why, errno := openEngine(base, size, path, lockFD, private, WaitLimit, &h)
	switch errno {
	case 0:
	case unix.EINVAL:
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, why)
	case unix.EFAULT:
		return nil, fmt.Errorf("%w while checked", ErrShrunk)
	default:
		return nil, errno
	}
	return &Tables{
		path:    path,
		eng:     eng,
		mem:     mem,
		private: private,
		wait:    WaitLimit,
		aid:     AID(h.AID),
		name:    string(h.Name[:bytes.IndexByte(h.Name[:], 0)]),
		flags:   h.Flags,
	}, nil
}
