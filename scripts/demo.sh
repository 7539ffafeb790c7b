#!/usr/bin/env bash
# The main job: set up the real stack, then show in one run what vrid is
# for.  A multi-process service (demo/counter.c) counts under `ctr run
# --runtime io.containerd.vrid.v1` in a pod's IPC namespace.  It is
# checkpointed while it counts and stopped; another instance starts in
# the same namespace with the same fixed key and takes the system ids
# the first one had; the first is restored next to it, on new system
# ids, and both finish counting and check themselves.  The translation
# tables before and after show the virtual ids unchanged and the system
# ids beneath them changed.  The last line is the verdict; the exit
# status is non-zero when any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

if [[ $(id -u) != 0 ]]; then
	echo "demo: run as root (it starts containerd and runc)" >&2
	exit 1
fi
current="starting"
step() {
	current=$*
	printf '\n== %s\n' "$*"
}
# fail WHY: the demo stops here; the verdict names the step and WHY.
why=
fail() {
	why=$*
	exit 1
}

step "setting up containerd, runc, CRIU and vrid"
scripts/install-stack.sh
make all

export VRID_CTRD_DIR=/run/vrid-demo/containerd
work=$(mktemp -d /tmp/vrid-demo.XXXXXX)
# Sequential ids make the mapping visible: virtual pids from 1000 (a
# container's init stays 1) and IPC ids from 1, whatever the kernel hands
# out.
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
image=localhost/vrid/demo:latest
pause=localhost/vrid/pause:test
ckpt=localhost/vrid/demo-one-checkpoint:latest
workers=3 rounds=1500
want=$((workers * rounds))

ctr() { command ctr --namespace vrid-demo "$@"; }
vrid() { bin/vrid --config "$cfg" "$@"; }

# remove NAME: kill and delete a container and its task, whatever state
# they are in (or none).
remove() {
	ctr task kill -a -s KILL "$1" >/dev/null 2>&1 || true
	for _ in $(seq 50); do
		ctr task delete -f "$1" >/dev/null 2>&1 || ! ctr task ls -q | grep -qx "$1" && break
		sleep 0.1
	done
	ctr container delete "$1" >/dev/null 2>&1 || true
}
remove_all() {
	local name
	for name in demo-two demo-one demo-pod; do remove "$name"; done
	ctr images rm "$ckpt" "$image" "$pause" >/dev/null 2>&1 || true
}
finish() {
	local rc=$?
	if [[ -n ${CONTAINERD_ADDRESS:-} ]]; then
		remove_all
	fi
	scripts/test-containerd.sh stop >/dev/null 2>&1 || true
	rm -rf "$work"
	echo
	if ((rc == 0)); then
		echo "demo: PASS: demo-one was checkpointed at $count_before of $want, restored onto new system ids while demo-two held its old ones, and counted to $want with the same virtual ids"
	else
		echo "demo: FAIL at \"$current\"${why:+: $why} (exit $rc)"
	fi
	exit "$rc"
}
count_before=
trap finish EXIT
scripts/test-containerd.sh start
eval "$(scripts/test-containerd.sh env)"
remove_all # what a demo killed midway left

step "building the demo image (demo/counter.c) and a pause image, no registry"
gcc -O2 -Wall -o "$work/counter" demo/counter.c
test/ociimage/build.sh "$work/img" demo:latest "$work/counter=/counter" >/dev/null
test/ociimage/build.sh --pause "$work/img" >/dev/null
ctr images import --all-platforms "$work/img/demo_latest.tar" >/dev/null
ctr images import --all-platforms "$work/img/pause_test.tar" >/dev/null

# wait_for FILE SECONDS: FILE appears within SECONDS.
wait_for() {
	for _ in $(seq $(($2 * 10))); do
		[[ -e $1 ]] && return
		sleep 0.1
	done
	fail "no $1 after $2 s"
}
# ask NAME N: the counter of NAME writes how far it got into progress-N.
ask() {
	ctr task kill -s SIGUSR1 "$1"
	wait_for "$work/$1/progress-$2" 10
	read -r _ count _ <"$work/$1/progress-$2"
	echo "$1: counted $count of $want"
}
# start NAME: the counter in a vrid container, in the pod's IPC
# namespace, its reports in $work/NAME.
start() {
	mkdir -p "$work/$1"
	ctr run -d --null-io $VRID_CTR_RUN_FLAGS --runtime io.containerd.vrid.v1 --runtime-config-path "$cfg" \
		--with-ns "ipc:/proc/$pod/ns/ipc" --mount "type=bind,src=$work/$1,dst=/out,options=rbind:rw" \
		"$image" "$1" /counter /out "$workers" "$rounds" >/dev/null
	wait_for "$work/$1/ready" 10
	sed "s/^/$1: /" "$work/$1/ready"
}
# aid NAME: the AID of the chain NAME.
aid() { vrid ps | awk -v n="$1" '$2 == n { print $1; exit }'; }
# sysid FILE TYPE: the system id of TYPE's first entry in a `vrid tables` output.
sysid() { awk -v t="$2" '$1 == t { print $3; exit }' "$1"; }
ipcs_pod() { nsenter --ipc="/proc/$pod/ns/ipc" ipcs "$@"; }

step "the pod: a pause container (runc.v2) holds the IPC namespace its containers share"
ctr run -d --null-io $VRID_CTR_RUN_FLAGS --runtime io.containerd.runc.v2 --runc-binary /opt/vrid-stack/bin/runc \
	"$pause" demo-pod >/dev/null
