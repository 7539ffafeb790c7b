// Package oci puts the processes of an OCI container into an application
// chain: it changes the container's runtime spec so that every process
// loads the preload layer and finds its chain's tables, and so that the
// vrid-hook creates the tables and tears the chain down around the
// container's life.  Everything here is a pure function of a spec, but
// for LoadSpec and SaveSpec.
package oci

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/vresource"
)

// Paths inside the container, under the tmpfs runc mounts at /dev: runc
// makes their mount points there even when the rootfs is read-only, and
// they never reach the image.  ChainDir is an empty read-only tmpfs, and
// TablePath the chain's table file bind-mounted in it: the container
// can write the file, but can't rename, replace or unlink it, nor add
// files beside it, and nothing it does there reaches the host's chain
// directory.
const (
	LibraryPath = "/dev/.vrid/lib/libvrid.so"
	ChainDir    = "/dev/.vrid/chain"
	TablePath   = ChainDir + "/tables"
)

// AnnotationAID names the chain a container joins: an AID, or a chain name.
// AnnotationJoinable, "true" on the container that owns a chain, lets
// other containers join it (package shim says who may).
const (
	AnnotationAID      = "io.vrid.aid"
	AnnotationJoinable = "io.vrid.joinable"
)

// Injection is what puts a container's processes in a chain.
type Injection struct {
	AID      vresource.AID
	Library  string // libvrid.so on the host
	Tables   string // the chain's table file on the host (chain.TablePath)
	LogLevel string // VRID_LOG_LEVEL

	// Hook is vrid-hook on the host, and ConfigPath the config.toml it
	// reads ("" for its default).  Poststop says whether the container
	// tears the chain down when it stops: only the chain's owner does.
	Hook       string
	ConfigPath string
	Poststop   bool
}

// Env is what a process of the container needs to run in the chain.
func (in Injection) Env() []string {
	return []string{
		chain.EnvTable + "=" + TablePath,
		chain.EnvAID + "=" + in.AID.String(),
		chain.EnvLogLevel + "=" + in.LogLevel,
		chain.EnvPreload + "=" + LibraryPath,
	}
}

// StagePoststop is the stage vrid-hook runs as, its first argument after
// the flags: the one hook a container gets.  What a createRuntime hook
// would learn, the shim reads itself once runc has created the container
// (hooks.Created), which spares every start a process.
const StagePoststop = "poststop"

// HookArgs is the argument vector of vrid-hook for one stage.
func (in Injection) HookArgs(stage string) []string {
	args := []string{"vrid-hook"}
	if in.ConfigPath != "" {
		args = append(args, "--config", in.ConfigPath)
	}
	return append(args, stage, "--aid", in.AID.String())
}

// Apply changes spec so that the container runs in the chain: the mounts
// of the library and the table file, the environment of its process, and
// the hooks.  Applying it twice gives the spec of applying it once.
func Apply(spec *specs.Spec, in Injection) error {
	if spec.Process == nil {
		return errors.New("spec has no process")
	}
	if in.AID == 0 || in.Library == "" || in.Tables == "" || in.Hook == "" {
		return fmt.Errorf("incomplete injection %+v", in)
	}
	if err := devIsTmpfs(spec); err != nil {
		return err
	}
	spec.Mounts = setMount(spec.Mounts, specs.Mount{
		Destination: LibraryPath,
		Type:        "bind",
		Source:      in.Library,
		Options:     []string{"rbind", "ro", "nosuid", "nodev"},
	})
	// runc mounts a read-only tmpfs read-write, makes the mount points
	// of later mounts in it, and remounts it read-only once the rootfs is
	// complete: the file's mount stays read-write.
	spec.Mounts = setMount(spec.Mounts, specs.Mount{
		Destination: ChainDir,
		Type:        "tmpfs",
		Source:      "tmpfs",
		Options:     []string{"ro", "nosuid", "nodev", "noexec", "size=4k", "nr_inodes=4", "mode=755"},
	})
	spec.Mounts = setMount(spec.Mounts, specs.Mount{
		Destination: TablePath,
		Type:        "bind",
		Source:      in.Tables,
		Options:     []string{"bind", "rw", "nosuid", "nodev", "noexec"},
	})
	ApplyProcess(spec.Process, in)
	if in.Poststop {
		if spec.Hooks == nil {
			spec.Hooks = &specs.Hooks{}
		}
		spec.Hooks.Poststop = setHook(spec.Hooks.Poststop, specs.Hook{Path: in.Hook, Args: in.HookArgs(StagePoststop)})
	}
	return nil
}

