// Command vrid runs applications under virtual resource ids and shows
// their chains and translation tables.
package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

func main() {
	app := &cli.App{
		Name:  "vrid",
		Usage: "run applications with virtual pids and System V IPC ids",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "config.toml to read (default $VRID_CONFIG, then " + config.DefaultPath + ")"},
			&cli.StringFlag{Name: "state-dir", Usage: "override state_dir of config.toml"},
			&cli.StringFlag{Name: "log-level", Usage: "override log_level of config.toml: error, warning, info, debug"},
		},
		Commands: []*cli.Command{
			runCommand(),
			execCommand(),
			psCommand(),
			tablesCommand(),
			snapshotCommand(),
			restoreCommand(),
			rmCommand(),
			gcCommand(),
		},
		HideHelpCommand: true,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "vrid:", err)
		os.Exit(1)
	}
}

// setup loads the configuration with the flags over it (--ids only on
// run), and a logger.
func setup(c *cli.Context) (*config.Config, *logrus.Logger, error) {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return nil, nil, err
	}
	if dir := c.String("state-dir"); dir != "" {
		cfg.StateDir = dir
	}
	if level := c.String("log-level"); level != "" {
		cfg.LogLevel = level
	}
	if ids := c.String("ids"); ids != "" {
		cfg.Tables.IDs = ids
	}
	if err := cfg.Check(); err != nil {
		return nil, nil, fmt.Errorf("with the command line's flags: %w", err)
	}
	// The standard logger, which chain.Teardown logs on too.
	log := logrus.StandardLogger()
	log.SetOutput(os.Stderr)
	level, _ := logrus.ParseLevel(cfg.LogLevel) // Check has parsed it
	log.SetLevel(level)
	return &cfg, log, nil
}

// setupRegistry is setup, then the registry of the configured state
// directory: what every verb on existing chains starts with.
func setupRegistry(c *cli.Context) (*config.Config, *logrus.Logger, vresource.Registry, error) {
	cfg, log, err := setup(c)
	if err != nil {
		return nil, nil, nil, err
	}
	reg, err := chain.OpenRegistry(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, log, reg, nil
}
