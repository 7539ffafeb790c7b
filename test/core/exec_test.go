package core_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// The output of `ipcs -s` in chain_sleeper's chain: its one set, by its
// virtual id and key, and nothing else of the IPC namespace.
const sleeperIpcs = "\n------ Semaphore Arrays --------\n" +
	"key        semid      owner      perms      nsems     \n" +
	"0x00004242 1          root       600        1         \n\n"

// vrid exec runs a command in a running chain: with the chain's next
// virtual pid and its view of ids, as a member of its cgroup, with its
// exit status passed through and signals forwarded; the chain's teardown
// ends it, and nothing is left.
func TestExec(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	aid, supervisor := detach(t, stateDir, "sleeper", program("chain_sleeper"))
	waitLog(t, stateDir, aid, "semget=1\nfork=1001\nready=1\n")

	// Sequential ids: each command that starts takes the next virtual pid.
	nextPid := 1002
	for _, tc := range []struct {
		name   string
		args   []string // after vrid exec
		stdout string
		stderr string
		code   int
		starts bool
	}{
		{"virtual pid and parent", []string{"sleeper", "--", "sh", "-c", "echo $$ $PPID"}, "1002 0\n", "", 0, true},
		{"exit 0", []string{"sleeper", "--", "sh", "-c", "exit 0"}, "", "", 0, true},
		{"exit 3", []string{"sleeper", "--", "sh", "-c", "exit 3"}, "", "", 3, true},
		{"without --", []string{"sleeper", "sh", "-c", "exit 3"}, "", "", 3, true},
		{"by AID", []string{aid, "sh", "-c", "exit 0"}, "", "", 0, true},
		{"signal", []string{"sleeper", "--", "sh", "-c", "kill -TERM $$"}, "", "", 128 + 15, true},
		{"unknown command", []string{"sleeper", "--", "no-such-command"}, "",
			"vrid: unknown command \"no-such-command\": exec: \"no-such-command\": executable file not found in $PATH\n", 127, false},
		{"ipcs", []string{"sleeper", "--", "ipcs", "-s"}, sleeperIpcs, "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := vrid(t, stateDir, append([]string{"exec"}, tc.args...)...)
			if res.Code != tc.code || res.Stdout != tc.stdout || res.Stderr != tc.stderr {
				t.Errorf("vrid exec %s: want exit status %d, stdout %q, stderr %q\n%s",
					strings.Join(tc.args, " "), tc.code, tc.stdout, tc.stderr, res)
			}
		})
		if tc.starts {
			nextPid++
		}
	}

	// A long-running command is a member while it runs; a signal to vrid
	// exec reaches it.
	cmd, _ := startExec(t, stateDir, int32(nextPid))
	if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 128+15 {
		t.Errorf("vrid exec sleep, sent SIGTERM: exit status %d (%v), want %d", cmd.ProcessState.ExitCode(), err, 128+15)
	}
	nextPid++
	if rows := psJSON(t, stateDir); len(rows) != 2 {
		t.Errorf("vrid ps once the command is gone: %+v, want the chain's two processes", rows)
	}

	// A command of the chain signals its root by virtual pid; the chain
	// ends, and its teardown ends a command still running in it.
	long, _ := startExec(t, stateDir, int32(nextPid))
	if res := vrid(t, stateDir, "exec", "sleeper", "--", "kill", "-TERM", "1000"); res.Code != 0 || res.Stdout != "" || res.Stderr != "" {
		t.Errorf("vrid exec sleeper -- kill -TERM 1000: want exit status 0 and no output\n%s", res)
	}
	if code := supervisorStatus(t, supervisor); code != 128+15 {
		t.Errorf("the supervisor of a chain whose root got SIGTERM: exit status %d, want %d", code, 128+15)
	}
	if err := long.Wait(); long.ProcessState.ExitCode() != 128+9 {
		t.Errorf("vrid exec sleep when the chain ends: exit status %d (%v), want %d", long.ProcessState.ExitCode(), err, 128+9)
	}
	checkNoLeaks(t, stateDir, before)
}

// startExec starts `vrid exec sleeper -- sleep 1000` and waits until
// vrid ps shows it as a member of the chain with virtual pid vpid.
func startExec(t *testing.T, stateDir string, vpid int32) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	t.Cleanup(cancel)
	cmd := vridCommand(ctx, stateDir, "exec", "sleeper", "--", "sleep", "1000")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var rows []psRow
	poll(t, "vrid ps shows sleep 1000", func() bool {
		rows = psJSON(t, stateDir)
		return slices.ContainsFunc(rows, func(r psRow) bool { return r.Command == "sleep 1000" && r.VirtPID != 0 })
	})
	i := slices.IndexFunc(rows, func(r psRow) bool { return r.Command == "sleep 1000" })
	if len(rows) != 3 || rows[i].VirtPID != vpid || rows[i].State != "running" || rows[i].Chain != "sleeper" {
		t.Errorf("vrid ps during vrid exec sleep 1000: %+v, want the chain's two processes and sleep 1000 as %d, running", rows, vpid)
	}
	return cmd, &out
}

// supervisorStatus waits for a detached chain's supervisor, our child as
// subreaper, and returns its exit status.
func supervisorStatus(t *testing.T, pid int) int {
	t.Helper()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("wait for supervisor %d: %v", pid, err)
		}
		return ws.ExitStatus()
	}
}

