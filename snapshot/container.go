package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/criu"
	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/sysv"
	"github.com/vrid/vrid/vresource"
)

// A containerd checkpoint is the directory runc and CRIU write for a task
// (CheckpointTaskRequest.Path), which containerd packs whole into the
// layer of a checkpoint image (an archive.Diff of the directory, in its
// tasks service) and unpacks for a restore (CreateTaskRequest.Checkpoint).
// vrid's state goes into that directory, beside CRIU's images and runc's
// descriptors.json, so that it travels wherever the image goes:
// manifest.json, with Container set and a checksum of every file of the
// directory, CRIU's included; tables.img; and the System V state.  The
// containerd shim orders these steps around runc's own calls.

// ErrNoState: a containerd checkpoint without vrid's state, taken under
// another runtime.
var ErrNoState = errors.New("checkpoint holds no vrid state")

// Saved is what SaveContainer wrote into a checkpoint directory, for
// FinishContainer or DiscardContainer.
type Saved struct {
	Manifest *Manifest
	dir      string
	files    []string // vrid's, by name in dir
}

// SaveContainer writes the state of container chain ch into dir, the
// checkpoint directory runc dumps into next: a private copy of its tables
// and its own System V objects.  The chain must be frozen, and the
// calling thread locked in the chain's IPC namespace.  detached are the
// processes whose System V shm the caller detached, with their pids in
// the container's pid namespace, as the tables hold them; members are all
// its processes, whose SEM_UNDO adjustments are saved.  criuVersion
// is the version of the CRIU runc dumps with (the shim reaps every child
// it has, so it asks CRIU itself).
func SaveContainer(cfg *config.Config, ch vresource.Chain, dir string, detached []quiesce.Process, members Members,
	criuVersion int, log logrus.FieldLogger) (_ *Saved, err error) {
	m, err := newManifest(cfg, ch, criuVersion)
	if err != nil {
		return nil, err
	}
	m.Container = true
	s := &Saved{Manifest: m, dir: dir}
	defer func() {
		if err != nil {
			s.Discard()
		}
	}()
	if ok, why := chain.InIPCNamespace(ch.Facts); !ok {
		return nil, fmt.Errorf("save System V objects: %s", why)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tables, err := chain.ReadTables(cfg, ch)
	if err != nil {
		return nil, err
	}
	defer tables.Close()
	for _, p := range detached {
		virt, ok := tables.Reverse(vresource.PID, int32(p.Pid))
		if !ok {
			return nil, fmt.Errorf("process %d has SysV shm attached and no virtual pid", p.Pid)
		}
		m.Quiesced = append(m.Quiesced, Quiesced{VirtPid: virt, SysV: p.SysV})
	}
	img, err := tables.Image()
	if err != nil {
		return nil, err
	}
	s.files = append(s.files, TablesImage)
	if err := os.WriteFile(filepath.Join(dir, TablesImage), img, 0o600); err != nil {
		return nil, err
	}
	st, err := saveOwnSysV(dir, ch, tables, members, log)
	if err != nil {
		return nil, err
	}
	s.files = append(s.files, st.Files()...)
	return s, nil
}

// newManifest is the manifest of an image of chain ch taken now, under
// cfg's libvrid and CRIU criuVersion, without its files yet.
func newManifest(cfg *config.Config, ch vresource.Chain, criuVersion int) (*Manifest, error) {
	library, err := cfg.LibraryPath()
	if err != nil {
		return nil, err
	}
	buildID, err := BuildID(library)
	if err != nil {
		return nil, err
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return nil, err
	}
	return &Manifest{
		Format:         FormatVersion,
		AID:            ch.AID,
		Name:           ch.Name,
		Kernel:         unix.ByteSliceToString(uts.Release[:]),
		CRIU:           criuVersion,
		LibvridBuildID: buildID,
		TablePath:      ch.Tables,
		Quiesced:       []Quiesced{},
	}, nil
}

// Finish writes the manifest, once runc has dumped the processes: it
// sums every file of the directory.  Nothing is synced: containerd copies
// the directory into its content store, which syncs what it commits.
func (s *Saved) Finish() error {
	s.files = append(s.files, ManifestName)
	return writeManifest(s.dir, s.Manifest, false)
}

// Discard removes what SaveContainer and Finish wrote, after a failed
// checkpoint.
func (s *Saved) Discard() {
	for _, name := range append(s.files, "."+ManifestName+".tmp") {
		os.Remove(filepath.Join(s.dir, name))
	}
}

// CheckContainer verifies the containerd checkpoint in dir as Check does
// an image, and that it is a container's; runc finds CRIU.
func CheckContainer(cfg *config.Config, dir string) (*Manifest, error) {
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s): it was taken under another runtime; restore it under that runtime, io.containerd.runc.v2",
			dir, ErrNoState, ManifestName)
	}
	m, err := verifyBuild(cfg, dir, true)
	if err != nil {
		return nil, err
	}
	if !m.Container {
		return nil, fmt.Errorf("%s: %w: a vrid snapshot of chain %s, not a container's checkpoint: restore it with vrid restore", dir, ErrNotImage, m.Name)
	}
	return m, nil
}

