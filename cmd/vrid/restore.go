package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/harness"
	"github.com/vrid/vrid/snapshot"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "restore a chain from an image directory as a new chain, and supervise it as vrid run does",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "image", Required: true, Usage: "the image directory vrid snapshot wrote"},
			&cli.StringFlag{Name: "name", Usage: "the new chain's name (default: the image's)"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "supervise in the background and print the AID"},
			&cli.BoolFlag{Name: "report-fd3", Hidden: true, Usage: "internal: the --detach supervisor, which reports on fd 3"},
		},
		Action: restoreAction,
	}
}

func restoreAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return fmt.Errorf("restore: unexpected arguments %v: vrid restore --image DIR [--name NEW] [--detach]", c.Args().Slice())
	}
	cfg, log, err := setup(c)
	if err != nil {
		return err
	}
	if c.Bool("detach") {
		// Bad images are refused here, before anything starts; the
		// checksums, which read the whole image, once, by the supervisor
		// before it changes anything.
		if _, err := snapshot.Precheck(cfg, c.String("image")); err != nil {
			return err
		}
		return detachRestore(c, cfg.StateDir, cfg.LogLevel, cfg.Path)
	}
	var report *os.File
	if c.Bool("report-fd3") {
		report = os.NewFile(3, "report")
	}
	reg, err := chain.OpenRegistry(cfg)
	if err != nil {
		return err
	}
	r, err := snapshot.Restore(context.Background(), snapshot.RestoreOptions{
		Config: cfg, Registry: reg, Image: c.String("image"), Name: c.String("name"), Log: log,
	})
	if err != nil {
		if report != nil {
			fmt.Fprintln(report, "error", strings.ReplaceAll(err.Error(), "\n", "\n\t"))
		}
		return err
	}
	defer r.Tables.Close()
	if report != nil {
		fmt.Fprintln(report, "ok", r.Chain.AID)
		report.Close()
	}
	opt := harness.Options{Config: cfg, Stdout: os.Stdout, Stderr: os.Stderr, Log: log}
	status, err := harness.Supervise(opt, reg, r.Chain, r.Tables, r.Root, r.Logs)
	if err != nil {
		log.Error(err)
	}
	if status != 0 {
		return cli.Exit("", status)
	}
	return nil
}

// detachRestore runs the restore in `vrid restore --report-fd3`, in its
// own session, which supervises the chain; it waits for its report and
// prints the new AID, or returns its error.
func detachRestore(c *cli.Context, stateDir, logLevel, configPath string) error {
	logDir := filepath.Join(stateDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	out, err := os.CreateTemp(logDir, "restore-*.log")
	if err != nil {
		return err
	}
	defer out.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devNull.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer reportR.Close()
	args := []string{"vrid", "--state-dir", stateDir, "--log-level", logLevel}
	if configPath != "" {
		args = append(args, "--config", configPath)
	}
	args = append(args, "restore", "--report-fd3", "--image", c.String("image"))
	if name := c.String("name"); name != "" {
		args = append(args, "--name", name)
	}
	supervisor := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        args,
		Stdin:       devNull,
		Stdout:      out,
		Stderr:      out,
		ExtraFiles:  []*os.File{reportW},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = supervisor.Start()
	reportW.Close()
	if err != nil {
		return err
	}
	line, _ := bufio.NewReader(reportR).ReadString(0)
	status, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	if status != "ok" {
		_ = supervisor.Wait()
		if rest == "" {
			rest = "the supervisor exited without a word; see " + out.Name()
		}
		return errors.New(rest)
	}
	_ = supervisor.Process.Release()
	fmt.Println(rest)
	return nil
}
