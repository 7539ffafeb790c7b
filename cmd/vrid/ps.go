package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
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
	State   string        `json:"state"`    // the chain's, or "foreign" for a process that is not its own
	VirtPID int32         `json:"vpid"`     // 0: a member the layer does not reach
	SysPID  int32         `json:"pid"`      // in the chain's own pid namespace, as in its tables
	HostPID int           `json:"host_pid"` // in vrid's pid namespace
	Command string        `json:"command"`
}

func psAction(c *cli.Context) (err error) {
	cfg, _, reg, err := setupRegistry(c)
	if err != nil {
		return err
	}
	chains, err := reg.List()
	if err != nil {
		return err
	}
	var rows []psProcess
	var errs []error // each chain whose tables can't be read: listed, and the exit status says so
	for _, ch := range chains {
		state := "running"
		if ch.Stale {
			state = "stale"
		}
		procs, err := chainProcesses(cfg, ch, state)
		rows = append(rows, procs...)
		errs = append(errs, err)
	}
	defer func() {
		if err == nil {
			err = errors.Join(errs...)
		}
	}()
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AID\tNAME\tSTATE\tVPID\tPID\tHOST PID\tCOMMAND")
	for _, r := range rows {
		virt := "-" // not under the layer
		if r.VirtPID != 0 {
			virt = strconv.Itoa(int(r.VirtPID))
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%d\t%s\n", r.AID, r.Chain, r.State, virt, r.SysPID, r.HostPID, r.Command)
	}
	return w.Flush()
}

// chainProcesses lists a chain's processes as the kernel knows them: the
// members of its cgroup, each with its virtual pid when its tables (a
// private copy) have one.  The tables hold pids as the chain sees them
// (inside a container, in its pid namespace), and the chain writes them
// itself: a live process they name that is no member is listed as
// foreign, to be seen and never acted on.
func chainProcesses(cfg *config.Config, ch vresource.Chain, state string) ([]psProcess, error) {
	t, err := chain.ReadTables(cfg, ch)
	if err != nil {
		return []psProcess{{AID: ch.AID, Chain: ch.Name, State: "no tables", Command: err.Error()}}, err
	}
	defer t.Close()
	members, err := chain.Members(ch)
	if err != nil && !errors.Is(err, chain.ErrNoCgroup) {
		return []psProcess{{AID: ch.AID, Chain: ch.Name, State: "no cgroup", Command: err.Error()}}, err
	}
	memberOf := map[int32]int{} // pid in the chain's namespace -> host pid
	for _, pid := range members {
		if inner, ok := innermostPid(pid); ok {
			memberOf[inner] = pid
		}
	}
	row := func(state string, virt, sys int32, host int) psProcess {
		return psProcess{AID: ch.AID, Chain: ch.Name, State: state,
			VirtPID: virt, SysPID: sys, HostPID: host, Command: commandLine(host)}
	}
	var out, foreign []psProcess
	listed := map[int]bool{}
	var hostPid map[int32]int // of the chain's pid namespace, made when first needed
	for _, e := range t.Entries(vresource.PID) {
		if pid, ok := memberOf[e.Sys]; ok {
			out = append(out, row(state, e.Virt, e.Sys, pid))
			listed[pid] = true
			continue
		}
		if hostPid == nil {
			hostPid = pidNamespaceOf(ch.RootPid)
		}
		pid, ok := hostPid[e.Sys]
		if len(hostPid) == 0 {
			pid, ok = int(e.Sys), true
		}
		// A thread of a member, or a group id, is no process of its own.
		if ok && isProcess(pid) {
			foreign = append(foreign, row(stateForeign, e.Virt, e.Sys, pid))
		}
	}
	// Members the layer does not reach (static programs) have no virtual pid.
	for _, pid := range members {
		if !listed[pid] {
			inner, _ := innermostPid(pid)
			out = append(out, row(state, 0, inner, pid))
		}
	}
	return append(out, foreign...), nil
}

// stateForeign marks a process that a chain's table names but that is no
// member of its cgroup: the table forged it, or kept a pid since reused.
const stateForeign = "foreign"

// pidNamespaceOf maps the pids of root's pid namespace to host pids, or
// returns an empty map when root shares ours (or is unknown).
func pidNamespaceOf(root int) map[int32]int {
	byInner := map[int32]int{}
	if root <= 0 {
		return byInner
	}
	theirs, err := os.Readlink("/proc/" + strconv.Itoa(root) + "/ns/pid")
	ours, err2 := os.Readlink("/proc/self/ns/pid")
	if err != nil || err2 != nil || theirs == ours {
		return byInner
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err != nil || ns != theirs {
			continue
		}
		if inner, ok := innermostPid(pid); ok {
			byInner[inner] = pid
		}
	}
	return byInner
}

// innermostPid reads the last NSpid field: the pid in the process's own namespace.
func innermostPid(pid int) (int32, bool) {
	n, err := vresource.InnermostID(pid, "NSpid")
	return int32(n), err == nil
}

func isProcess(pid int) bool {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			return strings.TrimSpace(v) == strconv.Itoa(pid)
		}
	}
	return false
}

func commandLine(pid int) string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(raw) == 0 {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
}
