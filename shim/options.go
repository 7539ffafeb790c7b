package shim

import (
	"errors"
	"fmt"
	"path/filepath"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
)

// ConfigBodyFile is where the shim writes a config.toml that containerd
// passed inline (runtimeoptions ConfigBody), in the container's bundle,
// for itself and for the hooks.
const ConfigBodyFile = "vrid-config.toml"

// options is what the shim takes from the runtime options of a task.
type options struct {
	// ConfigPath is vrid's config.toml; "" for $VRID_CONFIG, then the
	// default.
	ConfigPath string
	// Runc is what runc's task service gets as the task's options: runc
	// options, or nil for none.
	Runc *anypb.Any
}

// parseOptions reads a task's runtime options.  containerd sends runc
// options (as a client, or CRI with runtime_type io.containerd.runc.v2 and
// this shim as runtime_path): they go to runc's task service unchanged.  It
// sends runtimeoptions for any other runtime type (ctr
// --runtime-config-path, CRI options.ConfigPath or an inline options
// table): they name vrid's config, and runc's service gets no options.
func parseOptions(opts *anypb.Any, bundle string) (options, error) {
	if opts.GetValue() == nil && opts.GetTypeUrl() == "" {
		return options{}, nil
	}
	var runc runcoptions.Options
	if opts.MessageIs(&runc) {
		if err := opts.UnmarshalTo(&runc); err != nil {
			return options{}, fmt.Errorf("runc options: %w", err)
		}
		return options{Runc: opts}, nil
	}
	var rt runtimeoptions.Options
	if !opts.MessageIs(&rt) {
		return options{}, fmt.Errorf("runtime options of type %s: %w", opts.GetTypeUrl(), errUnknownOptions)
	}
	if err := opts.UnmarshalTo(&rt); err != nil {
		return options{}, fmt.Errorf("runtime options: %w", err)
	}
	switch {
	case rt.ConfigPath != "":
		return options{ConfigPath: rt.ConfigPath}, nil
	case len(rt.ConfigBody) > 0 && bundle != "":
		path := filepath.Join(bundle, ConfigBodyFile)
		if err := oci.WriteFileAtomic(path, rt.ConfigBody, 0o600); err != nil {
			return options{}, fmt.Errorf("runtime options: config body: %w", err)
		}
		return options{ConfigPath: path}, nil
	}
	return options{}, nil
}

var errUnknownOptions = errors.New("not runc options nor runtimeoptions")

// runcOptions is what runc's task service gets: containerd's runc
// options, with the binary and root of [runc] in config.toml where they
// name none; or else those of [runc] alone; or none.  A client's task
// options often name neither (the Go client's WithRestoreImagePath; CRI's
// I/O owner of a user-namespace pod), and runc's defaults would put the
// container in another state root than its pod's.
func (o options) runcOptions(cfg *config.Config) (*anypb.Any, error) {
	var runc runcoptions.Options
	if o.Runc != nil {
		if err := o.Runc.UnmarshalTo(&runc); err != nil {
			return nil, fmt.Errorf("runc options: %w", err)
		}
	}
	filled := false
	if runc.BinaryName == "" && cfg.Runc.Binary != "" {
		runc.BinaryName, filled = cfg.Runc.Binary, true
	}
	if runc.Root == "" && cfg.Runc.Root != "" {
		runc.Root, filled = cfg.Runc.Root, true
	}
	if !filled {
		return o.Runc, nil
	}
	a, err := anypb.New(&runc)
	if err != nil {
		return nil, fmt.Errorf("runc options from %s: %w", cfg.Path, err)
	}
	return a, nil
}

// loadConfig reads vrid's config.toml for a task.
func (o options) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}
