package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/criu"
	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/sysv"
	"github.com/vrid/vrid/vresource"
)

var (
	// ErrNotRunning: the chain is registered but its owner is gone.
	ErrNotRunning = errors.New("chain is not running")
	// ErrContainer: the chain belongs to a container runtime; snapshots
	// of containers go through containerd (issue 9).
	ErrContainer = errors.New("chain belongs to a container")
	// ErrImageExists: the image directory exists and is not empty.
	ErrImageExists = errors.New("image directory exists and is not empty")
)

// Options says what Take saves and where.
type Options struct {
	Config   *config.Config
	Registry vresource.Registry
	Chain    string // name or AID
	Image    string // the image directory: absent, or empty
	// LeaveRunning resumes the chain after the snapshot; otherwise it
	// ends once the image is complete.
	LeaveRunning bool
	// Sync makes the image durable (fsync) before the chain resumes or
	// ends; otherwise it is whole once renamed into place, as CRIU's
	// dump is, and a crash of the machine within the page cache's
	// writeback may cut it.
	Sync bool
	Log  logrus.FieldLogger
}

// Take saves the chain into o.Image.  The image is built in a temporary
// directory beside it and renamed into place once its manifest is
// written.  On failure the chain runs on as it was and no image is left.
// Without LeaveRunning the chain is ended once the image is complete,
// and its supervisor says where it went (chain.Snapshotted).
func Take(ctx context.Context, o Options) (*Manifest, error) {
	ch, err := o.Registry.Get(o.Chain)
	if errors.Is(err, vresource.ErrUnknownChain) {
		return nil, fmt.Errorf("snapshot %s: %w (vrid ps lists the running ones)", o.Chain, vresource.ErrUnknownChain)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", o.Chain, err)
	}
	fail := func(err error) (*Manifest, error) {
		return nil, fmt.Errorf("snapshot chain %s (%s): %w", ch.AID, ch.Name, err)
	}
	switch {
	case ch.Owner.Kind != chainOwnerRun:
		return fail(fmt.Errorf("%w (owner %q): snapshot it through containerd", ErrContainer, ch.Owner.Kind))
	case ch.Stale:
		return fail(ErrNotRunning)
	case ch.RootPid <= 0:
		return fail(fmt.Errorf("%w: its root process is not known yet", ErrNotRunning))
	}
	if sid, err := vresource.InnermostID(ch.RootPid, "NSsid"); err == nil && sid == 0 {
		// CRIU refuses such a tree, after freezing it: say why first.
		return fail(errors.New("its root's session began outside this pid namespace, so CRIU cannot dump it: " +
			"start the chain in a session of its own (`vrid run --detach`, or `setsid vrid run ...`)"))
	}
	image, err := filepath.Abs(o.Image)
	if err != nil {
		return fail(err)
	}
	if err := checkImageDir(image); err != nil {
		return fail(err)
	}
	criuBin := CRIUPath(o.Config)
	criuVersion, err := criu.Version(criuBin)
	if err != nil {
		return fail(err)
	}
	m, err := newManifest(o.Config, ch, criuVersion)
	if err != nil {
		return fail(err)
	}
	m.ShellJob = true // the root's session leader is vrid run's caller, or its supervisor
	tmp, err := os.MkdirTemp(filepath.Dir(image), "."+filepath.Base(image)+".tmp-")
	if err != nil {
		return fail(err)
	}
	s := &taking{o: o, ch: ch, m: m, dir: tmp, criu: criuBin}
	err = s.run(ctx)
	if err == nil {
		err = rename(tmp, image, o.Sync)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fail(errors.Join(err, s.resume()))
	}
	if o.LeaveRunning {
		if err := s.resume(); err != nil {
			return fail(fmt.Errorf("image %s is complete, but the chain did not resume: %w", image, err))
		}
		return m, nil
	}
	if err := s.end(image); err != nil {
		return fail(fmt.Errorf("image %s is complete, but the chain did not end: %w", image, err))
	}
	return m, nil
}

// chainOwnerRun is vresource.Owner.Kind of the chains vrid run owns.
const chainOwnerRun = "run"

// CRIUPath is the criu binary a snapshot or restore uses: config.toml's
// criu, else the stack's (scripts/install-stack.sh) when it is there,
// else criu on PATH ("").
func CRIUPath(cfg *config.Config) string {
	const stackCRIU = "/opt/vrid-stack/bin/criu"
	if cfg.CRIU != "" {
		return cfg.CRIU
	}
	if _, err := os.Stat(stackCRIU); err == nil {
		return stackCRIU
	}
	return ""
}

// checkImageDir refuses an image directory that holds anything.
func checkImageDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s: %w: choose a new --image", dir, ErrImageExists)
	}
	return nil
}

// rename puts the finished image at dir, which may be an empty directory.
func rename(tmp, dir string, durable bool) error {
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("%w (another snapshot wrote it meanwhile?)", err)
	}
	if !durable {
		return nil
	}
	return vresource.SyncPath(filepath.Dir(dir))
}

// taking is one snapshot under way: what must be undone if it fails.
type taking struct {
	o    Options
	ch   vresource.Chain
	m    *Manifest
	dir  string
	criu string

	members  []int             // the chain's processes, system pids
	detached []quiesce.Process // processes whose SysV shm attachments are detached
	frozen   *cgroup.Cgroup
}

