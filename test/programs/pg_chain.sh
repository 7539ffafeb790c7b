#!/bin/sh
# PostgreSQL 15 in one chain, under vrid run --ids sequential: this shell
# runs as root and starts everything through runuser, so each PostgreSQL
# program is exec'd after root was dropped and reaches its table only
# through the fd the chain inherits.  initdb, start, pgbench -i and a
# short pgbench run, then pg_ctl status, reload and stop, which find the
# server by the virtual pid in postmaster.pid.
#
#   pg_chain.sh DIR    DIR belongs to postgres; the cluster goes to
#                      DIR/data, the socket (no TCP) and the logs to DIR
#
# Prints name=value lines; the logs stay in DIR.
set -u
dir=$1
bin=/usr/lib/postgresql/15/bin
port=5432

out() { echo "$1=$2"; }
as_pg() { runuser -u postgres -- "$@"; }
sql() { as_pg "$bin/psql" -h "$dir" -p "$port" -X -A -t -q -d postgres -c "$1"; }

out getpid $$
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
out initdb $?
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
	-o "-k $dir -p $port -c listen_addresses=" start >"$dir/pg_ctl.log" 2>&1
out start $?

status=$(as_pg "$bin/pg_ctl" -D "$dir/data" status)
out status $?
pid=$(head -n 1 "$dir/data/postmaster.pid")
out postmaster.pid "$pid"
case $status in
*"server is running (PID: $pid)"*) out status.names_pidfile_pid 1 ;;
*) out status.names_pidfile_pid "$status" ;;
esac
kill -0 "$pid"
out kill0.postmaster $?

as_pg "$bin/pgbench" -h "$dir" -p "$port" -i -s 1 postgres >"$dir/pgbench-init.log" 2>&1
out pgbench.init $?
for table in branches tellers accounts history; do
	out "rows.$table" "$(sql "select count(*) from pgbench_$table")"
done
as_pg "$bin/pgbench" -h "$dir" -p "$port" -c 2 -j 2 -t 50 postgres >"$dir/pgbench.log" 2>&1
out pgbench $?
out pgbench.processed "$(sed -n 's/^number of transactions actually processed: //p' "$dir/pgbench.log")"
out pgbench.failed "$(sed -n 's/^number of failed transactions: //p' "$dir/pgbench.log")"
out rows.history "$(sql "select count(*) from pgbench_history")"
# Every transaction adds one delta to an account, its teller and its branch.
out balances.agree "$(sql "select (select sum(abalance) from pgbench_accounts) =
	(select sum(tbalance) from pgbench_tellers) and
	(select sum(tbalance) from pgbench_tellers) = (select sum(bbalance) from pgbench_branches)")"

as_pg "$bin/pg_ctl" -D "$dir/data" reload >>"$dir/pg_ctl.log" 2>&1
reload=$?
out reload $reload
tries=0
until [ $reload -ne 0 ] || [ $tries -ge 300 ] ||
	grep -q 'received SIGHUP, reloading configuration files' "$dir/postgres.log"; do
	sleep 0.1
	tries=$((tries + 1))
done
out reload.logged "$(grep -c 'received SIGHUP, reloading configuration files' "$dir/postgres.log")"

as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >>"$dir/pg_ctl.log" 2>&1
out stop $?
as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null
out status.after_stop $?
