package vresource

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// FileRegistry keeps the registry of one host in <state>/registry.json.
// Writers hold an flock on <state>/registry.lock; readers take no lock,
// because every write renames a complete new file into place.
type FileRegistry struct {
	dir string
	// inMemory: dir is on tmpfs or ramfs, where the page cache is the
	// storage.  A process that dies loses nothing written, and a reboot
	// loses everything however often it was synced, so store skips fsync.
	inMemory bool
}

var _ Registry = (*FileRegistry)(nil)

// registryFile is the JSON document.  NextAID only grows: it is how AIDs
// are never reused.  A crash of the machine may lose the last writes,
// and with them the growth of NextAID; it always starts another boot.
// So every AID handed out in boot Boot is below ReservedAID, which is on
// disk, directory synced, before one is handed out: the first write of
// the next boot moves NextAID up to it.  Only raising ReservedAID, a
// block of AIDs at a time, costs the directory sync.
type registryFile struct {
	NextAID     AID     `json:"next_aid"`
	ReservedAID AID     `json:"reserved_aid,omitempty"`
	Boot        string  `json:"boot,omitempty"` // /proc/sys/kernel/random/boot_id
	Chains      []Chain `json:"chains"`
}

// aidBlock is how many AIDs one directory sync reserves.
const aidBlock = 256

// bootID names this boot of the machine; "" if unknown, and then every
// AID handed out is synced.
var bootID = sync.OnceValue(func() string {
	data, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
})

// reserve keeps the AIDs handed out below ReservedAID (registryFile),
// and says whether it moved it: the write must then be synced.
func (f *registryFile) reserve(handedOut bool) (moved bool) {
	boot := bootID()
	switch {
	case boot == "":
		return handedOut
	case f.NextAID > f.ReservedAID || f.Boot != boot:
		f.Boot = boot
		f.ReservedAID = f.NextAID + aidBlock
		return true
	}
	return false
}

// sinceBoot moves NextAID past every AID a crash may have lost: in the
// boot that wrote the file, any below ReservedAID.
func (f *registryFile) sinceBoot() {
	if f.Boot != "" && f.Boot != bootID() {
		f.NextAID = max(f.NextAID, f.ReservedAID)
	}
}

// OpenFileRegistry uses stateDir, made if missing, for the registry files.
func OpenFileRegistry(stateDir string) (*FileRegistry, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("open registry %s: %w", stateDir, err)
	}
	return &FileRegistry{dir: stateDir, inMemory: inMemoryFS(stateDir)}, nil
}

func inMemoryFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

func (r *FileRegistry) jsonPath() string { return filepath.Join(r.dir, "registry.json") }

func (r *FileRegistry) Register(req Registration) (Chain, error) {
	if req.Owner.Pid <= 0 {
		return Chain{}, fmt.Errorf("register: owner pid %d", req.Owner.Pid)
	}
	if req.Name != "" {
		if err := checkChainName(req.Name); err != nil {
			return Chain{}, fmt.Errorf("register: %w", err)
		}
	}
	var c Chain
	err := r.update(func(f *registryFile) error {
		c = Chain{
			AID:     f.NextAID,
			Name:    req.Name,
			Owner:   req.Owner,
			Created: time.Now().UTC().Round(0),
			Facts:   req.Facts,
		}
		if c.Name == "" {
			c.Name = defaultChainName(c.AID)
		}
		replaced, err := claimName(f, c.Name, c.AID)
		if err != nil {
			return err
		}
		if req.TablePath != nil {
			c.Tables = req.TablePath(c.AID)
		}
		if req.CgroupPath != nil {
			c.Facts.Cgroup = req.CgroupPath(c.AID)
		}
		f.NextAID++
		f.Chains = append(f.Chains, c)
		c.Replaced = replaced
		return nil
	})
	if err != nil {
		return Chain{}, fmt.Errorf("register: %w", err)
	}
	return c, nil
}

// claimName frees name for the chain self: a live holder is an error, a
// stale one is dropped and returned.
func claimName(f *registryFile, name string, self AID) (*Chain, error) {
	i := slices.IndexFunc(f.Chains, func(c Chain) bool { return c.Name == name && c.AID != self })
	if i < 0 {
		return nil, nil
	}
	holder := f.Chains[i]
	if holder.Owner.alive() {
		return nil, &NameInUseError{Name: name, AID: holder.AID}
	}
	f.Chains = slices.Delete(f.Chains, i, i+1)
	holder.Stale = true
	return &holder, nil
}

