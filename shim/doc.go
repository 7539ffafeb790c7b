// Package shim is the containerd runtime io.containerd.vrid.v1
// (cmd/containerd-shim-vrid-v1): containerd's own runc shim, used as a
// library, with every container in an application chain.  The shim
// manager (shim start, shim delete, shim -info) is runc's, wrapped by
// Manager; the task service is runc's, wrapped by Service, which changes
// these calls:
//
//   - Create registers the container's chain (owner: the shim process,
//     kind "containerd"), rewrites the bundle's config.json with package
//     oci (libvrid.so read-only at /dev/.vrid/lib/libvrid.so, the chain's
//     table file alone at /dev/.vrid/chain/tables, LD_PRELOAD and VRID_* in
//     the process's environment, vrid-hook as poststop hook), notes the
//     chain in <bundle>/vrid.json and lets runc create the container.
//     While runc init waits for the start, the shim records what the
//     kernel says of it (hooks.Created: root pid, namespaces, cgroup,
//     uids).  If anything fails the chain is released and the error names
//     the cause.
//   - Exec gives an exec'd process the same environment, so it joins the
//     chain.
//   - Delete of the init process makes sure that the chain is gone; the
//     poststop hook has normally torn it down already.  Delete of a CRI
//     pod's sandbox tears the pod's chain down.  `shim delete`
//     (Manager.Stop), run when the shim itself died, does the same.
//   - Checkpoint saves the chain's state into the checkpoint directory
//     beside CRIU's images, and a task created from a checkpoint gets a
//     new chain made from it, restored at Start (docs/restore.md,
//     "Containers").
//
// # Which chain
//
// The annotation io.vrid.aid (oci.AnnotationAID) picks the chain:
//
//   - all digits: the existing chain of that AID, which must be live.  The
//     container joins it and does not own it.  (A name "aid-N" cannot be
//     asked for: the registry keeps those names for the chain of AID N.)
//   - a name: a new chain of that name, owned by the container; or, if a
//     live chain has the name, that chain, joined.
//   - no annotation, a CRI container (io.kubernetes.cri.sandbox-id) that
//     gets no pid namespace of its own (CRI namespace_options pid POD,
//     shareProcessNamespace; or NODE, hostPID): its pod's chain,
//     "pod-<sandbox id>" cut to 63 bytes, registered by the pod's first
//     such container and joined by the others.  A chain is the processes
//     that can name each other by pid: containers that see one another's
//     processes pass pids around (a pid file one writes and another
//     signals, pidof), and only one table gives them the same pids.  A
//     container of the pod in another pid namespace than the chain's (a
//     pod that mixes the two modes) gets a chain of its own.
//   - no annotation otherwise (CRI pid CONTAINER, Kubernetes' default;
//     ctr): a new chain named after the container id (cut to 63 bytes,
//     "ctr-" before an all-digit id), owned by the container.
//
// A container joins a chain only if its owner allows it (checkJoin): both
// are in one CRI pod sandbox (io.kubernetes.cri.sandbox-id), or the owner
// has the annotation io.vrid.joinable=true.  Both must also live in one
// pid namespace.  The owner's chain records these facts in the registry
// when it registers; a new pid namespace, unknown until runc makes it, is
// recorded by hooks.Created once runc made it, which holds every later container of
// the chain to it.  Any other join fails at create and leaves nothing.
//
// A container that owns its chain tears it down when it stops (poststop
// hook, then Delete).  A joining container leaves the chain alone; its
// System V objects go with the owner's teardown, in the owner's IPC
// namespace, so join chains only within one IPC namespace (a pod's).
//
// A pod's chain belongs to the pod, not to a container: the shim process
// (one serves the whole pod) owns it, no container tears it down when it
// stops, and Delete of the pod's sandbox task (or `shim delete` of it)
// does, once none of its containers' cgroups holds a process.  Tearing it
// down with its last member instead would race a container of the pod
// being created, in another process (the poststop hook), and would end
// the System V objects that under runc outlive a container restart in the
// pod's IPC namespace.  By then the pause process has ended, and with it
// the pod's pid namespace: the chain's objects are removed in the host's
// IPC namespace when it is the chain's (hostIPC), else the pod's IPC
// namespace, with no process left to enter it through, is gone with
// them, and the chain is only forgotten.  If members still run (a hostPID
// container whose task outlives the sandbox's), the chain stays, and
// `vrid gc` collects it once they are gone and the shim has exited, as it
// does any chain of a dead shim.  The sandbox (pause) container stays out
// of any chain; its pause process is the pod chain's root (vrid ps reads
// the chain's pids through its pid namespace), since it outlives every
// member.
//
// # How containerd passes options (verified in containerd v2.4.2)
//
// The container's runtime options (containers.RuntimeInfo.Options) reach
// the shim in three places, as a protobuf Any: as an extension of the
// bootstrap parameters on the stdin of `shim start` (core/runtime/v2
// command.go, BootstrapParams.AddExtension); alone on the stdin of `shim
// -info`, which CRI runs at startup for each handler's features
// (internal/cri/server/service.go introspectRuntimeFeatures); and as
// CreateTaskRequest.Options, unless the client gave task options
// (core/runtime/v2 shim.go: TaskOptions win over RuntimeOptions).
//
//   - ctr run --runtime io.containerd.vrid.v1 --runtime-config-path FILE
//     sends runtimeoptions.v1.Options{ConfigPath: FILE}
//     (cmd/ctr/commands/commands_unix.go RuntimeOptions); ctr refuses
//     --runc-binary and --runc-systemd-cgroup for any runtime but
//     io.containerd.runc.v2, and ignores --runc-root for it.  Without
//     --runtime-config-path no options are sent.  Plain ctr sets no task
//     options.
//   - CRI, [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.vrid]
//     with runtime_type = "io.containerd.vrid.v1": the options table is
//     decoded into runtimeoptions.v1.Options, since only runc and runhcs
//     types get their own (internal/cri/config/config.go
//     GenerateRuntimeOptions).  options.ConfigPath gives ConfigPath; without
//     it ConfigBody holds the whole options table as TOML; any other key is
//     lost.  CRI's task options (WithTaskAPIEndpoint, io owner) only touch
//     runc options, which fail to decode from runtimeoptions, so the task
//     gets the runtime options.
//   - containerd has no runtime table outside CRI: ctr resolves
//     io.containerd.vrid.v1 to the binary containerd-shim-vrid-v1 on
//     containerd's PATH or beside the containerd binary.  A CRI runtime with
//     runtime_type = "io.containerd.runc.v2" and runtime_path pointing at
//     this shim sends runc options instead.
//
// The shim therefore takes both kinds.  runtimeoptions name vrid's
// config.toml: ConfigPath, or ConfigBody written to <bundle>/vrid-config.toml
// (so a CRI options table may hold config.toml's keys directly); runc's
// task service then gets no options and runs `runc` from the shim's PATH
// (which is containerd's) with runc's default root, unless config.toml's
// [runc] names them.  runc options go to runc's task service as they are
// (BinaryName, Root, SystemdCgroup...), with [runc]'s binary and root
// where they name none (a client's task options often do not), and
// vrid's config comes from $VRID_CONFIG, else /etc/vrid/config.toml, else
// the defaults.  containerd hands its environment to the shim, so
// $VRID_CONFIG in containerd's environment works in every case.  `shim
// -info` gets the same translation, so runc's manager never sees options
// it cannot decode.  The hooks get the config's path on their command
// line.
//
// # Known limits
//
//   - The tables hold the ids of the container's namespaces: inside its pid
//     namespace, its pid 1 is system pid 1.  Tools on the host that read
//     the tables (vrid ps) must translate through the namespace of the
//     chain's root_pid, which hooks.Created records.
//   - The tables file is world-writable (0666) so that every user of the
//     container, in whatever user namespace, can map it; state_dir keeps
//     host users out.
//   - Static binaries (the pause image) are not translated: the layer is a
//     preload library.
//   - A checkpoint of a container in its pod's chain holds the whole
//     chain's tables and System V objects, its pod mates' too; its
//     restore gets a chain of its own, not the pod's (docs/restore.md).
package shim
