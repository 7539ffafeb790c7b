package shim

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// errAny stands for any error in a test's want.
var errAny = errors.New("any error")

func selfPIDNamespace(t *testing.T) vresource.NamespaceID {
	t.Helper()
	ns, err := vresource.NamespaceOf("/proc/self/ns/pid")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestMemberOf(t *testing.T) {
	self := selfPIDNamespace(t)
	otherPath, other := otherPIDNamespace(t)
	if other == self {
		t.Fatalf("the new pid namespace is this process's: %s", self)
	}
	tests := []struct {
		name        string
		annotations map[string]string
		namespaces  []specs.LinuxNamespace
		want        member
		wantErr     string // in the error
	}{
		{name: "nothing: the runtime's pid namespace", want: member{pidNS: self}},
		{name: "joinable", annotations: map[string]string{oci.AnnotationJoinable: "true"}, want: member{joinable: true, pidNS: self}},
		{name: "joinable not true", annotations: map[string]string{oci.AnnotationJoinable: "false"},
			wantErr: `annotation io.vrid.joinable="false": the one value is "true"`},
		{name: "joinable empty", annotations: map[string]string{oci.AnnotationJoinable: ""},
			wantErr: `annotation io.vrid.joinable="": the one value is "true"`},
		{name: "CRI sandbox", annotations: map[string]string{annotationCRISandboxID: "sb1"}, want: member{sandbox: "sb1", pidNS: self}},
		{name: "new pid namespace", namespaces: []specs.LinuxNamespace{{Type: specs.IPCNamespace}, {Type: specs.PIDNamespace}},
			want: member{}},
		{name: "pid namespace path", namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: otherPath}},
			want: member{pidNS: other}},
		{name: "pid namespace gone", namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/proc/0/ns/pid"}},
			wantErr: "pid namespace of the container: namespace /proc/0/ns/pid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := memberOf(&specs.Spec{Annotations: tt.annotations, Linux: &specs.Linux{Namespaces: tt.namespaces}})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("memberOf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// otherPIDNamespace starts a process in a new pid namespace, for as long
// as the test runs, and returns the path of that namespace and its id.
func otherPIDNamespace(t *testing.T) (string, vresource.NamespaceID) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	path := fmt.Sprintf("/proc/%d/ns/pid", cmd.Process.Pid)
	ns, err := vresource.NamespaceOf(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, ns
}

func TestCheckJoin(t *testing.T) {
	a, b := vresource.NamespaceID{Dev: 4, Ino: 1}, vresource.NamespaceID{Dev: 4, Ino: 2}
	tests := []struct {
		name    string
		facts   vresource.Facts
		rootPid int
		joiner  member
		wantErr error
		wantMsg string // the whole error
	}{
		{name: "joinable, same pid namespace", facts: vresource.Facts{Joinable: true, PIDNS: a}, joiner: member{pidNS: a}},
		{name: "same pod", facts: vresource.Facts{Sandbox: "sb1", PIDNS: a}, joiner: member{sandbox: "sb1", pidNS: a}},
		{name: "joinable, in a pod", facts: vresource.Facts{Joinable: true, Sandbox: "sb1", PIDNS: a}, joiner: member{sandbox: "sb2", pidNS: a}},
		{name: "not joinable", facts: vresource.Facts{PIDNS: a}, joiner: member{pidNS: a}, wantErr: errNotJoinable,
			wantMsg: `join chain "web" (AID 7): its owner does not let other containers join; ` +
				`start its owner with the annotation io.vrid.joinable=true, or run both containers in one CRI pod`},
		{name: "joiner says joinable", facts: vresource.Facts{PIDNS: a}, joiner: member{joinable: true, pidNS: a}, wantErr: errNotJoinable},
		{name: "other pod", facts: vresource.Facts{Sandbox: "sb1", PIDNS: a}, joiner: member{sandbox: "sb2", pidNS: a}, wantErr: errNotJoinable},
		{name: "no pod on either side", facts: vresource.Facts{PIDNS: a}, joiner: member{pidNS: a}, wantErr: errNotJoinable},
		{name: "owner outside CRI", facts: vresource.Facts{PIDNS: a}, joiner: member{sandbox: "sb1", pidNS: a}, wantErr: errNotJoinable},
		{name: "new pid namespace", facts: vresource.Facts{Joinable: true, PIDNS: a}, rootPid: 4242, joiner: member{},
			wantErr: errPIDNamespace,
			wantMsg: `join chain "web" (AID 7): the containers of a chain must share one pid namespace; this container would get a new one: ` +
				`run it in the owner's (ctr run --with-ns pid:/proc/4242/ns/pid; in a pod, shareProcessNamespace: true, CRI namespace_options pid POD)`},
		{name: "other pid namespace", facts: vresource.Facts{Sandbox: "sb1", PIDNS: a}, joiner: member{sandbox: "sb1", pidNS: b},
			wantErr: errPIDNamespace,
			wantMsg: `join chain "web" (AID 7): the containers of a chain must share one pid namespace; this container's is 4:2, the chain's 4:1: ` +
				`run it in the owner's (ctr run --with-ns pid:/proc/<owner's pid>/ns/pid; in a pod, shareProcessNamespace: true, CRI namespace_options pid POD)`},
		{name: "chain's pid namespace unknown", facts: vresource.Facts{Joinable: true}, joiner: member{pidNS: a}, wantErr: errPIDNamespace,
			wantMsg: `join chain "web" (AID 7): the containers of a chain must share one pid namespace; the chain's is not known yet: start its owner first`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := vresource.Chain{AID: 7, Name: "web", RootPid: tt.rootPid, Facts: tt.facts}
			err := checkJoin(ch, tt.joiner)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("error\n%s\nwant\n%s", err, tt.wantMsg)
			}
		})
	}
}
