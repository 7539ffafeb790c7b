package snapshot

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrNoBuildID: the library carries no GNU build id note (link it with
// --build-id; the Makefile does).
var ErrNoBuildID = errors.New("no .note.gnu.build-id")

// BuildID reads the GNU build id of the ELF file at path, in hex.
func BuildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("build id of %s: %w", path, err)
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		return "", fmt.Errorf("build id of %s: %w", path, ErrNoBuildID)
	}
	b, err := s.Data()
	if err != nil {
		return "", fmt.Errorf("build id of %s: %w", path, err)
	}
	// Elf_Nhdr: namesz, descsz, type; then the name "GNU\0" and the id,
	// each padded to 4 bytes.
	const nhdr, ntGNUBuildID = 12, 3
	if len(b) < nhdr {
		return "", fmt.Errorf("build id of %s: %w (note of %d bytes)", path, ErrNoBuildID, len(b))
	}
	namesz := binary.LittleEndian.Uint32(b[0:])
	descsz := binary.LittleEndian.Uint32(b[4:])
	typ := binary.LittleEndian.Uint32(b[8:])
	start := nhdr + int(namesz+3)&^3
	if typ != ntGNUBuildID || descsz == 0 || start+int(descsz) > len(b) {
		return "", fmt.Errorf("build id of %s: %w (bad note)", path, ErrNoBuildID)
	}
	return hex.EncodeToString(b[start : start+int(descsz)]), nil
}
