package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/vresource"
)

// FormatVersion is the image format this vrid writes and reads.  A
// reader refuses any other: an image is read by the vrid that made it.
// Format 1 had sha256 checksums; 2 has xxHash64 ones (sum.go).
const FormatVersion = 2

// Names in the image directory.
const (
	ManifestName = "manifest.json"
	TablesImage  = "tables.img"
	CRIUDir      = "criu"
)

var (
	// ErrNotImage: the directory has no manifest.
	ErrNotImage = errors.New("not a vrid image")
	// ErrFormat: the image has a format version this vrid does not read.
	ErrFormat = errors.New("unknown image format")
	// ErrCorrupt: a file of the image is missing, extra, or not the one
	// the manifest's checksum names.
	ErrCorrupt = errors.New("image is corrupt")
	// ErrBuild: the image was made under another libvrid build.
	ErrBuild = errors.New("image made by another libvrid build")
)

// Manifest is manifest.json.
type Manifest struct {
	Format int           `json:"format"`
	AID    vresource.AID `json:"aid"`
	Name   string        `json:"name"`
	Kernel string        `json:"kernel"` // uname -r of the host that made it
	CRIU   int           `json:"criu"`   // its CRIU version, as 40201
	// LibvridBuildID is the GNU build id of the libvrid.so the chain ran
	// under: the layer's state in the processes' memory is that build's.
	LibvridBuildID string `json:"libvrid_build_id"`
	// TablePath is the chain's table file, which its processes map and
	// hold open: restore points them at the new chain's.
	TablePath string `json:"table_path"`
	// LogPipe is the key CRIU knows the layer's log pipe by
	// (criu.ExternalKey); restore gives the tree a new pipe in its place.
	LogPipe string `json:"log_pipe,omitempty"`
	// ShellJob: the root's session was outside the tree (a chain of vrid
	// run always is).
	ShellJob bool `json:"shell_job"`
	// Quiesced are the processes whose SysV shm attachments were
	// detached for the dump; they are told to attach again once resumed.
	Quiesced []Quiesced `json:"quiesced"`
	// Container marks a containerd checkpoint (container.go): runc wrote
	// CRIU's images beside the manifest, not in criu/, and only the
	// containerd shim restores it.
	Container bool `json:"container,omitempty"`
	// Files holds the checksum (fileSum) of every other file of the
	// image, by its slash-separated path in the directory.
	Files map[string]string `json:"files"`
}

// Quiesced is a process that was dumped with its SysV shm detached, and
// the mappings it had (package quiesce).
type Quiesced struct {
	VirtPid int32             `json:"virt_pid"`
	SysV    []quiesce.Mapping `json:"sysv"`
}

// readManifest reads dir's manifest and checks its format version,
// before anything else of it is trusted.
func readManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w: no %s (an interrupted snapshot leaves none)", dir, ErrNotImage, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %v", dir, ErrCorrupt, ManifestName, err)
	}
	if head.Format != FormatVersion {
		return nil, fmt.Errorf("%s: %w %d: this vrid reads format %d (restore with the vrid that took the snapshot)",
			dir, ErrFormat, head.Format, FormatVersion)
	}
	m := &Manifest{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %v", dir, ErrCorrupt, ManifestName, err)
	}
	if m.AID == 0 || m.Name == "" || len(m.Files) == 0 {
		return nil, fmt.Errorf("%s: %w: %s lacks the chain or its files", dir, ErrCorrupt, ManifestName)
	}
	return m, nil
}

// Verify reads the manifest of the image in dir and checks every file
// against it: the same set of files, each with its checksum.  It reads the
// image only.
func Verify(dir string) (*Manifest, error) {
	return verify(dir, true)
}

// verify is Verify, which without sums checks only that the files are
// there: no file's contents are read.
func verify(dir string, sums bool) (*Manifest, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("verify image: %w", err)
	}
	files, err := listFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("verify image %s: %w", dir, err)
	}
	for _, name := range files {
		if _, ok := m.Files[name]; !ok {
			return nil, fmt.Errorf("verify image %s: %w: %s is not in the manifest", dir, ErrCorrupt, name)
		}
	}
	for _, name := range sortedKeys(m.Files) {
		if !imageFile(name) {
			return nil, fmt.Errorf("verify image %s: %w: the manifest names %q, outside the image", dir, ErrCorrupt, name)
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		if !sums {
			if _, err = os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("verify image %s: %w: %s is missing", dir, ErrCorrupt, name)
			}
			if err != nil {
				return nil, fmt.Errorf("verify image %s: %w", dir, err)
			}
			continue
		}
		sum, err := fileSum(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("verify image %s: %w: %s is missing", dir, ErrCorrupt, name)
		}
		if err != nil {
			return nil, fmt.Errorf("verify image %s: %w", dir, err)
		}
		if sum != m.Files[name] {
			return nil, fmt.Errorf("verify image %s: %w: %s has checksum %s, the manifest says %s", dir, ErrCorrupt, name, sum, m.Files[name])
		}
	}
	return m, nil
}

// checkBuild refuses an image made under another libvrid.
func (m *Manifest) checkBuild(library string) error {
	id, err := BuildID(library)
	if err != nil {
		return err
	}
	if id != m.LibvridBuildID {
		return fmt.Errorf("%w: the image needs libvrid build %s, and %s is build %s (restore with the vrid and libvrid that took the snapshot)",
			ErrBuild, m.LibvridBuildID, library, id)
	}
	return nil
}

// writeManifest sums every file in dir, then writes the manifest through
// a temporary file and a rename.  durable: everything else is synced
// first, and the manifest after, so that a manifest names only files that
// are on disk.  Otherwise the image is whole once renamed, as CRIU's and
// runc's are, but a crash of the machine may cut it, which the sums tell
// at restore.
func writeManifest(dir string, m *Manifest, durable bool) error {
	sync := vresource.SyncPath
	if !durable {
		sync = func(string) error { return nil }
	}
	files, err := listFiles(dir)
	if err != nil {
		return err
	}
	m.Files = map[string]string{}
	dirs := map[string]bool{}
	for _, name := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if m.Files[name], err = fileSum(path); err != nil {
			return err
		}
		if err := sync(path); err != nil {
			return err
		}
		dirs[filepath.Dir(path)] = true
	}
	delete(dirs, dir)
	for d := range dirs {
		if err := sync(d); err != nil {
			return err
		}
	}
	if err := sync(dir); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+ManifestName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := sync(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, ManifestName)); err != nil {
		return err
	}
	return sync(dir)
}

// listFiles lists the files of an image, slash-separated and sorted,
// but the manifest.  Anything but a regular file or directory is refused.
func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, rel)
		case rel == ManifestName:
			return nil
		}
		out = append(out, rel)
		return nil
	})
	slices.Sort(out)
	return out, err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// imageFile is a manifest path made safe to join to the image directory:
// no absolute path and no way out of it.
func imageFile(name string) bool {
	return name != "" && !strings.HasPrefix(name, "/") && filepath.IsLocal(filepath.FromSlash(name))
}
