#!/usr/bin/env bash
# ns per call, native against under vrid, measured side by side: the two
# runs alternate, ROUNDS times.  Each figure is the fastest of its runs,
# the one least disturbed by the rest of the machine; the ratio of the
# medians is printed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-9}
SCALE=${SCALE:-1}
out=_output/bench
mkdir -p "$out"
gcc -O2 -Wall -o "$out/calls" bench/calls.c
state=$(mktemp -d /tmp/vrid-bench.XXXXXX)
trap 'rm -rf "$state"' EXIT

for ((i = 0; i < ROUNDS; i++)); do
	"$out/calls" "$SCALE" | sed 's/^/native /'
	bin/vrid --state-dir "$state" run -- "$out/calls" "$SCALE" | sed 's/^/vrid /'
done >"$out/calls.raw"

python3 - "$out/calls.raw" <<'PY'
import statistics, sys
runs = {}
order = []
for line in open(sys.argv[1]):
    mode, name, ns = line.split()
    if name not in order:
        order.append(name)
    runs.setdefault((mode, name), []).append(float(ns))
print(f"{'call':<16} {'native ns':>11} {'vrid ns':>11} {'ratio':>7} {'median ratio':>13}")
for name in order:
    native, vrid = runs[("native", name)], runs[("vrid", name)]
    median = statistics.median(vrid) / statistics.median(native)
    print(f"{name:<16} {min(native):>11.1f} {min(vrid):>11.1f} {min(vrid) / min(native):>7.3f} {median:>13.3f}")
PY
