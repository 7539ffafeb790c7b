package criu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// heapMiB is the touched heap of the benchmarked process.
const heapMiB = 100

// BenchmarkHeap dumps and restores a process with 100 MiB of touched heap,
// with plain CRIU (its command line, restoring onto the same pid) and
// through this package (go-criu's RPC; restore = choose free pids,
// rewrite, restore), and times the rewrite alone.
//
//	go test -run XXX -bench Heap -benchtime 5x ./criu/
func BenchmarkHeap(b *testing.B) {
	needCRIU(b)
	ctx := context.Background()
	b.Run("criu/dump", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			pid, dir := startHeap(b)
			b.StartTimer()
			criuCLI(b, "dump", "-t", strconv.Itoa(pid), "-D", dir, "-o", dumpLog, "-v4")
			b.StopTimer()
			waitGoneB(b, pid)
			reportImage(b, dir)
		}
	})
	b.Run("criu/restore", func(b *testing.B) {
		pid, dir := startHeap(b)
		criuCLI(b, "dump", "-t", strconv.Itoa(pid), "-D", dir, "-o", dumpLog, "-v4")
		waitGoneB(b, pid)
		b.ResetTimer()
		for range b.N {
			criuCLI(b, "restore", "-d", "-D", dir, "-o", restoreLog, "-v4")
			b.StopTimer()
			syscall.Kill(pid, syscall.SIGKILL)
			waitGoneB(b, pid)
			b.StartTimer()
		}
	})
	b.Run("vrid/dump", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			pid, dir := startHeap(b)
			b.StartTimer()
			if err := Dump(ctx, DumpOpts{Criu: stackCRIU, Pid: pid, ImageDir: dir}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			waitGoneB(b, pid)
			reportImage(b, dir)
		}
	})
	pid, dir := startHeap(b)
	if err := Dump(ctx, DumpOpts{Criu: stackCRIU, Pid: pid, ImageDir: dir}); err != nil {
		b.Fatal(err)
	}
	waitGoneB(b, pid)
	b.Run("vrid/restore", func(b *testing.B) {
		for i := range b.N {
			work := filepath.Join(b.TempDir(), "work"+strconv.Itoa(i))
			unlock, err := LockPids()
			if err != nil {
				b.Fatal(err)
			}
			tree, err := ReadTree(dir)
			if err != nil {
				b.Fatal(err)
			}
			pids, err := ChooseFreePids(tree)
			if err != nil {
				b.Fatal(err)
			}
			if err := RewritePids(dir, work, pids); err != nil {
				b.Fatal(err)
			}
			root, err := Restore(ctx, work, RestoreOpts{Criu: stackCRIU, Sibling: true})
			unlock()
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			syscall.Kill(root, syscall.SIGKILL)
			waitGoneB(b, root)
			os.RemoveAll(work)
			b.StartTimer()
		}
	})
	b.Run("vrid/rewrite", func(b *testing.B) {
		tree, err := ReadTree(dir)
		if err != nil {
			b.Fatal(err)
		}
		pids := map[int]int{}
		for _, id := range tree.Ids() {
			pids[id] = id + 1
		}
		for i := range b.N {
			work := filepath.Join(b.TempDir(), "work"+strconv.Itoa(i))
			if err := RewritePids(dir, work, pids); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			os.RemoveAll(work)
			b.StartTimer()
		}
	})
}

// startHeap starts the heap program, waits until its heap is touched and
// returns its pid and an empty image directory.
func startHeap(b testing.TB) (int, string) {
	b.Helper()
	dir := b.TempDir()
	out := filepath.Join(dir, "out")
	img := filepath.Join(dir, "img")
	if err := os.Mkdir(img, 0o700); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(program(b, "heap"), strconv.Itoa(heapMiB))
	cmd.Stdout = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// The dump kills it; Wait reaps it, or kills it if the benchmark fails.
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(waitDeadline)
	for {
		got, _ := os.ReadFile(out)
		if strings.Contains(string(got), "ready") {
			return cmd.Process.Pid, img
		}
		if time.Now().After(deadline) {
			b.Fatal("heap never got ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func criuCLI(b testing.TB, args ...string) {
	b.Helper()
	if out, err := exec.Command(stackCRIU, args...).CombinedOutput(); err != nil {
		b.Fatalf("criu %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func waitGoneB(b *testing.B, pid int) {
	b.Helper()
	if err := waitGone(pid); err != nil {
		b.Fatal(err)
	}
}

// reportImage reports the size of the image in dir, in MiB.
func reportImage(b *testing.B, dir string) {
	b.Helper()
	var size int64
	for _, n := range dirNames(b, dir) {
		st, err := os.Stat(filepath.Join(dir, n))
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	b.ReportMetric(float64(size)/(1<<20), "image-MiB")
}
