package criu

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRestoreOntoTakenPids dumps the tree program, takes every one of its
// pids and tids with other processes, shows that CRIU cannot restore the
// image as it is, then rewrites it onto free pids and restores it.  Every
// pid-holding object of the tree must then work on the new pids.
func TestRestoreOntoTakenPids(t *testing.T) {
	for _, mode := range []treeMode{sessionLeader, shellJob} {
		t.Run(mode.String(), func(t *testing.T) { testRestoreOntoTakenPids(t, mode) })
	}
}

func testRestoreOntoTakenPids(t *testing.T, mode treeMode) {
	d := treeDump(t, mode)
	shell := mode == shellJob
	tree, err := ReadTree(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	wantIds := []int{d.p, d.a, d.b, d.thread}
	slices.Sort(wantIds)
	if got := tree.Ids(); fmt.Sprint(got) != fmt.Sprint(wantIds) {
		t.Fatalf("tree ids %v, want %v", got, wantIds)
	}
	before := hashDir(t, d.dir)

	occupy(t, tree.Ids())

	// Plain CRIU, on a copy of the image as it is.
	identity := map[int]int{}
	for _, id := range tree.Ids() {
		identity[id] = id
	}
	plain := filepath.Join(t.TempDir(), "plain")
	if err := RewritePids(d.dir, plain, identity); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = Restore(ctx, plain, RestoreOpts{Criu: stackCRIU, FileLocks: true, ShellJob: shell, Sibling: true})
	var logErr *LogError
	if !errors.As(err, &logErr) {
		t.Fatalf("restore onto taken pids: %v, want a *LogError", err)
	}
	wantLine := fmt.Sprintf("Can't fork for %d: File exists", d.p)
	if !strings.Contains(err.Error(), wantLine) {
		t.Fatalf("restore onto taken pids: %v\nwant %q in it", err, wantLine)
	}

	unlock, err := LockPids()
	if err != nil {
		t.Fatal(err)
	}
	pids, err := ChooseFreePids(tree)
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	if err := RewritePids(d.dir, work, pids); err != nil {
		unlock()
		t.Fatal(err)
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	defer logR.Close()
	sk, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	skOut, skIn := os.NewFile(uintptr(sk[0]), "sk-out"), os.NewFile(uintptr(sk[1]), "sk-in")
	defer skIn.Close()
	root, err := Restore(ctx, work, RestoreOpts{
		Criu: stackCRIU, FileLocks: true, ShellJob: shell, Sibling: true,
		InheritFds: []InheritFd{{Key: d.logKey, File: logW}, {Key: d.skKey, File: skOut}},
	})
	unlock()
	logW.Close()
	skOut.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, a, b, thread := pids[d.p], pids[d.a], pids[d.b], pids[d.thread]
	proc, err := os.FindProcess(root)
	if err != nil {
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			for _, pid := range []int{p, a, b} {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			proc.Wait()
		}
	})
	if root != p {
		t.Fatalf("restored root %d, want %d (the pid chosen for %d)", root, p, d.p)
	}

	// The kernel's view, before the tree runs on.
	for _, pid := range []int{p, a, b, thread} {
		if got := readTrim(t, fmt.Sprintf("/proc/%d/comm", pid)); got != "tree" {
			t.Errorf("/proc/%d/comm = %q, want tree", pid, got)
		}
	}
	for _, c := range []struct{ pid, ppid int }{{a, p}, {b, p}, {p, os.Getpid()}} {
		if got := statField(t, c.pid, 4); got != c.ppid {
			t.Errorf("ppid of %d = %d, want %d", c.pid, got, c.ppid)
		}
	}
	if got := readTrim(t, fmt.Sprintf("/proc/%d/task/%d/stat", p, thread)); !strings.HasPrefix(got, strconv.Itoa(thread)+" (tree)") {
		t.Errorf("thread %d of %d: stat %q", thread, p, got)
	}

	for _, pid := range []int{a, b, p} {
		if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
			t.Fatalf("go signal to %d: %v", pid, err)
		}
	}
	st, err := proc.Wait()
	done = true
	if err != nil || st.ExitCode() != 0 {
		t.Fatalf("restored tree: %v, exit %d; output %v", err, st.ExitCode(), readReport(t, d.out))
	}
	r := readReport(t, d.out)
	sid := p
	if shell {
		// The session stays the one outside the tree: this test's, where
		// CRIU puts a shell job's root.
		sid, _ = unix.Getsid(0)
		if old := d.before.int(t, "P ready", "sid"); old != sid {
			t.Fatalf("session before the dump %d, want the test's %d", old, sid)
		}
	}
	tty := map[string]string{"sid": itoa(p), "pgrp": itoa(p)} // P's controlling terminal
	if shell {
		tty = map[string]string{"sid": "-1", "pgrp": "-1"} // no controlling terminal
	}
	want := map[string]map[string]string{
		"P tty":    tty,
		"P after":  {"pid": itoa(p), "ppid": itoa(os.Getpid()), "pgid": itoa(p), "sid": itoa(sid), "tid": itoa(p)},
		"A after":  {"pid": itoa(a), "ppid": itoa(p), "pgid": itoa(p), "sid": itoa(sid), "tid": itoa(a)},
		"B after":  {"pid": itoa(b), "ppid": itoa(p), "pgid": itoa(p), "sid": itoa(sid), "tid": itoa(b)},
		"A queued": {"si_pid": itoa(p), "si_code": "-1", "si_value": "42"}, // SI_QUEUE
		// The image holds SI_TKILL (-6, TestRewriteFields checks); CRIU
		// 4.2.1 requeues it with rt_tgsigqueueinfo and B gets SI_USER.
		"B tkill":    {"si_pid": itoa(p), "si_code": "0"},
		"A inflight": {"data": "inflight-to-A"},
		"A got":      {"data": "ping"},
		"P got":      {"data": "pong"},
		"P inflight": {"data": "inflight-from-B"},
		"P fromB":    {"data": "after-from-B"},
		"P tcp":      {"data": "tcp!"},
		"A lock":     {"l_pid": itoa(p)},
		"P files":    {"owner": itoa(p), "pidfd_pid": itoa(a), "pidfd_signal": "0"},
		"T timer":    {"tid": itoa(thread), "si_code": "-2", "si_signo_is_rtmin": "1"}, // SI_TIMER
		// glibc still holds T's old tid in struct pthread: the preload
		// layer patches it, this package does not.
		"P pthread_kill": {"err": "ESRCH"},
		"P waited":       {"pids": fmt.Sprintf("%d,%d", min(a, b), max(a, b)), "status": "0,0"},
		"P done":         {},
	}
	for line, kv := range want {
		got, ok := r[line]
		if !ok {
			t.Errorf("no line %q in the output: %v", line, r)
			continue
		}
		for k, v := range kv {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", line, k, got[k], v)
			}
		}
	}
	if d.log != "log-before\n" {
		t.Errorf("log pipe before the dump: %q", d.log)
	}
	if got, _ := io.ReadAll(logR); string(got) != "log-after\n" {
		t.Errorf("new log pipe after the restore: %q, want %q", got, "log-after\n")
	}
	if d.sk != "sk-before\n" {
		t.Errorf("external socket before the dump: %q", d.sk)
	}
	if got, _ := io.ReadAll(skIn); string(got) != "sk-after\n" {
		t.Errorf("new external socket after the restore: %q, want %q", got, "sk-after\n")
	}
	if after := hashDir(t, d.dir); after != before {
		t.Errorf("the image changed:\nbefore %s\nafter  %s", before, after)
	}
}

