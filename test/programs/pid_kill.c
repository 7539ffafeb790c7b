/*
 * kill, killpg, tgkill, sigqueue and kill(-1): pid arguments are virtual,
 * unknown ones fail ESRCH, and kill(-1) reaches the chain only.
 */
#include "vt.h"

#include <dlfcn.h>
#include <signal.h>

static volatile sig_atomic_t got_urg;

static void on_urg(int sig)
{
	(void)sig;
	got_urg = 1;
}

/*
 * A child that waits for SIGURG and exits 42 when it comes.  It says it is
 * ready on the pipe only once the signal can no longer be lost.
 */
static pid_t urg_waiter(void)
{
	int ready[2];
	sigset_t block, empty;
	pid_t pid;
	char c;

	MUST(pipe(ready) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		sigemptyset(&block);
		sigaddset(&block, SIGURG);
		sigprocmask(SIG_BLOCK, &block, NULL);
		signal(SIGURG, on_urg);
		close(ready[0]);
		MUST(write(ready[1], "r", 1) == 1);
		sigemptyset(&empty);
		while (!got_urg)
			sigsuspend(&empty);
		_exit(42);
	}
	close(ready[1]);
	MUST(read(ready[0], &c, 1) == 1);
	close(ready[0]);
	return pid;
}

/* A child that sleeps until killed, in a process group of its own. */
static pid_t group_leader(void)
{
	int ready[2];
	pid_t pid;
	char c;

	MUST(pipe(ready) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		MUST(write(ready[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	setpgid(pid, pid);
	MUST(read(ready[0], &c, 1) == 1);
	close(ready[0]);
	close(ready[1]);
	return pid;
}

/*
 * kill(-1) from a process the layer does not cover would signal the whole
 * host.  Only go on when our kill() really is the layer's.
 */
static int kill_is_layered(void)
{
	Dl_info info;

	return getenv("VRID_AID") && getpid() == 1000 &&
	       dladdr((void *)kill, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libvrid");
}

int main(void)
{
	union sigval val = { .sival_int = 1 };
	pid_t pid, a, b;
	int rc, status;

	rc = kill(getpid(), 0);
	OUT_INT("kill.self", rc);
	rc = kill(4242, 0);
	OUT_ERR("kill.unknown", rc);
	rc = kill(-4242, 0);
	OUT_ERR("kill.unknown_group", rc);
	rc = kill(0, 0);
	OUT_INT("kill.own_group", rc);
	rc = kill(-getpgrp(), 0);
	OUT_INT("kill.minus_pgrp", rc);

	/* a signal to a child by its virtual pid */
	pid = group_leader();
	OUT_INT("child", pid);
	rc = kill(pid, SIGTERM);
	OUT_INT("kill.child", rc);
	status = vt_wait(pid);
	OUT_INT("kill.child.termsig", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	rc = kill(pid, 0);
	OUT_ERR("kill.reaped", rc);

	/* killpg by the child's virtual group id */
	pid = group_leader();
	OUT_INT("killpg.child", pid);
	OUT_INT("killpg.child.getpgid", getpgid(pid));
	rc = killpg(pid, SIGKILL);
	OUT_INT("killpg", rc);
	status = vt_wait(pid);
	OUT_INT("killpg.termsig", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	rc = killpg(4242, 0);
	OUT_ERR("killpg.unknown", rc);
	rc = killpg(-5, 0);
	OUT_ERR("killpg.negative", rc);

	/* kill(-pgid) */
	pid = group_leader();
	rc = kill(-pid, SIGKILL);
	OUT_INT("kill.minus_child_group", rc);
	status = vt_wait(pid);
	OUT_INT("kill.minus_child_group.termsig", WIFSIGNALED(status) ? WTERMSIG(status) : -1);

	/* tgkill and sigqueue */
	rc = tgkill(getpid(), gettid(), 0);
	OUT_INT("tgkill.self", rc);
	rc = tgkill(getpid(), 4242, 0);
	OUT_ERR("tgkill.unknown_tid", rc);
	rc = tgkill(4242, 4242, 0);
	OUT_ERR("tgkill.unknown", rc);
	rc = sigqueue(getpid(), 0, val);
	OUT_INT("sigqueue.self", rc);
	rc = sigqueue(4242, 0, val);
	OUT_ERR("sigqueue.unknown", rc);

	/* kill(-1) reaches every other process of the chain and not the caller. */
	MUST(kill_is_layered());
	signal(SIGURG, on_urg);
	a = urg_waiter();
	b = urg_waiter();
	OUT_INT("kill_all.child1", a);
	OUT_INT("kill_all.child2", b);
	rc = kill(-1, SIGURG);
	OUT_INT("kill_all", rc);
	OUT_INT("kill_all.self_hit", got_urg);
	OUT_INT("kill_all.child1.status", vt_exit_code(vt_wait(a)));
	OUT_INT("kill_all.child2.status", vt_exit_code(vt_wait(b)));
	/* with nobody else left, nobody is signalled */
	rc = kill(-1, SIGURG);
	OUT_ERR("kill_all.alone", rc);
	OUT_INT("kill_all.alone.self_hit", got_urg);

	/* kill(-1) from a child reaches its parent and its sibling, not itself */
	{
		sigset_t urg, old, empty;
		pid_t sender;

		sigemptyset(&urg);
		sigaddset(&urg, SIGURG);
		sigprocmask(SIG_BLOCK, &urg, &old);
		a = urg_waiter();
		sender = vt_fork();
		MUST(sender >= 0);
		if (sender == 0) {
			got_urg = 0;
			sigprocmask(SIG_SETMASK, &old, NULL);
			CHECK(kill(-1, SIGURG) == 0);
			vt_child_exit(got_urg ? 1 : 0);
		}
		OUT_INT("kill_all.from_child.sender", sender);
		sigemptyset(&empty);
		while (!got_urg)
			sigsuspend(&empty);
		OUT_INT("kill_all.from_child.parent_hit", got_urg);
		OUT_INT("kill_all.from_child.sender.self_hit", vt_exit_code(vt_wait(sender)));
		OUT_INT("kill_all.from_child.sibling.status", vt_exit_code(vt_wait(a)));
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	return vt_done();
}
