// Package harness runs a command as an application chain under the
// preload layer, the way `vrid run` does: it sets the chain up, starts the
// root process, forwards signals to it, reaps every process of the chain
// (as a child subreaper), and tears the chain down when the root exits.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/vresource"
)

// ExitUnknownCommand is the status for a command that cannot be found, as in a shell.
const ExitUnknownCommand = 127

// Options says what to run and where its output goes.
type Options struct {
	Config *config.Config
	Args   []string
	Stdin  *os.File
	Stdout io.Writer
	Stderr io.Writer
	Log    *logrus.Logger
}

// Command is what Prepare found for Run: the layer and the program.
type Command struct {
	Library string // libvrid.so
	Path    string // opt.Args[0], looked up in PATH
}

// Prepare finds what Run needs before anything is registered, so that
// bad input costs nothing.
func Prepare(opt *Options) (Command, error) {
	if len(opt.Args) == 0 {
		return Command{}, errors.New("no command given: vrid run [--name NAME] -- CMD [ARG...]")
	}
	library, err := opt.Config.LibraryPath()
	if err != nil {
		return Command{}, err
	}
	path, err := exec.LookPath(opt.Args[0])
	if err != nil {
		return Command{}, &UnknownCommandError{Name: opt.Args[0], Err: err}
	}
	return Command{Library: library, Path: path}, nil
}

// UnknownCommandError is a command that is not there or not executable.
type UnknownCommandError struct {
	Name string
	Err  error
}

func (e *UnknownCommandError) Error() string {
	return fmt.Sprintf("unknown command %q: %v", e.Name, e.Err)
}

func (e *UnknownCommandError) Unwrap() error { return e.Err }

// Run runs opt.Args, as Prepare found them, as chain ch, which Setup has
// created, and returns the root's exit status (128+n for signal n).  The
// chain is torn down before it returns.
func Run(opt Options, command Command, reg vresource.Registry, ch vresource.Chain) (status int, err error) {
	defer func() {
		if terr := chain.Teardown(opt.Config, reg, ch); terr != nil && err == nil {
			err = terr
		}
	}()
	tables, err := chain.OpenTables(opt.Config, ch)
	if err != nil {
		return 1, fmt.Errorf("run %s: %w", ch.AID, err)
	}
	defer tables.Close()
	// The chain's cgroup, not its table, says which processes are the
	// chain's: the root starts in it, and everything it forks with it.
	cg, err := cgroup.Create(ch.Facts.Cgroup)
	if err != nil {
		return 1, fmt.Errorf("run %s: %w", ch.AID, err)
	}

	// Orphans of the chain come to us, so that every process is reaped and forgotten.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 1, fmt.Errorf("run %s: become subreaper: %w", ch.AID, err)
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		return 1, fmt.Errorf("run %s: log pipe: %w", ch.AID, err)
	}
	logsDone := forwardLogs(logR, opt.Log.WithField("aid", ch.AID.String()))

	signals := make(chan os.Signal, 32)
	signal.Notify(signals, forwarded...)
	signal.Notify(signals, unix.SIGCHLD)
	defer signal.Stop(signals)

	// The root inherits the table as fd 4, and with it every process of
	// the chain, and only those: one that drops root before exec still
	// reaches its table (the layer's open_tables).
	tableFile, err := chain.OpenTableFile(opt.Config, ch)
	if err != nil {
		logR.Close()
		logW.Close()
		return 1, fmt.Errorf("run %s: %w", ch.AID, err)
	}
	env := append(chain.Env(opt.Config, ch, command.Library, 3), chain.EnvTableFD+"=4")
	cmd := &exec.Cmd{
		Path:        command.Path,
		Args:        opt.Args,
		Env:         chain.MergeEnv(os.Environ(), env),
		Stdin:       opt.Stdin,
		Stdout:      opt.Stdout,
		Stderr:      opt.Stderr,
		ExtraFiles:  []*os.File{logW, tableFile},
		SysProcAttr: rootProcAttr(opt.Stdin),
	}
	err = cg.Start(cmd)
	logW.Close()
	tableFile.Close()
	if err != nil {
		logR.Close()
		return ExitUnknownCommand, fmt.Errorf("run %s: start %s: %w", ch.AID, opt.Args[0], err)
	}
	root := cmd.Process.Pid
	if _, err := tables.Bind(vresource.PID, int32(root)); err != nil {
		opt.Log.WithError(err).Warn("cannot record the root process")
	}
	_ = reg.Update(ch.AID, func(c *vresource.Chain) error { c.RootPid = root; return nil })
	status = supervise(opt, ch, root, tables, signals, logsDone)
	_ = cmd.Process.Release()
	return status, nil
}