pod=$(ctr task ls | awk '$1 == "demo-pod" { print $2 }')
[[ -n $pod ]] || fail "the pause container has no task"
echo "demo-pod: host pid $pod"

step "demo-one starts (io.containerd.vrid.v1): $workers workers add $rounds each to a shared counter, under a semaphore"
start demo-one
sleep 1
ask demo-one 1
count_before=$count
vrid tables demo-one >"$work/before"
aid_before=$(aid demo-one)
echo "demo-one's translation table (virtual: what the program sees; system: what the kernel uses):"
cat "$work/before"
echo "the pod's System V objects, as the kernel has them (private keys, system ids):"
ipcs_pod -q -m -s | grep -v '^$'

step "checkpoint demo-one while it counts (ctr container checkpoint --task), then stop it"
t0=$(date +%s%N)
ctr container checkpoint --task --image demo-one "$ckpt"
t1=$(date +%s%N)
remove demo-one
# The copy stopped here must not have finished: its report would pass for the restored one's.
[[ ! -e $work/demo-one/done ]] || fail "demo-one finished counting before it was stopped"
echo "checkpoint $ckpt taken in $(((t1 - t0) / 1000000)) ms; demo-one stopped, its chain and objects removed:"
ipcs_pod -q -m -s | grep -v '^$'
[[ -z $(ipcs_pod -q -m -s | awk '$1 ~ /^0x/') ]] || fail "demo-one's objects are still in the pod's IPC namespace"

step "demo-two starts in the same pod with the same key, and takes demo-one's system ids"
for kind in sem shm msg; do
	id=$(sysid "$work/before" "$kind")
	nsenter --ipc="/proc/$pod/ns/ipc" sh -c "echo $id >/proc/sys/kernel/${kind}_next_id"
	echo "${kind}_next_id = $id"
done
start demo-two
vrid tables demo-two >"$work/two"
for kind in sem shm msg; do
	[[ $(sysid "$work/two" "$kind") == $(sysid "$work/before" "$kind") ]] ||
		fail "demo-two's $kind has system id $(sysid "$work/two" "$kind"), not demo-one's $(sysid "$work/before" "$kind")"
done

step "restore demo-one next to demo-two (ctr container restore --live)"
t0=$(date +%s%N)
ctr container restore --live demo-one "$ckpt" </dev/null >/dev/null
t1=$(date +%s%N)
echo "restored in $(((t1 - t0) / 1000000)) ms"
ask demo-one 2
((count >= count_before)) || fail "demo-one counts from $count, below the $count_before it had reached"
ask demo-two 1
vrid tables demo-one >"$work/after"
vrid tables demo-two >"$work/two"

step "side by side: the virtual ids stay, the system ids beneath them change"
echo "(virtual: what the program sees and keeps; system: what the kernel uses; ipckey: the fixed key and each chain's private one)"
awk -v h1="demo-one (AID $aid_before)" -v h2="demo-one restored (AID $(aid demo-one))" -v h3="demo-two (AID $(aid demo-two))" \
	'FNR == 1 { f++; next }
	{ k = $1 " " $2; if (!(k in seen)) { seen[k] = 1; order[++n] = k } sys[f, k] = $3 }
	END {
		printf "%-7s %-11s | %-20s %-29s | %s\n", "", "", "SYSTEM: before", "SYSTEM: after", "SYSTEM: after"
		printf "%-7s %-11s | %-20s %-29s | %s\n", "TYPE", "VIRTUAL", h1, h2, h3
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, p, " ")
			printf "%-7s %-11s | %-20s %-29s | %s\n", p[1], p[2],
				((1, k) in sys) ? sys[1, k] : "-", ((2, k) in sys) ? sys[2, k] : "-", ((3, k) in sys) ? sys[3, k] : "-"
		}
	}' "$work/before" "$work/after" "$work/two"
echo "(the pids stay: each container has a pid namespace of its own, where demo-one's old pids are free)"
echo "the pod's System V objects now: demo-two's on demo-one's old ids, demo-one's on new ones:"
ipcs_pod -q -m -s | grep -v '^$'
echo "vrid ps: both chains' processes (virtual pid, pid in the container, host pid):"
vrid ps

step "both finish counting and check themselves"
for name in demo-one demo-two; do
	wait_for "$work/$name/done" 60
	sed "s/^/$name: /" "$work/$name/done"
	[[ $(tail -n 1 "$work/$name/done") == PASS ]] || fail "$name's own checks failed"
done

step "stopping both and the pod: each poststop removes its chain's tables, AID and objects"
for name in demo-one demo-two; do
	ctr task kill "$name"
	for _ in $(seq 100); do
		ctr task ls | grep -q "^$name .*STOPPED" && break
		sleep 0.1
	done
	ctr task delete "$name" >/dev/null
	ctr container delete "$name"
done
left=$(ipcs_pod -q -m -s | awk '$1 ~ /^0x/' | wc -l)
remove demo-pod
chains=$(vrid ps | tail -n +2 | wc -l)
files=$(ls "$state/chains" 2>/dev/null | wc -l)
echo "System V objects left in the pod: $left; chains left: $chains; files left in $state/chains: $files"
((left == 0 && chains == 0 && files == 0)) || fail "something was left behind"
ctr images rm "$ckpt" "$image" "$pause" >/dev/null
