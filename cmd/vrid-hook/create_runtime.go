package main

import (
	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/hooks"
)

func createRuntimeCommand() *cli.Command {
	return &cli.Command{
		Name:   "create-runtime",
		Usage:  "create the tables of the container's chain (OCI createRuntime hook)",
		Flags:  []cli.Flag{aidFlag()},
		Action: func(c *cli.Context) error { return run(c, hooks.CreateRuntime) },
	}
}
