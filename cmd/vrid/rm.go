package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/vresource"
)

// rmTimeout bounds the wait for a live supervisor to tear its chain down
// once its processes are killed.
const rmTimeout = 30 * time.Second

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Usage:     "end a chain of vrid run: kill its processes, through its cgroup, and tear it down",
		ArgsUsage: "NAME|AID",
		Action:    rmAction,
	}
}

func rmAction(c *cli.Context) error {
	if c.Args().Len() != 1 {
		return errors.New("give one chain: vrid rm NAME|AID (see vrid ps)")
	}
	cfg, log, reg, err := setupRegistry(c)
	if err != nil {
		return err
	}
	ch, err := reg.Get(c.Args().First())
	if err != nil {
		return fmt.Errorf("%w (see vrid ps)", err)
	}
	if ch.Owner.Kind != chain.OwnerRun {
		return fmt.Errorf("chain %s (%s) belongs to %s: end its container there (ctr task kill, crictl stop)", ch.AID, ch.Name, ch.Owner.Kind)
	}
	// A live supervisor sees its root die and tears the chain down; a
	// dead one (or one that dies meanwhile) leaves that to us.
	for deadline := time.Now().Add(rmTimeout); ; time.Sleep(10 * time.Millisecond) {
		if ch.Stale {
			_, err := chain.Collect(cfg, reg, ch, log)
			return err
		}
		if err := chain.Kill(ch); err != nil {
			return err
		}
		ch, err = reg.Get(ch.AID.String())
		if errors.Is(err, vresource.ErrUnknownChain) {
			return nil
		}
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chain %s: its processes are gone, but its supervisor (pid %d) has not torn it down within %v", ch.AID, ch.Owner.Pid, rmTimeout)
		}
	}
}
