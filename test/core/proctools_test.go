package core_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// runInPidNS runs `vrid run --ids sequential -- sh -c script` in a new pid
// namespace with its own /proc, started by a shell (pid 1) that first
// runs prelude, so that every pid is exact: the shell is 1, vrid 2 (or
// the next pid after prelude's), the chain's root 1000.
func runInPidNS(t *testing.T, prelude, script string) result {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	stateDir := t.TempDir()
	before := readIPC(t)
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	args := []string{"run", "--ids", "sequential", "--", "sh", "-c", script}
	cmd := vridCommand(ctx, stateDir, args...)
	cmd.Path = unshare
	cmd.Args = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--",
		"sh", "-c", prelude + "\n" + `"$@"; status=$?; exit $status`, "sh"}, cmd.Args...)
	cmd.Dir = t.TempDir() // for the scripts' own files
	res := runProgram(t, ctx, cmd, vridName(args), func() { killChainProcesses(t, stateDir) })
	checkNoLeaks(t, stateDir, before)
	return res
}

// fields is out with the blanks of each line squeezed to one space, so
// that column widths chosen by the tools do not matter.
func fields(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		b.WriteString(strings.Join(strings.Fields(line), " "))
		b.WriteString("\n")
	}
	return b.String()
}

// waitFor starts cmd in the background and waits until it runs as comm,
// not as the shell that forked it, with builtins only: no pid is used.
func waitFor(cmd, comm string) string {
	return cmd + ` & until read c </proc/$!/comm && [ "$c" = ` + comm + ` ]; do :; done; `
}

var waitSleep = waitFor("sleep 100", "sleep")

// The procps, psmisc, coreutils and busybox tools inside a chain see what
// they would see in a container: the chain by virtual pid from 1000, and
// what is outside the chain (here the namespace's shell, pid 1, and
// vrid, pid 2) under its own pid.
func TestProcTools(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name, prelude, script, want string
	}{
		{"ps -e", "", `ps -e -o pid=,ppid=,comm=; true`,
			"1 0 sh\n2 1 vrid\n1000 0 sh\n1001 1000 ps\n"},
		{"ps -p $$", "", `ps -o pid=,ppid=,pgid=,comm= -p $$; true`,
			"1000 0 1000 sh\n"},
		{"ps -L", "", `ps -L -o pid=,lwp=,comm= -p $$; true`,
			"1000 1000 sh\n"},
		{"top -bn1", "", `top -bn1 -w 512 >top.out; awk 'NR > 7 { print $1, $NF }' top.out | sort -n; rm top.out`,
			"1 sh\n2 vrid\n1000 sh\n1001 top\n"},
		{"pgrep and pkill", "", waitSleep + `echo $!; pgrep -x sleep; pkill -x sleep; wait $! 2>/dev/null; echo $?`,
			"1001\n1001\n143\n"},
		{"kill $(pidof)", "", waitSleep + `pidof sleep; kill $(pidof sleep); wait $! 2>/dev/null; echo $?`,
			"1001\n143\n"},
		{"stat /proc/$$", "", `stat -c '%n %F' /proc/$$ /proc/self /proc/1000/stat`,
			"/proc/1000 directory\n/proc/self symbolic link\n/proc/1000/stat regular empty file\n"},
		{"ls /proc/$$/fd", "", `exec 7</dev/null; ls /proc/$$/fd | grep -x -e 0 -e 7; readlink /proc/$$/fd/7`,
			"0\n7\n/dev/null\n"},
		{"ls /proc", "", `ls /proc >ls.out; grep -E '^[0-9]+$' ls.out | sort -n | tr '\n' ' '; echo; rm ls.out`,
			"1 2 1000 1001\n"},
		{"cat /proc/1/comm", "", `cat /proc/1/comm /proc/2/comm /proc/$$/comm`,
			"sh\nvrid\nsh\n"},
		{"busybox ps", "", `busybox ps -o pid,ppid,comm; true`,
			"PID PPID COMMAND\n1 0 sh\n2 1 vrid\n1000 0 sh\n1001 1000 busybox\n"},
		{"busybox top", "", `busybox top -bn1 >top.out; awk 'NR > 4 && NF { n = split($8, c, "/"); print $1, $2, c[n] }' top.out | sort -n; rm top.out`,
			"1 0 sh\n2 1 vrid\n1000 0 sh\n1001 1000 busybox\n"},
		// Outside processes whose pids are virtual pids of the chain (the
		// namespace's sleep 1001 and vrid 1002) are left out while the
		// chain uses those pids: /proc/1001 names the chain's tail.  Once
		// ps has gone, 1002 is vrid's again.
		{"outside pids taken by the chain", "echo 1000 >/proc/sys/kernel/ns_last_pid; sleep 100 &",
			waitFor("tail -f /dev/null", "tail") + `ps -e -o pid=,comm=; cat /proc/1001/comm /proc/1002/comm; kill $!`,
			"1 sh\n1000 sh\n1001 tail\n1002 ps\ntail\nvrid\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.script, "busybox") {
				if _, err := exec.LookPath("busybox"); err != nil {
					t.Skip("no busybox (scripts/install-stack.sh installs it)")
				}
			}
			res := runInPidNS(t, tc.prelude, tc.script)
			if res.Code != 0 || res.Stderr != "" {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			if got := fields(res.Stdout); got != tc.want {
				t.Errorf("got\n%swant\n%s", got, tc.want)
			}
		})
	}
}

