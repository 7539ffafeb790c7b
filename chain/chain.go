// Package chain owns the lifetime of an application chain on this host:
// registering it, creating its tables, the environment that puts a process
// under the preload layer, and the teardown that leaves nothing behind.
// The vrid CLI, the containerd shim and the OCI hooks all go through it.
package chain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

// Environment variables the preload layer reads (vresource/preload/layer.c).
const (
	EnvTable    = "VRID_TABLE"
	EnvTableFD  = "VRID_TABLE_FD" // the table, inherited: for processes that cannot reach EnvTable
	EnvAID      = "VRID_AID"
	EnvLogFD    = "VRID_LOG_FD"
	EnvLogLevel = "VRID_LOG_LEVEL"
	EnvPreload  = "LD_PRELOAD"
)

// Dir is where a chain's files live: its tables, and later its images.
func Dir(stateDir string, aid vresource.AID) string {
	return filepath.Join(stateDir, "chains", aid.String())
}

// TablePath is the chain's table file.
func TablePath(stateDir string, aid vresource.AID) string {
	return filepath.Join(Dir(stateDir, aid), TablesName)
}

// OpenRegistry opens the registry of cfg's state directory.
func OpenRegistry(cfg *config.Config) (vresource.Registry, error) {
	return vresource.OpenFileRegistry(cfg.StateDir)
}

// Setup registers a chain whose processes start as this process's
// children do (SelfFacts), in a cgroup of its own, and creates its
// tables.  On failure nothing stays registered.
func Setup(cfg *config.Config, reg vresource.Registry, name string, owner vresource.Owner) (vresource.Chain, error) {
	req, err := selfRegistration(cfg, name, owner)
	if err != nil {
		return vresource.Chain{}, err
	}
	ch, err := register(cfg, reg, req, false)
	if err != nil {
		return ch, err
	}
	// Readable and writable by any user the chain's processes become:
	// the state directory (0700) keeps everyone else from its path, and
	// a process that dropped root reopens it through an fd it inherited.
	if err := CreateTables(cfg, ch, 0o666); err != nil {
		_ = Forget(cfg, reg, ch)
		return ch, err
	}
	return ch, nil
}

// selfRegistration asks for a chain whose processes start as this
// process's children do (SelfFacts), in a cgroup of its own.
func selfRegistration(cfg *config.Config, name string, owner vresource.Owner) (vresource.Registration, error) {
	req := vresource.Registration{Name: name, Owner: owner}
	var err error
	if req.Facts, err = SelfFacts(); err == nil {
		req.CgroupPath, err = cgroup.ChainPaths(cfg.StateDir)
	}
	if err != nil {
		return req, fmt.Errorf("set up chain %q: %w", name, err)
	}
	return req, nil
}

// Env is what a process needs to run under the layer in chain ch.  logFD
// is the fd number of the log pipe in that process, or -1.
func Env(cfg *config.Config, ch vresource.Chain, library string, logFD int) []string {
	env := []string{
		EnvTable + "=" + ch.Tables,
		EnvAID + "=" + ch.AID.String(),
		EnvLogLevel + "=" + cfg.LogLevel,
		EnvPreload + "=" + library,
	}
	if logFD >= 0 {
		env = append(env, EnvLogFD+"="+strconv.Itoa(logFD))
	}
	return env
}

// MergeEnv replaces or adds the entries of add in base.  LD_PRELOAD keeps
// whatever base already preloads, after our library.
func MergeEnv(base, add []string) []string {
	out := make([]string, 0, len(base)+len(add))
	index := map[string]int{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = len(out)
		out = append(out, kv)
	}
	for _, kv := range add {
		k, v, _ := strings.Cut(kv, "=")
		i, ok := index[k]
		switch {
		case !ok:
			index[k] = len(out)
			out = append(out, kv)
		case k == EnvPreload:
			// Keep what the base preloads, after our library, once.
			switch _, old, _ := strings.Cut(out[i], "="); {
			case old == "":
				out[i] = kv
			case !strings.Contains(old, v):
				out[i] = kv + " " + old
			}
		default:
			out[i] = kv
		}
	}
	return out
}

// Teardown removes what a chain leaves once its processes are gone: the
// IPC objects its tables still name that are the chain's to remove
// (ipc.go), its table file, and its AID.  It reads a private copy of the
// tables, which a wedged chain can't hold up for longer than
// vresource.WaitLimit.  Objects left alone are logged on logrus's
// standard logger.
func Teardown(cfg *config.Config, reg vresource.Registry, ch vresource.Chain) error {
	var errs []error
	t, err := salvageTables(cfg, ch)
	if t != nil {
		errs = append(errs, removeIPCHere(t, ch.Facts, logrus.StandardLogger()), t.Close())
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	errs = append(errs, Forget(cfg, reg, ch))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down chain %s: %w", ch.AID, err)
	}
	return nil
}
