package containerd_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// The containers of a CRI pod that share a pid namespace, the pod's or
// the host's, are one chain, the pod's, and agree on pids: a pid that one
// writes into a pid file names the same process in the other, as
// shareProcessNamespace sidecars and critest's HostPID spec expect.  The
// chain outlives the container that registered it, and goes with the
// pod's sandbox.
func TestCRIPodChain(t *testing.T) {
	e := testEnv(t)
	tests := []struct {
		name    string
		pidMode int
	}{
		{"pod pid namespace", criPod},
		{"host pid namespace", criNode},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := t.TempDir()
			podID, podFile := e.runPodPID(t, fmt.Sprintf("vt-podchain-%d", i), nil, tt.pidMode)
			name := oci.PodChainName(podID)
			a, err := e.startPodCommand(t, podID, podFile, podContainer{name: fmt.Sprintf("pc%d-a", i), pidMode: tt.pidMode,
				command: []string{"/bin/sh", "-c", "echo $$ >/shared/a.pid && exec /probe sleep a"},
				mounts:  map[string]string{"/shared": shared}})
			if err != nil {
				t.Fatal(err)
			}
			pidFile := filepath.Join(shared, "a.pid")
			waitFor(t, func() bool { _, err := os.Stat(pidFile); return err == nil }, "a's pid file")
			b, err := e.startPodCommand(t, podID, podFile, podContainer{name: fmt.Sprintf("pc%d-b", i), pidMode: tt.pidMode,
				command: []string{"/probe", "sleep", "b"}})
			if err != nil {
				t.Fatal(err)
			}

			ch, ok := chainNamed(t, e.stateDir, name)
			if !ok {
				t.Fatalf("no chain %q while the pod runs", name)
			}
			for _, id := range []string{a, b} {
				if _, ok := chainNamed(t, e.stateDir, oci.ChainName(id)); ok {
					t.Errorf("container %s got a chain of its own", id)
				}
			}
			hostA, hostB := e.criInspect(t, a).Pid, e.criInspect(t, b).Pid
			pidNS, err := vresource.NamespaceOf(fmt.Sprintf("/proc/%d/ns/pid", hostB))
			if err != nil {
				t.Fatal(err)
			}
			if f := ch.Facts; f.Joinable || f.Sandbox != podID || f.PIDNS != pidNS {
				t.Errorf("the chain records %+v, want pod %s's sandbox and pid namespace %s, not joinable", f, podID, pidNS)
			}
			// Sequential ids: the pause process is in no chain, a's
			// process is 1000, b's 1001.
			wantRows := []psRow{
				{AID: uint64(ch.AID), Chain: name, State: "running", VirtPID: 1000, SysPID: innermostPid(t, hostA), HostPID: hostA,
					Command: "/probe sleep a"},
				{AID: uint64(ch.AID), Chain: name, State: "running", VirtPID: 1001, SysPID: innermostPid(t, hostB), HostPID: hostB,
					Command: "/probe sleep b"},
			}
			var rows []psRow
			waitFor(t, func() bool {
				rows = chainRows(t, e, name)
				return allBound(rows, len(wantRows))
			}, "both containers in vrid ps")
			if !reflect.DeepEqual(rows, wantRows) {
				t.Errorf("vrid ps shows chain %s as\n%+v\nwant\n%+v", name, rows, wantRows)
			}
			if got, err := os.ReadFile(pidFile); err != nil || string(got) != "1000\n" {
				t.Errorf("a's pid file holds %q (%v), want \"1000\\n\"", got, err)
			}
			// b finds a's process under the pid a wrote.
			out, err := e.crictl("exec", b, "/probe", "peer", "1000")
			if want := "kill=ok\ncmdline=/probe sleep a\n"; err != nil || out != want {
				t.Errorf("in b, probe peer 1000: %q (%v), want %q", out, err, want)
			}

			// a, which registered the chain, stops: b goes on in it.
			for _, verb := range []string{"stop", "rm"} {
				if _, err := e.crictl(verb, a); err != nil {
					t.Fatal(err)
				}
			}
			if got, ok := chainNamed(t, e.stateDir, name); !ok || got.AID != ch.AID {
				t.Fatalf("after a stopped, chain %q: %+v (found %v), want AID %d", name, got, ok, ch.AID)
			}
			// The exec'd shell is 1003 and its child 1004, after probe peer's 1002.
			out, err = e.crictl("exec", b, "/bin/sh", "-c", "/probe pid; echo forked")
			if want := "pid=1004\nforked\n"; err != nil || out != want {
				t.Errorf("in b after a stopped: %q (%v), want %q", out, err, want)
			}
			if got := chainRows(t, e, name); !reflect.DeepEqual(got, wantRows[1:]) {
				t.Errorf("after a stopped, vrid ps shows chain %s as\n%+v\nwant\n%+v", name, got, wantRows[1:])
			}

			for _, verb := range []string{"stopp", "rmp"} {
				if _, err := e.crictl(verb, podID); err != nil {
					t.Fatal(err)
				}
			}
			assertNoChain(t, e.stateDir, name)
			if _, err := os.Stat(filepath.Join(e.stateDir, "chains", ch.AID.String())); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("chain directory of AID %d: %v", ch.AID, err)
			}
		})
	}
}

// A container of a pod with a pid namespace of its own, as Kubernetes
// gives by default, has a chain of its own, which goes when it stops
// while the pod runs on.
func TestCRIPodOwnPIDNamespace(t *testing.T) {
	e := testEnv(t)
	podID, podFile := e.runPod(t, "vt-podown", nil)
	id, err := e.startPodCommand(t, podID, podFile, podContainer{name: "own", pidMode: criContainer, command: []string{"/probe", "sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	name := oci.ChainName(id)
	ch, ok := chainNamed(t, e.stateDir, name)
	if !ok {
		t.Fatalf("no chain %q while the container runs", name)
	}
	if _, ok := chainNamed(t, e.stateDir, oci.PodChainName(podID)); ok {
		t.Errorf("the pod got a chain")
	}
	host := e.criInspect(t, id).Pid
	pidNS, err := vresource.NamespaceOf(fmt.Sprintf("/proc/%d/ns/pid", host))
	if err != nil {
		t.Fatal(err)
	}
	if f := ch.Facts; f.Sandbox != podID || f.PIDNS != pidNS {
		t.Errorf("the chain records %+v, want pod %s's sandbox and the container's pid namespace %s", f, podID, pidNS)
	}
	// Its own pid namespace: its process is that namespace's init, pid 1
	// there and in the chain.
	wantRows := []psRow{{AID: uint64(ch.AID), Chain: name, State: "running", VirtPID: 1, SysPID: 1, HostPID: host, Command: "/probe sleep"}}
	var rows []psRow
	waitFor(t, func() bool {
		rows = chainRows(t, e, name)
		return allBound(rows, 1)
	}, "the container in vrid ps")
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("vrid ps shows chain %s as\n%+v\nwant\n%+v", name, rows, wantRows)
	}
	for _, verb := range []string{"stop", "rm"} {
		if _, err := e.crictl(verb, id); err != nil {
			t.Fatal(err)
		}
	}
	assertNoChain(t, e.stateDir, name)
	if _, err := e.crictl("inspectp", podID); err != nil {
		t.Errorf("the pod after its container stopped: %v", err)
	}
}
