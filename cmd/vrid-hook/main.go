// Command vrid-hook is the OCI hook of vrid containers: the containerd
// shim adds it to the spec of a container that owns its chain as a
// poststop hook, which tears the chain down.  It reads the container's
// state on stdin and writes the cause of a failure to stderr, where the
// runtime reports it.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/hooks"
	"github.com/vrid/vrid/vresource"
)

func main() {
	app := &cli.App{
		Name:  "vrid-hook",
		Usage: "OCI hook of vrid containers, run by the OCI runtime",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "config.toml to read (default $VRID_CONFIG, then " + config.DefaultPath + ")"},
		},
		Commands: []*cli.Command{
			poststopCommand(),
			criuScriptCommand(),
		},
		HideHelpCommand: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vrid-hook:", err)
		os.Exit(1)
	}
}

// aidFlag names the chain the shim registered for the container.
func aidFlag() cli.Flag {
	return &cli.StringFlag{Name: "aid", Required: true, Usage: "AID of the container's chain"}
}

// hookFunc is one stage of the hook.
type hookFunc func(*config.Config, vresource.Registry, vresource.AID, *specs.State) error

// run loads what every stage needs, then runs it.
func run(c *cli.Context, stage hookFunc) error {
	aid, err := vresource.ParseAID(c.String("aid"))
	if err != nil {
		return err
	}
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return err
	}
	state, err := hooks.ReadState(os.Stdin)
	if err != nil {
		return err
	}
	reg, err := chain.OpenRegistry(&cfg)
	if err != nil {
		return err
	}
	if log, err := openLog(&cfg); err == nil {
		defer log.Close()
		logrus.SetOutput(log)
	}
	if err := stage(&cfg, reg, aid, state); err != nil {
		return fmt.Errorf("%s: %w", c.Command.Name, err)
	}
	return nil
}

// LogFile is where the hook's warnings go, under the state directory:
// the runtime shows a hook's stderr only when the hook fails.
const LogFile = "logs/hooks.log"

func openLog(cfg *config.Config) (*os.File, error) {
	path := filepath.Join(cfg.StateDir, LogFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}
