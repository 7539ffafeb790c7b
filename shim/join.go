package shim

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

// annotationCRISandboxID names the pod sandbox of a CRI container.  CRI
// sets it; pod_annotations = ['io.vrid.*'] does not let a pod set it.
const annotationCRISandboxID = "io.kubernetes.cri.sandbox-id"

// Why a container may not join a chain.
var (
	errNotJoinable  = errors.New("its owner does not let other containers join")
	errPIDNamespace = errors.New("the containers of a chain must share one pid namespace")
)

// member is what a container's spec says of its place in a chain.  If it
// owns its chain, the chain's facts record it (record); if it joins one,
// checkJoin decides.
type member struct {
	joinable bool   // io.vrid.joinable=true
	sandbox  string // its CRI pod sandbox, "" outside CRI
	// pidNS is its pid namespace, seen from the runtime; zero for a new
	// one, which nobody knows until runc has made it.
	pidNS vresource.NamespaceID
}

// memberOf reads a container's spec.  A pid namespace path in it is
// resolved now, while the process that holds it is the one containerd
// named; no pid namespace in the spec is the runtime's own.
func memberOf(spec *specs.Spec) (member, error) {
	m := member{sandbox: spec.Annotations[annotationCRISandboxID]}
	switch v, ok := spec.Annotations[oci.AnnotationJoinable]; {
	case !ok:
	case v == "true":
		m.joinable = true
	default:
		return m, fmt.Errorf("annotation %s=%q: the one value is \"true\"; leave it out to keep other containers from joining",
			oci.AnnotationJoinable, v)
	}
	path := "/proc/self/ns/pid"
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type != specs.PIDNamespace {
				continue
			}
			if ns.Path == "" {
				return m, nil
			}
			path = ns.Path
		}
	}
	var err error
	if m.pidNS, err = vresource.NamespaceOf(path); err != nil {
		return m, fmt.Errorf("pid namespace of the container: %w", err)
	}
	return m, nil
}

// record notes in the facts of the chain m owns who may join it.  A new
// pid namespace stays unknown here: hooks.Created learns it.
func (m member) record(f *vresource.Facts) {
	f.Joinable = m.joinable
	f.Sandbox = m.sandbox
	f.PIDNS = m.pidNS
}

// checkJoin decides whether m may join chain ch.  Its owner must allow it:
// both containers are in one CRI pod, or the owner said io.vrid.joinable.
// And both must live in one pid namespace: each container numbers its
// processes from 1, and the pid table holds one entry per pid.
func checkJoin(ch vresource.Chain, m member) error {
	refuse := func(err error, hint string) error {
		return fmt.Errorf("join chain %q (AID %d): %w; %s", ch.Name, ch.AID, err, hint)
	}
	f := ch.Facts
	if !f.Joinable && (m.sandbox == "" || m.sandbox != f.Sandbox) {
		return refuse(errNotJoinable, fmt.Sprintf("start its owner with the annotation %s=true, or run both containers in one CRI pod",
			oci.AnnotationJoinable))
	}
	ownerPid := "<owner's pid>"
	if ch.RootPid > 0 {
		ownerPid = fmt.Sprint(ch.RootPid)
	}
	hint := fmt.Sprintf("run it in the owner's (ctr run --with-ns pid:/proc/%s/ns/pid; in a pod, shareProcessNamespace: true, CRI namespace_options pid POD)",
		ownerPid)
	switch {
	case f.PIDNS.IsZero():
		return refuse(errPIDNamespace, "the chain's is not known yet: start its owner first")
	case m.pidNS.IsZero():
		return refuse(errPIDNamespace, "this container would get a new one: "+hint)
	case m.pidNS != f.PIDNS:
		return refuse(errPIDNamespace, fmt.Sprintf("this container's is %s, the chain's %s: %s", m.pidNS, f.PIDNS, hint))
	}
	return nil
}
