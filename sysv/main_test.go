package sysv

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// The tests create, remove and count System V objects and set the
// *_next_id sysctls, so they run in an IPC namespace of their own: the
// test binary starts itself again in a new one (unshare --ipc go test
// gives the same).
const nsEnv = "VRID_SYSV_TEST_IPCNS"

func TestMain(m *testing.M) {
	if helper := os.Getenv(helperEnv); helper != "" {
		os.Exit(runHelper(helper))
	}
	if os.Getenv(nsEnv) != "" {
		os.Exit(m.Run())
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "sysv tests need root: they create objects as other users and open /proc/self/map_files")
		os.Exit(1)
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), nsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWIPC}
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the tests in a new IPC namespace:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// countObjects counts the objects of a type in this IPC namespace.
func countObjects(t testing.TB, rt vresource.ResourceType) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/" + rt.String())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n") - 1 // the heading
}

func countAll(t testing.TB) [3]int {
	t.Helper()
	return [3]int{countObjects(t, vresource.Sem), countObjects(t, vresource.Shm), countObjects(t, vresource.Msg)}
}

// setSysctl sets a kernel.* IPC sysctl of the test's namespace, for the
// test.
func setSysctl(t testing.TB, name, value string) {
	t.Helper()
	path := "/proc/sys/kernel/" + name
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile(path, old, 0) })
}

// setNextID makes the next object of a type get id.
func setNextID(t testing.TB, rt vresource.ResourceType, id int32) {
	t.Helper()
	path := fmt.Sprintf("/proc/sys/kernel/%s_next_id", rt)
	if err := os.WriteFile(path, []byte(strconv.Itoa(int(id))), 0); err != nil {
		t.Fatal(err)
	}
}

func remove(t testing.TB, rt vresource.ResourceType, sys int32) {
	t.Helper()
	if err := removeAll([]Rebind{{Type: rt, NewSys: sys}}); err != nil {
		t.Fatal(err)
	}
}

func mustSemget(t testing.TB, key int32, nsems int, perm Perm) int32 {
	t.Helper()
	var id int32
	err := asCreator(perm.CUID, perm.CGID, func() (err error) {
		id, err = semget(key, nsems, createFlags)
		return err
	})
	if err != nil {
		t.Fatalf("semget(%#x, %d): %v", key, nsems, err)
	}
	return id
}

func mustShmget(t testing.TB, key int32, size int, perm Perm) int32 {
	t.Helper()
	var id int32
	err := asCreator(perm.CUID, perm.CGID, func() (err error) {
		id, err = shmget(key, uint64(size), createFlags)
		return err
	})
	if err != nil {
		t.Fatalf("shmget(%#x, %d): %v", key, size, err)
	}
	return id
}

func mustMsgget(t testing.TB, key int32, perm Perm) int32 {
	t.Helper()
	var id int32
	err := asCreator(perm.CUID, perm.CGID, func() (err error) {
		id, err = msgget(key, createFlags)
		return err
	})
	if err != nil {
		t.Fatalf("msgget(%#x): %v", key, err)
	}
	return id
}

// semVal reads one semaphore with GETVAL: not the GETALL that Save uses.
func semVal(t testing.TB, id int32, num int) uint16 {
	t.Helper()
	v, _, e := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), uintptr(num), 12 /* GETVAL */, 0, 0, 0)
	if e != 0 {
		t.Fatalf("GETVAL sem %d semaphore %d: %v", id, num, e)
	}
	return uint16(v)
}

// shmSum hashes a segment read through an attachment: not the map_files
// descriptor that Save and Restore use.
func shmSum(t testing.TB, id int32) [sha256.Size]byte {
	t.Helper()
	mem, err := unix.SysvShmAttach(int(id), 0, unix.SHM_RDONLY)
	if err != nil {
		t.Fatalf("attach shm %d: %v", id, err)
	}
	defer unix.SysvShmDetach(mem)
	return sha256.Sum256(mem)
}

// drain takes every message out of a queue with plain msgrcv, oldest
// first: not the MSG_COPY that Save uses.
func drain(t testing.TB, id int32) []Message {
	t.Helper()
	buf := make([]byte, mtypeSize+1<<16)
	out := []Message{}
	for {
		n, err := msgrcv(id, buf, 0, unix.IPC_NOWAIT)
		if errors.Is(err, unix.ENOMSG) {
			return out
		}
		if err != nil {
			t.Fatalf("msgrcv queue %d: %v", id, err)
		}
		typ := *(*int64)(unsafe.Pointer(&buf[0]))
		out = append(out, Message{Type: typ, Data: append([]byte{}, buf[mtypeSize:mtypeSize+n]...)})
	}
}

func mustSetPerm(t testing.TB, rt vresource.ResourceType, id int32, perm Perm) {
	t.Helper()
	var err error
	switch rt {
	case vresource.Sem:
		var ds semid64DS
		setPerm(&ds.Perm, perm)
		err = semctl(id, 0, unix.IPC_SET, unsafe.Pointer(&ds))
	case vresource.Shm:
		var ds unix.SysvShmDesc
		setPerm(&ds.Perm, perm)
		err = shmctl(id, unix.IPC_SET, &ds)
	}
	if err != nil {
		t.Fatalf("IPC_SET %s %d: %v", rt, id, err)
	}
}

func readDir(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}
