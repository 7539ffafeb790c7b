package sysv

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

type semSpec struct {
	name   string
	vkey   int32
	values []uint16
	perm   Perm
}

type shmSpec struct {
	name    string
	vkey    int32
	size    int
	fill    func([]byte)
	perm    Perm
	locked  bool
	removed bool // IPC_RMID while attached
	// maxBlocks bounds the 512-byte blocks its image file may use: holes
	// where the segment had no pages.
	maxBlocks int64
}

type msgSpec struct {
	name   string
	vkey   int32
	qbytes uint64
	msgs   []Message
	perm   Perm
}

const (
	MiB = 1 << 20
	// The chain's keys on the old host, and on the new one: both are
	// private system keys derived from the virtual one.
	oldKeyBits = 0x5a000000
	newKeyBits = 0x3c000000
)

func root(mode uint32) Perm { return Perm{Mode: mode} }

func pattern(b []byte) {
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
}

// sparse writes one page at the start, one in the middle and the last
// byte: the rest of the segment never gets a page.
func sparse(b []byte) {
	copy(b, "start")
	copy(b[len(b)/2:], "middle")
	b[len(b)-1] = 0xee
}

func filled(c byte) func([]byte) {
	return func(b []byte) {
		for i := range b {
			b[i] = c
		}
	}
}

var (
	semSpecs = []semSpec{
		{name: "one semaphore", values: []uint16{7}, perm: root(0o600)},
		{name: "fixed key, other owner", vkey: 0x1111, values: []uint16{0, 1, semValMax},
			perm: Perm{UID: 1234, GID: 5678, Mode: 0o640}},
		{name: "other creator, 250 semaphores", values: seq(250),
			perm: Perm{UID: 1000, GID: 1000, CUID: 4321, CGID: 8765, Mode: 0o666}},
	}
	shmSpecs = []shmSpec{
		{name: "one page", size: 4096, fill: filled('a'), perm: root(0o600), maxBlocks: 8},
		{name: "odd size, fixed key", vkey: 0x2222, size: 10000, fill: pattern,
			perm: Perm{UID: 1000, GID: 1000, CUID: 1000, CGID: 1000, Mode: 0o644}, maxBlocks: 24},
		{name: "64 MiB pattern", size: 64 * MiB, fill: pattern, perm: root(0o660), maxBlocks: 64 * MiB / 512},
		{name: "16 MiB sparse", size: 16 * MiB, fill: sparse, perm: root(0o600), maxBlocks: 3 * MiB / 512 * 3},
		{name: "untouched", size: 8 * MiB, fill: func([]byte) {}, perm: root(0o600), maxBlocks: 0},
		{name: "zero pages written", size: 4 * MiB, fill: filled(0), perm: root(0o600), maxBlocks: 0},
		{name: "locked", size: MiB, fill: filled(0xff), perm: root(0o600), locked: true, maxBlocks: MiB / 512},
		{name: "removed, still attached", size: 2 * 4096, fill: filled('r'), perm: root(0o600), removed: true, maxBlocks: 16},
	}
	msgSpecs = []msgSpec{
		{name: "several types and sizes", vkey: 0x3333, qbytes: 12000, perm: Perm{UID: 1000, GID: 100, Mode: 0o620},
			msgs: []Message{
				{Type: 1, Data: []byte{}},
				{Type: 5, Data: []byte("x")},
				{Type: 2, Data: bytes.Repeat([]byte("0123456789"), 10)},
				{Type: 7, Data: bytes.Repeat([]byte{0, 1, 2, 3}, 2000)},
				{Type: 1, Data: []byte("last")},
			}},
		{name: "more than its qbytes", qbytes: 10, perm: root(0o600),
			msgs: []Message{{Type: 2, Data: bytes.Repeat([]byte("a"), 100)}, {Type: 3, Data: []byte{}}, {Type: 2, Data: []byte("b")}}},
		{name: "empty, large qbytes", qbytes: 65536, perm: root(0o600), msgs: []Message{}},
		{name: "private, one big message", qbytes: 200000, perm: root(0o666),
			msgs: []Message{{Type: 1 << 40, Data: bytes.Repeat([]byte("m"), 8192)}}},
	}
)

func seq(n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = uint16(i * 100)
	}
	return out
}

func sysKey(vkey int32, bits int32) int32 {
	if vkey == ipcPrivate {
		return ipcPrivate
	}
	return vkey | bits
}

// fixture is the objects of the specs, created for real.
type fixture struct {
	objects  []Object
	detach   [][]byte // attachments of removed segments
	segSums  map[int32][sha256.Size]byte
	segFills map[int32]int // spec index by virtual id
}

