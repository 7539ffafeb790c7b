package shim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/snapshot"
	"github.com/vrid/vrid/vresource"
)

// A task created from a checkpoint (CreateTaskRequest.Checkpoint, which
// `ctr container restore --live` and the Go client's WithTaskCheckpoint
// send) gets a new chain made from the checkpoint's vrid state: Create
// registers it, with a fresh AID, and makes its tables from tables.img;
// runc's Create only notes the images to restore from, a work copy.  At
// Start, on a thread in the IPC namespace the container is restored into
// (its spec's, or a new one for a private namespace), the chain's System V
// objects are made afresh, the work copy is written (onto free pids in a
// shared pid namespace), and runc restores; then the processes attach
// their shm again.  A failed restore removes what it made and leaves the
// checkpoint as it was; the chain of the checkpointed container is never
// touched.

// annotationCRIUConfig names the CRIU configuration file runc hands CRIU.
const annotationCRIUConfig = "org.criu.config"

// Files of a restored container's bundle: the CRIU configuration, and
// the action script it names.
const (
	criuConfigFile = "vrid-criu.conf"
	criuScriptFile = "vrid-criu-script"
)

// prepareRestore is prepare for a task created from the checkpoint in
// image: a new chain, owned by the container, made from the checkpoint.
func prepareRestore(image string) func(*config.Config, string, string, *specs.Spec) (*container, func(), error) {
	return func(cfg *config.Config, id, bundle string, spec *specs.Spec) (_ *container, undo func(), err error) {
		m, err := snapshot.CheckContainer(cfg, image)
		if err != nil {
			return nil, nil, err
		}
		k, err := tools(cfg)
		if err != nil {
			return nil, nil, err
		}
		reg := k.reg
		name, err := restoredName(id, spec)
		if err != nil {
			return nil, nil, err
		}
		mem, err := memberOf(spec)
		if err != nil {
			return nil, nil, err
		}
		owner, err := vresource.OwnerOf(os.Getpid())
		if err != nil {
			return nil, nil, err
		}
		owner.Kind = OwnerKind
		ch, err := register(cfg, reg, name, owner, mem)
		if errors.Is(err, vresource.ErrNameInUse) {
			err = fmt.Errorf("%w: a restored container gets a chain of its own; stop the chain %q first, or restore under another container id", err, name)
		}
		if err != nil {
			return nil, nil, err
		}
		// Nothing of the restore is in any IPC namespace yet.
		undo = func() { _ = chain.Forget(cfg, reg, ch) }
		defer func() {
			if err != nil {
				undo()
			}
		}()
		cr, err := snapshot.NewContainerRestore(cfg, ch, image, m)
		if err != nil {
			return nil, nil, err
		}
		defer func() {
			if err != nil {
				_ = cr.Undo()
			}
		}()
		in := k.injection(cfg, ch.AID, true)
		if err := oci.Apply(spec, in); err != nil {
			return nil, nil, err
		}
		if err := writeCRIUConfig(bundle, in, spec); err != nil {
			return nil, nil, err
		}
		if err := writeBundleState(bundle, bundleState{AID: ch.AID, Owned: true, Config: cfg.Path}); err != nil {
			return nil, nil, err
		}
		if err := oci.SaveSpec(bundle, spec); err != nil {
			return nil, nil, err
		}
		log.L.WithField("aid", ch.AID).Infof("vrid: container %s restores chain %s (AID %s) from %s", id, m.Name, m.AID, image)
		return &container{bundle: bundle, inject: in, restore: cr, release: undo}, undo, nil
	}
}

// restoredName is the name of a restored container's chain, as prepare
// names a new one.  A container that joined a chain by AID is refused: a
// checkpoint holds the chain of the container that owned it.
func restoredName(id string, spec *specs.Spec) (string, error) {
	want, ok := spec.Annotations[oci.AnnotationAID]
	if !ok {
		return oci.ChainName(id), nil
	}
	if _, err := vresource.ParseAID(want); err == nil {
		return "", fmt.Errorf("annotation %s=%s: a restored container owns a new chain; name it, or drop the annotation", oci.AnnotationAID, want)
	}
	return want, nil
}