func (s *taking) run(ctx context.Context) error {
	var err error
	ph := newPhases(s.o.Log, "snapshot")
	if s.members, err = members(s.ch); err != nil {
		return err
	}
	if !containsPid(s.members, s.ch.RootPid) {
		return fmt.Errorf("root %d is not among the chain's processes %v", s.ch.RootPid, s.members)
	}
	if err := s.quiesce(); err != nil {
		return err
	}
	ph.done("quiesce")
	if s.frozen, err = freeze(s.ch); err != nil {
		return err
	}
	ph.done("freeze")
	tables, err := chain.ReadTables(s.o.Config, s.ch)
	if err != nil {
		return err
	}
	defer tables.Close()
	img, err := tables.Image()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, TablesImage), img, 0o600); err != nil {
		return err
	}
	ph.done("tables image")
	if err := s.saveSysV(tables); err != nil {
		return err
	}
	ph.done("sysv save")
	if err := s.dump(ctx, tables); err != nil {
		return err
	}
	ph.done("criu dump")
	if err := writeManifest(s.dir, s.m, s.o.Sync); err != nil {
		return err
	}
	ph.done("manifest")
	return nil
}

// saveSysV saves the objects the tables name that pass the teardown
// rules: the table is the chain's to write, and saving an object that is
// not its own would copy another tenant's data into the image.
func (s *taking) saveSysV(tables *vresource.Tables) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if ok, why := chain.InIPCNamespace(s.ch.Facts); !ok {
		return fmt.Errorf("save System V objects: %s (run vrid snapshot in the chain's IPC namespace)", why)
	}
	_, err := saveOwnSysV(s.dir, s.ch, tables, HostMembers(s.members), s.o.Log)
	return err
}

// saveOwnSysV saves into dir the objects of ch's tables that are the
// chain's own (chain.IPCRefusal), naming the others in a warning, with
// the SEM_UNDO adjustments of members, the chain's processes (nil: none
// are saved).  The calling thread must be in the chain's
// IPC namespace.
func saveOwnSysV(dir string, ch vresource.Chain, tables *vresource.Tables, members Members, log logrus.FieldLogger) (*sysv.State, error) {
	all, err := sysv.ObjectsOf(tables)
	if err != nil {
		return nil, err
	}
	refusal := chain.IPCRefusal(tables, ch.Facts)
	var own []sysv.Object
	for _, obj := range all {
		if why := refusal(obj.Type, obj.SysID); why != "" {
			log.Warnf("chain %s: %s %d (virtual %d) not saved: %s", ch.AID, obj.Type, obj.SysID, obj.VirtID, why)
			continue
		}
		own = append(own, obj)
	}
	var undo []sysv.ProcessUndo
	if members != nil {
		if undo, err = undoLists(tables, members, own); err != nil {
			return nil, err
		}
	}
	return sysv.Save(dir, own, undo)
}

// dump dumps the tree rooted at the chain's root with CRIU.  The layer's
// log pipe, whose reader is the supervisor, is declared external.
func (s *taking) dump(ctx context.Context, tables *vresource.Tables) error {
	root := s.ch.RootPid
	opts := criu.DumpOpts{
		Criu:         s.criu,
		Pid:          root,
		ImageDir:     filepath.Join(s.dir, CRIUDir),
		LeaveRunning: true, // ended by end(), once the image is complete
		ShellJob:     s.m.ShellJob,
		FileLocks:    true, // the layer's writer lock is an OFD lock
	}
	if s.frozen != nil {
		opts.FreezeCgroup = s.frozen.Path
	}
	if fd, ok := logFD(root); ok {
		key, err := criu.ExternalKey(root, fd)
		if err != nil {
			return err
		}
		if strings.HasPrefix(key, "pipe:") {
			s.m.LogPipe = key
			opts.ExternalFds = []int{fd}
		}
	}
	if err := os.Mkdir(opts.ImageDir, 0o700); err != nil {
		return err
	}
	for _, p := range s.detached {
		virt, ok := tables.Reverse(vresource.PID, int32(p.Pid))
		if !ok {
			return fmt.Errorf("process %d has SysV shm attached and no virtual pid", p.Pid)
		}
		s.m.Quiesced = append(s.m.Quiesced, Quiesced{VirtPid: virt, SysV: p.SysV})
	}
	return criu.Dump(ctx, opts)
}

// logFD is the layer's log descriptor in process pid, from its
// environment.
func logFD(pid int) (int, bool) {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return 0, false
	}
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, chain.EnvLogFD+"="); ok {
			fd, err := strconv.Atoi(v)
			return fd, err == nil && fd >= 0
		}
	}
	return 0, false
}

// resume undoes what the snapshot did to the chain: thaw, then attach.
func (s *taking) resume() error {
	var errs []error
	if s.frozen != nil {
		errs = append(errs, s.frozen.Thaw(freezeLimit))
		s.frozen = nil
	}
	if len(s.detached) > 0 {
		errs = append(errs, quiesce.Attach(s.detached, quiesceTimeout))
		s.detached = nil
	}
	return errors.Join(errs...)
}

// end ends the chain after a complete snapshot: its supervisor learns
// where the image went first, and tears the chain down as after any
// other end.  The image holds copies of everything, so the teardown of
// the live objects takes nothing from it.
func (s *taking) end(image string) error {
	if err := chain.MarkSnapshotted(s.o.Config, s.ch, image); err != nil {
		return errors.Join(err, s.resume())
	}
	for _, pid := range s.members {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	if s.frozen != nil {
		return s.frozen.Thaw(freezeLimit) // killed tasks die once thawed
	}
	return nil
}

func containsPid(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}
