"""multiprocessing under vrid run --ids sequential: a Process, a Pool,
a shared Value under a Lock, a Queue, and spawn.

Process children get the next virtual pids, results come back through
pipes, shared memory and queues.  Prints name=value lines; exits non-zero when a check fails.
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


def add(counter, lock, pids, i, times):
    pids[i] = os.getpid()
    for _ in range(times):
        with lock:
            counter.value += 1


def square(tasks, results):
    for x in iter(tasks.get, None):
        results.put((x * x, os.getpid()))


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

    # Four children add under one Lock to a shared Value, and write their
    # pids into a shared Array: no child makes a thread.
    counter = mp.Value("i", 0)
    lock = mp.Lock()
    pids = mp.Array("i", 4)
    procs = [mp.Process(target=add, args=(counter, lock, pids, i, 500)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    out("value.counter", counter.value)
    out("value.process_pids", ",".join(str(p.pid) for p in procs))
    out("value.child_pids", ",".join(str(pid) for pid in pids))
    out("value.exitcodes", ",".join(str(p.exitcode) for p in procs))

    # Two workers square what a Queue brings them into another.  Both
    # start before the first put, so their pids come before the ids of
    # the queues' feeder threads.
    tasks, results = mp.Queue(), mp.Queue()
    procs = [mp.Process(target=square, args=(tasks, results)) for _ in range(2)]
    for p in procs:
        p.start()
    out("queue.workers", ",".join(str(p.pid) for p in procs))
    for x in range(10):
        tasks.put(x)
    for _ in procs:
        tasks.put(None)
    got = sorted(results.get() for _ in range(10))
    for p in procs:
        p.join()
    out("queue.squares", ",".join(str(r[0]) for r in got))
    seen = {r[1] for r in got}
    check(seen <= {p.pid for p in procs}, f"results from {seen}, not the workers")
    out("queue.results_from_workers", int(seen <= {p.pid for p in procs}))
    out("queue.exitcodes", ",".join(str(p.exitcode) for p in procs))

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
