"""fcntl owners from Python: nginx's F_SETOWN, as a new user first met it.

The first lines are the issue's one-liner; then a group owner, an unknown
owner, and SIGIO reaching the owner.  Prints name=value lines.  (Python
reads F_GETOWN's negative group owners as errors, so they are not read.)
"""
import fcntl
import os
import signal
import socket

s = socket.socket()
fcntl.fcntl(s, fcntl.F_SETOWN, os.getpid())
print(fcntl.fcntl(s, fcntl.F_GETOWN) == os.getpid())


def out(name, value):
    print(f"{name}={value}", flush=True)


out("getpid", os.getpid())
out("getown", fcntl.fcntl(s, fcntl.F_GETOWN))
out("setown.group", fcntl.fcntl(s, fcntl.F_SETOWN, -os.getpgrp()))
try:
    fcntl.fcntl(s, fcntl.F_SETOWN, 4242)
    out("setown.unknown", "no error")
except ProcessLookupError:
    out("setown.unknown", "ESRCH")

a, b = socket.socketpair()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGIO])
fcntl.fcntl(b, fcntl.F_SETOWN, os.getpid())
fcntl.fcntl(b, fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK)
a.send(b"x")
out("sigio", signal.Signals(signal.sigwait([signal.SIGIO])).name)
