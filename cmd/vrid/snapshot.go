package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
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
		},
		Action: snapshotAction,
	}
}

func snapshotAction(c *cli.Context) error {
	name, image, leaveRunning, err := snapshotArgs(c)
	if err != nil {
		return err
	}
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	reg, err := chain.OpenRegistry(cfg)
	if err != nil {
		return err
	}
	m, err := snapshot.Take(context.Background(), snapshot.Options{
		Config: cfg, Registry: reg, Chain: name, Image: image,
		LeaveRunning: leaveRunning, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Printf("chain %s (AID %s) snapshotted to %s\n", m.Name, m.AID, image)
	return nil
}

// snapshotArgs reads the chain and the flags, which may follow it
// (urfave/cli stops at the first argument; `snapshot NAME --image DIR` is
// the documented order).
func snapshotArgs(c *cli.Context) (name, image string, leaveRunning bool, err error) {
	image, leaveRunning = c.String("image"), c.Bool("leave-running")
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--leave-running":
			leaveRunning = true
		case a == "--image" && i+1 < len(args):
			i++
			image = args[i]
		case strings.HasPrefix(a, "--image="):
			image = strings.TrimPrefix(a, "--image=")
		case name == "" && !strings.HasPrefix(a, "-"):
			name = a
		default:
			return "", "", false, fmt.Errorf("snapshot: unexpected %q: vrid snapshot NAME|AID --image DIR [--leave-running]", a)
		}
	}
	if name == "" || image == "" {
		return "", "", false, fmt.Errorf("snapshot: name a chain and an image: vrid snapshot NAME|AID --image DIR [--leave-running]")
	}
	return name, image, leaveRunning, nil
}
