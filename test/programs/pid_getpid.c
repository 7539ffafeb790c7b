/* getpid, getppid, gettid and the root's own group: who am I in the chain. */
#include "vt.h"

int main(void)
{
	pid_t pid = getpid(), tid = gettid();

	OUT_INT("getpid", pid);
	CHECK(pid == 1000);
	/* The cache must agree with itself. */
	CHECK(getpid() == pid);
	/* The root's parent is the vrid harness, outside the chain. */
	OUT_INT("getppid", getppid());
	/* The main thread's tid is the pid. */
	OUT_INT("gettid", tid);
	CHECK(tid == pid);
	/* The harness makes the root lead its own process group. */
	OUT_INT("getpgrp", getpgrp());
	OUT_INT("getpgid.0", getpgid(0));
	OUT_INT("getpgid.self", getpgid(pid));
	/* The session leader is outside the chain. */
	OUT_INT("getsid.0", getsid(0));
	/* The virtual pid is not the system pid (the kernel's /proc text keeps that). */
	CHECK(vt_sys_pid() > 0);
	return vt_done();
}
