package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/hooks"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/snapshot"
	"github.com/vrid/vrid/vresource"
)

// OwnerKind marks the chains the shim owns in the registry.
const OwnerKind = "containerd"

// Service is runc's task service with every container in a chain.  It
// changes Create, Start, Exec, Delete and Checkpoint and hands every
// other call to runc's.
type Service struct {
	taskAPI.TTRPCTaskService // runc's

	mu         sync.Mutex
	containers map[string]*container // by container id; protected by mu
	sandboxes  map[string]sandbox    // by container id; protected by mu

	// prepMu orders the preparing of containers: the first container of
	// a pod registers the pod's chain and makes its tables before the
	// next one looks for them.
	prepMu sync.Mutex
}

// container is one container the shim put in a chain.
type container struct {
	bundle string
	inject oci.Injection
	pod    string // the CRI pod (sandbox id) whose chain it is in, if it is
	cfg    *config.Config
	// restore is the restore a task created from a checkpoint makes at
	// its Start, and release forgets its chain if it fails (restore.go).
	restore *snapshot.ContainerRestore
	release func()
}

// NewService wraps runc's task service.
func NewService(runc taskAPI.TTRPCTaskService) *Service {
	return &Service{TTRPCTaskService: runc, containers: map[string]*container{}, sandboxes: map[string]sandbox{}}
}

// RegisterTTRPC serves the wrapped service, not runc's.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Create puts the container in its chain, then creates it with runc.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	fail := func(err error) (*taskAPI.CreateTaskResponse, error) {
		return nil, fmt.Errorf("vrid: create %s: %w", r.ID, err)
	}
	t0 := time.Now()
	opts, err := parseOptions(r.Options, r.Bundle)
	if err != nil {
		return fail(err)
	}
	cfg, err := opts.loadConfig()
	if err != nil {
		return fail(err)
	}
	if err := useCRIU(cfg); err != nil {
		return fail(err)
	}
	runcReq := proto.Clone(r).(*taskAPI.CreateTaskRequest)
	if runcReq.Options, err = opts.runcOptions(cfg); err != nil {
		return fail(err)
	}
	spec, err := oci.LoadSpec(r.Bundle)
	if err != nil {
		return fail(err)
	}
	if spec.Annotations[annotationCRIContainerType] == criSandbox {
		return s.createSandbox(ctx, cfg, runcReq, spec)
	}
	prep := prepare
	if r.Checkpoint != "" {
		prep = prepareRestore(r.Checkpoint)
	}
	s.prepMu.Lock()
	c, undo, err := prep(cfg, r.ID, r.Bundle, spec)
	if err == nil && c.pod != "" {
		s.podRoot(cfg, c)
	}
	s.prepMu.Unlock()
	if err != nil {
		return fail(err)
	}
	if c.restore != nil {
		runcReq.Checkpoint = c.restore.WorkDir()
	}
	t1 := time.Now()
	resp, err := s.TTRPCTaskService.Create(ctx, runcReq)
	if err != nil {
		if c.restore != nil {
			_ = c.restore.Undo()
		}
		undo()
		return nil, err
	}
	c.cfg = cfg
	t2 := time.Now()
	// A restored container's process exists once Start restores it.
	if c.restore == nil {
		if err := created(cfg, c.inject.AID, r.ID, r.Bundle, spec, resp.Pid); err != nil {
			_, _ = s.TTRPCTaskService.Delete(ctx, &taskAPI.DeleteRequest{ID: r.ID})
			undo()
			return fail(err)
		}
	}
	// Where the start's time went: vrid's work before and after runc's.
	log.G(ctx).WithFields(log.Fields{"aid": c.inject.AID, "prepare": t1.Sub(t0), "runc": t2.Sub(t1), "created": time.Since(t2)}).
		Infof("vrid: container %s runs in chain %s", r.ID, c.inject.AID)
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()
	return resp, nil
}

// created records the new container in its chain (hooks.Created): runc
// init waits for the start, so the process the kernel describes is still
// runc's, in the namespaces and cgroup runc gave it.
func created(cfg *config.Config, aid vresource.AID, id, bundle string, spec *specs.Spec, pid uint32) error {
	reg, err := chain.OpenRegistry(cfg)
	if err != nil {
		return err
	}
	return hooks.Created(cfg, reg, aid, &specs.State{ID: id, Pid: int(pid), Bundle: bundle}, spec)
}

