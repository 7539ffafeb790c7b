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
}

// container is one container the shim put in a chain.
type container struct {
	bundle string
	inject oci.Injection
	cfg    *config.Config
	// restore is the restore a task created from a checkpoint makes at
	// its Start, and release forgets its chain if it fails (restore.go).
	restore *snapshot.ContainerRestore
	release func()
}

// NewService wraps runc's task service.
func NewService(runc taskAPI.TTRPCTaskService) *Service {
	return &Service{TTRPCTaskService: runc, containers: map[string]*container{}}
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
		return s.TTRPCTaskService.Create(ctx, runcReq)
	}
	prep := prepare
	if r.Checkpoint != "" {
		prep = prepareRestore(r.Checkpoint)
	}
	c, undo, err := prep(cfg, r.ID, r.Bundle, spec)
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
// the pod's namespaces: it stays out of any chain.
const (
	annotationCRIContainerType = "io.kubernetes.cri.container-type"
	criSandbox                 = "sandbox"
)

// prepare registers or joins the container's chain and rewrites its spec.
// undo releases what it registered.
func prepare(cfg *config.Config, id, bundle string, spec *specs.Spec) (_ *container, undo func(), err error) {
	k, err := tools(cfg)
	if err != nil {
		return nil, nil, err
	}
	reg := k.reg
	ch, owned, err := chainFor(cfg, reg, id, spec)
	if err != nil {
		return nil, nil, err
	}
	undo = func() {}
	if owned {
		ns := oci.IPCNamespaceOf(spec)
		undo = func() { _ = hooks.Teardown(cfg, reg, ch, ns) }
	}
	release := undo // a failing return sets undo to nil
	defer func() {
		if err != nil {
			release()
		}
	}()
	// The table file is bind-mounted into the container: it must exist
	// before runc creates it.
	if owned {
		err = chain.CreateTables(cfg, ch, 0o666) // any user in the container; state_dir keeps others out
	} else {
		err = chain.CheckTables(cfg, ch)
	}
	if err != nil {
		return nil, nil, err
	}
	in := k.injection(cfg, ch.AID, owned)
	if err := oci.Apply(spec, in); err != nil {
		return nil, nil, err
	}
	if err := writeBundleState(bundle, bundleState{AID: ch.AID, Owned: owned, Config: cfg.Path}); err != nil {
		return nil, nil, err
	}
	if err := oci.SaveSpec(bundle, spec); err != nil {
		return nil, nil, err
	}
	return &container{bundle: bundle, inject: in}, undo, nil
}

// chainFor finds the chain of a container.  The annotation io.vrid.aid
// joins an existing chain by AID (all digits), or names the chain: a live
// chain of that name is joined, else a new one is registered.  Without the
// annotation the container registers a chain named after its id.  owned:
// the chain is the container's, to tear down when it stops.  A container
// joins only a chain whose owner lets it (checkJoin).
func chainFor(cfg *config.Config, reg vresource.Registry, id string, spec *specs.Spec) (ch vresource.Chain, owned bool, err error) {
	m, err := memberOf(spec)
	if err != nil {
		return ch, false, err
	}
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		return ch, false, err
	}
	owner.Kind = OwnerKind
	want, ok := spec.Annotations[oci.AnnotationAID]
	if !ok {
		ch, err = register(cfg, reg, oci.ChainName(id), owner, m)
		return ch, err == nil, err
	}
	if _, err := vresource.ParseAID(want); err == nil {
		ch, err = liveChain(reg, want, m)
		return ch, false, err
	}
	ch, err = register(cfg, reg, want, owner, m)
	if errors.Is(err, vresource.ErrNameInUse) {
		ch, err = liveChain(reg, want, m)
		return ch, false, err
	}
	return ch, err == nil, err
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
// seen to.
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if err != nil || r.ExecID != "" {
		return resp, err
	}
	s.mu.Lock()
	c := s.containers[r.ID]
	delete(s.containers, r.ID)
	s.mu.Unlock()
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
