package main

import (
	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/hooks"
)

func poststopCommand() *cli.Command {
	return &cli.Command{
		Name:   "poststop",
		Usage:  "tear the container's chain down: IPC objects, tables, AID (OCI poststop hook)",
		Flags:  []cli.Flag{aidFlag()},
		Action: func(c *cli.Context) error { return run(c, hooks.Poststop) },
	}
}
