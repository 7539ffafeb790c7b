package vresource

import (
	"bytes"
	"cmp"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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
	return attach(path, f, mem), nil
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

// writeHeader writes the header of a new file, and the head of its IPC
// records, into mem, the whole zeroed file.
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
	h.NSections = 1
	h.Sections[0] = lay.records
	recordsAt(mem, lay.records).Capacity = recordCapacity(slots)
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
// layer does when it attaches, but for the AID, which it reads from the
// file: a file Go accepts is one C accepts (TestOpenCorrupt runs both).
// The file stays open (close-on-exec) for the writer lock.
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
		f.Close()
		return nil, fmt.Errorf("open tables %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if st.Size() < TableHeaderSize {
		return fail(fmt.Errorf("%w: %d bytes, shorter than the header", ErrCorrupt, st.Size()))
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail(fmt.Errorf("map: %w", err))
	}
	if why := checkFile(overlay(mem), uint64(len(mem))); why != "" {
		unix.Munmap(mem)
		return fail(fmt.Errorf("%w: %s", ErrCorrupt, why))
	}
	return attach(path, f, mem), nil
}

// checkFile returns why a mapped file is unusable, or "".
func checkFile(h *header, size uint64) string {
	switch {
	case h.Magic != TableMagic:
		return fmt.Sprintf("bad magic %#x", h.Magic)
	case h.Version != TableVersion:
		return fmt.Sprintf("unsupported version %d", h.Version)
	case h.HeaderSize != TableHeaderSize:
		return fmt.Sprintf("header size %d, want %d", h.HeaderSize, TableHeaderSize)
	case h.FileSize != size:
		return fmt.Sprintf("header says %d bytes, file has %d", h.FileSize, size)
	case bytes.IndexByte(h.Name[:], 0) < 0:
		return "name not NUL-terminated"
	}
	for rt := range h.Tables {
		if why := checkDesc(&h.Tables[rt], ResourceType(rt), size); why != "" {
			return fmt.Sprintf("%s table: %s", ResourceType(rt), why)
		}
	}
	if why := checkOverlap(h); why != "" {
		return why
	}
	return checkSections(h, size)
}

// checkSections is check_sections of preload/layer.c: every used entry
// lies past the header and inside the file, apart from the indexes and
// from the others; those of a kind both sides know have that kind's
// shape.  Unknown kinds are skipped.
func checkSections(h *header, size uint64) string {
	if h.NSections > SectionsMax {
		return fmt.Sprintf("%d sections, at most %d", h.NSections, SectionsMax)
	}
	for i := range h.NSections {
		s := &h.Sections[i]
		switch {
		case s.Offset%indexAlign != 0:
			return fmt.Sprintf("section %d: offset %d not %d-aligned", i, s.Offset, indexAlign)
		case s.Offset < TableHeaderSize || s.Offset > size || s.Size > size-s.Offset:
			return fmt.Sprintf("section %d: %d..%d outside %d..%d", i, s.Offset, s.Offset+s.Size, TableHeaderSize, size)
		}
		for rt := range h.Tables {
			d := &h.Tables[rt]
			if s.Offset < d.ByVirtOff+2*slotBytes*uint64(d.Slots) && d.ByVirtOff < s.Offset+s.Size {
				return fmt.Sprintf("section %d overlaps the %s indexes", i, ResourceType(rt))
			}
		}
		for j := range i {
			o := &h.Sections[j]
			if s.Offset < o.Offset+o.Size && o.Offset < s.Offset+s.Size {
				return fmt.Sprintf("sections %d and %d overlap", j, i)
			}
		}
		if s.Kind == SectionIPCRecords {
			if why := checkRecords(s); why != "" {
				return fmt.Sprintf("section %d: %s", i, why)
			}
		}
	}
	return ""
}

