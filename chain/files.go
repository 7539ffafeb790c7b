package chain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

// A chain's files are opened from the state directory, the trust root
// (0700, host-only), with openat2: beneath it, through no symlink, magic
// link or other mount's root.  A path inside it that a container, or
// anyone else, turned into a symlink fails with ErrSymlink; vrid never
// acts through one.  Modes are changed on the open file.

// ErrSymlink: a path in the state directory is a symlink.
var ErrSymlink = errors.New("a symlink, which vrid never follows")

// TablesName is the table file's name in the chain's directory.
const TablesName = "tables"

var resolveBeneath = unix.OpenHow{
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
}

// openBeneath opens rel beneath the open directory dir.  A file that is
// not an O_PATH is opened without blocking (a FIFO) or becoming a
// terminal.
func openBeneath(dir *os.File, rel string, flags int) (*os.File, error) {
	how := resolveBeneath
	if flags&unix.O_PATH == 0 { // openat2 takes no other flags with O_PATH
		flags |= unix.O_NOCTTY | unix.O_NONBLOCK
	}
	how.Flags = uint64(flags | unix.O_CLOEXEC)
	path := filepath.Join(dir.Name(), rel)
	for {
		fd, err := unix.Openat2(int(dir.Fd()), rel, &how)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue // a rename elsewhere in the kernel: try again
		case err == unix.ELOOP || err == unix.EXDEV:
			return nil, fmt.Errorf("%s: %w", path, ErrSymlink)
		case err != nil:
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// openDir opens the directory of chain aid, for the *at calls only.
func openDir(stateDir string, aid vresource.AID) (*os.File, error) {
	root, err := os.OpenFile(stateDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open state directory: %w", err)
	}
	defer root.Close()
	return openBeneath(root, filepath.Join("chains", aid.String()), unix.O_PATH|unix.O_DIRECTORY)
}

// openTableFile opens the table file of chain aid with flags, and wants
// a regular file: a FIFO or device planted there is refused.
func openTableFile(stateDir string, aid vresource.AID, flags int) (*os.File, error) {
	dir, err := openDir(stateDir, aid)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	f, err := openBeneath(dir, TablesName, flags)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file (mode %#o)", f.Name(), st.Mode)
	}
	return f, nil
}

// OpenTableFile opens the table file of chain ch read-write, to be
// inherited by the chain's root as VRID_TABLE_FD.
func OpenTableFile(cfg *config.Config, ch vresource.Chain) (*os.File, error) {
	f, err := openTableFile(cfg.StateDir, ch.AID, unix.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("tables of chain %s: %w", ch.AID, err)
	}
	return f, nil
}

// OpenTables maps the table file of chain ch shared, for a writer on the
// host: `vrid run`'s supervisor.
func OpenTables(cfg *config.Config, ch vresource.Chain) (*vresource.Tables, error) {
	f, err := OpenTableFile(cfg, ch)
	if err != nil {
		return nil, err
	}
	return vresource.MapTables(f)
}

// ReadTables takes a private copy of the table file of chain ch, for a
// reader on the host (vresource.ReadTables).
func ReadTables(cfg *config.Config, ch vresource.Chain) (*vresource.Tables, error) {
	f, err := openTableFile(cfg.StateDir, ch.AID, unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("tables of chain %s: %w", ch.AID, err)
	}
	t, err := vresource.ReadTables(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

// salvageTables is ReadTables for Teardown (vresource.SalvageTables): a
// wedged table comes with its error.
func salvageTables(cfg *config.Config, ch vresource.Chain) (*vresource.Tables, error) {
	f, err := openTableFile(cfg.StateDir, ch.AID, unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("tables of chain %s: %w", ch.AID, err)
	}
	t, err := vresource.SalvageTables(f)
	if t == nil {
		f.Close()
	}
	return t, err
}

// CheckTables makes sure that the table file of chain ch is there, a
// regular file reached through no symlink, before a container is given
// its path.
func CheckTables(cfg *config.Config, ch vresource.Chain) error {
	f, err := openTableFile(cfg.StateDir, ch.AID, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("tables of chain %s: %w", ch.AID, err)
	}
	return f.Close()
}

// makeDir makes a chain's directory.  A capped one is a tmpfs of its
// own, just large enough for its table file: every process of a
// container's chain, whoever it runs as, can write the file, so it can
// make it larger (ftruncate, write past its end); the mount keeps what it
// can fill to the size the table had, instead of the memory behind the
// whole state directory.  (The processes of a `vrid run` chain run on the
// host, as root or as the user who can write the state directory.)
func makeDir(cfg *config.Config, ch vresource.Chain, capped bool) error {
	dir := Dir(cfg.StateDir, ch.AID)
	if err := os.MkdirAll(dir, 0o755); err != nil || !capped {
		return err
	}
	size, err := vresource.FileSize(cfg.TableOptions(ch.Name))
	if err != nil {
		return fmt.Errorf("size its tables: %w", err)
	}
	page := int64(os.Getpagesize())
	// One page more than the file: the directory's own entry.
	limit := (size+page-1)/page*page + page
	opts := fmt.Sprintf("size=%d,nr_inodes=8,mode=0755", limit)
	if err := unix.Mount("vrid-chain", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount a tmpfs of %d bytes on %s: %w", limit, dir, err)
	}
	return nil
}

// unmountDir undoes makeDir.  A container that still has the table
// mounted keeps its tmpfs until it ends.
func unmountDir(cfg *config.Config, ch vresource.Chain) error {
	dir := Dir(cfg.StateDir, ch.AID)
	err := unix.Unmount(dir, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	if err == nil || err == unix.EINVAL || err == unix.ENOENT {
		return nil // not a mount point (made by an older vrid), or gone
	}
	return fmt.Errorf("unmount %s: %w", dir, err)
}
