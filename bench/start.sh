#!/usr/bin/env bash
# Container start-to-running time, io.containerd.runc.v2 against
# io.containerd.vrid.v1, side by side: the runtimes alternate, ROUNDS
# times, and each figure is the median.  A start is `ctr run -d`, which
# returns once the task runs, of a dynamically linked program.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

ROUNDS=${ROUNDS:-11}
export VRID_CTRD_DIR=${VRID_CTRD_DIR:-/run/vrid-bench/containerd}
work=$(mktemp -d /tmp/vrid-bench-start.XXXXXX)
cleanup() {
	scripts/test-containerd.sh stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
cfg=$work/vrid.toml
cat >"$cfg" <<TOML
state_dir = "$VRID_CTRD_DIR/vrid-state"

[runc]
binary = "/opt/vrid-stack/bin/runc"
root = "$VRID_CTRD_DIR/runc"
TOML
export VRID_CONFIG_PATH=$cfg
scripts/test-containerd.sh start >/dev/null
eval "$(scripts/test-containerd.sh env)"
ctr() { command ctr --namespace vrid-bench "$@"; }

# A dynamically linked program that waits to be killed: the start is the
# runtime's, not the program's work.
printf '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n' >"$work/sleeper.c"
gcc -O2 -Wall -o "$work/sleeper" "$work/sleeper.c"
test/ociimage/build.sh "$work/img" bench:latest "$work/sleeper=/sleeper" >/dev/null
ctr images import --all-platforms "$work/img/bench_latest.tar" >/dev/null
# What an interrupted run left in the namespace would make every start fail.
for id in $(ctr containers ls -q); do
	ctr task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
	ctr task delete -f "$id" >/dev/null 2>&1 || true
	ctr containers delete "$id" >/dev/null 2>&1 || true
done

start_ms() {	# RUNTIME ID: prints the ms `ctr run -d` took
	local flags=(--runtime "$1")
	if [[ $1 == io.containerd.vrid.v1 ]]; then
		flags+=(--runtime-config-path "$cfg")
	else
		flags+=(--runc-binary /opt/vrid-stack/bin/runc)
	fi
	local t0 t1
	t0=$(date +%s%N)
	ctr run -d $VRID_CTR_RUN_FLAGS "${flags[@]}" localhost/vrid/bench:latest "$2" /sleeper >/dev/null
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
	ctr task kill -s SIGKILL "$2" >/dev/null
	for _ in $(seq 100); do
		ctr task ls | grep -q "^$2 .*STOPPED" && break
		sleep 0.05
	done
	ctr task delete "$2" >/dev/null
	ctr container delete "$2" >/dev/null
}

for ((i = 0; i < ROUNDS; i++)); do
	echo "runc $(start_ms io.containerd.runc.v2 bench-runc-$i)"
	echo "vrid $(start_ms io.containerd.vrid.v1 bench-vrid-$i)"
done >"$work/raw"

python3 - "$work/raw" <<'PY'
import statistics, sys
runs = {"runc": [], "vrid": []}
for line in open(sys.argv[1]):
    name, ms = line.split()
    runs[name].append(int(ms))
runc, vrid = statistics.median(runs["runc"]), statistics.median(runs["vrid"])
print(f"{'container start':<24} {'runc.v2 ms':>10} {'vrid.v1 ms':>10} {'ratio':>7}")
print(f"{'ctr run -d (median of ' + str(len(runs['runc'])) + ')':<24} {runc:>10.0f} {vrid:>10.0f} {vrid / runc:>7.3f}")
PY
