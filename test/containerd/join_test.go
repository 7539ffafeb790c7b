package containerd_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// A container that names another's chain, by AID or by the container id
// that names it, is refused at create when the owner did not allow it: the
// error names the chain and how to allow it, the victim's table is as it
// was, the victim runs on, and nothing of the refused container is left.
func TestJoinRefused(t *testing.T) {
	e := testEnv(t)
	const victimID = "vt-victim"
	victimPid := e.startProbe(t, vridRuntime, victimID, nil, "/probe", "sleep")
	victim, ok := chainNamed(t, e.stateDir, oci.ChainName(victimID))
	if !ok {
		t.Fatalf("no chain %q while the container runs", victimID)
	}
	waitFor(t, func() bool { return len(tableEntries(t, victim)) > 0 }, "the victim's pid in its table")
	tableBefore, chainsBefore := tableEntries(t, victim), chainAIDs(t, e.stateDir)

	tests := []struct{ name, annotation string }{
		{"by AID", victim.AID.String()},
		{"by container id", oci.ChainName(victimID)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("vt-intruder-%d", i)
			t.Cleanup(func() { e.remove(id) })
			extra := []string{"--rm", "--annotation", oci.AnnotationAID + "=" + tt.annotation}
			_, err := e.ctr(e.runArgs(vridRuntime, e.seqCfg, id, extra, "/probe", "pid")...)
			if err == nil {
				t.Fatalf("ctr run with %s=%s succeeded", oci.AnnotationAID, tt.annotation)
			}
			want := fmt.Sprintf(`join chain %q (AID %d): its owner does not let other containers join; `+
				`start its owner with the annotation io.vrid.joinable=true, or run both containers in one CRI pod`, victimID, victim.AID)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
			if got := tableEntries(t, victim); !reflect.DeepEqual(got, tableBefore) {
				t.Errorf("the victim's table changed:\n%v\nwas\n%v", got, tableBefore)
			}
			if pid, err := e.taskPid(victimID); err != nil || pid != victimPid {
				t.Errorf("the victim's task: pid %d, %v; want it running as %d", pid, err, victimPid)
			}
			if got := chainAIDs(t, e.stateDir); !slices.Equal(got, chainsBefore) {
				t.Errorf("chains %v, were %v", got, chainsBefore)
			}
			assertNoChain(t, e.stateDir, id)
		})
	}
	e.stopProbe(t, victimID)
	assertNoChain(t, e.stateDir, victimID)
}

// An owner with io.vrid.joinable=true lets a container join, in its pid
// namespace only: one in a new pid namespace is refused and leaves
// nothing, one in the owner's gets the chain's next virtual pid.
func TestJoinJoinable(t *testing.T) {
	e := testEnv(t)
	const ownerID = "vt-owner"
	ownerPid := e.startProbe(t, vridRuntime, ownerID, []string{"--annotation", oci.AnnotationJoinable + "=true"}, "/probe", "sleep")
	owner, ok := chainNamed(t, e.stateDir, ownerID)
	if !ok {
		t.Fatalf("no chain %q while the container runs", ownerID)
	}
	ownerNS := fmt.Sprintf("/proc/%d/ns/pid", ownerPid)
	pidNS, err := vresource.NamespaceOf(ownerNS)
	if err != nil {
		t.Fatal(err)
	}
	if f := owner.Facts; !f.Joinable || f.Sandbox != "" || f.PIDNS != pidNS {
		t.Errorf("the owner's chain records %+v, want joinable in pid namespace %s", owner.Facts, pidNS)
	}
	join := []string{"--annotation", oci.AnnotationAID + "=" + ownerID}

	const strayID = "vt-stray"
	t.Cleanup(func() { e.remove(strayID) })
	_, err = e.ctr(e.runArgs(vridRuntime, e.seqCfg, strayID, append([]string{"--rm"}, join...), "/probe", "pid")...)
	if err == nil {
		t.Fatal("a container in a pid namespace of its own joined the chain")
	}
	want := fmt.Sprintf(`join chain %q (AID %d): the containers of a chain must share one pid namespace; `+
		`this container would get a new one: run it in the owner's (ctr run --with-ns pid:%s;`, ownerID, owner.AID, ownerNS)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error does not say %q:\n%v", want, err)
	}
	assertNoChain(t, e.stateDir, strayID)

	const joinerID = "vt-joiner"
	joinerPid := e.startProbe(t, vridRuntime, joinerID, append(join, "--with-ns", "pid:"+ownerNS), "/probe", "sleep")
	assertNoChain(t, e.stateDir, joinerID)
	// Sequential ids: the owner's process is its pid namespace's init, 1;
	// the joiner's the first fresh pid.
	wantRows := []psRow{
		{AID: uint64(owner.AID), Chain: ownerID, State: "running", VirtPID: 1, SysPID: 1, HostPID: ownerPid, Command: "/probe sleep"},
		{AID: uint64(owner.AID), Chain: ownerID, State: "running", VirtPID: 1000, SysPID: innermostPid(t, joinerPid), HostPID: joinerPid,
			Command: "/probe sleep"},
	}
	// The joiner is in the container's cgroup from its start, and in the
	// tables once its layer has recorded it.
	var rows []psRow
	waitFor(t, func() bool {
		rows = chainRows(t, e, ownerID)
		return allBound(rows, len(wantRows))
	}, "the joiner in vrid ps")
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("vrid ps shows chain %s as\n%+v\nwant\n%+v", ownerID, rows, wantRows)
	}

	e.stopProbe(t, joinerID)
	e.stopProbe(t, ownerID)
	assertNoChain(t, e.stateDir, ownerID)
}

