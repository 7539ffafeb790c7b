#!/usr/bin/env bash
# The main job: set up the real stack, then run a multi-process service
# under `ctr run --runtime io.containerd.vrid.v1`, twice in one IPC
# namespace with the same fixed keys, and print what each instance sees
# next to what the host sees: its chain (vrid ps) and its tables.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

if [[ $(id -u) != 0 ]]; then
	echo "demo: run as root (it starts containerd and runc)" >&2
	exit 1
fi
step() { printf '\n== %s\n' "$*"; }

step "setting up containerd, runc, CRIU and vrid"
scripts/install-stack.sh
make all

export VRID_CTRD_DIR=/run/vrid-demo/containerd
work=$(mktemp -d /tmp/vrid-demo.XXXXXX)
# Sequential ids make the mapping visible: virtual pids from 1000 and IPC
# ids from 1, whatever the kernel hands out.
cfg=$work/vrid.toml
state=$VRID_CTRD_DIR/vrid-state
cat >"$cfg" <<TOML
state_dir = "$state"

[tables]
ids = "sequential"

[runc]
binary = "/opt/vrid-stack/bin/runc"
root = "$VRID_CTRD_DIR/runc"
TOML
export VRID_CONFIG_PATH=$cfg
cleanup() {
	scripts/test-containerd.sh stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
scripts/test-containerd.sh start
eval "$(scripts/test-containerd.sh env)"
ctr() { command ctr --namespace vrid-demo "$@"; }
vrid() { bin/vrid --config "$cfg" "$@"; }

step "building the demo image (demo/counter.c, no registry)"
gcc -O2 -Wall -o "$work/counter" demo/counter.c
test/ociimage/build.sh "$work/img" demo:latest "$work/counter=/counter" >/dev/null
ctr images import --all-platforms "$work/img/demo_latest.tar" >/dev/null

run_instance() {	# NAME [ctr run flags...]
	local name=$1
	shift
	ctr run -d $VRID_CTR_RUN_FLAGS --runtime io.containerd.vrid.v1 --runtime-config-path "$cfg" \
		--log-uri "file://$work/$name.log" "$@" localhost/vrid/demo:latest "$name" /counter 3 20000 >/dev/null
	for _ in $(seq 100); do
		grep -q '^ready' "$work/$name.log" 2>/dev/null && return
		sleep 0.1
	done
	echo "demo: $name never got ready:" >&2
	cat "$work/$name.log" >&2
	exit 1
}

step "starting instance one: ctr run --runtime io.containerd.vrid.v1"
run_instance demo-one
step "starting instance two in the IPC namespace of instance one, same keys"
pid_one=$(ctr task ls | awk '$1 == "demo-one" {print $2}')
run_instance demo-two --with-ns "ipc:/proc/$pid_one/ns/ipc"

for name in demo-one demo-two; do
	step "$name: what the application printed (virtual ids)"
	cat "$work/$name.log"
done
step "the host's view: the tasks' processes (host pids)"
ctr task ps demo-one
ctr task ps demo-two
step "vrid ps: each chain's processes, virtual and system"
vrid ps
step "the translation tables of demo-one"
vrid tables demo-one
step "the translation tables of demo-two"
vrid tables demo-two
step "System V objects in the shared IPC namespace (system keys and ids)"
nsenter --ipc="/proc/$pid_one/ns/ipc" ipcs

stop_instance() {	# NAME
	ctr task kill "$1"
	for _ in $(seq 100); do
		ctr task ls | grep -q "^$1 .*STOPPED" && break
		sleep 0.1
	done
	ctr task delete "$1" >/dev/null
	ctr container delete "$1"
}
step "stopping demo-two: its poststop hook removes its tables, its AID and its objects"
stop_instance demo-two
nsenter --ipc="/proc/$pid_one/ns/ipc" ipcs
stop_instance demo-one
echo "chains left: $(vrid ps | tail -n +2 | wc -l); files left in $state/chains: $(ls "$state/chains" 2>/dev/null | wc -l)"