// A pid file holds a virtual pid: a command run through vrid exec reads
// it and signals the daemon, as pg_ctl and nginx -s do.
func TestExecPidFile(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	aid, supervisor := detach(t, stateDir, "daemon", program("pid_file"), pidFile)
	var got []byte
	poll(t, "the pid file is written", func() bool {
		got, _ = os.ReadFile(pidFile)
		return len(got) > 0
	})
	if string(got) != "1001\n" {
		t.Errorf("pid file: %q, want the daemon's virtual pid 1001", got)
	}
	if res := vrid(t, stateDir, "exec", "daemon", "--", "sh", "-c", "kill -USR1 $(cat "+pidFile+")"); res.Code != 0 || res.Stdout != "" || res.Stderr != "" {
		t.Errorf("vrid exec daemon -- kill -USR1 $(cat pid file): want exit status 0 and no output\n%s", res)
	}
	if code := supervisorStatus(t, supervisor); code != 0 {
		t.Errorf("the supervisor: exit status %d, want 0", code)
	}
	// The child's line first: it exits, and flushes, before its parent.
	logData, err := os.ReadFile(filepath.Join(stateDir, "logs", aid+".log"))
	if want := "usr1=1\nfork=1001\nchild.status=0\n"; err != nil || string(logData) != want {
		t.Errorf("the chain's log: %q (%v), want %q", logData, err, want)
	}
	checkNoLeaks(t, stateDir, before)
}

// vrid exec refuses, changing nothing, a chain it must not run in or a
// command line without a command.
func TestExecRefused(t *testing.T) {
	needSetup(t)
	stateDir := t.TempDir()
	before := readIPC(t)
	_, supervisor := detach(t, stateDir, "sleeper", program("chain_sleeper"))
	waitLog(t, stateDir, "1", "semget=1\nfork=1001\nready=1\n")
	rows := psJSON(t, stateDir)
	const usage = "vrid exec NAME|AID [--] CMD [ARG...]"
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"unknown chain", []string{"exec", "nosuch", "--", "true"}, "vrid: get chain \"nosuch\": unknown chain (see vrid ps)\n"},
		{"unknown AID", []string{"exec", "7", "true"}, "vrid: get chain \"7\": unknown chain (see vrid ps)\n"},
		{"no command", []string{"exec", "sleeper"}, "vrid: no command given: " + usage + "\n"},
		{"no command after --", []string{"exec", "sleeper", "--"}, "vrid: no command given: " + usage + "\n"},
		{"no chain", []string{"exec"}, "vrid: no chain given: " + usage + " (see vrid ps)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := vrid(t, stateDir, tc.args...); res.Code != 1 || res.Stdout != "" || res.Stderr != tc.stderr {
				t.Errorf("vrid %s: want exit status 1 and stderr %q\n%s", strings.Join(tc.args, " "), tc.stderr, res)
			}
		})
	}

	for _, tc := range []struct {
		kind    string
		unshare []string
	}{
		{"ipc", []string{"--ipc"}},
		{"pid", []string{"--pid", "--fork"}},
	} {
		t.Run("other "+tc.kind+" namespace", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
			defer cancel()
			cmd := vridCommand(ctx, stateDir, "exec", "sleeper", "--", "true")
			cmd.Path, cmd.Args = "/usr/bin/unshare", append(append([]string{"unshare"}, tc.unshare...), cmd.Args...)
			res := runProgram(t, ctx, cmd, "unshare vrid exec", nil)
			want := regexp.MustCompile(`^vrid: chain 1 \(sleeper\): in other namespaces: its ` + tc.kind +
				` namespace is (\d+:\d+), ours (\d+:\d+); run vrid exec where the chain runs\n$`)
			m := want.FindStringSubmatch(res.Stderr)
			if res.Code != 1 || res.Stdout != "" || m == nil || m[1] == m[2] {
				t.Errorf("vrid exec from another %s namespace: want exit status 1 and stderr matching %s\n%s", tc.kind, want, res)
			}
		})
	}
	if after := psJSON(t, stateDir); !slices.Equal(after, rows) {
		t.Errorf("vrid ps after the refusals: %+v, want %+v", after, rows)
	}

	// A chain whose supervisor is gone is gc's.
	if err := unix.Kill(supervisor, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	reapIfOurs(supervisor)
	stale := "vrid: chain 1 (sleeper): stale chain: its owner, pid " + strconv.Itoa(supervisor) + ", is gone; vrid gc collects it\n"
	if res := vrid(t, stateDir, "exec", "sleeper", "--", "true"); res.Code != 1 || res.Stdout != "" || res.Stderr != stale {
		t.Errorf("vrid exec in a stale chain: want exit status 1 and stderr %q\n%s", stale, res)
	}
	if after := psJSON(t, stateDir); len(after) != 2 || after[0].State != "stale" || after[1].State != "stale" {
		t.Errorf("vrid ps after the refusal: %+v, want the chain's two processes, stale", after)
	}
	if res := vrid(t, stateDir, "gc"); res.Code != 0 {
		t.Errorf("vrid gc:\n%s", res)
	}
	reapKilled(rows)
	checkNoLeaks(t, stateDir, before)

	// A container's chain is its runtime's: an owner that lives, of kind containerd.
	t.Run("containerd chain", func(t *testing.T) {
		ctrdDir := t.TempDir()
		reg, err := vresource.OpenFileRegistry(ctrdDir)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := vresource.OwnerOf(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		owner.Kind = "containerd"
		ch, err := reg.Register(vresource.Registration{Name: "ctr", Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		want := "vrid: chain " + ch.AID.String() + " (ctr): not a chain of vrid run: it belongs to containerd; use ctr task exec (or crictl exec)\n"
		if res := vrid(t, ctrdDir, "exec", "ctr", "--", "true"); res.Code != 1 || res.Stdout != "" || res.Stderr != want {
			t.Errorf("vrid exec in a chain of containerd: want exit status 1 and stderr %q\n%s", want, res)
		}
	})
}
