package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/snapshot"
)

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:      "snapshot",
		Usage:     "save a running chain to an image directory; the chain ends unless --leave-running",
		ArgsUsage: "NAME|AID --image DIR",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Usage: "the image directory to write: absent or empty (required)"},
			&cli.BoolFlag{Name: "leave-running", Usage: "resume the chain after the snapshot"},
			&cli.BoolFlag{Name: "sync", Usage: "make the image durable (fsync) before the chain resumes or ends"},
		},
		Action: snapshotAction,
	}
}

func snapshotAction(c *cli.Context) error {
	a, err := snapshotArgs(c)
	if err != nil {
		return err
	}
	cfg, log, reg, err := setupRegistry(c)
	if err != nil {
		return err
	}
	m, err := snapshot.Take(context.Background(), snapshot.Options{
		Config: cfg, Registry: reg, Chain: a.name, Image: a.image,
		LeaveRunning: a.leaveRunning, Sync: a.sync, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Printf("chain %s (AID %s) snapshotted to %s\n", m.Name, m.AID, a.image)
	return nil
}

// snapshotRequest is what `vrid snapshot` was asked.
type snapshotRequest struct {
	name, image        string
	leaveRunning, sync bool
}

const snapshotUsage = "vrid snapshot NAME|AID --image DIR [--leave-running] [--sync]"

// snapshotArgs reads the chain and the flags, which may follow it
// (urfave/cli stops at the first argument; `snapshot NAME --image DIR` is
// the documented order).
func snapshotArgs(c *cli.Context) (snapshotRequest, error) {
	r := snapshotRequest{image: c.String("image"), leaveRunning: c.Bool("leave-running"), sync: c.Bool("sync")}
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--leave-running":
			r.leaveRunning = true
		case a == "--sync":
			r.sync = true
		case a == "--image" && i+1 < len(args):
			i++
			r.image = args[i]
		case strings.HasPrefix(a, "--image="):
			r.image = strings.TrimPrefix(a, "--image=")
		case r.name == "" && !strings.HasPrefix(a, "-"):
			r.name = a
		default:
			return r, fmt.Errorf("snapshot: unexpected %q: %s", a, snapshotUsage)
		}
	}
	if r.name == "" || r.image == "" {
		return r, fmt.Errorf("snapshot: name a chain and an image: %s", snapshotUsage)
	}
	return r, nil
}
