package criu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	file_lock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
)

var (
	// ErrBadImage: an image file is truncated or does not decode.
	ErrBadImage = errors.New("bad criu image")
	// ErrUnsupportedImage: the image holds something whose pids this
	// package cannot rewrite.
	ErrUnsupportedImage = errors.New("criu image not supported for a pid rewrite")
	// ErrPidMap: the pid map does not fit the image's tree.
	ErrPidMap = errors.New("bad pid map")
)

// pidImages holds, by magic, the entry type of every image kind CRIU 4.2
// writes that holds a pid.  Pending signals and posix timers are in core.
var pidImages = map[string]protoMessage{
	"PSTREE":     &pstree.PstreeEntry{},
	"CORE":       &criu_core.CoreEntry{},
	"FILES":      &fdinfo.FileEntry{}, // every file entry's fown, and pidfds
	"FILE_LOCKS": &file_lock.FileLockEntry{},
	"TTY_INFO":   &tty.TtyInfoEntry{},
}

// legacyPidImages are image kinds that hold a pid which CRIU 4.2 no longer
// writes (their entries moved into files.img and core), or writes only
// for a mount namespace (autofs).  An image with one is refused.
var legacyPidImages = []string{
	"TTY_FILES", "REG_FILES", "PIPES", "UNIXSK", "INETSK", "PACKETSK",
	"NETLINK_SK", "EVENTFD_FILE", "EVENTPOLL_FILE", "SIGNALFD", "INOTIFY_FILE",
	"FANOTIFY_FILE", "TIMERFD", "EXT_FILES", "BPFMAP_FILE", "SIGNAL",
	"POSIX_TIMERS", "AUTOFS",
}

// perPidName matches the image files CRIU names by a pid or tid (the
// format strings of criu/image-desc.c in 4.2, legacy ones included).
var perPidName = regexp.MustCompile(`^(core|ids|mm|vmas|pagemap|fs|sigacts|itimers|posix-timers|creds|rlimit|signal-s|signal-p)-([0-9]+)\.img$`)

// rawImage matches the images CRIU writes without a magic, none of which
// holds a pid (ip, nftables and tmpfs dumps of namespaces).
var rawImage = regexp.MustCompile(`^(ifaddr|route|route6|rule|iptables|ip6tables|nftables|netns-ct|netns-exp|tmpfs|tmpfs-dev)-[0-9]+(\.tar\.gz)?\.img$`)

// RewritePids writes into dst a copy of the CRIU image in src in which
// every pid and tid of the tree is replaced by pids[old]: the pstree, the
// per-pid file names, and every other field that holds a pid (see
// pidFields).  Ids outside the tree stay.  pids must map every pid and
// tid of the tree (Tree.Ids) to distinct pids.
//
// src is never modified.  dst must not exist; it is built under a
// temporary name beside it and renamed into place when complete, so a
// failure leaves no dst.  Page images, which hold no pid, are hard links
// to src's when src and dst share a file system, so neither must be
// written to in place afterwards (CRIU restores without --auto-dedup only
// read them).
func RewritePids(src, dst string, pids map[int]int) (err error) {
	tree, err := ReadTree(src)
	if err != nil {
		return err
	}
	if err := checkPidMap(tree, pids); err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("rewrite %s: %s: %w", src, dst, os.ErrExist)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	r := pidRewriter(pids)
	for _, e := range entries {
		name, err := r.fileName(e.Name())
		if err != nil {
			return fmt.Errorf("rewrite %s: %w", src, err)
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("rewrite %s: %s: %w: not a regular file (images from pre-dumps or page servers are not supported)", src, e.Name(), ErrUnsupportedImage)
		}
		if err := r.file(filepath.Join(src, e.Name()), filepath.Join(tmp, name)); err != nil {
			return fmt.Errorf("rewrite %s: %w", src, err)
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rewrite %s: %w", src, err)
	}
	return nil
}

// checkPidMap checks that pids maps every id of the tree, and to distinct
// pids.
func checkPidMap(t *Tree, pids map[int]int) error {
	seen := map[int]int{}
	for _, id := range t.Ids() {
		n, ok := pids[id]
		if !ok {
			return fmt.Errorf("%w: no new pid for %d", ErrPidMap, id)
		}
		if n <= 0 {
			return fmt.Errorf("%w: new pid %d for %d", ErrPidMap, n, id)
		}
		if prev, dup := seen[n]; dup {
			return fmt.Errorf("%w: %d and %d both map to %d", ErrPidMap, prev, id, n)
		}
		seen[n] = id
	}
	return nil
}

// fileName is the name of an image file after the rewrite.
func (r pidRewriter) fileName(name string) (string, error) {
	m := perPidName.FindStringSubmatch(name)
	if m == nil {
		return name, nil
	}
	old, err := strconv.Atoi(m[2])
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrBadImage)
	}
	n, ok := r[old]
	if !ok {
		return "", fmt.Errorf("%s: %w: pid %d is not in the image's pstree", name, ErrBadImage, old)
	}
	return m[1] + "-" + strconv.Itoa(n) + ".img", nil
}

// file writes one image file of src into dst: rewritten, linked or copied.
func (r pidRewriter) file(src, dst string) error {
	name := filepath.Base(src)
	if strings.HasPrefix(name, "pages-") && strings.HasSuffix(name, ".img") {
		return linkOrCopy(src, dst)
	}
	if !strings.HasSuffix(name, ".img") || rawImage.MatchString(name) {
		return copyFile(src, dst) // logs, stats-dump, files of the caller
	}
	kind, err := imageKind(src)
	if err != nil {
		return err
	}
	if slices.Contains(legacyPidImages, kind) {
		return fmt.Errorf("%s: %w: %s images hold pids (dump with CRIU 4.2, without mount namespaces)", name, ErrUnsupportedImage, kind)
	}
	entryType, ok := pidImages[kind]
	if !ok {
		return copyFile(src, dst)
	}
	img, err := decodeFile(src, entryType)
	if err != nil {
		return err
	}
	for _, e := range img.Entries {
		if err := r.message(e.Message.ProtoReflect()); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := crit.New(nil, f, "", false, false).Encode(img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return f.Close()
}

// imageKind reads the magic of an image file: PSTREE, CORE, ...  Raw
// images (tmpfs tarballs, ip route dumps) have no magic and are not
// named *.img.
func imageKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	kind, err := crit.ReadMagic(f)
	if err != nil {
		if strings.Contains(err.Error(), "unknown magic") {
			return "", fmt.Errorf("%s: %w: %v (an image kind newer than go-criu's, such as CRIU 4's pidfd image)", filepath.Base(path), ErrUnsupportedImage, err)
		}
		return "", fmt.Errorf("%s: %w: %v", filepath.Base(path), ErrBadImage, err)
	}
	return kind, nil
}

func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		return copyFile(src, dst)
	}
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
