package vresource

import (
	"bytes"
	"fmt"
	"os"
	"unsafe"
)

// A snapshot keeps a private copy of a chain's table file (Image), and a
// restore makes the new chain's table file from it (CreateTablesFromImage):
// the same entries, fresh counters and generation, under the new chain's
// AID and name.  The entries still name the old host's system ids until
// the restore rebinds them.

// Image returns a copy of the bytes of a private Tables (ReadTables),
// which no process of the chain can change: the image of the file.
func (t *Tables) Image() ([]byte, error) {
	if !t.private {
		return nil, fmt.Errorf("image of %s: only a private copy is at rest", t.what())
	}
	return bytes.Clone(t.mem), nil
}

// CreateTablesFromImage makes name in dir, as CreateTablesIn does, from
// img, the bytes Image returned: the file is checked as OpenTables checks
// one, must have been at rest, and gets aid and chainName in its header.
// Its IPC records are dropped: they name the old host's objects, and the
// restore records the new ones (AddIPCRecords).
func CreateTablesFromImage(dir *os.File, name string, img []byte, aid AID, chainName string, mode os.FileMode) (*Tables, error) {
	fail := func(err error) (*Tables, error) {
		return nil, fmt.Errorf("create tables %s from image: %w", name, err)
	}
	if err := checkTableName(chainName); err != nil {
		return fail(err)
	}
	if aid == 0 {
		return fail(fmt.Errorf("aid 0 names no chain"))
	}
	if len(img) < TableHeaderSize || int64(len(img)) > maxFileSize {
		return fail(fmt.Errorf("%w: %d bytes, outside %d..%d", ErrCorrupt, len(img), TableHeaderSize, maxFileSize))
	}
	if !atRest(img) {
		return fail(fmt.Errorf("%w: the image was taken while a write was under way", ErrCorrupt))
	}
	// The engine checks a private copy before anything is made.
	mem := cAlloc(len(img))
	copy(mem, img)
	check, err := attachEngine(name, mem, uint64(len(mem)), -1, true)
	if err != nil {
		cFree(mem)
		return fail(err)
	}
	check.Close()
	return createIn(dir, name, mode, int64(len(img)), func(mem []byte) error {
		copy(mem, img)
		h := overlay(mem)
		h.AID = uint64(aid)
		h.Name = [TableNameMax]byte{}
		copy(h.Name[:], chainName)
		for _, sec := range h.Sections[:min(h.NSections, SectionsMax)] {
			if sec.Kind == SectionIPCRecords {
				clear(mem[sec.Offset+recordsHead : sec.Offset+sec.Size])
				(*ipcRecordsHead)(unsafe.Pointer(&mem[sec.Offset])).Used = 0
			}
		}
		return nil
	})
}

// AddIPCRecords records objects the chain owns that the layer did not
// create, as the layer records its own (record.c): a restore's.  Records
// that find no room are left out, and said so; teardown then leaves their
// objects alone.
func (t *Tables) AddIPCRecords(recs []IPCRecord) error {
	if err := t.writable(); err != nil {
		return err
	}
	raw := make([]ipcRecord, len(recs))
	for i, rec := range recs {
		raw[i] = ipcRecord{Type: uint32(rec.Type), Sys: rec.Sys, Key: rec.Key, CUID: rec.CUID, CGID: rec.CGID,
			CPID: rec.CPID, CTime: rec.CTime, Size: rec.Size}
	}
	added, errno := t.eng.addRecords(raw)
	if errno != 0 {
		return t.fail(Sem, errno)
	}
	if added < len(recs) {
		return fmt.Errorf("%s: no room to record %d of %d IPC objects", t.what(), len(recs)-added, len(recs))
	}
	return nil
}
