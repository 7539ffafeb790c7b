"""multiprocessing under vrid run --ids sequential: a Process, a Pool and spawn.

Process children get the next virtual pids, results come back through
pipes.  Prints name=value lines; exits non-zero when a check fails.
"""
import multiprocessing as mp
import os
import sys

failed = False


def out(name, value):
    print(f"{name}={value}", flush=True)


def check(cond, what):
    global failed
    if not cond:
        print(f"FAIL {what}", file=sys.stderr, flush=True)
        failed = True


def report(conn):
    conn.send((os.getpid(), os.getppid()))
    conn.close()


def who(x):
    return (x * x, os.getpid(), os.getppid())


def main():
    mp.set_start_method("fork")
    out("getpid", os.getpid())

    parent_end, child_end = mp.Pipe()
    p = mp.Process(target=report, args=(child_end,))
    p.start()
    out("process.pid", p.pid)
    pid, ppid = parent_end.recv()
    p.join()
    out("process.child.getpid", pid)
    out("process.child.getppid", ppid)
    out("process.exitcode", p.exitcode)

    with mp.Pool(2) as pool:
        workers = sorted(w.pid for w in pool._pool)
        out("pool.workers", ",".join(str(w) for w in workers))
        results = pool.map(who, range(8), chunksize=1)
        out("pool.squares", ",".join(str(r[0]) for r in results))
        seen = sorted({r[1] for r in results})
        check(set(seen) <= set(workers), f"results from workers {seen} not in {workers}")
        out("pool.results_from_workers", int(set(seen) <= set(workers)))
        out("pool.worker_parents", ",".join(sorted({str(r[2]) for r in results})))

    # the spawn start method execs a new interpreter (after a resource
    # tracker): the pool's threads took ids too, so only relations are exact
    ctx = mp.get_context("spawn")
    parent_end, child_end = ctx.Pipe()
    p = ctx.Process(target=report, args=(child_end,))
    p.start()
    pid, ppid = parent_end.recv()
    p.join()
    out("spawn.child_is_process_pid", int(pid == p.pid and pid > 1000))
    out("spawn.child.getppid", ppid)
    out("spawn.exitcode", p.exitcode)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