// ipcs and ipcrm inside a chain see its IPC namespace as /proc shows
// processes: the chain's objects by virtual id and the chain's own keys;
// the others (here made by the test, as a host's are under a pod with
// HostIpc) under their own id and key, pids outside the chain as 0, except
// those whose id the chain uses at that moment (1), which show again once
// the chain has removed its objects.  ipcs -i reads /proc only and finds
// an outside object; the calls by id (ipcrm, semctl) fail for it.  The
// counts of ipcs -u are the chain's.
func TestIPCTools(t *testing.T) {
	needSetup(t)
	// The outside ids leave the lower indices, which the chain's objects
	// get from the kernel, free: /proc/sysvipc lists by index.
	for _, o := range []struct {
		kind string
		id   int
		key  uintptr
	}{
		{"shm", 1, 0}, {"sem", 1, 0}, {"msg", 1, 0},
		{"shm", 65535, 0x1234}, {"sem", 98303, 0x5678}, {"msg", 131071, 0},
	} {
		occupyIPCKey(t, o.kind, o.id, o.key)
	}
	// ipc_objects (1002, after mkfifo 1001) makes one object of each
	// kind and holds it; the times in ipcs -i are left out.
	script := `mkfifo ready.fifo; ` + program("ipc_objects") + ` >ready.fifo & read line <ready.fifo; rm ready.fifo
ipcs; ipcs -p; ipcs -u
for kind in m s q; do ipcs -$kind -i 1 | grep -v -e time -e '^$'; done
ipcs -m -i 65535 | grep -v -e time -e '^$'
ipcrm -m 65535 -s 98303 -q 131071; echo ipcrm $?
ipcs -s -i 98303; echo ipcs $?
kill $!; wait $! 2>/dev/null
ipcrm -m 1 -s 1 -q 1; ipcs; ipcs -m -i 1 | grep -v -e time -e '^$'`
	want := `
------ Message Queues --------
key msqid owner perms used-bytes messages
0x00003456 1 root 660 2 1
0x00000000 131071 root 600 0 0

------ Shared Memory Segments --------
key shmid owner perms bytes nattch status
0x00001234 1 root 600 4096 1
0x00001234 65535 root 600 4096 0

------ Semaphore Arrays --------
key semid owner perms nsems
0x00002345 1 root 640 2
0x00005678 98303 root 600 1


------ Message Queues PIDs --------
msqid owner lspid lrpid
1 root 1002 0
131071 root 0 0

------ Shared Memory Creator/Last-op PIDs --------
shmid owner cpid lpid
1 root 1002 1002
65535 root 0 0



------ Messages Status --------
allocated queues = 1
used headers = 1
used space = 2 bytes

------ Shared Memory Status --------
segments allocated 1
pages allocated 1
pages resident 0
pages swapped 0
Swap performance: 0 attempts 0 successes

------ Semaphore Status --------
used arrays = 1
allocated semaphores = 2

Shared memory Segment shmid=1
uid=0 gid=0 cuid=0 cgid=0
mode=0600 access_perms=0600
bytes=4096 lpid=1002 cpid=1002 nattch=1
Semaphore Array semid=1
uid=0 gid=0 cuid=0 cgid=0
mode=0640, access_perms=0640
nsems = 2
semnum value ncount zcount pid
0 1 0 0 1002
1 0 0 0 0
Message Queue msqid=1
uid=0 gid=0 cuid=0 cgid=0 mode=0660
cbytes=2 qbytes=16384 qnum=1 lspid=1002 lrpid=0
Shared memory Segment shmid=65535
uid=0 gid=0 cuid=0 cgid=0
mode=0600 access_perms=0600
bytes=4096 lpid=0 cpid=0 nattch=0
ipcrm 1
ipcs 1

------ Message Queues --------
key msqid owner perms used-bytes messages
0x00000000 1 root 600 0 0
0x00000000 131071 root 600 0 0

------ Shared Memory Segments --------
key shmid owner perms bytes nattch status
0x00000000 1 root 600 4096 0
0x00001234 65535 root 600 4096 0

------ Semaphore Arrays --------
key semid owner perms nsems
0x00000000 1 root 600 1
0x00005678 98303 root 600 1

Shared memory Segment shmid=1
uid=0 gid=0 cuid=0 cgid=0
mode=0600 access_perms=0600
bytes=4096 lpid=0 cpid=0 nattch=0
`
	wantStderr := "ipcrm: invalid id (65535)\nipcrm: invalid id (98303)\nipcrm: invalid id (131071)\n" +
		"ipcs: semctl(GETVAL) failed: Invalid argument\n"
	res := runInPidNS(t, "", script)
	if res.Code != 0 || res.Stderr != wantStderr {
		t.Errorf("want exit status 0 and stderr\n%s\n%s", wantStderr, res)
	}
	if got := fields(res.Stdout); got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}