// ContainerRestore is the restore of a container's chain from a containerd
// checkpoint, in the steps the shim takes: NewContainerRestore at the
// task's Create, Prepare and Resumed around runc's restore at its Start,
// Undo if any step fails.
type ContainerRestore struct {
	Manifest *Manifest
	image    string
	work     string // a directory beside image, holding WorkDir()
	tables   *vresource.Tables
	rebinds  []sysv.Rebind
}

// NewContainerRestore makes the tables of ch, a chain the shim registered
// for the restored container, from the checkpoint in image (verified by
// CheckContainer), with the image's private keys dropped: the new AID
// derives its own.  It makes an empty work directory beside image for the
// copy of the CRIU images runc restores from, WorkDir.  The image is only
// read.
func NewContainerRestore(cfg *config.Config, ch vresource.Chain, image string, m *Manifest) (_ *ContainerRestore, err error) {
	img, err := os.ReadFile(filepath.Join(image, TablesImage))
	if err != nil {
		return nil, err
	}
	r := &ContainerRestore{Manifest: m, image: image}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Undo())
		}
	}()
	// 0666: any user of the container maps it (shim.prepare).
	if r.tables, err = chain.CreateTablesFromImage(cfg, ch, img, 0o666); err != nil {
		return nil, err
	}
	for _, e := range r.tables.Entries(vresource.IPCKey) {
		if err := r.tables.RemoveVirt(vresource.IPCKey, e.Virt); err != nil {
			return nil, err
		}
	}
	if r.work, err = os.MkdirTemp(filepath.Dir(image), "."+filepath.Base(image)+".vrid-restore-"); err != nil {
		return nil, err
	}
	return r, nil
}

// WorkDir is where Prepare puts the CRIU images runc restores: the task's
// checkpoint for runc.
func (r *ContainerRestore) WorkDir() string {
	return filepath.Join(r.work, CRIUDir)
}

// PatchTidsMark, in the images runc restores from, says that their pids
// were rewritten: the CRIU action script (vrid-hook criu-script) patches
// glibc's cached tids at post-restore.
const PatchTidsMark = "vrid-patch-tids"