// occupy takes the pids with the occupy program until the test ends.
func occupy(t *testing.T, pids []int) {
	t.Helper()
	args := make([]string, len(pids))
	for i, p := range pids {
		args[i] = strconv.Itoa(p)
	}
	cmd := exec.Command(program(t, "occupy"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for _, p := range pids {
			if err := waitGone(p); err != nil {
				t.Error(err)
			}
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		if !strings.HasPrefix(sc.Text(), "taken ") && !strings.HasPrefix(sc.Text(), "busy ") {
			t.Fatalf("occupy: %s", sc.Text())
		}
	}
	for _, p := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err != nil {
			t.Fatalf("pid %d is not taken: %v", p, err)
		}
	}
}

// hashDir hashes the names, modes and contents of a directory's files.
func hashDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		var b []byte
		if e.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(path)
			if err != nil {
				t.Fatal(err)
			}
			b = []byte(target)
		} else if b, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %v %d\n", e.Name(), e.Type(), len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%d files %x", len(entries), h.Sum(nil))
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// statField returns field n (1-based, as in proc(5)) of /proc/pid/stat.
func statField(t *testing.T, pid, n int) int {
	t.Helper()
	s := readTrim(t, fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	v, err := strconv.Atoi(f[n-3])
	if err != nil {
		t.Fatalf("/proc/%d/stat field %d: %v", pid, n, err)
	}
	return v
}

func itoa(n int) string { return strconv.Itoa(n) }