// devIsTmpfs refuses a spec whose /dev is not a tmpfs of the container's
// own: runc would make vrid's mount points in whatever /dev is, and in a
// bind mount of the host's /dev they would land on the host.
func devIsTmpfs(spec *specs.Spec) error {
	i := slices.IndexFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev" })
	if i < 0 || spec.Mounts[i].Type != "tmpfs" {
		return errors.New("the container's /dev is not a tmpfs of its own (a bind mount of the host's /dev?): " +
			"vrid mounts its library and table under /dev/.vrid; run this container under io.containerd.runc.v2")
	}
	return nil
}

// ApplyProcess puts one process, the container's own or an exec'd one, in
// the chain.  A process already in it stays as it is.
func ApplyProcess(p *specs.Process, in Injection) {
	p.Env = chain.MergeEnv(withoutLibrary(p.Env), in.Env())
}

// withoutLibrary drops our library from LD_PRELOAD, where MergeEnv would
// add it a second time.
func withoutLibrary(env []string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		v, ok := strings.CutPrefix(kv, chain.EnvPreload+"=")
		if !ok {
			continue
		}
		libs := slices.DeleteFunc(strings.Fields(v), func(lib string) bool { return lib == LibraryPath })
		out[i] = chain.EnvPreload + "=" + strings.Join(libs, " ")
	}
	return out
}

// setMount replaces the mount at m's destination, or appends m.
func setMount(mounts []specs.Mount, m specs.Mount) []specs.Mount {
	i := slices.IndexFunc(mounts, func(old specs.Mount) bool { return old.Destination == m.Destination })
	if i < 0 {
		return append(mounts, m)
	}
	mounts[i] = m
	return mounts
}

// setHook replaces the vrid-hook call of the same stage, or appends h.
func setHook(hooks []specs.Hook, h specs.Hook) []specs.Hook {
	i := slices.IndexFunc(hooks, func(old specs.Hook) bool {
		return old.Path == h.Path && slices.Equal(hookStage(old.Args), hookStage(h.Args))
	})
	if i < 0 {
		return append(hooks, h)
	}
	hooks[i] = h
	return hooks
}

// hookStage is a vrid-hook argument vector from its stage on.
func hookStage(args []string) []string {
	i := slices.IndexFunc(args, func(a string) bool { return a == StagePoststop })
	if i < 0 {
		return nil
	}
	return args[i : i+1]
}

// IPCNamespace says where a container's System V objects live, seen from
// the runtime's namespaces: the zero value is the runtime's own namespace.
type IPCNamespace struct {
	Private bool   // a new namespace, gone with the container's last process
	Path    string // a namespace the container joins, as /proc/<pid>/ns/ipc
}

func (ns IPCNamespace) String() string {
	switch {
	case ns.Private:
		return "private"
	case ns.Path != "":
		return ns.Path
	}
	return "host"
}

// IPCNamespaceOf reads the IPC namespace of a spec.
func IPCNamespaceOf(spec *specs.Spec) IPCNamespace {
	if spec.Linux == nil {
		return IPCNamespace{}
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.IPCNamespace {
			return IPCNamespace{Private: ns.Path == "", Path: ns.Path}
		}
	}
	return IPCNamespace{}
}

// ChainName is the chain name of a container without an io.vrid.aid
// annotation: its id, cut to the length a chain name may have, and kept
// apart from AIDs when it is all digits.
func ChainName(containerID string) string {
	name := containerID
	if strings.Trim(name, "0123456789") == "" {
		name = "ctr-" + name
	}
	return cutName(name)
}

// PodChainName is the chain name of the containers of a CRI pod that
// share a pid namespace (package shim, "Which chain"): its sandbox id,
// cut to the length a chain name may have.
func PodChainName(sandboxID string) string {
	return cutName("pod-" + sandboxID)
}

func cutName(name string) string {
	if len(name) >= vresource.TableNameMax {
		name = name[:vresource.TableNameMax-1]
	}
	return name
}
