package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name: "gc",
		Usage: "collect every chain whose owner is gone (a killed `vrid run --detach`): " +
			"its processes, through its cgroup, its IPC objects, tables, AID and cgroup; prints each AID and name",
		Action: gcAction,
	}
}

func gcAction(c *cli.Context) error {
	cfg, log, reg, err := setupRegistry(c)
	if err != nil {
		return err
	}
	collected, err := chain.CollectStale(cfg, reg, log)
	for _, ch := range collected {
		fmt.Printf("%d\t%s\n", ch.AID, ch.Name)
	}
	return err
}
