# A python3 multiprocessing chain across a snapshot (zdtm-style): a pool
# of two workers maps a function, the root reports "ready" with its own
# and its workers' virtual pids, waits for SIGUSR1 (the restore happens
# meanwhile), maps again through the same workers, starts one new
# Process, and reports "after" with the same pids and PASS or FAIL.
# Usage: py_snap_pool.py REPORT
import multiprocessing as mp
import os
import signal
import sys


def square(x):
    return x * x, os.getpid()


def child(q):
    q.put(os.getppid())


def report(path, line):
    with open(path, "a") as f:
        f.write(line + "\n")


def main():
    path = sys.argv[1]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    mp.set_start_method("fork")
    with mp.Pool(2) as pool:
        workers = sorted(w.pid for w in pool._pool)
        first = pool.map(square, range(10))
        report(path, f"ready pid={os.getpid()} workers={workers} sum={sum(v for v, _ in first)}")
        signal.sigwait({signal.SIGUSR1})
        again = pool.map(square, range(10))
        after = sorted(w.pid for w in pool._pool)
        used = sorted({p for _, p in again})
        q = mp.Queue()
        p = mp.Process(target=child, args=(q,))
        p.start()
        parent_seen = q.get(timeout=10)
        p.join()
        report(path, f"after pid={os.getpid()} workers={after} sum={sum(v for v, _ in again)} "
                     f"new={p.pid} new.ppid={parent_seen} new.exit={p.exitcode}")
        ok = (after == workers and set(used) <= set(workers) and sum(v for v, _ in again) == 285
              and parent_seen == os.getpid() and p.exitcode == 0)
        report(path, "PASS" if ok else "FAIL")


if __name__ == "__main__":
    main()
