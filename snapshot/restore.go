package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/criu"
	"github.com/vrid/vrid/harness"
	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/sysv"
	"github.com/vrid/vrid/vresource"
)

// RestoreOptions says what Restore restores.
type RestoreOptions struct {
	Config   *config.Config
	Registry vresource.Registry
	Image    string
	Name     string // the new chain's name; "" keeps the image's
	Log      logrus.FieldLogger
}

// Restored is a chain Restore brought back, running, for its caller to
// supervise as vrid run does.
type Restored struct {
	Chain vresource.Chain
	// Tables are the chain's tables, mapped; the caller closes them.
	Tables *vresource.Tables
	// Root is the restored root's system pid, a child of the caller.
	Root int
	// Logs is the reading end of the chain's new log pipe.
	Logs *os.File
}

// Check verifies the image in dir as Restore does before it changes
// anything: the manifest, every checksum, the format, the libvrid build
// and a CRIU to restore with.
func Check(cfg *config.Config, dir string) (*Manifest, error) {
	return check(cfg, dir, true)
}

// Precheck is Check without the checksums, which read the whole image:
// for `vrid restore --detach`, whose supervisor verifies them (Restore)
// before it changes anything.
func Precheck(cfg *config.Config, dir string) (*Manifest, error) {
	return check(cfg, dir, false)
}

func check(cfg *config.Config, dir string, sums bool) (*Manifest, error) {
	// CRIU, a process to start, answers while the image is read.
	criuErr := make(chan error, 1)
	go func() {
		_, err := criu.Version(CRIUPath(cfg))
		criuErr <- err
	}()
	m, err := verifyBuild(cfg, dir, sums)
	if cerr := <-criuErr; err == nil && cerr != nil {
		err = fmt.Errorf("restore %s: %w", dir, cerr)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// verifyBuild verifies the image in dir, its checksums when sums, and
// that cfg's libvrid is the build that made it.
func verifyBuild(cfg *config.Config, dir string, sums bool) (*Manifest, error) {
	m, err := verify(dir, sums)
	if err != nil {
		return nil, err
	}
	library, err := cfg.LibraryPath()
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", dir, err)
	}
	if err := m.checkBuild(library); err != nil {
		return nil, fmt.Errorf("restore %s: %w", dir, err)
	}
	return m, nil
}

// Restore brings the chain in o.Image back as a new chain, in the
// caller's pid and IPC namespaces: a new AID, a table made from the
// image's and rebound onto new system ids, the System V objects made
// afresh, and the processes restored by CRIU onto free pids, the root as
// a child of the caller.  The caller must be a child subreaper, as vrid
// run is, to reap the chain's orphans.  The image is only read; a failed
// restore leaves nothing behind.
func Restore(ctx context.Context, o RestoreOptions) (_ *Restored, err error) {
	image, err := filepath.Abs(o.Image)
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", o.Image, err)
	}
	ph := newPhases(o.Log, "restore")
	m, err := Check(o.Config, image)
	if err != nil {
		return nil, err
	}
	ph.done("verify")
	if m.Container {
		return nil, fmt.Errorf("restore %s: %w: restore it through containerd (ctr container restore --live, with io.containerd.vrid.v1)", image, ErrContainer)
	}
	name := o.Name
	if name == "" {
		name = m.Name
	}
	r := &restoring{o: o, m: m, image: image, criu: CRIUPath(o.Config), ph: ph}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("restore %s as %q: %w", image, name, err), r.undo())
		}
	}()
	if err := r.run(ctx, name); err != nil {
		return nil, err
	}
	return &Restored{Chain: r.ch, Tables: r.tables, Root: r.root, Logs: r.logR}, nil
}

// restoring is one restore under way: what must be undone if it fails.
type restoring struct {
	o     RestoreOptions
	m     *Manifest
	image string
	criu  string
	ph    *phases

	ch      vresource.Chain
	tables  *vresource.Tables
	rebinds []sysv.Rebind // objects made
	work    string        // the rewritten copy of the CRIU images
	root    int
	logR    *os.File
}

