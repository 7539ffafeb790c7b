package shim

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vrid/vrid/quiesce"
	"github.com/vrid/vrid/snapshot"
)

// errJoined: the container joins a chain it does not own.
var errJoined = errors.New("the container joins a chain it does not own")

// quiesceTimeout bounds each wait of the quiesce protocol.
const quiesceTimeout = 10 * time.Second

// Checkpoint checkpoints a task.  For a container that owns its chain,
// or is in its pod's, vrid's state goes into the checkpoint directory beside CRIU's images
// (snapshot.SaveContainer), and runc dumps from the container's IPC
// namespace (ns.go).  containerd's clients pause the task first; the
// processes with System V shm attached are thawed to detach it (package
// quiesce), frozen again for the save and the dump, and, when the task
// goes on running, attach it again.  The task ends in the state it came
// in.  A failed checkpoint leaves the container as it was, and the
// directory without vrid's files.
func (s *Service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	c := s.containers[r.ID]
	s.mu.Unlock()
	if c == nil {
		return s.TTRPCTaskService.Checkpoint(ctx, r)
	}
	if err := s.checkpoint(ctx, c, r); err != nil {
		return nil, fmt.Errorf("vrid: checkpoint %s: %w", r.ID, err)
	}
	return &emptypb.Empty{}, nil
}

func (s *Service) checkpoint(ctx context.Context, c *container, r *taskAPI.CheckpointTaskRequest) (err error) {
	st, err := readBundleState(c.bundle)
	if err != nil {
		return err
	}
	// A pod's chain is the one application of the pod's shared pid
	// namespace: its checkpoint holds the whole chain's tables and
	// objects, of which a restore in a shared pid namespace keeps the
	// pids of the restored processes alone.
	if st == nil || !st.Owned && st.Pod == "" {
		return fmt.Errorf("%w (AID %s): checkpoint the container that owns it, with the others stopped", errJoined, c.inject.AID)
	}
	cfg, _, ch, err := st.chain()
	if err != nil {
		return err
	}
	runcReq, exit, err := runcCheckpoint(r)
	if err != nil {
		return err
	}
	version, err := criuVersion(snapshot.CRIUPath(cfg))
	if err != nil {
		return err
	}
	state, err := s.TTRPCTaskService.State(ctx, &taskAPI.StateRequest{ID: r.ID})
	if err != nil {
		return err
	}
	paused := state.Status == tasktypes.Status_PAUSED
	t := &pausable{s: s, id: r.ID, clientPaused: paused, frozen: paused}
	defer func() {
		if err != nil || !exit {
			err = errors.Join(err, t.back(ctx))
		}
	}()
	if err := t.thaw(ctx); err != nil {
		return err
	}
	procs, err := s.TTRPCTaskService.Pids(ctx, &taskAPI.PidsRequest{ID: r.ID})
	if err != nil {
		return err
	}
	var pids []int
	for _, p := range procs.Processes {
		pids = append(pids, int(p.Pid))
	}
	if t.detached, err = quiesce.Detach(pids, quiesceTimeout); err != nil {
		return err
	}
	if err := t.freeze(ctx); err != nil {
		return err
	}
	members, err := s.members(ctx, r.ID)
	if err != nil {
		return err
	}
	var inNS []quiesce.Process
	for _, p := range t.detached {
		nsPid, err := nsPidOf(p.Pid)
		if err != nil {
			return err
		}
		inNS = append(inNS, quiesce.Process{Pid: int(nsPid), SysV: p.SysV})
	}
	logger := log.G(ctx).WithField("aid", ch.AID)
	var saved *snapshot.Saved
	err = onThread(joinIPC(fmt.Sprintf("/proc/%d/ns/ipc", state.Pid), ch.Facts.IPCNS), func() error {
		var err error
		if saved, err = snapshot.SaveContainer(cfg, ch, r.Path, inNS, members, version, logger); err != nil {
			return err
		}
		_, err = s.TTRPCTaskService.Checkpoint(ctx, runcReq)
		return err
	})
	if err == nil {
		err = saved.Finish()
	}
	if err != nil {
		if saved != nil {
			saved.Discard()
		}
		return err
	}
	logger.Infof("vrid: container %s: chain %s checkpointed to %s", r.ID, ch.AID, r.Path)
	return nil
}

// members are the processes of task id, by the pids of its pid namespace
// that its tables hold (read once it is frozen, so that none is missed).
func (s *Service) members(ctx context.Context, id string) (snapshot.Members, error) {
	procs, err := s.TTRPCTaskService.Pids(ctx, &taskAPI.PidsRequest{ID: id})
	if err != nil {
		return nil, err
	}
	m := snapshot.Members{}
	for _, p := range procs.Processes {
		nsPid, err := nsPidOf(int(p.Pid))
		if errors.Is(err, fs.ErrNotExist) {
			continue // reaped: the kernel applied its undo list
		}
		if err != nil {
			return nil, fmt.Errorf("pid of %d in its pid namespace: %w", p.Pid, err)
		}
		m[nsPid] = int(p.Pid)
	}
	return m, nil
}

// runcCheckpoint is the request runc's task service gets: with file
// locks, since the layer's writer lock is an OFD lock that a frozen
// process may hold.  exit: the client asked the task to end.
func runcCheckpoint(r *taskAPI.CheckpointTaskRequest) (_ *taskAPI.CheckpointTaskRequest, exit bool, err error) {
	var opts runcoptions.CheckpointOptions
	if r.Options != nil {
		if err := typeurl.UnmarshalTo(r.Options, &opts); err != nil {
			return nil, false, fmt.Errorf("checkpoint options: %w", err)
		}
	}
	opts.FileLocks = true
	req := proto.Clone(r).(*taskAPI.CheckpointTaskRequest)
	// containerd's type URL, which runc's service checks.
	if req.Options, err = typeurl.MarshalAnyToProto(&opts); err != nil {
		return nil, false, err
	}
	return req, opts.Exit, nil
}

// pausable is a task a checkpoint thaws and freezes, and the state to give it
// back in.
type pausable struct {
	s            *Service
	id           string
	clientPaused bool              // as the client left it
	frozen       bool              // now
	detached     []quiesce.Process // System V shm detached
}

func (t *pausable) thaw(ctx context.Context) error {
	if !t.frozen {
		return nil
	}
	if _, err := t.s.TTRPCTaskService.Resume(ctx, &taskAPI.ResumeRequest{ID: t.id}); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	t.frozen = false
	return nil
}

func (t *pausable) freeze(ctx context.Context) error {
	if t.frozen {
		return nil
	}
	if _, err := t.s.TTRPCTaskService.Pause(ctx, &taskAPI.PauseRequest{ID: t.id}); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	t.frozen = true
	return nil
}

// back gives the task back running with its shm attached, and paused
// again if the client had paused it.
func (t *pausable) back(ctx context.Context) error {
	if err := t.thaw(ctx); err != nil {
		return err
	}
	if len(t.detached) > 0 {
		if err := quiesce.Attach(t.detached, quiesceTimeout); err != nil {
			return err
		}
		t.detached = nil
	}
	if t.clientPaused {
		return t.freeze(ctx)
	}
	return nil
}
