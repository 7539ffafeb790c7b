package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/snapshot"
)

// criuScriptCommand is CRIU's action script for a restored container (the
// shim names it in the CRIU configuration runc hands CRIU).  CRIU runs it
// at every step of a dump or a restore with the step in
// CRTOOLS_SCRIPT_ACTION; at post-restore, before the processes resume,
// it patches glibc's cached thread ids when the restore moved the pids.
func criuScriptCommand() *cli.Command {
	return &cli.Command{
		Name:  "criu-script",
		Usage: "CRIU action script of restored containers: patch glibc's cached tids at post-restore",
		Action: func(c *cli.Context) error {
			if os.Getenv("CRTOOLS_SCRIPT_ACTION") != "post-restore" {
				return nil
			}
			root, err := strconv.Atoi(os.Getenv("CRTOOLS_INIT_PID"))
			if err != nil {
				return fmt.Errorf("criu-script: CRTOOLS_INIT_PID=%q: %w", os.Getenv("CRTOOLS_INIT_PID"), err)
			}
			if err := snapshot.PatchContainerTids(os.Getenv("CRTOOLS_IMAGE_DIR"), root); err != nil {
				return fmt.Errorf("criu-script: %w", err)
			}
			return nil
		},
	}
}