// Supervise is Run for a chain whose root is already this process's
// child, restored by vrid restore: it forwards signals, reaps, and tears
// the chain down when the root exits, and returns the root's status.
// logs is the reading end of the chain's log pipe, or nil.
func Supervise(opt Options, reg vresource.Registry, ch vresource.Chain, tables *vresource.Tables, root int, logs *os.File) (status int, err error) {
	defer func() {
		if terr := chain.Teardown(opt.Config, reg, ch); terr != nil && err == nil {
			err = terr
		}
	}()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 1, fmt.Errorf("supervise %s: become subreaper: %w", ch.AID, err)
	}
	noLogs := make(chan struct{})
	close(noLogs)
	var logsDone <-chan struct{} = noLogs
	if logs != nil {
		logsDone = forwardLogs(logs, opt.Log.WithField("aid", ch.AID.String()))
	}
	signals := make(chan os.Signal, 32)
	signal.Notify(signals, forwarded...)
	signal.Notify(signals, unix.SIGCHLD)
	defer signal.Stop(signals)
	return supervise(opt, ch, root, tables, signals, logsDone), nil
}

// supervise runs a chain whose root is started until the root exits,
// ends what outlives it, through the chain's cgroup, and returns the
// root's status; a chain that a snapshot ended says where it went and
// counts as a success.
func supervise(opt Options, ch vresource.Chain, root int, tables *vresource.Tables, signals <-chan os.Signal, logsDone <-chan struct{}) int {
	status := superviseRoot(root, tables, signals, opt.Log)
	if err := chain.Kill(ch); err != nil {
		opt.Log.WithError(err).Warn("the chain's processes outlive it")
	}
	reapAll()
	select {
	case <-logsDone:
	case <-time.After(2 * time.Second):
		opt.Log.Warn("a process outside the chain still holds the log pipe")
	}
	if dir, err := chain.Snapshotted(opt.Config, ch); err == nil && dir != "" {
		fmt.Fprintf(opt.Stderr, "vrid: chain %s (%s) was snapshotted to %s\n", ch.Name, ch.AID, dir)
		return 0
	}
	return status
}

// Signals a user sends to `vrid run` that belong to the application.
var forwarded = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGCONT, unix.SIGTSTP}

// The root leads its own process group, so that kill(0) inside the chain
// stays inside it; on a terminal that group takes the foreground.
func rootProcAttr(stdin *os.File) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if stdin != nil {
		if _, err := unix.IoctlGetTermios(int(stdin.Fd()), unix.TCGETS); err == nil {
			attr.Foreground = true
			attr.Ctty = int(stdin.Fd())
		}
	}
	return attr
}

// superviseRoot forwards signals to the root and reaps children until the
// root is reaped; it returns the root's status.
func superviseRoot(root int, tables *vresource.Tables, signals <-chan os.Signal, log *logrus.Logger) int {
	// A root restored before the signals were caught may be gone already.
	if status, done := reap(root, tables); done {
		return status
	}
	for sig := range signals {
		if sig != unix.SIGCHLD {
			if err := unix.Kill(root, sig.(syscall.Signal)); err != nil {
				log.WithError(err).Debugf("forward %v", sig)
			}
			continue
		}
		if status, done := reap(root, tables); done {
			return status
		}
	}
	return 1
}

// reap collects exited children; with block it waits for all of them.  It
// reports the root's status once the root is among them.
func reap(root int, tables *vresource.Tables) (status int, rootDone bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return status, rootDone
		}
		forgetReaped(tables, pid)
		if pid == root {
			status, rootDone = exitStatus(ws), true
		}
	}
}

func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// A reaped pid may live on as a process group id; the same rule as the layer's.
func forgetReaped(tables *vresource.Tables, pid int) {
	if unix.Kill(-pid, 0) == unix.ESRCH {
		_ = tables.RemoveSys(vresource.PID, int32(pid))
	}
}

// reapAll reaps every child left once the chain's cgroup is empty.  A
// child that still lives left the cgroup (only root can), but it is
// ours, so a process of the chain: it is killed, and so are the orphans
// it leaves to us.  An unreaped child's pid cannot be reused: the kill
// reaches that child.
func reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR || pid > 0:
			continue
		case err != nil:
			return // no child left
		}
		for _, child := range processTree(true)[os.Getpid()] {
			_ = unix.Kill(child, unix.SIGKILL)
		}
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil && err != unix.EINTR {
			return
		}
	}
}

// Descendants lists the processes below pid, from /proc.
func Descendants(pid int) []int {
	children := processTree(false)
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// processTree maps each pid to its children, from /proc; with live, it
// leaves zombies out.
func processTree(live bool) map[int][]int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces and parentheses: the fields start after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || live && fields[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	return children
}