// writeCRIUConfig writes the CRIU configuration a restored container's
// runc hands CRIU, for its restore and its later checkpoints: file locks
// (the layer's writer lock), and vrid-hook criu-script as an action
// script, which patches glibc's cached thread ids before the processes
// resume on new pids (snapshot.PatchContainerTids).  runc hands CRIU no
// notification of its own for that, and patching after runc returns
// would race the processes.  A spec that names its own file keeps it,
// and its threads keep their old cached tids.
func writeCRIUConfig(bundle string, in oci.Injection, spec *specs.Spec) error {
	if path, ok := spec.Annotations[annotationCRIUConfig]; ok {
		log.L.Warnf("vrid: annotation %s=%s kept: glibc's cached thread ids are not patched if the restore moves the container's pids", annotationCRIUConfig, path)
		return nil
	}
	args := in.HookArgs("criu-script")
	args = args[:len(args)-2] // no --aid: the script reads CRIU's environment
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	quoted[0] = "'" + strings.ReplaceAll(in.Hook, "'", `'\''`) + "'"
	script := filepath.Join(bundle, criuScriptFile)
	if err := oci.WriteFileAtomic(script, []byte("#!/bin/sh\nexec "+strings.Join(quoted, " ")+"\n"), 0o755); err != nil {
		return err
	}
	conf := filepath.Join(bundle, criuConfigFile)
	if err := oci.WriteFileAtomic(conf, []byte("file-locks\naction-script "+script+"\n"), 0o644); err != nil {
		return err
	}
	if spec.Annotations == nil {
		spec.Annotations = map[string]string{}
	}
	spec.Annotations[annotationCRIUConfig] = conf
	return nil
}

// Start starts a task; one created from a checkpoint is restored.
func (s *Service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	s.mu.Lock()
	c := s.containers[r.ID]
	s.mu.Unlock()
	if c == nil || c.restore == nil || r.ExecID != "" {
		return s.TTRPCTaskService.Start(ctx, r)
	}
	resp, err := s.startRestored(ctx, c, r)
	if err != nil {
		return nil, fmt.Errorf("vrid: restore %s: %w", r.ID, err)
	}
	return resp, nil
}

func (s *Service) startRestored(ctx context.Context, c *container, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	cr := c.restore
	c.restore = nil
	spec, err := oci.LoadSpec(c.bundle)
	if err != nil {
		c.release()
		return nil, errors.Join(err, cr.Undo())
	}
	enter := stay
	switch ns := oci.IPCNamespaceOf(spec); {
	case ns.Private:
		enter = newIPC
	case ns.Path != "":
		enter = joinIPC(ns.Path, vresource.NamespaceID{})
	}
	proc, err := pidProc(spec)
	if err != nil {
		c.release()
		return nil, errors.Join(err, cr.Undo())
	}
	var resp *taskAPI.StartResponse
	var prepared, restored time.Time
	t0 := time.Now()
	err = onThread(enter, func() error {
		err := cr.Prepare(proc)
		prepared = time.Now()
		if err == nil {
			resp, err = s.TTRPCTaskService.Start(ctx, r)
		}
		restored = time.Now()
		if err != nil {
			return errors.Join(err, cr.Undo())
		}
		return nil
	})
	if err != nil {
		c.release()
		return nil, err
	}
	err = cr.Resumed(hostPidIn(int(resp.Pid)))
	resumed := time.Now()
	if err != nil {
		_, kerr := s.TTRPCTaskService.Kill(ctx, &taskAPI.KillRequest{ID: r.ID, Signal: 9, All: true})
		return nil, errors.Join(fmt.Errorf("restored, but: %w; the task is killed", err), kerr)
	}
	// The restored processes run already: what the kernel says of them
	// now is as trustworthy as what a running container says (docs/security.md).
	saved, err := oci.LoadSpec(c.bundle)
	if err == nil {
		err = created(c.cfg, c.inject.AID, r.ID, c.bundle, saved, resp.Pid)
	}
	if err != nil {
		log.G(ctx).WithError(err).Warnf("vrid: container %s restored, but its facts are not recorded", r.ID)
	}
	// Where the restore's time went: vrid's work around runc's.
	log.G(ctx).WithFields(log.Fields{"aid": c.inject.AID, "prepare": prepared.Sub(t0), "runc": restored.Sub(prepared),
		"resumed": resumed.Sub(restored), "created": time.Since(resumed)}).Infof("vrid: container %s restored", r.ID)
	return resp, nil
}

// pidProc is a procfs of the pid namespace a restored container joins,
// where its old pids may be taken; "" when it gets a new one, where they
// are free.
func pidProc(spec *specs.Spec) (string, error) {
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.PIDNamespace {
				if ns.Path == "" {
					return "", nil
				}
				return holderProc(ns.Path)
			}
		}
	}
	return "/proc", nil // the runtime's
}
