#!/usr/bin/env bash
# ns per call, native against under vrid, side by side in one process
# (bench/calls.c says how), the fastest of ROUNDS alternating blocks per
# side.  The same program without vrid checks the method: its two sides
# are both libc and should agree.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-40}
out=_output/bench
mkdir -p "$out"
gcc -O2 -Wall -o "$out/calls" bench/calls.c -ldl
state=$(mktemp -d /tmp/vrid-bench.XXXXXX)
trap 'rm -rf "$state"' EXIT

"$out/calls" "$ROUNDS" >"$out/calls.control"
bin/vrid --state-dir "$state" run -- "$out/calls" "$ROUNDS" >"$out/calls.vrid"

python3 - "$out/calls.vrid" "$out/calls.control" <<'PY'
import sys
def table(path):
    return {name: (float(a), float(b)) for name, a, b in (line.rsplit(None, 2) for line in open(path))}
vrid, control = table(sys.argv[1]), table(sys.argv[2])
print(f"{'call':<16} {'native ns':>11} {'vrid ns':>11} {'ratio':>7}   {'control ratio':>13}")
for name, (native, layered) in vrid.items():
    c_native, c_other = control[name]
    print(f"{name:<16} {native:>11.1f} {layered:>11.1f} {layered / native:>7.3f}   {c_other / c_native:>13.3f}")
PY
