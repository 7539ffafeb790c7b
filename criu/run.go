package criu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ErrNoCRIU: no criu binary where one was looked for.
var ErrNoCRIU = errors.New("criu not found: install it with scripts/install-stack.sh (CRIU 4.2.1 at /opt/vrid-stack/bin/criu) or set criu in config.toml")

const (
	dumpLog    = "dump.log"
	restoreLog = "restore.log"
	logLevel   = 4 // CRIU's debug level: what its errors need to be read
)

// DumpOpts says what Dump dumps and how.
type DumpOpts struct {
	// Criu is the criu binary; empty: criu on PATH.
	Criu string
	// Pid is the root of the tree to dump.
	Pid int
	// ImageDir receives the images and dump.log; it must exist.
	ImageDir string
	// LeaveRunning resumes the tree after the dump; otherwise CRIU kills it.
	LeaveRunning bool
	// ShellJob allows a root whose session or process group leader is
	// outside the tree (a process started from a shell, or by vrid run).
	ShellJob bool
	// FileLocks dumps the tree's file locks (CRIU refuses a tree that
	// holds one otherwise).
	FileLocks bool
	// TCPEstablished dumps established TCP connections (listening
	// sockets need nothing).
	TCPEstablished bool
	// ExternalFds are descriptors of Pid whose other end is outside the
	// tree, such as the layer's log pipe (VRID_LOG_FD).  Unix sockets
	// among them are declared external; a pipe needs nothing at dump.
	// Give Restore a new descriptor for each, under the key ExternalKey
	// returned before the dump.
	ExternalFds []int
	// External are more --external entries, as CRIU spells them.
	External []string
	// FreezeCgroup, when set, is the tree's cgroup (v1 freezer or v2):
	// CRIU freezes it rather than stopping each task, and leaves it as
	// it found it, so a tree the caller froze first stays frozen.
	FreezeCgroup string
}

// RestoreOpts says how Restore restores.
type RestoreOpts struct {
	// Criu is the criu binary; empty: criu on PATH.
	Criu string
	// WorkDir receives restore.log; empty: the image directory.
	WorkDir string
	// ShellJob and FileLocks and TCPEstablished must match the dump's.
	ShellJob, FileLocks, TCPEstablished bool
	// Sibling makes the restored root a child of the caller, who must
	// then wait for it; otherwise it is a child of CRIU, which exits, so
	// that it ends up with the caller's subreaper or init.
	Sibling bool
	// InheritFds give the restored tree these files in place of the
	// external ones the image refers to.
	InheritFds []InheritFd
	// PostRestore, if set, runs when the tree is restored but before it
	// resumes, with the root's pid.  An error fails the restore.
	PostRestore func(pid int) error
	// LeaveCgroups: CRIU leaves cgroups alone (manage_cgroups ignore), and
	// the tree is restored into CRIU's own, for PostRestore to move, rather
	// than into the cgroups it was dumped from.
	LeaveCgroups bool
}

// InheritFd is a file the restored tree gets in place of an external one.
type InheritFd struct {
	Key  string // ExternalKey's answer at dump time: pipe:[INODE], socket:[INODE]
	File *os.File
}

// LogError is a failed CRIU call with the end of CRIU's log.
type LogError struct {
	Op   string   // dump or restore
	Log  string   // CRIU's log file
	Tail []string // its error lines and last lines
	Err  error
}

func (e *LogError) Error() string {
	return fmt.Sprintf("criu %s: %v; %s says:\n\t%s", e.Op, e.Err, e.Log, strings.Join(e.Tail, "\n\t"))
}

func (e *LogError) Unwrap() error { return e.Err }

// ExternalKey is the key CRIU knows descriptor fd of process pid by, for
// InheritFd: pipe:[INODE], socket:[INODE], or a path.
func ExternalKey(pid, fd int) (string, error) {
	key, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil {
		return "", fmt.Errorf("external fd %d of %d: %w", fd, pid, err)
	}
	return key, nil
}

// Dump dumps the process tree rooted at o.Pid into o.ImageDir with CRIU's
// RPC (swrk).  ctx is checked before CRIU starts; a running dump is not
// interrupted, since a CRIU killed midway leaves the tree half-frozen.
func Dump(ctx context.Context, o DumpOpts) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dump %d: %w", o.Pid, err)
	}
	c, err := newCriu(o.Criu)
	if err != nil {
		return fmt.Errorf("dump %d: %w", o.Pid, err)
	}
	external := append([]string(nil), o.External...)
	for _, fd := range o.ExternalFds {
		key, err := ExternalKey(o.Pid, fd)
		if err != nil {
			return fmt.Errorf("dump %d: %w", o.Pid, err)
		}
		if ino, ok := strings.CutPrefix(key, "socket:"); ok {
			external = append(external, "unix"+ino)
		}
	}
	opts := &rpc.CriuOpts{
		ImagesDirFd:    proto.Int32(-1),
		ImagesDir:      proto.String(o.ImageDir),
		Pid:            proto.Int32(int32(o.Pid)),
		LogFile:        proto.String(dumpLog),
		LogLevel:       proto.Int32(logLevel),
		LeaveRunning:   proto.Bool(o.LeaveRunning),
		ShellJob:       proto.Bool(o.ShellJob),
		FileLocks:      proto.Bool(o.FileLocks),
		TcpEstablished: proto.Bool(o.TCPEstablished),
		External:       external,
	}
	if o.FreezeCgroup != "" {
		opts.FreezeCgroup = proto.String(o.FreezeCgroup)
	}
	if err := c.Dump(opts, nil); err != nil {
		return fmt.Errorf("dump %d: %w", o.Pid, logError("dump", filepath.Join(o.ImageDir, dumpLog), err))
	}
	return nil
}