// chainRows is chain name's rows of vrid ps.
func chainRows(t *testing.T, e *env, name string) []psRow {
	t.Helper()
	return slices.DeleteFunc(vridPS(t, e), func(r psRow) bool { return r.Chain != name })
}

// allBound says whether there are n rows, each with its virtual pid: a
// process is in its container's cgroup before the layer in it has bound
// its pid (vpid 0 until then).
func allBound(rows []psRow, n int) bool {
	return len(rows) == n && !slices.ContainsFunc(rows, func(r psRow) bool { return r.VirtPID == 0 })
}

// tableEntries is every entry of a chain's tables.
func tableEntries(t *testing.T, ch vresource.Chain) []vresource.Entry {
	t.Helper()
	tables, err := vresource.OpenTables(ch.Tables)
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	var all []vresource.Entry
	for rt := range vresource.ResourceType(vresource.NumResourceTypes) {
		all = append(all, tables.Entries(rt)...)
	}
	return all
}

// chainAIDs lists the AIDs of the registered chains.
func chainAIDs(t *testing.T, stateDir string) []vresource.AID {
	t.Helper()
	var aids []vresource.AID
	for _, ch := range chains(t, stateDir) {
		aids = append(aids, ch.AID)
	}
	return aids
}

// The containers of one CRI pod that shares its pid namespace join the
// chain its pod annotation io.vrid.aid names; a container of another pod
// that names it is refused at start.
func TestJoinCRIPod(t *testing.T) {
	e := testEnv(t)
	const chainName = "vt-podchain"
	podA, podFileA := e.runPod(t, "vt-pod-a", map[string]string{oci.AnnotationAID: chainName})
	first, err := e.startPodContainer(t, podA, podFileA, "first")
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.startPodContainer(t, podA, podFileA, "second")
	if err != nil {
		t.Fatal(err)
	}
	ch, ok := chainNamed(t, e.stateDir, chainName)
	if !ok {
		t.Fatalf("no chain %q while the pod runs", chainName)
	}
	for _, id := range []string{first, second} {
		if _, ok := chainNamed(t, e.stateDir, oci.ChainName(id)); ok {
			t.Errorf("container %s got a chain of its own", id)
		}
	}
	// Sequential ids: the pause process is in no chain, the first
	// container's process is 1000, the second's 1001.
	var rows []psRow
	waitFor(t, func() bool {
		rows = chainRows(t, e, chainName)
		return allBound(rows, 2)
	}, "both containers in vrid ps")
	for i, r := range rows {
		if r.VirtPID != int32(1000+i) || r.Command != "/probe sleep" || r.AID != uint64(ch.AID) || r.State != "running" {
			t.Errorf("vrid ps row %d: %+v, want vpid %d running \"/probe sleep\" in chain %d, a member", i, r, 1000+i, ch.AID)
		}
	}
	pidNS, err := vresource.NamespaceOf(fmt.Sprintf("/proc/%d/ns/pid", rows[1].HostPID))
	if err != nil {
		t.Fatal(err)
	}
	if f := ch.Facts; f.Joinable || f.Sandbox != podA || f.PIDNS != pidNS {
		t.Errorf("the chain records %+v, want pod %s's sandbox and pid namespace %s, not joinable", f, podA, pidNS)
	}

	podB, podFileB := e.runPod(t, "vt-pod-b", map[string]string{oci.AnnotationAID: chainName})
	intruder, err := e.startPodContainer(t, podB, podFileB, "intruder")
	want := fmt.Sprintf(`join chain %q (AID %d): its owner does not let other containers join`, chainName, ch.AID)
	// crictl quotes the runtime's error in its own.
	if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), `\"`, `"`), want) {
		t.Errorf("starting a container of another pod: %v; want an error saying %q", err, want)
	}
	if _, ok := chainNamed(t, e.stateDir, oci.ChainName(intruder)); ok {
		t.Errorf("the refused container %s got a chain", intruder)
	}
	if got := chainRows(t, e, chainName); !reflect.DeepEqual(got, rows) {
		t.Errorf("after the refused container, vrid ps shows\n%+v\nwant\n%+v", got, rows)
	}

	for _, pod := range []string{podA, podB} {
		if _, err := e.crictl("stopp", pod); err != nil {
			t.Fatal(err)
		}
		if _, err := e.crictl("rmp", pod); err != nil {
			t.Fatal(err)
		}
	}
	assertNoChain(t, e.stateDir, chainName)
}
