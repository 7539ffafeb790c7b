package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/vresource"
)

func tablesCommand() *cli.Command {
	return &cli.Command{
		Name:      "tables",
		Usage:     "print every entry of a chain's translation tables",
		ArgsUsage: "NAME|AID",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: tablesAction,
	}
}

// tableEntry is one row of `vrid tables`.
type tableEntry struct {
	Type string `json:"type"`
	Virt int32  `json:"virtual"`
	Sys  int32  `json:"system"`
}

func tablesAction(c *cli.Context) error {
	// urfave/cli stops at the first argument; `tables NAME --json` is the documented order.
	args, asJSON := c.Args().Slice(), c.Bool("json")
	if len(args) == 2 && args[1] == "--json" {
		args, asJSON = args[:1], true
	}
	if len(args) != 1 {
		return errors.New("give one chain: vrid tables NAME|AID [--json] (see vrid ps)")
	}
	cfg, _, reg, err := setupRegistry(c)
	if err != nil {
		return err
	}
	ch, err := reg.Get(args[0])
	if err != nil {
		return fmt.Errorf("%w (see vrid ps)", err)
	}
	t, err := chain.ReadTables(cfg, ch) // a private copy: the chain can't change it under us
	if err != nil {
		return err
	}
	defer t.Close()
	entries := []tableEntry{}
	for rt := vresource.ResourceType(0); rt < vresource.NumResourceTypes; rt++ {
		list, err := t.List(rt)
		if err != nil {
			return err
		}
		for _, e := range list {
			entries = append(entries, tableEntry{Type: rt.String(), Virt: e.Virt, Sys: e.Sys})
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			AID     vresource.AID `json:"aid"`
			Name    string        `json:"name"`
			Entries []tableEntry  `json:"entries"`
		}{ch.AID, ch.Name, entries})
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TYPE\tVIRTUAL\tSYSTEM")
	for _, e := range entries {
		if e.Type == vresource.IPCKey.String() {
			// Keys read as ipcs prints them.
			fmt.Fprintf(w, "%s\t0x%08x\t0x%08x\n", e.Type, uint32(e.Virt), uint32(e.Sys))
			continue
		}
		fmt.Fprintf(w, "%s\t%d\t%d\n", e.Type, e.Virt, e.Sys)
	}
	return w.Flush()
}
