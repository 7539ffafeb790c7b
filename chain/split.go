package chain

import (
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

// Setup in two steps, for the containerd shim: the shim registers the
// chain, or finds the one the container joins, and then creates its
// tables if it is new, with a mode for every user of the container.  The
// table file is bind-mounted into the container, so it exists before the
// runtime creates the container.

// Register registers a chain with the facts known so far and makes its
// directory, without tables.  On failure nothing stays registered.
func Register(cfg *config.Config, reg vresource.Registry, name string, owner vresource.Owner, facts vresource.Facts) (vresource.Chain, error) {
	return register(cfg, reg, vresource.Registration{Name: name, Owner: owner, Facts: facts}, true)
}

// register is Register with what is known so far: facts, a cgroup.
// capped: the chain's directory is a tmpfs no larger than its table
// (makeDir), for chains whose table file a container can write.
func register(cfg *config.Config, reg vresource.Registry, req vresource.Registration, capped bool) (vresource.Chain, error) {
	req.TablePath = func(aid vresource.AID) string { return TablePath(cfg.StateDir, aid) }
	ch, err := reg.Register(req)
	if err != nil {
		return ch, err
	}
	if ch.Replaced != nil {
		// A chain whose owner died without cleaning up gave its name away.
		_, _ = Collect(cfg, reg, *ch.Replaced, logrus.StandardLogger())
	}
	if err := makeDir(cfg, ch, capped); err != nil {
		_ = os.Remove(Dir(cfg.StateDir, ch.AID))
		_ = reg.Release(ch.AID)
		return ch, fmt.Errorf("register chain %s: %w", ch.AID, err)
	}
	return ch, nil
}

// CreateTables creates the table file of a chain that Register made,
// with mode perm, in the chain's directory opened as openTableFile does.
// A table file that is already there and belongs to the chain is kept,
// so that a retried step does no harm.
func CreateTables(cfg *config.Config, ch vresource.Chain, perm os.FileMode) error {
	fail := func(err error) error { return fmt.Errorf("create tables of chain %s: %w", ch.AID, err) }
	dir, err := openDir(cfg.StateDir, ch.AID)
	if err != nil {
		return fail(err)
	}
	defer dir.Close()
	opt := cfg.TableOptions(ch.Name)
	opt.Mode = perm
	t, err := vresource.CreateTablesIn(dir, TablesName, ch.AID, opt)
	if errors.Is(err, os.ErrExist) {
		t, err = ReadTables(cfg, ch)
		if err == nil && t.AID() != ch.AID {
			err = fmt.Errorf("%s belongs to AID %d", ch.Tables, t.AID())
			_ = t.Close()
		}
	}
	if err != nil {
		return fail(err)
	}
	return t.Close()
}

// Forget removes a chain's cgroup, if vrid made it, and its directory,
// and releases its AID; it leaves its System V objects alone: for a chain
// whose IPC namespace is gone, and its objects with it, or is out of
// reach.  A cgroup that cannot be removed (a process of the chain lives
// on) keeps the chain registered, for vrid gc to try again.
func Forget(cfg *config.Config, reg vresource.Registry, ch vresource.Chain) error {
	if err := removeCgroup(ch); err != nil {
		return fmt.Errorf("forget chain %s: %w", ch.AID, err)
	}
	var errs []error
	if err := unmountDir(cfg, ch); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(Dir(cfg.StateDir, ch.AID)); err != nil {
		errs = append(errs, err)
	}
	if err := reg.Release(ch.AID); err != nil && !errors.Is(err, vresource.ErrUnknownChain) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("forget chain %s: %w", ch.AID, err)
	}
	return nil
}
