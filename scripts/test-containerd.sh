#!/usr/bin/env bash
# A test containerd on a private socket, root and state directory, built from
# the stack that scripts/install-stack.sh installs. It never touches a system
# containerd (no /run/containerd socket, no /var/lib/containerd, no
# /etc/containerd imports, NRI off).
#
#   test-containerd.sh start   start it (idempotent), wait until it answers
#   test-containerd.sh stop    stop it, its shims and their containers; unmount
#   test-containerd.sh env     print `export ...` lines for ctr and crictl
#
# Environment: VRID_STACK (/opt/vrid-stack), VRID_CTRD_DIR
# (/run/vrid-test/containerd), VRID_SHIM_DIR (<repo>/bin, where
# containerd-shim-vrid-v1 lives; put first on containerd's PATH).
# VRID_CONFIG_PATH (the vrid config.toml of the CRI handler vrid; default:
# one written into VRID_CTRD_DIR with a private state_dir).
#
# Runtimes: CRI handler "runc" (default, io.containerd.runc.v2) and "vrid"
# (io.containerd.vrid.v1, with no options table: its shims read
# $VRID_CONFIG_PATH as VRID_CONFIG from containerd's environment; the
# same file as --runtime-config-path in ctr runs). How options reach a shim
# (containerd v2.4.2):
#  - runtime_type io.containerd.runc.v2: the options table is decoded into
#    containerd.runc.v1.Options (BinaryName, Root, SystemdCgroup, ...).
#  - any other runtime_type, so io.containerd.vrid.v1: it is decoded into
#    runtimeoptions.v1.Options {TypeUrl, ConfigPath, ConfigBody}; other keys
#    such as BinaryName are dropped. With ConfigPath set, ConfigBody is empty.
#    Without a table, no options: CRI then gives a user-namespace pod's
#    tasks runc options holding only the I/O owner, and the vrid shim adds
#    runc's binary and root from the [runc] table of its vrid config.
#  The shim sees them as a protobuf Any: alone on the stdin of `shim -info`;
#  as an extension of the BootstrapParams that containerd 2.4 writes to the
#  stdin of `shim start` (pkg/shim hands those to Manager.Start); and in
#  CreateTaskRequest.Options when the client gave no task options.
#  `ctr run --runtime io.containerd.vrid.v1 --runtime-config-path FILE`
#  sends runtimeoptions.v1.Options {ConfigPath: FILE}.
set -euo pipefail

VRID_STACK=${VRID_STACK:-/opt/vrid-stack}
DIR=${VRID_CTRD_DIR:-/run/vrid-test/containerd}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIM_DIR=${VRID_SHIM_DIR:-$REPO/bin}
# vrid's config.toml for the CRI handler "vrid"; by default one written
# into $DIR with a private state_dir.
VRID_CONFIG_PATH=${VRID_CONFIG_PATH:-$DIR/vrid-config.toml}
SOCK=$DIR/containerd.sock
PIDFILE=$DIR/containerd.pid
CTR=("$VRID_STACK/bin/ctr" --address "$SOCK")

# pids_matching REGEX: pids whose command line (spaces for NULs) matches.
pids_matching() {
	local p c
	for p in /proc/[0-9]*; do
		c=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $c =~ $1 ]] && echo "${p#/proc/}"
	done
	return 0
}

# Our containerd: the pid file's, or (pid file lost) any started with our config.
containerd_pid() {
	local pid
	pid=$(cat "$PIDFILE" 2>/dev/null) &&
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$VRID_STACK/bin/containerd" ]] &&
		{ echo "$pid"; return; }
	pid=$(pids_matching "^$VRID_STACK/bin/containerd --config $DIR/config.toml $")
	echo "${pid%%$'\n'*}"
}

running() { [[ -n $(containerd_pid) ]]; }

# overlayfs when an overlay mount works on the filesystem holding root/,
# else native.
pick_snapshotter() {
	local t=$DIR/ovltest
	mkdir -p "$t"/{l,u,w,m}
	if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
		umount "$t/m"
		echo overlayfs
	else
		echo native
	fi
	rm -rf "$t"
}

write_config() {
	local snap=$1
	# Version 4 is what `containerd config default` of v2.4.2 emits.
	cat >"$DIR/config.toml.tmp" <<EOF
version = 4
root = '$DIR/root'
state = '$DIR/state'
temp = '$DIR/tmp'
imports = []

[plugins.'io.containerd.server.v1.grpc']
  address = '$SOCK'
[plugins.'io.containerd.server.v1.ttrpc']
  address = '$SOCK.ttrpc'
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = '$DIR/s'
[plugins.'io.containerd.internal.v1.opt']
  path = '$DIR/opt'
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = '$DIR/image-verifier'
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = '$snap'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'localhost/vrid/pause:test'
  # hosts.toml files (mirrors) that a test may put there.
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '$DIR/certs.d'

[plugins.'io.containerd.cri.v1.runtime']
  cdi_spec_dirs = []
  # Sandboxes get oom_score_adj -998, which needs CAP_SYS_RESOURCE; this
  # workplace's root lacks it, so keep scores at or above containerd's own.
  restrict_oom_score_adj = true
  ignore_deprecation_warnings = ['io.containerd.deprecation/cgroup-v1']
  # No CNI: pods use the host network. CRI still starts and reports
  # NetworkReady=false, which host-network pods do not need.
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['$DIR/cni/bin']
    conf_dir = '$DIR/cni/net.d'
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$VRID_STACK/bin/runc'
        Root = '$DIR/runc'
    # No options table: the shim reads vrid's config from \$VRID_CONFIG.
    # With one, containerd fails user-namespace pods (it sets their I/O
    # owner through runc's options type, and cannot read runtimeoptions
    # as that).
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.vrid]
      runtime_type = 'io.containerd.vrid.v1'
      # Pods pick or join a chain with the annotation io.vrid.aid.
      pod_annotations = ['io.vrid.*']