// restoreNotify catches the root's pid, which go-criu's Restore does not
// return, from CRIU's post-restore notification.
type restoreNotify struct {
	gocriu.NoNotify
	pid  int
	hook func(int) error
}

func (n *restoreNotify) PostRestore(pid int32) error {
	n.pid = int(pid)
	if n.hook != nil {
		return n.hook(n.pid)
	}
	return nil
}

// Restore restores the tree in imageDir, with the pids the images hold
// (rewrite them first with RewritePids), and returns the root's pid.  The
// tree runs on when Restore returns.  ctx is checked before CRIU starts.
func Restore(ctx context.Context, imageDir string, o RestoreOpts) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("restore %s: %w", imageDir, err)
	}
	c, err := newCriu(o.Criu)
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", imageDir, err)
	}
	workDir := o.WorkDir
	if workDir == "" {
		workDir = imageDir
	}
	wd, err := os.Open(workDir)
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", imageDir, err)
	}
	defer wd.Close()
	opts := &rpc.CriuOpts{
		ImagesDirFd:    proto.Int32(-1),
		ImagesDir:      proto.String(imageDir),
		WorkDirFd:      proto.Int32(int32(wd.Fd())), // CRIU opens it through /proc/<caller>/fd
		LogFile:        proto.String(restoreLog),
		LogLevel:       proto.Int32(logLevel),
		ShellJob:       proto.Bool(o.ShellJob),
		FileLocks:      proto.Bool(o.FileLocks),
		TcpEstablished: proto.Bool(o.TCPEstablished),
		RstSibling:     proto.Bool(o.Sibling),
	}
	if o.LeaveCgroups {
		opts.ManageCgroupsMode = rpc.CriuCgMode_IGNORE.Enum()
	}
	if err := startWithFds(c, o.InheritFds, opts); err != nil {
		return 0, fmt.Errorf("restore %s: %w", imageDir, err)
	}
	nfy := &restoreNotify{hook: o.PostRestore}
	err = c.Restore(opts, nfy)
	if cerr := c.Cleanup(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("restore %s: %w", imageDir, logError("restore", filepath.Join(workDir, restoreLog), err))
	}
	if nfy.pid <= 0 {
		return 0, fmt.Errorf("restore %s: criu reported no root pid", imageDir)
	}
	return nfy.pid, nil
}

// startWithFds starts CRIU's swrk process with the inherited files at
// descriptors it can use: CRIU takes inherit_fd numbers in its own
// descriptor table.  Each file is dup'ed without close-on-exec just for
// the start; another goroutine of the caller that execs meanwhile would
// inherit the duplicates too.
func startWithFds(c *gocriu.Criu, files []InheritFd, opts *rpc.CriuOpts) error {
	var dups []int
	defer func() {
		for _, fd := range dups {
			unix.Close(fd)
		}
	}()
	for _, f := range files {
		fd, err := unix.Dup(int(f.File.Fd()))
		if err != nil {
			return fmt.Errorf("inherit %s: %w", f.Key, err)
		}
		dups = append(dups, fd)
		opts.InheritFd = append(opts.InheritFd, &rpc.InheritFd{Key: proto.String(f.Key), Fd: proto.Int32(int32(fd))})
	}
	if err := c.Prepare(); err != nil {
		return fmt.Errorf("start criu: %w", err)
	}
	return nil
}

// newCriu returns a go-criu handle on the binary at path (empty: criu on
// PATH).
func newCriu(path string) (*gocriu.Criu, error) {
	if path == "" {
		p, err := exec.LookPath("criu")
		if err != nil {
			return nil, ErrNoCRIU
		}
		path = p
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return nil, fmt.Errorf("%s: %w", path, ErrNoCRIU)
	}
	c := gocriu.MakeCriu()
	c.SetCriuPath(path)
	return c, nil
}

// logError wraps err with the error lines and the last lines of CRIU's log.
func logError(op, log string, err error) error {
	const maxErrors, maxLast = 6, 4
	e := &LogError{Op: op, Log: log, Err: err}
	b, rerr := os.ReadFile(log)
	if rerr != nil {
		e.Tail = []string{"(no log: " + rerr.Error() + ")"}
		return e
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	last := max(0, len(lines)-maxLast)
	var errs []string
	for _, l := range lines[:last] {
		if strings.Contains(l, "Error (") {
			errs = append(errs, l)
		}
	}
	e.Tail = append(errs[max(0, len(errs)-maxErrors):], lines[last:]...)
	return e
}

// Version returns the version of the criu binary at path (empty: criu on
// PATH), as 40201 for 4.2.1.
func Version(path string) (int, error) {
	c, err := newCriu(path)
	if err != nil {
		return 0, err
	}
	v, err := c.GetCriuVersion()
	if err != nil {
		return 0, fmt.Errorf("criu version: %w", err)
	}
	return v, nil
}
