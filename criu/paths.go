package criu

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
)

// RewritePaths renames regular files in the image in dir, which must be
// a copy of the caller's own (RewritePids's dst): every file entry whose
// path is a key of paths gets its value, in files.img, rewritten through
// a temporary file and a rename.  CRIU then opens the new path at restore,
// for descriptors and file mappings alike.  It returns how many entries it
// rewrote.
func RewritePaths(dir string, paths map[string]string) (int, error) {
	path := filepath.Join(dir, "files.img")
	img, err := decodeFile(path, &fdinfo.FileEntry{})
	if err != nil {
		return 0, fmt.Errorf("rewrite paths in %s: %w", dir, err)
	}
	n := 0
	for _, e := range img.Entries {
		reg := e.Message.(*fdinfo.FileEntry).GetReg()
		if reg == nil {
			continue
		}
		// CRIU keeps paths relative to the root of the mount namespace,
		// with their leading slash.
		if to, ok := paths[reg.GetName()]; ok {
			reg.Name = &to
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("rewrite paths in %s: %w", dir, err)
	}
	err = crit.New(nil, f, "", false, false).Encode(img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("rewrite paths in %s: %w", dir, err)
	}
	return n, nil
}