func (r *FileRegistry) Release(aid AID) error {
	err := r.update(func(f *registryFile) error {
		i := slices.IndexFunc(f.Chains, func(c Chain) bool { return c.AID == aid })
		if i < 0 {
			return ErrUnknownChain
		}
		f.Chains = slices.Delete(f.Chains, i, i+1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("release aid %d: %w", aid, err)
	}
	return nil
}

func (r *FileRegistry) Update(aid AID, fn func(*Chain) error) error {
	err := r.update(func(f *registryFile) error {
		i := slices.IndexFunc(f.Chains, func(c Chain) bool { return c.AID == aid })
		if i < 0 {
			return ErrUnknownChain
		}
		c := f.Chains[i]
		if err := fn(&c); err != nil {
			return err
		}
		if c.AID != aid {
			return fmt.Errorf("the AID of a chain can't change (to %d)", c.AID)
		}
		if c.Name != f.Chains[i].Name {
			if err := checkChainName(c.Name); err != nil {
				return err
			}
			if _, err := claimName(f, c.Name, aid); err != nil {
				return err
			}
			i = slices.IndexFunc(f.Chains, func(c Chain) bool { return c.AID == aid })
		}
		c.Stale, c.Replaced = false, nil
		f.Chains[i] = c
		return nil
	})
	if err != nil {
		return fmt.Errorf("update aid %d: %w", aid, err)
	}
	return nil
}

func (r *FileRegistry) Get(nameOrAID string) (Chain, error) {
	f, err := r.load()
	if err != nil {
		return Chain{}, fmt.Errorf("get chain %q: %w", nameOrAID, err)
	}
	match := func(c Chain) bool { return c.Name == nameOrAID }
	if aid, err := ParseAID(nameOrAID); err == nil {
		match = func(c Chain) bool { return c.AID == aid }
	}
	i := slices.IndexFunc(f.Chains, match)
	if i < 0 {
		return Chain{}, fmt.Errorf("get chain %q: %w", nameOrAID, ErrUnknownChain)
	}
	c := f.Chains[i]
	c.Stale = !c.Owner.alive()
	return c, nil
}

func (r *FileRegistry) List() ([]Chain, error) {
	f, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for i := range f.Chains {
		f.Chains[i].Stale = !f.Chains[i].Owner.alive()
	}
	slices.SortFunc(f.Chains, func(a, b Chain) int { return cmp.Compare(a.AID, b.AID) })
	return f.Chains, nil
}

// load reads the registry; a registry never written is empty.
func (r *FileRegistry) load() (*registryFile, error) {
	f := &registryFile{NextAID: 1}
	data, err := os.ReadFile(r.jsonPath())
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, f); err != nil {
		return nil, fmt.Errorf("%s: %w", r.jsonPath(), err)
	}
	// Never hand out an AID the file already holds, whatever next_aid says.
	for _, c := range f.Chains {
		f.NextAID = max(f.NextAID, c.AID+1)
	}
	return f, nil
}

// update runs fn on the registry under the lock and stores the result
// when fn succeeds.
func (r *FileRegistry) update(fn func(*registryFile) error) error {
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	f, err := r.load()
	if err != nil {
		return err
	}
	f.sinceBoot()
	next := f.NextAID
	if err := fn(f); err != nil {
		return err
	}
	return r.store(f, f.reserve(f.NextAID != next))
}

// lock takes the registry flock.  Each call opens the lock file anew: an
// flock belongs to an open file, so goroutines of one process exclude one
// another as separate processes do.
func (r *FileRegistry) lock() (unlock func(), err error) {
	path := filepath.Join(r.dir, "registry.lock")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { unix.Close(fd) }, nil
}

// store writes the registry to a temporary file, syncs it and renames it
// into place.  A crash keeps the old file or the new one, whole: never
// one half-written.  durable: it syncs the directory too, so that a
// crash keeps the new one (ReservedAID moved).  Any other change may be
// lost in a crash, which ends every chain anyway.  On an in-memory
// filesystem the rename alone is enough.
func (r *FileRegistry) store(f *registryFile, durable bool) error {
	if f.Chains == nil {
		f.Chains = []Chain{} // "chains": [], not null
	}
	data, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(r.dir, ".registry-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil && !r.inMemory {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), r.jsonPath()); err != nil {
		return err
	}
	if r.inMemory || !durable {
		return nil
	}
	return SyncPath(r.dir)
}

// SyncPath fsyncs the file or directory at path: what a rename into a
// directory needs to outlive a crash of the machine.
func SyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