func createFixture(t *testing.T) *fixture {
	t.Helper()
	fx := &fixture{segSums: map[int32][sha256.Size]byte{}, segFills: map[int32]int{}}
	for i, s := range semSpecs {
		id := mustSemget(t, sysKey(s.vkey, oldKeyBits), len(s.values), s.perm)
		vals := slices.Clone(s.values)
		if err := semctl(id, 0, setAll, unsafe.Pointer(unsafe.SliceData(vals))); err != nil {
			t.Fatal(err)
		}
		mustSetPerm(t, vresource.Sem, id, s.perm)
		fx.objects = append(fx.objects, Object{vresource.Sem, int32(100 + i), id, s.vkey, sysKey(s.vkey, oldKeyBits)})
	}
	for i, s := range shmSpecs {
		id := mustShmget(t, sysKey(s.vkey, oldKeyBits), s.size, s.perm)
		mem, err := unix.SysvShmAttach(int(id), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		s.fill(mem)
		want := make([]byte, s.size)
		s.fill(want)
		virt := int32(200 + i)
		fx.segSums[virt] = sha256.Sum256(want)
		fx.segFills[virt] = i
		mustSetPerm(t, vresource.Shm, id, s.perm)
		if s.locked {
			if err := shmctl(id, shmLock, nil); err != nil {
				t.Fatal(err)
			}
		}
		if s.removed {
			fx.detach = append(fx.detach, mem)
			remove(t, vresource.Shm, id)
		} else if err := unix.SysvShmDetach(mem); err != nil {
			t.Fatal(err)
		}
		fx.objects = append(fx.objects, Object{vresource.Shm, virt, id, s.vkey, sysKey(s.vkey, oldKeyBits)})
	}
	for i, s := range msgSpecs {
		id := mustMsgget(t, sysKey(s.vkey, oldKeyBits), s.perm)
		if err := fillMsg(id, Queue{Perm: s.perm, QBytes: s.qbytes, Messages: s.msgs}); err != nil {
			t.Fatal(err)
		}
		fx.objects = append(fx.objects, Object{vresource.Msg, int32(300 + i), id, s.vkey, sysKey(s.vkey, oldKeyBits)})
	}
	return fx
}

// removeOriginals removes the fixture's objects, then fills each old id
// with another object, made to land there through *_next_id, and returns
// those.
func (fx *fixture) removeOriginals(t *testing.T) []Rebind {
	t.Helper()
	for _, mem := range fx.detach {
		if err := unix.SysvShmDetach(mem); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range fx.objects {
		if o.Type != vresource.Shm || !shmSpecs[fx.segFills[o.VirtID]].removed {
			remove(t, o.Type, o.SysID)
		}
	}
	var squatters []Rebind
	for _, o := range fx.objects {
		setNextID(t, o.Type, o.SysID)
		var id int32
		switch o.Type {
		case vresource.Sem:
			id = mustSemget(t, ipcPrivate, 1, root(0o600))
		case vresource.Shm:
			id = mustShmget(t, ipcPrivate, 4096, root(0o600))
		case vresource.Msg:
			id = mustMsgget(t, ipcPrivate, root(0o600))
		}
		if id != o.SysID {
			t.Fatalf("%s squatter got id %d, want the old id %d", o.Type, id, o.SysID)
		}
		squatters = append(squatters, Rebind{Type: o.Type, NewSys: id})
	}
	return squatters
}

func statPerm(t *testing.T, rt vresource.ResourceType, id int32) (unix.SysvIpcPerm, uint64) {
	t.Helper()
	switch rt {
	case vresource.Sem:
		var ds semid64DS
		if err := semctl(id, 0, unix.IPC_STAT, unsafe.Pointer(&ds)); err != nil {
			t.Fatalf("stat sem %d: %v", id, err)
		}
		return ds.Perm, ds.Nsems
	case vresource.Shm:
		var ds unix.SysvShmDesc
		if err := shmctl(id, unix.IPC_STAT, &ds); err != nil {
			t.Fatalf("stat shm %d: %v", id, err)
		}
		return ds.Perm, ds.Segsz
	default:
		var ds msqid64DS
		if err := msgctl(id, unix.IPC_STAT, &ds); err != nil {
			t.Fatalf("stat msg %d: %v", id, err)
		}
		return ds.Perm, ds.Qbytes
	}
}

func checkPerm(t *testing.T, got unix.SysvIpcPerm, key int32, want Perm, flags uint32) {
	t.Helper()
	if got.Key != key || got.Uid != want.UID || got.Gid != want.GID || got.Cuid != want.CUID || got.Cgid != want.CGID || got.Mode != want.Mode|flags {
		t.Errorf("perm: key %#x uid %d gid %d cuid %d cgid %d mode %#o, want key %#x uid %d gid %d cuid %d cgid %d mode %#o",
			uint32(got.Key), got.Uid, got.Gid, got.Cuid, got.Cgid, got.Mode,
			uint32(key), want.UID, want.GID, want.CUID, want.CGID, want.Mode|flags)
	}
}

// TestSaveRestore saves real objects, removes them, takes their ids with
// other objects, restores, and reads every object back through other
// calls than Save and Restore use.
func TestSaveRestore(t *testing.T) {
	// This machine's root may lack CAP_SYS_RESOURCE, which a qbytes over
	// kernel.msgmnb needs; the namespace is the test's own.
	setSysctl(t, "msgmnb", "262144")
	before := countAll(t)
	fx := createFixture(t)
	dir := t.TempDir()
	st, err := Save(dir, fx.objects, nil)
	if err != nil {
		t.Fatal(err)
	}
	saved := readDir(t, dir)

	t.Run("save takes no message away", func(t *testing.T) {
		for i, o := range fx.objects[len(semSpecs)+len(shmSpecs):] {
			var ds msqid64DS
			if err := msgctl(o.SysID, unix.IPC_STAT, &ds); err != nil {
				t.Fatal(err)
			}
			if ds.Qnum != uint64(len(msgSpecs[i].msgs)) {
				t.Errorf("%s: %d messages after Save, want %d", msgSpecs[i].name, ds.Qnum, len(msgSpecs[i].msgs))
			}
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		dir2 := t.TempDir()
		reversed := slices.Clone(fx.objects)
		slices.Reverse(reversed)
		if _, err := Save(dir2, reversed, nil); err != nil {
			t.Fatal(err)
		}
		again := readDir(t, dir2)
		if len(again) != len(saved) {
			t.Fatalf("second Save wrote %d files, first %d", len(again), len(saved))
		}
		for name, b := range saved {
			if !bytes.Equal(again[name], b) {
				t.Errorf("%s differs between two Saves of the same objects", name)
			}
		}
	})
	t.Run("files", func(t *testing.T) {
		want := []string{}
		for i := range shmSpecs {
			want = append(want, segmentFile(int32(200+i)))
		}
		want = append(want, StateFile)
		if got := st.Files(); !slices.Equal(got, want) {
			t.Errorf("Files() = %v, want %v", got, want)
		}
		if len(saved) != len(want) {
			t.Errorf("dir has %d files, want %d (no temporary file left)", len(saved), len(want))
		}
		for i, s := range shmSpecs {
			var fst unix.Stat_t
			if err := unix.Stat(filepath.Join(dir, segmentFile(int32(200+i))), &fst); err != nil {
				t.Fatal(err)
			}
			if fst.Blocks > s.maxBlocks {
				t.Errorf("%s: image uses %d blocks, want at most %d (holes where the segment had no pages or zero ones)", s.name, fst.Blocks, s.maxBlocks)
			}
		}
	})

	squatters := fx.removeOriginals(t)
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var keysAsked []int32
	rebinds, err := Restore(loaded, func(vkey int32) (int32, error) {
		keysAsked = append(keysAsked, vkey)
		return sysKey(vkey, newKeyBits), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{0x1111, 0x2222, 0x3333}; !slices.Equal(keysAsked, want) {
		t.Errorf("keyFor asked for %#x, want %#x", keysAsked, want)
	}
	if len(rebinds) != len(fx.objects) {
		t.Fatalf("%d rebinds, want %d", len(rebinds), len(fx.objects))
	}
	for i, r := range rebinds {
		o := fx.objects[i]
		if r.Type != o.Type || r.Virt != o.VirtID || r.OldSys != o.SysID || r.NewSys == o.SysID {
			t.Errorf("rebind %d = %+v, want %s virtual %d from %d to a new id", i, r, o.Type, o.VirtID, o.SysID)
		}
	}

	for i, s := range semSpecs {
		t.Run("sem/"+s.name, func(t *testing.T) {
			id := rebinds[i].NewSys
			perm, nsems := statPerm(t, vresource.Sem, id)
			checkPerm(t, perm, sysKey(s.vkey, newKeyBits), s.perm, 0)
			if nsems != uint64(len(s.values)) {
				t.Fatalf("nsems %d, want %d", nsems, len(s.values))
			}
			for n, v := range s.values {
				if got := semVal(t, id, n); got != v {
					t.Errorf("semaphore %d = %d, want %d", n, got, v)
				}
			}
		})
	}
	for i, s := range shmSpecs {
		t.Run("shm/"+s.name, func(t *testing.T) {
			r := rebinds[len(semSpecs)+i]
			perm, size := statPerm(t, vresource.Shm, r.NewSys)
			var flags uint32
			if s.locked {
				flags = shmLocked
			}
			checkPerm(t, perm, sysKey(s.vkey, newKeyBits), s.perm, flags)
			if size != uint64(s.size) {
				t.Errorf("size %d, want %d", size, s.size)
			}
			if r.MarkRemoved != s.removed {
				t.Errorf("MarkRemoved %v, want %v", r.MarkRemoved, s.removed)
			}
			if got := shmSum(t, r.NewSys); got != fx.segSums[r.Virt] {
				t.Errorf("contents differ: sha256 %x, want %x", got, fx.segSums[r.Virt])
			}
		})
	}
	for i, s := range msgSpecs {
		t.Run("msg/"+s.name, func(t *testing.T) {
			id := rebinds[len(semSpecs)+len(shmSpecs)+i].NewSys
			perm, qbytes := statPerm(t, vresource.Msg, id)
			checkPerm(t, perm, sysKey(s.vkey, newKeyBits), s.perm, 0)
			if qbytes != s.qbytes {
				t.Errorf("qbytes %d, want %d", qbytes, s.qbytes)
			}
			got := drain(t, id)
			if len(got) != len(s.msgs) {
				t.Fatalf("%d messages, want %d", len(got), len(s.msgs))
			}
			for n, m := range s.msgs {
				if got[n].Type != m.Type || !bytes.Equal(got[n].Data, m.Data) {
					t.Errorf("message %d: type %d, %d bytes; want type %d, %d bytes", n, got[n].Type, len(got[n].Data), m.Type, len(m.Data))
				}
			}
		})
	}
	t.Run("squatters untouched", func(t *testing.T) {
		for _, q := range squatters {
			perm, _ := statPerm(t, q.Type, q.NewSys)
			checkPerm(t, perm, ipcPrivate, root(0o600), 0)
		}
	})
	t.Run("image untouched", func(t *testing.T) {
		after := readDir(t, dir)
		for name, b := range saved {
			if !bytes.Equal(after[name], b) {
				t.Errorf("%s changed by Restore", name)
			}
		}
	})
	removeAll(append(squatters, rebinds...))
	if got := countAll(t); got != before {
		t.Errorf("objects left: %v, want %v", got, before)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/sysv.golden.json")

// TestGolden pins the format of sysv.json.
func TestGolden(t *testing.T) {
	setNextID(t, vresource.Sem, 40)
	sem := mustSemget(t, 0x10|oldKeyBits, 3, root(0o600))
	defer remove(t, vresource.Sem, sem)
	if err := semctl(sem, 0, setAll, unsafe.Pointer(&[]uint16{1, 0, 9}[0])); err != nil {
		t.Fatal(err)
	}
	mustSetPerm(t, vresource.Sem, sem, Perm{UID: 1000, GID: 1000, Mode: 0o640})
	setNextID(t, vresource.Shm, 41)
	shm := mustShmget(t, ipcPrivate, 6000, Perm{CUID: 33, CGID: 33})
	defer remove(t, vresource.Shm, shm)
	mustSetPerm(t, vresource.Shm, shm, Perm{UID: 33, GID: 33, Mode: 0o600})
	setNextID(t, vresource.Msg, 42)
	msg := mustMsgget(t, ipcPrivate, root(0o600))
	defer remove(t, vresource.Msg, msg)
	err := fillMsg(msg, Queue{Perm: root(0o622), QBytes: 4096, Messages: []Message{{Type: 3, Data: []byte("hello")}, {Type: 1, Data: []byte{}}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	objs := []Object{
		{vresource.Msg, 3, msg, 0, 0},
		{vresource.Sem, 1, sem, 0x10, 0x10 | oldKeyBits},
		{vresource.Shm, 2, shm, 0, 0},
	}
	undo := []ProcessUndo{{VirtPid: 1001, Adjs: []SemAdj{{SemVirt: 1, Num: 2, Adj: 1}, {SemVirt: 1, Num: 0, Adj: 2}}}}
	if _, err := Save(dir, objs, undo); err != nil {
		t.Fatal(err)
	}
	got := readDir(t, dir)[StateFile]
	golden := filepath.Join("testdata", "sysv.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("sysv.json differs from %s (go test -run TestGolden -update after a format change, with a new Version):\n%s", golden, got)
	}
}
