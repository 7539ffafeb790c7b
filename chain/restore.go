package chain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

// SetupFromImage is Setup for a chain that a restore brings back: its
// table file is made from img, the bytes of a snapshot's tables.img
// (vresource.CreateTablesFromImage), and returned mapped.  On failure
// nothing stays registered.
func SetupFromImage(cfg *config.Config, reg vresource.Registry, name string, owner vresource.Owner, img []byte) (vresource.Chain, *vresource.Tables, error) {
	req, err := selfRegistration(cfg, name, owner)
	if err != nil {
		return vresource.Chain{}, nil, err
	}
	ch, err := register(cfg, reg, req, false)
	if err != nil {
		return ch, nil, err
	}
	// 0666 for the reason Setup gives.
	t, err := CreateTablesFromImage(cfg, ch, img, 0o666)
	if err != nil {
		_ = Forget(cfg, reg, ch)
		return ch, nil, err
	}
	return ch, t, nil
}

// CreateTablesFromImage creates the table file of a chain Register made
// from img, the bytes of a snapshot's tables.img, with mode perm, and
// returns it mapped: for a container restored from a checkpoint.
func CreateTablesFromImage(cfg *config.Config, ch vresource.Chain, img []byte, perm os.FileMode) (*vresource.Tables, error) {
	dir, err := openDir(cfg.StateDir, ch.AID)
	if err != nil {
		return nil, fmt.Errorf("set up chain %s from its image: %w", ch.AID, err)
	}
	defer dir.Close()
	t, err := vresource.CreateTablesFromImage(dir, TablesName, img, ch.AID, ch.Name, perm)
	if err != nil {
		return nil, fmt.Errorf("set up chain %s from its image: %w", ch.AID, err)
	}
	return t, nil
}

// snapshotMark is the file in a chain's directory that says where a
// snapshot that ends the chain put its image: the supervisor reads it
// when the chain's root is gone.
const snapshotMark = "snapshot"

// MarkSnapshotted records, before a snapshot ends the chain, that the
// chain was saved to imageDir.
func MarkSnapshotted(cfg *config.Config, ch vresource.Chain, imageDir string) error {
	dir, err := openDir(cfg.StateDir, ch.AID)
	if err != nil {
		return fmt.Errorf("mark chain %s snapshotted: %w", ch.AID, err)
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), snapshotMark, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("mark chain %s snapshotted: %w", ch.AID, err)
	}
	f := os.NewFile(uintptr(fd), snapshotMark)
	_, err = f.WriteString(imageDir + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("mark chain %s snapshotted: %w", ch.AID, err)
	}
	return nil
}

// Snapshotted returns the image directory a snapshot saved the chain to
// before it ended it, or "" if no snapshot did.
func Snapshotted(cfg *config.Config, ch vresource.Chain) (string, error) {
	dir, err := openDir(cfg.StateDir, ch.AID)
	if err != nil {
		return "", err
	}
	defer dir.Close()
	f, err := openBeneath(dir, snapshotMark, unix.O_RDONLY)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, err := f.Read(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return strings.TrimSuffix(string(b[:n]), "\n"), nil
}