EOF
	mv -f "$DIR/config.toml.tmp" "$DIR/config.toml"
	# The CRI handler's vrid config: private state, and the stack's runc
	# with a private root, since runtimeoptions carry no runc options.
	if [[ $VRID_CONFIG_PATH == "$DIR/vrid-config.toml" ]]; then
		cat >"$DIR/vrid-config.toml.tmp" <<EOF
state_dir = '$DIR/vrid-state'
log_level = 'warning'

[runc]
binary = '$VRID_STACK/bin/runc'
root = '$DIR/runc'
EOF
		mv -f "$DIR/vrid-config.toml.tmp" "$DIR/vrid-config.toml"
	fi
	cat >"$DIR/crictl.yaml" <<EOF
runtime-endpoint: unix://$SOCK
image-endpoint: unix://$SOCK
timeout: 30
EOF
	echo "$snap" >"$DIR/snapshotter"
}

start() {
	local pid deadline=$((SECONDS + 60))
	mkdir -p "$DIR"
	if running; then
		"${CTR[@]}" version >/dev/null 2>&1 && return 0
		stop # there but not answering
	fi
	[[ -x $VRID_STACK/bin/containerd ]] || { echo "no $VRID_STACK/bin/containerd: run scripts/install-stack.sh" >&2; return 1; }
	write_config "$(pick_snapshotter)"
	rm -f "$SOCK" "$SOCK.ttrpc"
	# setsid without fork (we are not a group leader), so $! is containerd.
	# VRID_CONFIG: what vrid shims read when they get no ConfigPath.
	PATH=$SHIM_DIR:$VRID_STACK/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		VRID_CONFIG=$VRID_CONFIG_PATH setsid "$VRID_STACK/bin/containerd" --config "$DIR/config.toml" \
		</dev/null >>"$DIR/containerd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE.tmp" && mv -f "$PIDFILE.tmp" "$PIDFILE"
	while ((SECONDS < deadline)); do
		"${CTR[@]}" version >/dev/null 2>&1 && { echo "containerd $pid up on $SOCK"; return 0; }
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "containerd did not come up; log tail:" >&2
	tail -30 "$DIR/containerd.log" >&2
	return 1
}

# All descendants of the given pids (the containers under a shim).
descendants() {
	local p kids
	for p in "$@"; do
		kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
		[[ -n $kids ]] && { echo $kids; descendants $kids; }
	done
	return 0
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ ${st%% *} != Z ]]
}

# kill_wait SIGNAL SECONDS PID...: signal them, wait until all are gone.
kill_wait() {
	local sig=$1 secs=$2 i p left
	shift 2
	(($#)) || return 0
	kill -"$sig" "$@" 2>/dev/null || true
	for ((i = 0; i <= secs * 10; i++)); do
		left=0
		for p in "$@"; do alive "$p" && left=1; done
		((left)) || return 0
		sleep 0.1
	done
	return 1
}

stop() {
	local pid ns id shims
	pid=$(containerd_pid)
	if [[ -n $pid ]]; then
		# Tasks first, while containerd still answers: shims then exit cleanly.
		for ns in $("${CTR[@]}" namespaces ls -q 2>/dev/null); do
			for id in $("${CTR[@]}" -n "$ns" tasks ls -q 2>/dev/null); do
				timeout 10 "${CTR[@]}" -n "$ns" tasks kill -a -s KILL "$id" >/dev/null 2>&1 || true
				timeout 10 "${CTR[@]}" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
			done
		done
		kill_wait TERM 10 "$pid" || kill_wait KILL 5 "$pid" || true
	fi
	# Whatever survived: shims of this containerd and their containers.
	# The shims of this containerd carry "-address $SOCK".
	shims=$(pids_matching "containerd-shim.* -address $SOCK ")
	if [[ -n $shims ]]; then
		kill_wait KILL 5 $(descendants $shims) || true
		kill_wait TERM 3 $shims || kill_wait KILL 3 $shims || true
	fi
	# Unmount everything under the private dir, deepest first.
	awk -v d="$DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	rm -f "$PIDFILE" "$SOCK" "$SOCK.ttrpc"
}

env_() {
	local snap
	snap=$(cat "$DIR/snapshotter" 2>/dev/null || echo overlayfs)
	cat <<EOF
export VRID_CTRD_DIR=$DIR
export CONTAINERD_ADDRESS=$SOCK
export CONTAINERD_SNAPSHOTTER=$snap
export CONTAINERD_SUPPRESS_DEPRECATION_WARNINGS=1
export CONTAINER_RUNTIME_ENDPOINT=unix://$SOCK
export IMAGE_SERVICE_ENDPOINT=unix://$SOCK
export CRI_CONFIG_FILE=$DIR/crictl.yaml
export PATH=$VRID_STACK/bin:\$PATH
# ctr run/create keep FIFOs and the runc root under /run/containerd unless told:
export VRID_CTR_RUN_FLAGS="--fifo-dir $DIR/fifo --runc-root $DIR/runc"
EOF
}

case ${1:-} in
start) start ;;
stop) stop ;;
env) env_ ;;
*) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
