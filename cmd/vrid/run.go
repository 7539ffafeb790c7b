package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/harness"
	"github.com/vrid/vrid/vresource"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command as a new application chain",
		ArgsUsage: "-- CMD [ARG...]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "chain name (default aid-<AID>)"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background and print the AID"},
			&cli.StringFlag{Name: "ids", Usage: "virtual id policy, overriding [tables] ids: system or sequential"},
			&cli.StringFlag{Name: "supervise", Hidden: true, Usage: "internal: run the chain of this AID, set up by --detach"},
		},
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	opt := harness.Options{Config: cfg, Args: c.Args().Slice(), Stdin: os.Stdin,
		Stdout: os.Stdout, Stderr: os.Stderr, Log: log}
	command, err := prepare(&opt)
	if err != nil {
		return err
	}
	reg, err := chain.OpenRegistry(cfg)
	if err != nil {
		return err
	}
	var ch vresource.Chain
	if aid := c.String("supervise"); aid != "" {
		if ch, err = reg.Get(aid); err != nil {
			return err
		}
	} else {
		// What a killed detached supervisor left, the next run collects.
		if _, err := chain.CollectStale(cfg, reg, log); err != nil {
			log.WithError(err).Warn("collect chains whose owner is gone")
		}
		owner, err := vresource.OwnerOf(os.Getpid())
		if err != nil {
			return err
		}
		owner.Kind = chain.OwnerRun
		if ch, err = chain.Setup(cfg, reg, c.String("name"), owner); err != nil {
			return err
		}
		if c.Bool("detach") {
			return detach(c, cfg, reg, ch)
		}
	}
	status, err := harness.Run(opt, command, reg, ch)
	if err != nil {
		log.Error(err)
	}
	if status != 0 {
		return cli.Exit("", status)
	}
	return nil
}

// prepare is harness.Prepare with the shell's status for a command
// that is not there.
func prepare(opt *harness.Options) (harness.Command, error) {
	command, err := harness.Prepare(opt)
	var unknown *harness.UnknownCommandError
	if errors.As(err, &unknown) {
		return command, cli.Exit("vrid: "+err.Error(), harness.ExitUnknownCommand)
	}
	return command, err
}

// detach starts `vrid run --supervise AID` in its own session to own the
// chain, prints the AID and returns.
func detach(c *cli.Context, cfg *config.Config, reg vresource.Registry, ch vresource.Chain) error {
	fail := func(err error) error {
		_ = chain.Teardown(cfg, reg, ch)
		return fmt.Errorf("detach chain %s: %w", ch.AID, err)
	}
	logPath := filepath.Join(cfg.StateDir, "logs", ch.AID.String()+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fail(err)
	}
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return fail(err)
	}
	defer devNull.Close()
	args := []string{"vrid", "--state-dir", cfg.StateDir, "--log-level", cfg.LogLevel}
	if cfg.Path != "" {
		args = append(args, "--config", cfg.Path)
	}
	args = append(args, "run", "--supervise", ch.AID.String(), "--ids", cfg.Tables.IDs, "--")
	args = append(args, c.Args().Slice()...)
	supervisor := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        args,
		Stdin:       devNull,
		Stdout:      out,
		Stderr:      out,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := supervisor.Start(); err != nil {
		return fail(err)
	}
	owner, err := vresource.OwnerOf(supervisor.Process.Pid)
	if err != nil {
		return fail(err)
	}
	owner.Kind = chain.OwnerRun
	if err := reg.Update(ch.AID, func(c *vresource.Chain) error { c.Owner = owner; return nil }); err != nil {
		return fail(err)
	}
	_ = supervisor.Process.Release()
	fmt.Println(ch.AID)
	return nil
}