// checkRecords checks the shape of an IPC records section.  Its head is
// the chain's to write at any time: readers bound it when they read
// (Tables.IPCRecords, records_at of preload/record.c).
func checkRecords(s *section) string {
	if s.EntrySize != recordStruct || s.Size < recordsHead {
		return fmt.Sprintf("IPC records of %d bytes in %d, want %d in at least %d", s.EntrySize, s.Size, recordStruct, recordsHead)
	}
	return ""
}

// checkDesc is check_index of preload/layer.c.
func checkDesc(d *tableDesc, rt ResourceType, size uint64) string {
	indexBytes := 2 * slotBytes * uint64(d.Slots)
	switch {
	case d.Type != uint32(rt):
		return fmt.Sprintf("type %d in slot of type %d", d.Type, uint32(rt))
	case !validSlots(d.Slots):
		return fmt.Sprintf("%d slots, want a power of two from %d to %d", d.Slots, MinSlots, MaxSlots)
	case d.Shift != 32-uint32(bits.TrailingZeros32(d.Slots)):
		return fmt.Sprintf("shift %d for %d slots", d.Shift, d.Slots)
	case d.ByVirtOff%indexAlign != 0:
		return fmt.Sprintf("offset %d not %d-aligned", d.ByVirtOff, indexAlign)
	case d.ByVirtOff < TableHeaderSize || d.ByVirtOff > size || indexBytes > size-d.ByVirtOff:
		return fmt.Sprintf("indexes at %d..%d outside %d..%d",
			d.ByVirtOff, d.ByVirtOff+indexBytes, TableHeaderSize, size)
	case d.FreshBase > d.FreshMax || d.FreshMax > IPCFreshMax:
		return fmt.Sprintf("fresh range %d..%d", d.FreshBase, d.FreshMax)
	case d.FreshNext < d.FreshBase || d.FreshNext > d.FreshMax:
		return fmt.Sprintf("fresh_next %d outside %d..%d", d.FreshNext, d.FreshBase, d.FreshMax)
	case d.Live > d.Slots:
		return fmt.Sprintf("%d live entries in %d slots", d.Live, d.Slots)
	case d.TombsByVirt > d.Slots:
		return fmt.Sprintf("%d removed slots of %d in by_virt", d.TombsByVirt, d.Slots)
	case d.TombsBySys > d.Slots:
		return fmt.Sprintf("%d removed slots of %d in by_sys", d.TombsBySys, d.Slots)
	}
	return ""
}

// checkOverlap is indexes_overlap of preload/layer.c: sorted by offset,
// each pair of indexes must end before the next begins.
func checkOverlap(h *header) string {
	order := []int{0, 1, 2, 3, 4}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(h.Tables[a].ByVirtOff, h.Tables[b].ByVirtOff)
	})
	for i := 1; i < len(order); i++ {
		prev, next := &h.Tables[order[i-1]], &h.Tables[order[i]]
		if prev.ByVirtOff+2*slotBytes*uint64(prev.Slots) > next.ByVirtOff {
			return fmt.Sprintf("%s and %s indexes overlap", ResourceType(order[i-1]), ResourceType(order[i]))
		}
	}
	return ""
}

// attach wraps a mapping whose header is known good, and the open file it
// maps, which the Tables now owns.
func attach(path string, f *os.File, mem []byte) *Tables {
	h := overlay(mem)
	t := &Tables{
		path: path,
		file: f,
		mem:  mem,
		hdr:  h,
		aid:  AID(h.AID),
		name: string(h.Name[:bytes.IndexByte(h.Name[:], 0)]),
	}
	for rt := range t.idx {
		t.idx[rt] = newIndex(mem, ResourceType(rt), &h.Tables[rt], t.settle)
	}
	// The chain may rewrite the directory later: where the records are
	// is read once, checked.
	t.records, t.hasRecords = recordsSection(h)
	return t
}

// Close unmaps and closes the file.
func (t *Tables) Close() error {
	if t.mem == nil {
		return nil
	}
	mem, f := t.mem, t.file
	t.mem, t.hdr, t.file = nil, nil, nil
	var err error
	if !t.private {
		err = unix.Munmap(mem)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close tables %s: %w", t.path, err)
	}
	return nil
}
