"""os.getpid, os.fork, os.kill and os.waitpid under vrid run --ids sequential.

Prints name=value lines; exits non-zero when a check fails.
"""
import os
import signal
import subprocess
import sys

failed = False


def out(name, value):
    print(f"{name}={value}", flush=True)


def check(cond, what):
    global failed
    if not cond:
        print(f"FAIL {what}", file=sys.stderr, flush=True)
        failed = True


out("getpid", os.getpid())
out("getppid", os.getppid())
out("getpgrp", os.getpgrp())

# a child that exits with a code
pid = os.fork()
if pid == 0:
    out("child.getpid", os.getpid())
    out("child.getppid", os.getppid())
    os._exit(7)
wpid, status = os.waitpid(pid, 0)
out("fork", pid)
out("waitpid", wpid)
out("waitpid.exitstatus", os.waitstatus_to_exitcode(status))

# a child killed by its virtual pid
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b"r")
    signal.pause()
    os._exit(0)
os.close(w)
check(os.read(r, 1) == b"r", "child ready")
out("fork.2", pid)
os.kill(pid, signal.SIGTERM)
wpid, status = os.waitpid(pid, 0)
out("kill.waitpid", wpid)
out("kill.termsig", os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1)

# unknown pids
try:
    os.kill(4242, 0)
    out("kill.unknown", "ok")
except ProcessLookupError:
    out("kill.unknown", "ESRCH")
try:
    os.waitpid(4242, 0)
    out("waitpid.unknown", "ok")
except ChildProcessError:
    out("waitpid.unknown", "ECHILD")

# subprocess (fork and exec inside _posixsubprocess) and os.posix_spawn
p = subprocess.run(["sh", "-c", "echo $$ $PPID; exit 3"], capture_output=True, text=True)
out("subprocess.run.pid_ppid", p.stdout.strip().replace(" ", ","))
out("subprocess.run.returncode", p.returncode)
q = subprocess.Popen(["sh", "-c", "echo $$"], stdout=subprocess.PIPE, text=True)
reported, _ = q.communicate()
out("subprocess.popen.pid", q.pid)
out("subprocess.popen.reported", reported.strip())
pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 4"], dict(os.environ))
wpid, status = os.waitpid(pid, 0)
out("posix_spawn", pid)
out("posix_spawn.exitstatus", os.waitstatus_to_exitcode(status))

# /proc/self reads back the virtual pid
out("readlink.proc_self", os.readlink("/proc/self"))
out("listdir.proc_vpid.ok", int(len(os.listdir(f"/proc/{os.getpid()}")) > 0))
sys.exit(1 if failed else 0)
