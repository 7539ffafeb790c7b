package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/vresource"
)

// Why CheckExec refuses a chain.
var (
	ErrStale          = errors.New("stale chain")
	ErrNotRunChain    = errors.New("not a chain of vrid run")
	ErrOtherNamespace = errors.New("in other namespaces")
)

// CheckExec says whether a command started here may join chain ch.  Only
// the chain's facts decide, never its table: a chain of vrid run whose
// owner lives, in the IPC and pid namespaces this process is in, since
// the command starts in ours.
func CheckExec(ch vresource.Chain) error {
	switch {
	case ch.Stale:
		return fmt.Errorf("chain %s (%s): %w: its owner, pid %d, is gone; vrid gc collects it",
			ch.AID, ch.Name, ErrStale, ch.Owner.Pid)
	case ch.Owner.Kind != chain.OwnerRun:
		return fmt.Errorf("chain %s (%s): %w: it belongs to %s; use ctr task exec (or crictl exec)",
			ch.AID, ch.Name, ErrNotRunChain, ch.Owner.Kind)
	}
	for _, ns := range []struct {
		kind  string
		chain vresource.NamespaceID
	}{{"ipc", ch.Facts.IPCNS}, {"pid", ch.Facts.PIDNS}} {
		ours, err := vresource.NamespaceOf("/proc/self/ns/" + ns.kind)
		if err != nil {
			return fmt.Errorf("exec in chain %s: %w", ch.AID, err)
		}
		if ours != ns.chain {
			return fmt.Errorf("chain %s (%s): %w: its %s namespace is %v, ours %v; run vrid exec where the chain runs",
				ch.AID, ch.Name, ErrOtherNamespace, ns.kind, ns.chain, ours)
		}
	}
	return nil
}

// Exec runs opt.Args, as Prepare found them, as a process of the running
// chain ch, which CheckExec accepted: under the layer, with the chain's
// table, and a member of the chain's cgroup from its first instruction.
// It forwards signals to it and returns its exit status (128+n for signal
// n) once it has exited.  What it leaves behind stays in the chain.
func Exec(opt Options, command Command, ch vresource.Chain) (int, error) {
	paths := cgroup.List(ch.Facts.Cgroup).Paths()
	if len(paths) == 0 {
		return 1, fmt.Errorf("exec in chain %s: %w", ch.AID, chain.ErrNoCgroup)
	}
	// The owner's cgroup: the first of the list.
	cg, err := cgroup.Open(paths[0])
	if err != nil {
		return 1, fmt.Errorf("exec in chain %s: %w", ch.AID, err)
	}
	tables, err := chain.OpenTables(opt.Config, ch)
	if err != nil {
		return 1, fmt.Errorf("exec in chain %s: %w", ch.AID, err)
	}
	defer tables.Close()

	signals := make(chan os.Signal, 32)
	signal.Notify(signals, forwarded...)
	defer signal.Stop(signals)

	// No log pipe: the layer's errors reach the caller's stderr, and
	// nothing waits for what the command leaves behind to close a pipe.
	cmd := &exec.Cmd{
		Path:        command.Path,
		Args:        opt.Args,
		Env:         chain.MergeEnv(os.Environ(), chain.Env(opt.Config, ch, command.Library, -1)),
		Stdin:       opt.Stdin,
		Stdout:      opt.Stdout,
		Stderr:      opt.Stderr,
		SysProcAttr: rootProcAttr(opt.Stdin),
	}
	if err := cg.Start(cmd); err != nil {
		return ExitUnknownCommand, fmt.Errorf("exec in chain %s: start %s: %w", ch.AID, opt.Args[0], err)
	}
	pid := cmd.Process.Pid
	if _, err := tables.Bind(vresource.PID, int32(pid)); err != nil {
		opt.Log.WithError(err).Warn("cannot record the command's process")
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-signals:
				if err := cmd.Process.Signal(sig); err != nil {
					opt.Log.WithError(err).Debugf("forward %v", sig)
				}
			case <-done:
				return
			}
		}
	}()
	_ = cmd.Wait()
	close(done)
	// We reaped it, not a process of the chain: the layer can't forget it.
	forgetReaped(tables, pid)
	return exitStatus(unix.WaitStatus(cmd.ProcessState.Sys().(syscall.WaitStatus))), nil
}
