package chain

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/vresource"
)

// OwnerRun marks the chains vrid run owns.  Their cgroup is vrid's own:
// vrid kills through it and removes it.  Any other kind's (a runtime's)
// it only reads.
const OwnerRun = "run"

var (
	// ErrNoCgroup: the registry records no cgroup for the chain (one
	// set up by a vrid from before cgroups), so vrid knows none of its
	// processes.
	ErrNoCgroup = errors.New("no cgroup on record")
	// ErrNotOurs: the chain's processes are its runtime's to end.
	ErrNotOurs = errors.New("its processes belong to its runtime")
)

// Cgroup opens the chain's cgroup.  One never made, or already removed,
// is an error that matches fs.ErrNotExist.
func Cgroup(ch vresource.Chain) (*cgroup.Cgroup, error) {
	if ch.Facts.Cgroup == "" {
		return nil, fmt.Errorf("chain %s: %w", ch.AID, ErrNoCgroup)
	}
	cg, err := cgroup.Open(ch.Facts.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("chain %s: %w", ch.AID, err)
	}
	return cg, nil
}

// Kill ends every process of a chain that vrid run owns, through its
// cgroup, and returns once none is left.  It signals no process outside
// the cgroup, whatever the chain's table says.
func Kill(ch vresource.Chain) error {
	if ch.Owner.Kind != OwnerRun {
		return fmt.Errorf("kill chain %s (owner %s): %w", ch.AID, ch.Owner.Kind, ErrNotOurs)
	}
	cg, err := Cgroup(ch)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never made, or gone with its members
	}
	if err == nil {
		err = cg.Kill()
	}
	if err != nil {
		return fmt.Errorf("kill chain %s: %w", ch.AID, err)
	}
	return nil
}

// Members lists the processes of a chain, from its cgroup: pids in vrid's
// pid namespace.  A cgroup never made, or already removed, has none.
func Members(ch vresource.Chain) ([]int, error) {
	cg, err := Cgroup(ch)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	members, err := cg.Members()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed meanwhile
	}
	return members, err
}

// removeCgroup removes the cgroup of a chain that vrid run owns.
func removeCgroup(ch vresource.Chain) error {
	if ch.Owner.Kind != OwnerRun {
		return nil
	}
	cg, err := Cgroup(ch)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNoCgroup) {
		return nil
	}
	if err != nil {
		return err
	}
	return cg.Remove()
}
