package core_test

import (
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// The snippet programs, one per interposed call or tight group, each run
// as a chain with sequential ids so that every value it prints is exact.
var goldenPrograms = []struct {
	name string // program in test/programs and golden file
	args []string
}{
	{name: "pid_getpid"},
	{name: "pid_fork_wait"},
	{name: "pid_kill"},
	{name: "pid_siginfo"},
	{name: "pid_pgrp_session"},
	{name: "pid_sched_prio"},
	{name: "pid_threads"},
	{name: "pid_proc_paths"},
	{name: "proc_view"},
	{name: "proc_sysvipc"},
	{name: "pid_syscall"},
	{name: "pid_exec"},
	{name: "pid_spawn_system"},
	{name: "pid_clone"},
	{name: "pid_setuid_fork"},
	{name: "pid_threads_fork"},
	{name: "orphans"},
	{name: "sem"},
	{name: "shm"},
	{name: "msg"},
	{name: "ipc_keys"},
	{name: "fcntl_owner"},
	{name: "fcntl_locks"},
	{name: "ioctl_owner"},
	{name: "sock_creds"},
	{name: "ptrace_calls"},
	{name: "task_calls"},
	{name: "quiesce_hidden"},
}

func TestPrograms(t *testing.T) {
	needSetup(t)
	for _, tc := range goldenPrograms {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--ids", "sequential", "--", program(tc.name)}, tc.args...)
			res := runChain(t, nil, args...)
			if res.Code != 0 || res.Stderr != "" {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			checkGolden(t, tc.name, res.Stdout)
		})
	}
}

// With --ids system (the default) the virtual ids are the system ids of
// a chain that was never restored; the program compares them with /proc.
func TestIDsSystem(t *testing.T) {
	needSetup(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"explicit", []string{"--ids", "system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(tc.args, "--"), program("ids_system"))
			res := runChain(t, nil, args...)
			if res.Code != 0 || res.Stderr != "" {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			checkGolden(t, "ids_system", res.Stdout)
		})
	}
}

// python returns a dynamically linked CPython: the layer cannot reach a
// static one, and a pyenv shim is a script that execs something else.
func python(t *testing.T) string {
	t.Helper()
	for _, path := range []string{"/usr/bin/python3.11", "/usr/bin/python3"} {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			continue
		}
		f, err := elf.Open(real)
		if err != nil {
			continue
		}
		dynamic := false
		for _, p := range f.Progs {
			dynamic = dynamic || p.Type == elf.PT_INTERP
		}
		f.Close()
		if dynamic {
			return path
		}
	}
	t.Skip("no dynamically linked python3 in /usr/bin")
	return ""
}

func TestPython(t *testing.T) {
	needSetup(t)
	py := python(t)
	for _, name := range []string{"py_fork", "py_multiprocessing", "py_fcntl_owner"} {
		t.Run(name, func(t *testing.T) {
			script := filepath.Join(repoRoot, "test", "programs", name+".py")
			if _, err := os.Stat(script); err != nil {
				t.Fatal(err)
			}
			res := runChain(t, nil, "--ids", "sequential", "--", py, script)
			if res.Code != 0 || res.Stderr != "" {
				t.Errorf("want exit status 0 and no stderr\n%s", res)
			}
			checkGolden(t, name, res.Stdout)
		})
	}
}
