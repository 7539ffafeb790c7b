#!/usr/bin/env bash
# Chain start-up: `vrid run -- /bin/true` against `/bin/true`, and the
# parts of the difference: a Go program's start (`vrid --help`), and
# `vrid ps` (registry, no chain).  The commands alternate, ROUNDS times;
# each figure is the median wall time of one run, in ms.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-101}
state=$(mktemp -d /run/vrid-bench-run.XXXXXX)
trap 'bin/vrid --state-dir "$state" gc >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

python3 - "$ROUNDS" "$state" <<'PY'
import statistics, subprocess, sys, time

rounds, state = int(sys.argv[1]), sys.argv[2]
cmds = {
    "/bin/true": ["/bin/true"],
    "vrid --help": ["bin/vrid", "--help"],
    "vrid ps": ["bin/vrid", "--state-dir", state, "ps"],
    "vrid run -- /bin/true": ["bin/vrid", "--state-dir", state, "run", "--", "/bin/true"],
}
times = {name: [] for name in cmds}
for _ in range(rounds):
    for name, argv in cmds.items():
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name].append((time.perf_counter() - t0) * 1000)
base = statistics.median(times["/bin/true"])
print(f"{'command':<24} {'median ms':>10} {'over /bin/true':>15}")
for name in cmds:
    m = statistics.median(times[name])
    print(f"{name:<24} {m:>10.2f} {m - base:>+15.2f}")
PY
