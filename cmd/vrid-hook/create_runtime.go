package main

import (
	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/hooks"
)

func createRuntimeCommand() *cli.Command {
	return &cli.Command{
		Name:   "create-runtime",
		Usage:  "record the container's init process in its chain (OCI createRuntime hook)",
		Flags:  []cli.Flag{aidFlag()},
		Action: func(c *cli.Context) error { return run(c, hooks.CreateRuntime) },
	}
}