func (r *restoring) run(ctx context.Context, name string) error {
	img, err := os.ReadFile(filepath.Join(r.image, TablesImage))
	if err != nil {
		return err
	}
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		return err
	}
	owner.Kind = chainOwnerRun
	ch, tables, err := chain.SetupFromImage(r.o.Config, r.o.Registry, name, owner, img)
	if err != nil {
		return err
	}
	r.ch, r.tables = ch, tables
	if err := r.rekey(); err != nil {
		return err
	}
	r.ph.done("register and tables")
	if err := r.restoreSysV(); err != nil {
		return err
	}
	r.ph.done("sysv restore")
	// Chosen pids are free only until someone takes them: other
	// restores wait until CRIU has taken them.
	unlock, err := criu.LockPids()
	if err != nil {
		return err
	}
	defer unlock()
	src := filepath.Join(r.image, CRIUDir)
	tree, err := criu.ReadTree(src)
	if err != nil {
		return err
	}
	pids, err := criu.ChooseFreePids(tree)
	if err != nil {
		return err
	}
	if r.work, err = os.MkdirTemp(filepath.Dir(r.image), "."+filepath.Base(r.image)+".restore-"); err != nil {
		return err
	}
	dst := filepath.Join(r.work, CRIUDir)
	r.ph.done("choose pids")
	if err := criu.RewritePids(src, dst, pids); err != nil {
		return err
	}
	if _, err := criu.RewritePaths(dst, map[string]string{r.m.TablePath: r.ch.Tables}); err != nil {
		return err
	}
	if err := restartArgs(dst, tree, idMaps{pids: pids, sem: oldToNew(r.rebinds, vresource.Sem), msg: oldToNew(r.rebinds, vresource.Msg)}); err != nil {
		return err
	}
	r.ph.done("rewrite images")
	if err := rebindAll(r.tables, vresource.PID, func(sys int32) (int32, bool) {
		n, ok := pids[int(sys)]
		return int32(n), ok
	}); err != nil {
		return err
	}
	r.tables.BumpGeneration()
	return r.restoreTree(ctx, dst, tree, pids)
}

// rekey drops the image's IPC keys, private system keys derived from the
// old AID: BindKey derives the new AID's on first use, here for the
// objects restoreSysV makes and in the layer for the others.
func (r *restoring) rekey() error {
	for _, e := range r.tables.Entries(vresource.IPCKey) {
		if err := r.tables.RemoveVirt(vresource.IPCKey, e.Virt); err != nil {
			return err
		}
	}
	return nil
}

// restoreSysV makes the chain's objects afresh under its new keys,
// rebinds their virtual ids and records them as the chain's own, for
// its teardown.
func (r *restoring) restoreSysV() (err error) {
	r.rebinds, err = recreateSysV(r.image, r.tables)
	return err
}

// recreateSysV makes the objects of the System V state in image afresh,
// in the calling thread's IPC namespace, under keys the tables derive,
// rebinds their virtual ids in tables and records them as the chain's.
// Entries of objects the image does not hold (not the chain's, or gone
// when it was taken) are dropped: their system ids name someone else's
// objects here.  It returns the objects made, for an undo, on error too.
func recreateSysV(image string, tables *vresource.Tables) ([]sysv.Rebind, error) {
	st, err := sysv.Load(image)
	if err != nil {
		return nil, err
	}
	keyFor := func(vkey int32) (int32, error) {
		skey, _, err := tables.BindKey(vkey)
		return skey, err
	}
	rebinds, err := sysv.Restore(st, keyFor)
	if err != nil {
		return rebinds, err
	}
	var recs []vresource.IPCRecord
	for _, rb := range rebinds {
		rec, err := chain.RecordIPC(rb.Type, rb.NewSys)
		if err != nil {
			return rebinds, err
		}
		recs = append(recs, rec)
	}
	for _, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg} {
		newSys := oldToNew(rebinds, rt)
		if err := rebindAll(tables, rt, func(sys int32) (int32, bool) {
			n, ok := newSys[sys]
			return n, ok
		}); err != nil {
			return rebinds, err
		}
	}
	return rebinds, tables.AddIPCRecords(recs)
}

// oldToNew maps the old system ids of the objects of type rt that
// recreateSysV made to their new ones.
func oldToNew(rebinds []sysv.Rebind, rt vresource.ResourceType) map[int32]int32 {
	m := map[int32]int32{}
	for _, rb := range rebinds {
		if rb.Type == rt {
			m[rb.OldSys] = rb.NewSys
		}
	}
	return m
}