// CRI marks a pod's sandbox container, the pause process that only holds
// the pod's namespaces: it stays out of any chain, and its deletion tears
// the pod's chain down.
const (
	annotationCRIContainerType = "io.kubernetes.cri.container-type"
	criSandbox                 = "sandbox"
)

// sandbox is a CRI pod's sandbox container.
type sandbox struct {
	id     string // the pod's sandbox id
	bundle string
	pid    int // its pause process
}

// createSandbox creates a pod's sandbox container with runc, unchanged,
// and notes in its bundle which pod chain goes with it, for Delete and
// for `shim delete`.
func (s *Service) createSandbox(ctx context.Context, cfg *config.Config, r *taskAPI.CreateTaskRequest, spec *specs.Spec) (*taskAPI.CreateTaskResponse, error) {
	podID := spec.Annotations[annotationCRISandboxID]
	if podID == "" {
		podID = r.ID
	}
	if err := writeBundleState(r.Bundle, bundleState{Sandbox: podID, Config: cfg.Path}); err != nil {
		return nil, fmt.Errorf("vrid: create %s: %w", r.ID, err)
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sandboxes[r.ID] = sandbox{id: podID, bundle: r.Bundle, pid: int(resp.Pid)}
	s.mu.Unlock()
	return resp, nil
}

// podRoot makes the pause process of c's pod the root of the pod's chain,
// unless the chain has one: it lives as long as the chain, where any
// container of the pod may stop before the others, and it is in the pid
// namespace the chain's pids are of (vrid ps reads them through it).
func (s *Service) podRoot(cfg *config.Config, c *container) {
	s.mu.Lock()
	var pause int
	for _, sb := range s.sandboxes {
		if sb.id == c.pod {
			pause = sb.pid
		}
	}
	s.mu.Unlock()
	if pause <= 0 {
		return // not this shim's: hooks.Created makes its first container the root
	}
	reg, err := chain.OpenRegistry(cfg)
	if err == nil {
		err = reg.Update(c.inject.AID, func(ch *vresource.Chain) error {
			if ch.RootPid == 0 {
				ch.RootPid = pause
			}
			return nil
		})
	}
	if err != nil {
		log.L.WithError(err).Warnf("vrid: pod chain %s: the pause process %d is not its root", c.inject.AID, pause)
	}
}

// prepare registers or joins the container's chain and rewrites its spec.
// undo releases what it registered and only this container holds: a
// pod's chain, which others may join once prepare returns, is left to
// the pod's sandbox.
func prepare(cfg *config.Config, id, bundle string, spec *specs.Spec) (_ *container, undo func(), err error) {
	k, err := tools(cfg)
	if err != nil {
		return nil, nil, err
	}
	reg := k.reg
	p, err := chainFor(cfg, reg, id, spec)
	if err != nil {
		return nil, nil, err
	}
	ch := p.ch
	undo = func() {}
	release := undo // what a failing return undoes
	switch {
	case p.owned:
		ns := oci.IPCNamespaceOf(spec)
		undo = func() { _ = hooks.Teardown(cfg, reg, ch, ns) }
		release = undo
	case p.made:
		// No process is in it yet, nor any other container (prepMu).
		release = func() { _ = chain.Forget(cfg, reg, ch) }
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	// The table file is bind-mounted into the container: it must exist
	// before runc creates it.
	if p.made {
		err = chain.CreateTables(cfg, ch, 0o666) // any user in the container; state_dir keeps others out
	} else {
		err = chain.CheckTables(cfg, ch)
	}
	if err != nil {
		return nil, nil, err
	}
	in := k.injection(cfg, ch.AID, p.owned)
	if err := oci.Apply(spec, in); err != nil {
		return nil, nil, err
	}
	if err := writeBundleState(bundle, bundleState{AID: ch.AID, Owned: p.owned, Pod: p.pod, Config: cfg.Path}); err != nil {
		return nil, nil, err
	}
	if err := oci.SaveSpec(bundle, spec); err != nil {
		return nil, nil, err
	}
	return &container{bundle: bundle, inject: in, pod: p.pod}, undo, nil
}

// place is a container's place in a chain.
type place struct {
	ch vresource.Chain
	// made: the container registered the chain, and makes its tables.
	// owned: it tears the chain down when it stops.
	made, owned bool
	// pod: the chain is the pod's of this CRI sandbox id, torn down with
	// its sandbox; "" for any other chain.
	pod string
}

// chainFor finds the chain of a container.  The annotation io.vrid.aid
// joins an existing chain by AID (all digits), or names the chain: a live
// chain of that name is joined, else a new one is registered.  Without the
// annotation, a container of a CRI pod that gets no pid namespace of its
// own is in its pod's chain (podChain); any other container registers a
// chain named after its id.  A container joins only a chain whose owner
// lets it (checkJoin).
func chainFor(cfg *config.Config, reg vresource.Registry, id string, spec *specs.Spec) (place, error) {
	m, err := memberOf(spec)
	if err != nil {
		return place{}, err
	}
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		return place{}, err
	}
	owner.Kind = OwnerKind
	want, ok := spec.Annotations[oci.AnnotationAID]
	switch {
	case !ok && m.sandbox != "" && !m.pidNS.IsZero():
		return podChain(cfg, reg, id, owner, m)
	case !ok:
		return registerOwn(cfg, reg, oci.ChainName(id), owner, m)
	}
	if _, err := vresource.ParseAID(want); err == nil {
		ch, err := liveChain(reg, want, m)
		return place{ch: ch}, err
	}
	p, err := registerOwn(cfg, reg, want, owner, m)
	if errors.Is(err, vresource.ErrNameInUse) {
		ch, err := liveChain(reg, want, m)
		return place{ch: ch}, err
	}
	return p, err
}

// registerOwn registers a chain that m owns and tears down when it stops.
func registerOwn(cfg *config.Config, reg vresource.Registry, name string, owner vresource.Owner, m member) (place, error) {
	ch, err := register(cfg, reg, name, owner, m)
	return place{ch: ch, made: err == nil, owned: err == nil}, err
}

// podChain puts m in the chain of its CRI pod, which the pod's first such
// container registers and the others join: the containers of a pod that
// share a pid namespace see one another's processes, and name them by
// pid (a pid file, pidof), so they need one table to agree on those pids.
// The shim process, which serves the whole pod, owns the chain; no
// container tears it down when it stops, the pod's sandbox does when it
// is deleted (teardownPod).  A container of the pod in another pid
// namespace than the chain's (a pod that mixes the host's and the pod's)
// gets a chain of its own, as it would outside a pod.
func podChain(cfg *config.Config, reg vresource.Registry, id string, owner vresource.Owner, m member) (place, error) {
	name := oci.PodChainName(m.sandbox)
	ch, err := register(cfg, reg, name, owner, m)
	if err == nil {
		return place{ch: ch, made: true, pod: m.sandbox}, nil
	}
	if !errors.Is(err, vresource.ErrNameInUse) {
		return place{}, err
	}
	if ch, err = reg.Get(name); err != nil {
		return place{}, fmt.Errorf("pod chain %s: %w", name, err)
	}
	if f := ch.Facts; f.Sandbox == m.sandbox && !f.PIDNS.IsZero() && f.PIDNS != m.pidNS {
		return registerOwn(cfg, reg, oci.ChainName(id), owner, m)
	}
	if ch.Stale {
		return place{}, fmt.Errorf("pod chain %s (AID %d) is stale: its owner (pid %d) is gone", name, ch.AID, ch.Owner.Pid)
	}
	if err := checkJoin(ch, m); err != nil {
		return place{}, fmt.Errorf("pod chain: %w", err)
	}
	return place{ch: ch, pod: m.sandbox}, nil
}

// register registers the chain m owns, with who may join it, in one
// write: nobody sees the chain before its facts.
func register(cfg *config.Config, reg vresource.Registry, name string, owner vresource.Owner, m member) (vresource.Chain, error) {
	var facts vresource.Facts
	m.record(&facts)
	return chain.Register(cfg, reg, name, owner, facts)
}

// liveChain finds the running chain m asks to join, and checks that it
// may.
func liveChain(reg vresource.Registry, nameOrAID string, m member) (vresource.Chain, error) {
	ch, err := reg.Get(nameOrAID)
	if err != nil {
		return ch, fmt.Errorf("annotation %s=%s: %w", oci.AnnotationAID, nameOrAID, err)
	}
	if ch.Stale {
		return ch, fmt.Errorf("annotation %s=%s: chain %s is stale: its owner (pid %d) is gone",
			oci.AnnotationAID, nameOrAID, ch.AID, ch.Owner.Pid)
	}
	if err := checkJoin(ch, m); err != nil {
		return ch, fmt.Errorf("annotation %s=%s: %w", oci.AnnotationAID, nameOrAID, err)
	}
	return ch, nil
}

// kit is what preparing a container takes: the library and the hook its
// spec gets, and the registry.
type kit struct {
	library, hook string
	reg           vresource.Registry
}

func tools(cfg *config.Config) (k kit, err error) {
	if k.library, err = cfg.LibraryPath(); err != nil {
		return k, err
	}
	if k.hook, err = cfg.HookPath(); err != nil {
		return k, err
	}
	k.reg, err = chain.OpenRegistry(cfg)
	return k, err
}

// injection puts a container in chain aid; owned: it tears the chain down.
func (k kit) injection(cfg *config.Config, aid vresource.AID, owned bool) oci.Injection {
	return oci.Injection{
		AID:        aid,
		Library:    k.library,
		Tables:     chain.TablePath(cfg.StateDir, aid),
		LogLevel:   cfg.LogLevel,
		Hook:       k.hook,
		ConfigPath: cfg.Path,
		Poststop:   owned,
	}
}

// Exec runs an exec'd process in the container's chain.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	c := s.containers[r.ID]
	s.mu.Unlock()
	if c == nil || r.Spec == nil {
		return s.TTRPCTaskService.Exec(ctx, r)
	}
	var p specs.Process
	if err := json.Unmarshal(r.Spec.Value, &p); err != nil {
		return nil, fmt.Errorf("vrid: exec %s in %s: process spec: %w", r.ExecID, r.ID, err)
	}
	oci.ApplyProcess(&p, c.inject)
	value, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("vrid: exec %s in %s: process spec: %w", r.ExecID, r.ID, err)
	}
	runcReq := proto.Clone(r).(*taskAPI.ExecProcessRequest)
	runcReq.Spec = &anypb.Any{TypeUrl: r.Spec.TypeUrl, Value: value}
	return s.TTRPCTaskService.Exec(ctx, runcReq)
}