// Prepare makes the chain's System V objects afresh and the CRIU images
// runc restores, before runc's restore.  The calling thread must be
// locked in the IPC namespace the container is restored into.  proc is a
// procfs of the pid namespace the container joins, "" when it gets one of
// its own: there its old pids are free, and they stay; in a shared one
// the processes get free pids, the images are rewritten onto them, and
// the tables rebound.
func (r *ContainerRestore) Prepare(proc string) error {
	var err error
	if r.rebinds, err = recreateSysV(r.image, r.tables); err != nil {
		return err
	}
	view, err := r.criuView()
	if err != nil {
		return err
	}
	defer os.RemoveAll(view)
	tree, err := criu.ReadTree(view)
	if err != nil {
		return err
	}
	pids := map[int]int{}
	if proc == "" {
		for _, id := range tree.Ids() {
			pids[id] = id
		}
	} else {
		unlock, err := criu.LockPids()
		if err != nil {
			return err
		}
		// Held only while choosing: runc restores later, in the shim.
		pids, err = criu.ChooseFreePidsIn(tree, proc)
		unlock()
		if err != nil {
			return err
		}
	}
	dst := r.WorkDir()
	if err := criu.RewritePids(view, dst, pids); err != nil {
		return err
	}
	ids := idMaps{pids: pids, sem: oldToNew(r.rebinds, vresource.Sem), msg: oldToNew(r.rebinds, vresource.Msg)}
	if err := restartArgs(dst, tree, ids); err != nil {
		return err
	}
	if proc != "" {
		if err := rebindAll(r.tables, vresource.PID, func(sys int32) (int32, bool) {
			n, ok := pids[int(sys)]
			return int32(n), ok
		}); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, PatchTidsMark), nil, 0o600); err != nil {
			return err
		}
	}
	r.tables.BumpGeneration()
	return nil
}

// criuView links the files of the checkpoint that are not vrid's into a
// directory of their own beside it: the CRIU images (and runc's files)
// that criu.RewritePids copies.
func (r *ContainerRestore) criuView() (string, error) {
	st, err := sysv.Load(r.image)
	if err != nil {
		return "", err
	}
	mine := map[string]bool{ManifestName: true, TablesImage: true}
	for _, f := range st.Files() {
		mine[f] = true
	}
	view := filepath.Join(r.work, "view")
	if err := os.Mkdir(view, 0o700); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(r.image)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if mine[e.Name()] {
			continue
		}
		src, dst := filepath.Join(r.image, e.Name()), filepath.Join(view, e.Name())
		if err := os.Link(src, dst); err != nil {
			return "", fmt.Errorf("link %s into a work copy: %w", e.Name(), err)
		}
	}
	return view, nil
}

// Resumed finishes the restore once runc has restored the processes: the
// ones with SEM_UNDO adjustments give their undo lists them again, then
// the ones whose System V shm was detached attach it again.  hostPid
// gives the host pid of a pid of the container's pid namespace.
func (r *ContainerRestore) Resumed(hostPid func(nsPid int32) (int, error)) error {
	if err := resumeRestored(r.tables, r.Manifest.Quiesced, hostPid); err != nil {
		return err
	}
	errs := []error{os.RemoveAll(r.work), r.tables.Close()}
	r.work, r.tables = "", nil
	return errors.Join(errs...)
}

// Undo removes what the restore made, but the chain's registration and
// table file, which are the shim's: the objects (in the calling thread's
// IPC namespace), the work directory.
func (r *ContainerRestore) Undo() error {
	var errs []error
	errs = append(errs, sysv.Remove(r.rebinds))
	r.rebinds = nil
	if r.work != "" {
		errs = append(errs, os.RemoveAll(r.work))
		r.work = ""
	}
	if r.tables != nil {
		errs = append(errs, r.tables.Close())
		r.tables = nil
	}
	return errors.Join(errs...)
}

// PatchContainerTids patches glibc's cached tids in a restored container
// whose pids were rewritten, before it resumes: dir holds the images runc
// restored from (CRIU's action scripts get it as CRTOOLS_IMAGE_DIR) and
// root is the host pid of the container's init (CRTOOLS_INIT_PID).  The
// images name the new pids of the container's pid namespace, which the
// init's procfs shows.  Images without PatchTidsMark need nothing.
func PatchContainerTids(dir string, root int) error {
	if _, err := os.Stat(filepath.Join(dir, PatchTidsMark)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	tree, err := criu.ReadTree(dir)
	if err != nil {
		return err
	}
	same := map[int]int{}
	for _, id := range tree.Ids() {
		same[id] = id
	}
	return patchTids("/proc/"+strconv.Itoa(root)+"/root/proc", dir, tree, same)
}
