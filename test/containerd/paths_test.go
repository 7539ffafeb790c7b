package containerd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A root process of a container turns on its table file's path: it tries
// to replace the file with a symlink to a host path, to rename and unlink
// it, and to add a file beside it.  Each fails, the host's chain
// directory holds the table file alone, and the host file it aimed at is
// as it was.  A container that joins the chain later still works, and
// deleting the owner leaves nothing behind.
func TestTablePathOutOfReach(t *testing.T) {
	e := testEnv(t)
	const owner, sibling = "vt-paths-owner", "vt-paths-sibling"
	victim := filepath.Join(e.work, "victim")
	if err := os.WriteFile(victim, []byte("host data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ownerPid := e.startProbe(t, vridRuntime, owner, []string{"--annotation", "io.vrid.joinable=true"}, "/probe", "sleep")
	ch, ok := chainNamed(t, e.stateDir, owner)
	if !ok {
		t.Fatalf("no chain %q while the container runs", owner)
	}
	out, err := e.ctr("tasks", "exec", "--fifo-dir", filepath.Join(e.ctrdDir, "fifo"), "--exec-id", "attack", owner, "/probe", "attack", victim)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"symlink=EROFS", "replace=EROFS", "rename=EROFS", "unlink=EROFS", "create=EROFS", "pid=1000"}
	if got := lines(out); !slices.Equal(got, want) {
		t.Errorf("probe attack printed %q, want %q", got, want)
	}
	entries, err := os.ReadDir(filepath.Join(e.stateDir, "chains", ch.AID.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "tables" || !entries[0].Type().IsRegular() {
		t.Errorf("chain directory holds %v, want the regular file tables alone", entries)
	}
	st, err := os.Lstat(victim)
	data, rerr := os.ReadFile(victim)
	if err != nil || rerr != nil || st.Mode() != 0o600 || string(data) != "host data\n" {
		t.Errorf("victim is now %v %q (%v, %v), want -rw------- \"host data\\n\"", st.Mode(), data, err, rerr)
	}

	// In the owner's pid namespace, where the chain's pids are unique.
	join := []string{"--annotation", "io.vrid.aid=" + owner, "--with-ns", fmt.Sprintf("pid:/proc/%d/ns/pid", ownerPid)}
	out = e.runProbe(t, vridRuntime, sibling, join, "/probe", "pid")
	if got := lines(out); !slices.Equal(got, []string{"pid=1001"}) {
		t.Errorf("the sibling printed %q, want pid=1001", got)
	}
	e.stopProbe(t, owner)
	assertNoChain(t, e.stateDir, owner)
}

// A container writes past the end of its table file, as it would to fill
// the host's memory through it: the chain's directory is a tmpfs no
// larger than the table, so the write stops with ENOSPC.
func TestTableCannotFillHost(t *testing.T) {
	e := testEnv(t)
	const id = "vt-paths-fill"
	out := e.runProbe(t, vridRuntime, id, nil, "/probe", "fill")
	if got := lines(out); !slices.Equal(got, []string{"fill=ENOSPC"}) {
		t.Errorf("probe fill printed %q, want fill=ENOSPC", got)
	}
	assertNoChain(t, e.stateDir, id)
}