// Delete deletes a process; for the container's init process, it then
// makes sure that the chain is gone, which the poststop hook should have
// seen to; for a pod's sandbox, it tears the pod's chain down.
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil || r.ExecID != "" {
		return resp, err
	}
	s.mu.Lock()
	c := s.containers[r.ID]
	delete(s.containers, r.ID)
	sb, isSandbox := s.sandboxes[r.ID]
	delete(s.sandboxes, r.ID)
	s.mu.Unlock()
	if isSandbox {
		if err := cleanupBundle(sb.bundle); err != nil {
			log.G(ctx).WithError(err).Warnf("vrid: pod sandbox %s: its chain left behind", r.ID)
		}
	}
	if c != nil {
		if c.restore != nil { // created from a checkpoint, never started
			_ = c.restore.Undo()
		}
		if err := cleanupBundle(c.bundle); err != nil {
			log.G(ctx).WithError(err).Warnf("vrid: container %s: chain %s left behind", r.ID, c.inject.AID)
		}
	}
	return resp, nil
}

// useCRIU puts the configured criu first on the shim's PATH, where runc
// looks for it when containerd checkpoints or restores a task.
func useCRIU(cfg *config.Config) error {
	criu := snapshot.CRIUPath(cfg)
	if criu == "" {
		return nil
	}
	if filepath.Base(criu) != "criu" {
		return fmt.Errorf("criu = %q: runc runs the binary named criu on PATH; name the file criu", criu)
	}
	if _, err := os.Stat(criu); err != nil {
		return fmt.Errorf("criu = %q: %w", criu, err)
	}
	dir := filepath.Dir(criu)
	if path := os.Getenv("PATH"); !strings.HasPrefix(path, dir+":") {
		return os.Setenv("PATH", dir+":"+path)
	}
	return nil
}
