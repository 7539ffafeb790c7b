package shim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// RuntimeName is the runtime type containerd knows the shim by.
const RuntimeName = "io.containerd.vrid.v1"

// Manager is runc's shim manager (shim start, shim delete, shim -info),
// with runtime options translated for runc and the chain of a container,
// or of a pod for its sandbox, torn down by `shim delete`.
type Manager struct {
	cshim.Shim // runc's
}

// NewManager wraps runc's shim manager.
func NewManager() Manager {
	return Manager{Shim: manager.NewShimManager(RuntimeName)}
}

// Stop is `shim delete`: containerd runs it for a container whose shim is
// gone, or after a failed create.
func (m Manager) Stop(ctx context.Context, id string) (cshim.StopStatus, error) {
	status, err := m.Shim.Stop(ctx, id)
	if err != nil {
		return status, err
	}
	// runc's manager finds the bundle the same way.
	cwd, err := os.Getwd()
	if err != nil {
		return status, err
	}
	if err := cleanupBundle(filepath.Join(filepath.Dir(cwd), id)); err != nil {
		log.G(ctx).WithError(err).Warnf("vrid: container %s: chain left behind", id)
	}
	return status, nil
}

// Info is `shim -info`, which CRI runs for the features of a runtime: the
// runtime options on stdin become what runc's manager understands.
func (m Manager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, err
	}
	var runcOpts []byte
	if len(data) > 0 {
		var a anypb.Any
		if err := proto.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("runtime options: %w", err)
		}
		opts, err := parseOptions(&a, "")
		if err != nil {
			return nil, err
		}
		cfg, err := opts.loadConfig()
		if err != nil {
			return nil, err
		}
		runc, err := opts.runcOptions(cfg)
		if err != nil {
			return nil, err
		}
		if runc != nil {
			if runcOpts, err = proto.Marshal(runc); err != nil {
				return nil, err
			}
		}
	}
	return m.Shim.Info(ctx, bytes.NewReader(runcOpts))
}
