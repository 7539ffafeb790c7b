/*
 * fcntl owners: F_SETOWN, F_GETOWN, F_SETOWN_EX and F_GETOWN_EX take and
 * give virtual pids and groups, and SIGIO reaches the owner they name.
 */
#include "vt.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got_io;

static void on_io(int sig)
{
	(void)sig;
	got_io = 1;
}

/* Waits for SIGIO, which stays blocked outside sigsuspend. */
static void wait_io(void)
{
	sigset_t empty;

	sigemptyset(&empty);
	while (!got_io)
		sigsuspend(&empty);
}

/*
 * A child that owns sv[1]'s signals: it exits 42 once SIGIO comes.  The
 * parent sets the owner, the child says it can be signalled, and a write
 * to sv[0] makes the data the SIGIO is about.
 */
static int sigio_to_child(void)
{
	int sv[2], ready[2];
	sigset_t io;
	pid_t pid;
	char c;

	MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && pipe(ready) == 0);
	sigemptyset(&io);
	sigaddset(&io, SIGIO);
	sigprocmask(SIG_BLOCK, &io, NULL);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		got_io = 0;
		MUST(write(ready[1], "r", 1) == 1);
		wait_io();
		vt_child_exit(42);
	}
	MUST(read(ready[0], &c, 1) == 1);
	OUT_INT("sigio.child", pid);
	OUT_INT("sigio.setown", fcntl(sv[1], F_SETOWN, pid));
	OUT_INT("sigio.getown", fcntl(sv[1], F_GETOWN));
	OUT_INT("sigio.async", fcntl(sv[1], F_SETFL, O_ASYNC | O_NONBLOCK));
	MUST(write(sv[0], "x", 1) == 1);
	OUT_INT("sigio.child.status", vt_exit_code(vt_wait(pid)));
	close(sv[0]);
	close(sv[1]);
	close(ready[0]);
	close(ready[1]);
	return 0;
}

int main(void)
{
	struct f_owner_ex ex;
	int sv[2], rc;
	sigset_t io;

	MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	OUT_INT("getown.unset", fcntl(sv[1], F_GETOWN));
	OUT_INT("setown.self", fcntl(sv[1], F_SETOWN, getpid()));
	OUT_INT("getown.self", fcntl(sv[1], F_GETOWN));
	OUT_INT("getown64.self", fcntl64(sv[1], F_GETOWN));
	OUT_INT("SYS_fcntl.getown.self", syscall(SYS_fcntl, sv[1], F_GETOWN));
	OUT_INT("setown.group", fcntl(sv[1], F_SETOWN, -getpgrp()));
	OUT_INT("getown.group", fcntl(sv[1], F_GETOWN));
	rc = fcntl(sv[1], F_SETOWN, 4242);
	OUT_ERR("setown.unknown", rc);
	rc = fcntl(sv[1], F_SETOWN, -4242);
	OUT_ERR("setown.unknown_group", rc);
	OUT_INT("getown.after_unknown", fcntl(sv[1], F_GETOWN));
	OUT_INT("setown64.self", fcntl64(sv[1], F_SETOWN, getpid()));
	OUT_INT("getown64.after", fcntl(sv[1], F_GETOWN));
	OUT_INT("setown.none", fcntl(sv[1], F_SETOWN, 0));
	OUT_INT("getown.none", fcntl(sv[1], F_GETOWN));

	ex.type = F_OWNER_TID;
	ex.pid = gettid();
	OUT_INT("setown_ex.tid", fcntl(sv[1], F_SETOWN_EX, &ex));
	memset(&ex, 0, sizeof(ex));
	OUT_INT("getown_ex.tid", fcntl(sv[1], F_GETOWN_EX, &ex));
	OUT_INT("getown_ex.tid.type", ex.type);
	OUT_INT("getown_ex.tid.pid", ex.pid);
	ex.type = F_OWNER_PGRP;
	ex.pid = getpgrp();
	OUT_INT("setown_ex.pgrp", fcntl(sv[1], F_SETOWN_EX, &ex));
	memset(&ex, 0, sizeof(ex));
	OUT_INT("getown_ex.pgrp", fcntl(sv[1], F_GETOWN_EX, &ex));
	OUT_INT("getown_ex.pgrp.type", ex.type);
	OUT_INT("getown_ex.pgrp.pid", ex.pid);
	OUT_INT("getown.pgrp_ex", fcntl(sv[1], F_GETOWN));
	ex.type = F_OWNER_PID;
	ex.pid = 4242;
	rc = fcntl(sv[1], F_SETOWN_EX, &ex);
	OUT_ERR("setown_ex.unknown", rc);
	OUT_INT("setown_ex.unknown.pid_kept", ex.pid);
	ex.pid = getpid();
	OUT_INT("setown_ex.pid", fcntl(sv[1], F_SETOWN_EX, &ex));
	OUT_INT("setown_ex.pid.caller_kept", ex.pid);
	memset(&ex, 0, sizeof(ex));
	OUT_INT("getown_ex.pid", fcntl(sv[1], F_GETOWN_EX, &ex));
	OUT_INT("getown_ex.pid.type", ex.type);
	OUT_INT("getown_ex.pid.pid", ex.pid);
	/* the system pid the kernel holds is not the one we were shown */
	CHECK(vt_sys_pid() != getpid());

	/* SIGIO to ourselves, then to a child, by virtual pid */
	signal(SIGIO, on_io);
	sigemptyset(&io);
	sigaddset(&io, SIGIO);
	sigprocmask(SIG_BLOCK, &io, NULL);
	OUT_INT("sigio.self.setown", fcntl(sv[1], F_SETOWN, getpid()));
	OUT_INT("sigio.self.async", fcntl(sv[1], F_SETFL, O_ASYNC | O_NONBLOCK));
	MUST(write(sv[0], "x", 1) == 1);
	wait_io();
	OUT_INT("sigio.self", got_io);
	close(sv[0]);
	close(sv[1]);
	sigio_to_child();
	return vt_done();
}
