#!/usr/bin/env bash
# Snapshot and restore, vrid against plain CRIU on the same tree, side by
# side: snapshot time, restore time and image size, for a process with
# 100 MiB and 1 GiB of touched heap and for a root and 8 children sharing
# a 100 MiB System V segment, a semaphore set and a queue.  Plain CRIU
# restores the tree onto its own pids, which are free again after the
# dump; it cannot dump the SysV tree at all outside an IPC namespace of
# the tree's own.  vrid snapshot with and without --sync (which makes
# the image durable; CRIU's dump is not) and plain CRIU alternate round
# by round, each after a sync, so that no one pays for another's
# writeback.  Each figure is the median of ROUNDS.  Runs in a private
# IPC namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${VRID_BENCH_IN_NS:-} ]]; then
	VRID_BENCH_IN_NS=1 exec unshare --ipc "$0" "$@"
fi
ROUNDS=${ROUNDS:-3}
CRIU=${CRIU:-/opt/vrid-stack/bin/criu}
work=$(mktemp -d /var/tmp/vrid-bench-snap.XXXXXX)
state=$work/state
vrid() { bin/vrid --state-dir "$state" --config "$work/config.toml" "$@"; }
cleanup() {
	for p in $(cat "$work"/pids 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
: >"$work/config.toml"
gcc -O2 -o "$work/heap" criu/testdata/heap.c
gcc -O2 -o "$work/sysvtree" bench/sysvtree.c

ms() { echo $(( ($2 - $1) / 1000000 )); }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_ready() { for _ in $(seq 1 600); do grep -q ready "$1" 2>/dev/null && return; sleep 0.05; done; echo "never ready: $1" >&2; exit 1; }
root_of() { python3 -c 'import json,sys; print([c["root_pid"] for c in json.load(open(sys.argv[1]))["chains"]][-1])' "$state/registry.json"; }
supervisor_of() { python3 -c 'import json,sys; print([c["owner"]["pid"] for c in json.load(open(sys.argv[1]))["chains"]][-1])' "$state/registry.json"; }
gone() { while kill -0 "$1" 2>/dev/null; do sleep 0.02; done; }

vrid_round() {	# PROGRAM MIB [SNAPSHOT-FLAG...]: prints snapshot-ms restore-ms image-bytes
	rm -rf "$state" "$work/img"; mkdir -p "$state"
	local aid sup t0 t1 t2 size
	aid=$(vrid run -d --name bench -- "$work/$1" "$2")
	wait_ready "$state/logs/$aid.log"
	sup=$(supervisor_of)
	sync # the last round's images are not this one's writeback
	t0=$(now); vrid snapshot bench --image "$work/img" "${@:3}" >/dev/null; t1=$(now)
	gone "$sup"
	size=$(du -sb "$work/img" | cut -f1)
	t2=$(now); vrid restore --image "$work/img" -d >/dev/null; local t3; t3=$(now)
	sup=$(supervisor_of); echo "$sup" >>"$work/pids"
	kill -9 "$(root_of)"; gone "$sup"
	echo "$(ms "$t0" "$t1") $(ms "$t2" "$t3") $size"
}

criu_round() {	# PROGRAM MIB
	rm -rf "$work/cimg" "$work/out"; mkdir -p "$work/cimg"
	setsid "$work/$1" "$2" >"$work/out" 2>&1 </dev/null &
	local pid=$! t0 t1 t2 t3 size
	echo "$pid" >>"$work/pids"
	wait_ready "$work/out"
	sync
	# As vrid dumps (criu/run.go): log level 4, the tree left running
	# and ended afterwards, images in the same file system.
	t0=$(now); "$CRIU" dump -t "$pid" -D "$work/cimg" --shell-job --leave-running -v4 -o dump.log; t1=$(now)
	kill -9 "$pid"; wait "$pid" 2>/dev/null || true
	size=$(du -sb "$work/cimg" | cut -f1)
	t2=$(now); "$CRIU" restore -D "$work/cimg" --shell-job -d -v4 -o restore.log; t3=$(now)
	kill -9 "$pid"; gone "$pid"
	echo "$(ms "$t0" "$t1") $(ms "$t2" "$t3") $size"
}

row() {	# LABEL PROGRAM MIB PLAIN: vrid, vrid --sync and plain CRIU alternate
	local v="" d="" c="" r
	for _ in $(seq "$ROUNDS"); do
		v+=$(vrid_round "$2" "$3")$'\n'
		d+=$(vrid_round "$2" "$3" --sync)$'\n'
		if [[ $4 == yes ]]; then c+=$(criu_round "$2" "$3")$'\n'; fi
	done
	col() { awk -v f="$2" 'NF {print $f}' <<<"$1" | median; }
	mib() { col "$1" 3 | awk '{printf "%.1f", $1/1048576}'; }
	printf '| %s | %s ms | %s ms | %s ms | %s MiB |' "$1" "$(col "$v" 1)" "$(col "$d" 1)" "$(col "$v" 2)" "$(mib "$v")"
	if [[ $4 == yes ]]; then
		printf ' %s ms | %s ms | %s MiB |\n' "$(col "$c" 1)" "$(col "$c" 2)" "$(mib "$c")"
	else
		printf ' n/a | n/a | n/a |\n'
	fi
}

echo "| tree | vrid snapshot | vrid snapshot --sync | vrid restore | vrid image | criu dump | criu restore | criu image |"
echo "|---|---|---|---|---|---|---|---|"
row "100 MiB heap" heap 100 yes
row "1 GiB heap" heap 1024 yes
row "1+8 processes, 100 MiB SysV shm" sysvtree 100 no
