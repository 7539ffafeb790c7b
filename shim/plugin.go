package shim

import (
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task"
	cshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
)

// RegisterPlugin registers the shim's task service as the ttrpc plugin
// "task", which cshim.RunShim serves: runc's task service, wrapped.  It
// takes the place of runc's own task plugin, which must not be linked in.
func RegisterPlugin() {
	registry.Register(&plugin.Registration{
		Type: plugins.TTRPCPlugin,
		ID:   "task",
		Requires: []plugin.Type{
			plugins.EventPlugin,
			plugins.InternalPlugin,
		},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			publisher, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			sd, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			runc, err := task.NewTaskService(ic.Context, publisher.(cshim.Publisher), sd.(shutdown.Service))
			if err != nil {
				return nil, err
			}
			return NewService(runc), nil
		},
	})
}
