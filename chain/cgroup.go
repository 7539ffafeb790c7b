package chain

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/vresource"
)

// OwnerRun marks the chains vrid run owns.  Their cgroup is vrid's own:
// vrid kills through it and removes it.  Any other kind's (a runtime's
// containers') it only reads.
const OwnerRun = "run"

var (
	// ErrNoCgroup: the registry records no cgroup for the chain (one
	// set up by a vrid from before cgroups), so vrid knows none of its
	// processes.
	ErrNoCgroup = errors.New("no cgroup on record")
	// ErrNotOurs: the chain's processes are its runtime's to end.
	ErrNotOurs = errors.New("its processes belong to its runtime")
)

// cgroups opens the chain's cgroups (Facts.Cgroup), skipping those never
// made or already removed.
func cgroups(ch vresource.Chain) ([]*cgroup.Cgroup, error) {
	paths := cgroup.List(ch.Facts.Cgroup).Paths()
	if len(paths) == 0 {
		return nil, fmt.Errorf("chain %s: %w", ch.AID, ErrNoCgroup)
	}
	var out []*cgroup.Cgroup
	for _, path := range paths {
		cg, err := cgroup.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("chain %s: %w", ch.AID, err)
		}
		out = append(out, cg)
	}
	return out, nil
}

// Kill ends every process of a chain that vrid run owns, through its
// cgroup, and returns once none is left.  It signals no process outside
// the cgroup, whatever the chain's table says.
func Kill(ch vresource.Chain) error {
	if ch.Owner.Kind != OwnerRun {
		return fmt.Errorf("kill chain %s (owner %s): %w", ch.AID, ch.Owner.Kind, ErrNotOurs)
	}
	cgs, err := cgroups(ch)
	for _, cg := range cgs {
		err = errors.Join(err, cg.Kill())
	}
	if err != nil {
		return fmt.Errorf("kill chain %s: %w", ch.AID, err)
	}
	return nil
}

// Members lists the processes of a chain, from its cgroups: pids in
// vrid's pid namespace.
func Members(ch vresource.Chain) ([]int, error) {
	cgs, err := cgroups(ch)
	if err != nil {
		return nil, err
	}
	var all []int
	for _, cg := range cgs {
		members, err := cg.Members()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		all = append(all, members...)
	}
	return all, nil
}

// removeCgroup removes the cgroup of a chain that vrid run owns.
func removeCgroup(ch vresource.Chain) error {
	if ch.Owner.Kind != OwnerRun {
		return nil
	}
	cgs, err := cgroups(ch)
	if errors.Is(err, ErrNoCgroup) {
		return nil
	}
	for _, cg := range cgs {
		err = errors.Join(err, cg.Remove())
	}
	return err
}
