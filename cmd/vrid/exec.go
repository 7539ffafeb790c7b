package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/harness"
)

const execUsage = "vrid exec NAME|AID [--] CMD [ARG...]"

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command in a running chain of vrid run: its layer, its ids and its cgroup",
		ArgsUsage: "NAME|AID [--] CMD [ARG...]",
		// Every argument after the chain is the command's, flags too.
		SkipFlagParsing: true,
		Action:          execAction,
	}
}

func execAction(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return cli.ShowSubcommandHelp(c)
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("no chain given: " + execUsage + " (see vrid ps)")
	}
	name, args := args[0], args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("no command given: " + execUsage)
	}
	cfg, log, reg, err := setupRegistry(c)
	if err != nil {
		return err
	}
	ch, err := reg.Get(name)
	if err != nil {
		return fmt.Errorf("%w (see vrid ps)", err)
	}
	if err := harness.CheckExec(ch); err != nil {
		return err
	}
	opt := harness.Options{Config: cfg, Args: args, Stdin: os.Stdin,
		Stdout: os.Stdout, Stderr: os.Stderr, Log: log}
	command, err := prepare(&opt)
	if err != nil {
		return err
	}
	status, err := harness.Exec(opt, command, ch)
	if err != nil {
		return cli.Exit("vrid: "+err.Error(), status)
	}
	if status != 0 {
		return cli.Exit("", status)
	}
	return nil
}
