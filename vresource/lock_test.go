package vresource

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// heldLock is the writer lock of a table file, held by someone other than
// the Tables under test.
type heldLock struct {
	unlock func()
	kill   func() // SIGKILLs the holder; nil when the holder is this process
}

// holdInProcess takes the lock through another open file description of
// the file in this process, as another Tables of it would.
func holdInProcess(t *testing.T, path string) heldLock {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: unix.SEEK_SET, Start: 0, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	return heldLock{unlock: func() {
		lk.Type = unix.F_UNLCK
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			t.Fatal(err)
		}
	}}
}

// holdInDriver has a driver process take the lock.
func holdInDriver(t *testing.T, cmd *exec.Cmd) heldLock {
	proc := startDriver(t, cmd)
	if got := proc.say("lock"); got != "locked" {
		t.Fatalf("driver lock: %q", got)
	}
	return heldLock{
		unlock: func() {
			if got := proc.say("unlock"); got != "unlocked" {
				t.Fatalf("driver unlock: %q", got)
			}
		},
		kill: func() {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
		},
	}
}

// TestWriterLockExcludes has the lock held by a process of the chain
// (vrid_lock of lock.c) and by another description in this process, and
// wants a Go writer to wait for it: until the holder lets go, or until
// the kernel drops the lock of a holder killed while holding it.
func TestWriterLockExcludes(t *testing.T) {
	driver := buildDriver(t)
	tests := []struct {
		name string
		hold func(t *testing.T, path string) heldLock
		kill bool
	}{
		{"c process unlocks", func(t *testing.T, path string) heldLock {
			return holdInDriver(t, driverCommand(driver, path))
		}, false},
		{"c process killed", func(t *testing.T, path string) heldLock {
			return holdInDriver(t, driverCommand(driver, path))
		}, true},
		{"another description in this process", holdInProcess, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(t, TableOptions{})
			mustBind(t, tb, PID, 4)
			held := tt.hold(t, tb.path)

			bound := make(chan error, 1)
			go func() {
				_, err := tb.Bind(PID, 5)
				bound <- err
			}()
			select {
			case err := <-bound:
				t.Fatalf("bind went past the held lock: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			if sys, ok := tb.Lookup(PID, 4); !ok || sys != 4 {
				t.Errorf("lookup under a held lock: %d, %v; lookups take no lock", sys, ok)
			}
			if tt.kill {
				held.kill()
			} else {
				held.unlock()
			}
			select {
			case err := <-bound:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("bind still waits after the lock was let go")
			}
			if sys, ok := tb.Lookup(PID, 5); !ok || sys != 5 {
				t.Errorf("lookup 5: %d, %v; want 5", sys, ok)
			}
		})
	}
}

// TestWriterLockOfHostWaitsForChain is the other way round: a process of
// the chain waits while this process holds the lock.
func TestWriterLockOfHostWaitsForChain(t *testing.T) {
	driver := buildDriver(t)
	tb := newTables(t, TableOptions{})
	held := holdInProcess(t, tb.path)
	cmd := driverCommand(driver, tb.path)
	cmd.Stdin = strings.NewReader("bind 0 77\n")
	done := make(chan string, 1)
	go func() {
		out, err := cmd.Output()
		if err != nil {
			out = []byte(err.Error())
		}
		done <- string(out)
	}()
	select {
	case out := <-done:
		held.unlock()
		t.Fatalf("C bind went past the held lock: %q", out)
	case <-time.After(200 * time.Millisecond):
	}
	if _, ok := tb.Lookup(PID, 77); ok {
		t.Error("C bound 77 while Go held the lock")
	}
	held.unlock()
	if out := <-done; out != "77\n" {
		t.Errorf("C bind after unlock: %q, want 77", out)
	}
}

// driverSession is a C driver process kept running, to which a test says
// one command at a time.
type driverSession struct {
	say func(cmdLine string) string
}

func startDriver(t *testing.T, cmd *exec.Cmd) driverSession {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	answers := bufio.NewReader(stdout)
	return driverSession{say: func(cmdLine string) string {
		t.Helper()
		if _, err := io.WriteString(stdin, cmdLine+"\n"); err != nil {
			t.Fatalf("driver %s: %v\n%s", cmdLine, err, stderr.String())
		}
		got, err := answers.ReadString('\n')
		if err != nil {
			t.Fatalf("driver %s: %v\n%s", cmdLine, err, stderr.String())
		}
		return strings.TrimSuffix(got, "\n")
	}}
}

// TestReattach has a process of the chain attached to the table file
// when a restore rebinds ids and bumps the generation, or puts a copy of
// the file in its place and restores the process onto it, as a restore
// from an image does (CRIU maps the copy and opens the process's fds on
// it).  The process goes on writing, to the file now at the path, and
// sees what the restore wrote; a copy that is not newer is refused, as a
// file that is not the chain's is.
func TestReattach(t *testing.T) {
	driver := buildDriver(t)
	tests := []struct {
		name    string
		replace bool   // a copy, a new inode, takes the path
		bump    int    // generations the restore adds
		want    string // the process's answer to a bind after the restore
	}{
		{"rebound in place", false, 1, "601"},
		{"copy of a newer generation", true, 1, "601"},
		{"copy of the same generation", true, 0, fmt.Sprintf("error %d", unix.ESTALE)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTables(t, TableOptions{Slots: small()})
			proc := startDriver(t, driverCommand(driver, tb.path))
			if got := proc.say("bind 0 500"); got != "500" {
				t.Fatalf("bind before: %q", got)
			}
			restored := tb.path
			if tt.replace {
				restored = filepath.Join(filepath.Dir(tb.path), "restored")
				copyFile(t, tb.path, restored)
			}
			rt, err := OpenTables(restored)
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			if err := rt.Rebind(PID, 500, 700); err != nil {
				t.Fatal(err)
			}
			for range tt.bump {
				if _, err := rt.BumpGeneration(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.replace {
				if err := os.Rename(restored, tb.path); err != nil {
					t.Fatal(err)
				}
				if got := proc.say("restored"); got != "restored" {
					t.Fatalf("restore the process: %q", got)
				}
			}
			got := proc.say("bind 0 601")
			if got != tt.want {
				t.Fatalf("bind after the restore: %q, want %q", got, tt.want)
			}
			if got != "601" {
				return
			}
			if sys := proc.say("lookup 0 500"); sys != "700" {
				t.Errorf("the process looks up 500 as %s, want the restored 700", sys)
			}
			if virt, ok := rt.Reverse(PID, 601); !ok || virt != 601 {
				t.Errorf("the file at the path has 601 as %d, %v: the process wrote elsewhere", virt, ok)
			}
		})
	}
}
