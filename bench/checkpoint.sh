#!/usr/bin/env bash
# Container checkpoint and restore, io.containerd.runc.v2 against
# io.containerd.vrid.v1, side by side: one container that touched MIB of
# heap (criu/testdata/heap.c), in its own namespaces, checkpointed with
# `ctr container checkpoint --task --image` (left running, then deleted)
# and restored with `ctr container restore --live` under a new id, where
# its pids are free: the case runc can do.  The runtimes alternate round
# by round; each figure is the median of ROUNDS.  A private containerd
# (scripts/test-containerd.sh) in a private IPC namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${VRID_BENCH_IN_NS:-} ]]; then
	VRID_BENCH_IN_NS=1 exec unshare --ipc "$0" "$@"
fi
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-100 1024}
STACK=/opt/vrid-stack
work=$(mktemp -d /var/tmp/vrid-bench-ckpt.XXXXXX)
chmod 711 "$work"
export VRID_CTRD_DIR=/run/vrid-bench/ctrd-$$ VRID_SHIM_DIR=$PWD/bin
export VRID_CONFIG_PATH=$work/vrid.toml
cat >"$VRID_CONFIG_PATH" <<CFG
state_dir = '$work/state'

[runc]
binary = '$STACK/bin/runc'
root = '$VRID_CTRD_DIR/runc'
CFG
ctr() { "$STACK/bin/ctr" --address "$VRID_CTRD_DIR/containerd.sock" -n bench "$@" 2>/dev/null; }
cleanup() {
	for id in $(ctr containers ls -q 2>/dev/null); do
		ctr tasks kill -a -s KILL "$id" || true
		ctr tasks delete -f "$id" || true
		ctr containers delete "$id" || true
	done
	scripts/test-containerd.sh stop >/dev/null 2>&1 || true
	rm -rf "$work" "$VRID_CTRD_DIR"
}
trap cleanup EXIT
gcc -O2 -o "$work/heap" criu/testdata/heap.c
test/ociimage/build.sh "$work/img" heap:bench "$work/heap=/heap" >/dev/null
scripts/test-containerd.sh start >/dev/null
ctr images import --all-platforms "$work/img/heap_bench.tar" >/dev/null
image=localhost/vrid/heap:bench

ms() { echo $(( ($2 - $1) / 1000000 )); }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_ready() { for _ in $(seq 1 1200); do grep -q ready "$1" 2>/dev/null && return; sleep 0.05; done; echo "never ready: $1" >&2; exit 1; }
runtime_args() {	# RUNTIME
	if [[ $1 == vrid ]]; then
		echo --runtime io.containerd.vrid.v1 --runtime-config-path "$VRID_CONFIG_PATH"
	else
		echo --runtime io.containerd.runc.v2 --runc-binary "$STACK/bin/runc" --runc-root "$VRID_CTRD_DIR/runc"
	fi
}
stop() {	# ID
	ctr tasks kill -s KILL "$1" || true
	for _ in $(seq 1 100); do ctr tasks delete "$1" >/dev/null && break; sleep 0.05; done
	ctr containers delete "$1"
}

round() {	# RUNTIME MIB: prints checkpoint-ms restore-ms
	local out=$work/out-$1 t0 t1 t2 t3
	rm -rf "$out"; mkdir -m 777 "$out"
	# shellcheck disable=SC2046
	ctr run -d --null-io $(runtime_args "$1") --mount "type=bind,src=$out,dst=/out,options=rbind:rw" \
		"$image" "ck-$1" sh -c "exec /heap $2 >/out/ready" >/dev/null
	wait_ready "$out/ready"
	t0=$(now); ctr containers checkpoint --task --image "ck-$1" "bench/ck-$1:1" >/dev/null; t1=$(now)
	stop "ck-$1"
	t2=$(now); ctr containers restore --live "ck2-$1" "bench/ck-$1:1" >/dev/null; t3=$(now)
	stop "ck2-$1"
	ctr images rm "bench/ck-$1:1" >/dev/null
	echo "$(ms "$t0" "$t1") $(ms "$t2" "$t3")"
}

echo "| touched heap | runc.v2 checkpoint | vrid.v1 checkpoint | ratio | runc.v2 restore | vrid.v1 restore | ratio |"
echo "|---|---|---|---|---|---|---|"
for mib in $SIZES; do
	r="" v=""
	for _ in $(seq "$ROUNDS"); do
		r+=$(round runc "$mib")$'\n'
		v+=$(round vrid "$mib")$'\n'
	done
	rc=$(awk 'NF {print $1}' <<<"$r" | median) vc=$(awk 'NF {print $1}' <<<"$v" | median)
	rr=$(awk 'NF {print $2}' <<<"$r" | median) vr=$(awk 'NF {print $2}' <<<"$v" | median)
	printf '| %s MiB | %s ms | %s ms | %s | %s ms | %s ms | %s |\n' "$mib" "$rc" "$vc" \
		"$(awk -v a="$vc" -v b="$rc" 'BEGIN {printf "%.2f", a/b}')" "$rr" "$vr" \
		"$(awk -v a="$vr" -v b="$rr" 'BEGIN {printf "%.2f", a/b}')"
done
