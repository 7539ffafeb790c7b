#!/usr/bin/env bash
# Throughput of real applications, native against under vrid with
# sequential ids, side by side in one run: both servers of each pair run
# at once, and the load generator, always native, alternates between
# them (native first in even rounds, vrid first in odd ones), ROUNDS
# times.  Each figure is the median, and so is the last column: the
# median of each round's vrid/native, which a slow drift of the machine's
# load moves less.  redis-benchmark SET and GET on a
# unix socket, nginx (master and two workers) under ab on 127.0.0.1, and
# pgbench's default TPC-B-like script against PostgreSQL 15, started
# through runuser as in test/core's TestPostgres, with
# synchronous_commit off on both sides so that the disk does not decide.
# The load average before and after is printed: other work on the machine
# moves every figure.  CONTROL=1 runs the "vrid" side natively too, to
# show how far the method alone puts the ratios from 1.  Needs root and
# scripts/install-stack.sh's packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# Many short runs rather than a few long ones: a burst of other work on
# the machine then falls on both sides alike.
ROUNDS=${ROUNDS:-15}
REDIS_N=${REDIS_N:-30000}  # requests per redis-benchmark test
AB_N=${AB_N:-5000}         # requests per ab run
PGBENCH_T=${PGBENCH_T:-2}  # seconds per pgbench run
pgbin=/usr/lib/postgresql/15/bin
vrid=$PWD/bin/vrid

work=$(mktemp -d /tmp/vrid-bench-apps.XXXXXX)
chmod 0755 "$work"
state=$work/state
mkdir -m 0700 "$state"
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

for cmd in redis-server redis-benchmark nginx ab runuser pg_isready "$pgbin/postgres" "$pgbin/pgbench"; do
	command -v "$cmd" >/dev/null || { echo "bench/apps.sh: $cmd is missing: run scripts/install-stack.sh" >&2; exit 1; }
done

# start SIDE CMD...: runs CMD in the background, as it is or as a chain
# of its own, and remembers its pid for cleanup.
start() {
	local side=$1
	shift
	[[ $side == native || -n ${CONTROL:-} ]] || set -- "$vrid" --state-dir "$state" run --ids sequential -- "$@"
	"$@" >>"$work/servers.log" 2>&1 &
	pids+=($!)
}

# wait_for WHAT CMD...: until CMD succeeds.
wait_for() {
	local what=$1 i
	shift
	for i in $(seq 600); do
		"$@" >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "bench/apps.sh: $what did not come up; servers' log:" >&2
	cat "$work/servers.log" >&2
	exit 1
}

# is_virtual SIDE WHAT PID: on the vrid side, the server's own pid must
# be the virtual one the chain gives it, or the figures would be native.
is_virtual() {
	[[ $1 == native || -n ${CONTROL:-} || $3 == "$4" ]] && return
	echo "bench/apps.sh: $2 under vrid says its pid is $3, not $4: not in a chain" >&2
	exit 1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for side in native vrid; do
	d=$work/redis-$side
	mkdir "$d"
	start "$side" redis-server --port 0 --unixsocket "$d/sock" --dir "$d" --save "" --appendonly no
	wait_for "redis ($side)" redis-cli -s "$d/sock" PING
	is_virtual "$side" redis "$(redis-cli -s "$d/sock" INFO server | tr -d '\r' | sed -n 's/^process_id://p')" 1000

	d=$work/nginx-$side
	mkdir "$d"
	port=$(free_port)
	echo "$port" >"$d/port"
	echo "served by nginx" >"$d/index.html"
	cat >"$d/nginx.conf" <<CONF
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $d/tmp;
	server { listen 127.0.0.1:$port; root $d; }
}
CONF
	start "$side" nginx -p "$d" -c "$d/nginx.conf" -g "daemon off;"
	wait_for "nginx ($side)" curl -sf "http://127.0.0.1:$port/index.html"
	is_virtual "$side" nginx "$(cat "$d/nginx.pid")" 1000

	d=$work/pg-$side
	mkdir "$d"
	chown postgres: "$d"
	runuser -u postgres -- "$pgbin/initdb" -D "$d/data" -A trust -U postgres >"$d/initdb.log" 2>&1
	start "$side" runuser -u postgres -- "$pgbin/postgres" -D "$d/data" -k "$d" -p 5432 \
		-c listen_addresses= -c synchronous_commit=off
	wait_for "postgres ($side)" pg_isready -q -h "$d" -p 5432
	is_virtual "$side" postgres "$(head -n 1 "$d/data/postmaster.pid")" 1001 # runuser is 1000
	"$pgbin/pgbench" -h "$d" -p 5432 -U postgres -i -s 1 -q postgres >"$d/init.log" 2>&1
done

# One measurement each: prints "NAME SIDE FIGURE" lines.
redis_run() {
	redis-benchmark -s "$work/redis-$1/sock" -n "$REDIS_N" -c 10 -t set,get --csv |
		awk -F'"' -v side="$1" '$2 == "SET" || $2 == "GET" { print "redis-" $2, side, $4 }'
}
nginx_run() {
	local out
	out=$(ab -q -n "$AB_N" -c 10 "http://127.0.0.1:$(cat "$work/nginx-$1/port")/index.html")
	grep -q '^Failed requests: *0$' <<<"$out" || { echo "bench/apps.sh: ab saw failures:" >&2; echo "$out" >&2; exit 1; }
	awk -v side="$1" '/^Requests per second:/ { print "nginx-ab", side, $4 }' <<<"$out"
}
pg_run() {
	"$pgbin/pgbench" -h "$work/pg-$1" -p 5432 -U postgres -c 4 -j 2 -T "$PGBENCH_T" postgres 2>&1 |
		awk -v side="$1" '/^tps = / { print "pgbench-tps", side, $3 }'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 0; i < ROUNDS; i++)); do
	sides=(native vrid)
	((i % 2 == 0)) || sides=(vrid native)
	for run in redis_run nginx_run pg_run; do
		for side in "${sides[@]}"; do
			"$run" "$side" | sed "s/\$/ $i/"
		done
	done
done >"$work/raw"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/raw" "$ROUNDS" "$load_before" "$load_after" "$(nproc)" <<'PY'
import os, statistics, sys
path, rounds, before, after, cpus = sys.argv[1:]
runs = {}  # name -> round -> side -> figure
for line in open(path):
    name, side, figure, rnd = line.split()
    runs.setdefault(name, {}).setdefault(rnd, {})[side] = float(figure)
print(f"{'application (median of ' + rounds + ')':<30} {'native':>9} {'vrid':>9} {'vrid/native':>11} {'per round':>10}")
units = {"redis-SET": "requests/s", "redis-GET": "requests/s", "nginx-ab": "requests/s", "pgbench-tps": "TPS"}
for name, by_round in runs.items():
    native = statistics.median(r["native"] for r in by_round.values())
    vrid = statistics.median(r["vrid"] for r in by_round.values())
    paired = statistics.median(r["vrid"] / r["native"] for r in by_round.values())
    label = f"{name} ({units.get(name, '')})"
    print(f"{label:<30} {native:>9.0f} {vrid:>9.0f} {vrid / native:>11.3f} {paired:>10.3f}")
print(f"load average before {before}, after {after}, on {cpus} cpus")
if os.environ.get("CONTROL"):
    print("CONTROL=1: both sides native; the ratios show the method's noise")
PY
