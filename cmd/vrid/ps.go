package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/vresource"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name:  "ps",
		Usage: "list chains and their processes, virtual and system pids",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: psAction,
	}
}

// psProcess is one process of a chain as `vrid ps` shows it.
type psProcess struct {
	AID     vresource.AID `json:"aid"`
	Chain   string        `json:"chain"`
	State   string        `json:"state"`
	VirtPID int32         `json:"vpid"`
	SysPID  int32         `json:"pid"`
	Command string        `json:"command"`
}

func psAction(c *cli.Context) error {
	cfg, _, err := setup(c)
	if err != nil {
		return err
	}
	reg, err := chain.OpenRegistry(cfg)
	if err != nil {
		return err
	}
	chains, err := reg.List()
	if err != nil {
		return err
	}
	var rows []psProcess
	for _, ch := range chains {
		state := "running"
		if ch.Stale {
			state = "stale"
		}
		rows = append(rows, chainProcesses(ch, state)...)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AID\tNAME\tSTATE\tVPID\tPID\tCOMMAND")
	for _, r := range rows {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%s\n", r.AID, r.Chain, r.State, r.VirtPID, r.SysPID, r.Command)
	}
	return w.Flush()
}

// chainProcesses lists the live processes (not threads, not bare group ids)
// among a chain's pid entries.
func chainProcesses(ch vresource.Chain, state string) []psProcess {
	t, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		return []psProcess{{AID: ch.AID, Chain: ch.Name, State: "no tables", Command: err.Error()}}
	}
	defer t.Close()
	var out []psProcess
	for _, e := range t.Entries(vresource.PID) {
		if !isProcess(e.Sys) {
			continue
		}
		out = append(out, psProcess{AID: ch.AID, Chain: ch.Name, State: state,
			VirtPID: e.Virt, SysPID: e.Sys, Command: commandLine(e.Sys)})
	}
	return out
}

func isProcess(pid int32) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			return strings.TrimSpace(v) == strconv.Itoa(int(pid))
		}
	}
	return false
}

func commandLine(pid int32) string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/cmdline")
	if err != nil || len(raw) == 0 {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
}