// rebindAll gives every entry of type rt the system id newSys maps its
// old one to, and drops the entries it maps nowhere.  Every entry is
// removed before any is put back, since one entry's new system id may be
// another's old one.
func rebindAll(t *vresource.Tables, rt vresource.ResourceType, newSys func(old int32) (int32, bool)) error {
	entries := t.Entries(rt)
	for _, e := range entries {
		if err := t.RemoveVirt(rt, e.Virt); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if n, ok := newSys(e.Sys); ok {
			if err := t.Insert(rt, e.Virt, n); err != nil {
				return fmt.Errorf("rebind %s %d from %d to %d: %w", rt, e.Virt, e.Sys, n, err)
			}
		}
	}
	return nil
}

// restoreTree restores the processes from the rewritten images in dir,
// with a new log pipe in place of the old one, and patches the threads'
// cached tids before they resume.
func (r *restoring) restoreTree(ctx context.Context, dir string, tree *criu.Tree, pids map[int]int) error {
	// Orphans of the restored tree come to us, as under vrid run.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	// The tree goes into the new chain's cgroup before it resumes, so that
	// nothing it forks is born outside; CRIU would put it back into the
	// dumped chain's.
	cg, err := cgroup.Create(r.ch.Facts.Cgroup)
	if err != nil {
		return err
	}
	opts := criu.RestoreOpts{
		Criu:         r.criu,
		WorkDir:      r.work,
		ShellJob:     r.m.ShellJob,
		FileLocks:    true,
		Sibling:      true,
		LeaveCgroups: true,
		PostRestore: func(root int) error {
			r.ph.done("criu restore")
			if err := patchTids("/proc", dir, tree, pids); err != nil {
				return err
			}
			r.ph.done("tid patch")
			for _, pid := range append([]int{root}, harness.Descendants(root)...) {
				if err := cg.Enter(pid); err != nil {
					return err
				}
			}
			return nil
		},
	}
	if r.m.LogPipe != "" {
		logR, logW, err := os.Pipe()
		if err != nil {
			return err
		}
		defer logW.Close()
		r.logR = logR
		opts.InheritFds = []criu.InheritFd{{Key: r.m.LogPipe, File: logW}}
	}
	root, err := criu.Restore(ctx, dir, opts)
	if err != nil {
		return err
	}
	r.ph.done("criu resume")
	r.root = root
	if err := r.o.Registry.Update(r.ch.AID, func(c *vresource.Chain) error { c.RootPid = root; return nil }); err != nil {
		return err
	}
	r.ch.RootPid = root
	if err := resumeRestored(r.tables, r.m.Quiesced, func(pid int32) (int, error) { return int(pid), nil }); err != nil {
		return err
	}
	r.ph.done("undo and attach")
	return os.RemoveAll(r.work)
}

// undo removes what a failed restore made: the processes, the objects,
// the tables and the registry entry, and the work copy.
func (r *restoring) undo() error {
	var errs []error
	if r.root > 0 {
		errs = append(errs, killTree(r.root))
	}
	if r.logR != nil {
		r.logR.Close()
	}
	if r.work != "" {
		errs = append(errs, os.RemoveAll(r.work))
	}
	errs = append(errs, sysv.Remove(r.rebinds))
	if r.tables != nil {
		errs = append(errs, r.tables.Close())
	}
	if r.ch.AID != 0 {
		errs = append(errs, chain.Forget(r.o.Config, r.o.Registry, r.ch))
	}
	return errors.Join(errs...)
}

// killTree kills a restored root and everything below it, and reaps the
// root, our child.
func killTree(root int) error {
	for _, pid := range harness.Descendants(root) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	_ = unix.Kill(root, unix.SIGKILL)
	var ws unix.WaitStatus
	_, err := unix.Wait4(root, &ws, 0, nil)
	return err
}

// resumeRestored finishes a restore once the processes run: the ones with
// SEM_UNDO adjustments give their undo lists them again, and only then do
// the ones whose System V shm was detached attach it again and let their
// threads go.  hostPid turns a pid the tables hold into one the caller
// can signal.
func resumeRestored(t *vresource.Tables, quiesced []Quiesced, hostPid func(sys int32) (int, error)) error {
	if err := reapplyUndo(t, quiesceTimeout, hostPid); err != nil {
		return err
	}
	var procs []quiesce.Process
	for _, q := range quiesced {
		sys, ok := t.Lookup(vresource.PID, q.VirtPid)
		if !ok {
			return fmt.Errorf("quiesced process %d has no pid after the restore", q.VirtPid)
		}
		pid, err := hostPid(sys)
		if err != nil {
			return err
		}
		procs = append(procs, quiesce.Process{Pid: pid, SysV: q.SysV})
	}
	return quiesce.Attach(procs, quiesceTimeout)
}
