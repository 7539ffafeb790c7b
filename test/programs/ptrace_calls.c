/*
 * ptrace: requests take the tracee's virtual pid, PTRACE_GETEVENTMSG gives
 * the virtual pid of a tracee's new child and of the thread that called
 * exec, and an exit event's message stays an exit status.
 */
#include "vt.h"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

static int event_of(int status)
{
	return WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP ? status >> 16 : -1;
}

static void show_stop(const char *name, pid_t pid)
{
	char key[64];
	int status = vt_wait(pid);

	snprintf(key, sizeof(key), "%s.stopsig", name);
	OUT_INT(key, WIFSTOPPED(status) ? WSTOPSIG(status) : -1);
	snprintf(key, sizeof(key), "%s.event", name);
	OUT_INT(key, event_of(status));
}

static void show_msg(const char *name, pid_t pid, int raw)
{
	unsigned long msg = 0;
	char key[64];
	long rc;

	rc = raw ? syscall(SYS_ptrace, PTRACE_GETEVENTMSG, pid, 0, &msg)
		 : ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
	snprintf(key, sizeof(key), "%s.geteventmsg", name);
	OUT_INT(key, rc);
	snprintf(key, sizeof(key), "%s.msg", name);
	OUT_INT(key, msg);
}

/*
 * The tracee: stops for its tracer, forks a child that exits 5, reaps
 * it and checks that fork and wait agree, then execs this program again
 * with an argument that makes it exit 7.
 */
static void tracee(const char *self)
{
	pid_t pid;

	CHECK(ptrace(PTRACE_TRACEME, 0, 0, 0) == 0);
	raise(SIGSTOP);
	pid = vt_fork();
	if (pid == 0)
		_exit(5);
	CHECK(pid == getpid() + 1);
	CHECK(vt_exit_code(vt_wait(pid)) == 5);
	fflush(stdout);
	execl(self, self, "exit7", (char *)NULL);
	vt_child_exit(99);
}

int main(int argc, char **argv)
{
	siginfo_t si;
	pid_t pid, grandchild;
	long rc;
	int status;

	if (argc > 1)
		return 7;
	rc = ptrace(PTRACE_ATTACH, 4242, 0, 0);
	OUT_ERR("attach.unknown", rc);
	rc = syscall(SYS_ptrace, PTRACE_ATTACH, 4242, 0, 0);
	OUT_ERR("SYS_ptrace.attach.unknown", rc);

	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0)
		tracee(argv[0]);
	OUT_INT("tracee", pid);
	show_stop("initial", pid);
	OUT_INT("setoptions", ptrace(PTRACE_SETOPTIONS, pid, 0,
				     PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT));
	memset(&si, 0, sizeof(si));
	OUT_INT("getsiginfo", ptrace(PTRACE_GETSIGINFO, pid, 0, &si));
	OUT_INT("getsiginfo.signo", si.si_signo);
	OUT_INT("getsiginfo.si_pid", si.si_pid);
	OUT_INT("cont", ptrace(PTRACE_CONT, pid, 0, 0));

	/* the fork event names the new child, which starts stopped and traced */
	show_stop("fork", pid);
	show_msg("fork", pid, 0);
	show_msg("fork.raw", pid, 1);
	grandchild = pid + 1;
	show_stop("grandchild", grandchild);
	OUT_INT("grandchild.cont", ptrace(PTRACE_CONT, grandchild, 0, 0));
	show_stop("grandchild.exit", grandchild);
	show_msg("grandchild.exit", grandchild, 0);
	OUT_INT("grandchild.exit.cont", ptrace(PTRACE_CONT, grandchild, 0, 0));
	OUT_INT("cont.after_fork", ptrace(PTRACE_CONT, pid, 0, 0));
	/* the grandchild's exit reaches us, as its tracer, before its parent reaps it */
	status = vt_wait(grandchild);
	OUT_INT("grandchild.status", vt_exit_code(status));

	/* the tracee's SIGCHLD stops it first: its si_pid names the grandchild */
	show_stop("sigchld", pid);
	memset(&si, 0, sizeof(si));
	OUT_INT("sigchld.getsiginfo", ptrace(PTRACE_GETSIGINFO, pid, 0, &si));
	OUT_INT("sigchld.si_pid", si.si_pid);
	OUT_INT("sigchld.cont", ptrace(PTRACE_CONT, pid, 0, SIGCHLD));
	show_stop("exec", pid);
	show_msg("exec", pid, 0);
	OUT_INT("cont.after_exec", ptrace(PTRACE_CONT, pid, 0, 0));
	show_stop("exit", pid);
	show_msg("exit", pid, 0);
	OUT_INT("cont.after_exit", ptrace(PTRACE_CONT, pid, 0, 0));
	OUT_INT("tracee.status", vt_exit_code(vt_wait(pid)));
	rc = ptrace(PTRACE_CONT, pid, 0, 0);
	OUT_ERR("cont.reaped", rc);
	return vt_done();
}
