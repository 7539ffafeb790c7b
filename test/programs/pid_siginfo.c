/*
 * si_pid is virtual: in SA_SIGINFO handlers (kill, sigqueue, SIGCHLD) and
 * from sigwaitinfo and sigtimedwait.  sigaction and signal hand back the
 * application's own handler, never the layer's trampoline.
 */
#include "vt.h"

#include <signal.h>

static volatile sig_atomic_t got_sig, got_pid, got_code, got_status, got_value;

static void on_info(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_pid = si->si_pid;
	got_code = si->si_code;
	got_status = si->si_status;
	got_value = si->si_value.sival_int;
}

static void install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_info;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	MUST(sigaction(sig, &sa, NULL) == 0);
}

static void set_mask(int how, int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	MUST(sigprocmask(how, &set, NULL) == 0);
}

int main(void)
{
	struct timespec ten_s = { .tv_sec = 10 };
	union sigval val = { .sival_int = 77 };
	struct sigaction old;
	sigset_t set, empty;
	siginfo_t si;
	pid_t pid;
	int sig;

	/* kill to self: the handler runs before kill returns */
	install(SIGUSR1);
	MUST(kill(getpid(), SIGUSR1) == 0);
	OUT_INT("handler.kill.signo", got_sig);
	OUT_INT("handler.kill.si_pid", got_pid);
	OUT_INT("handler.kill.si_code_is_user", got_code == SI_USER);

	/* sigqueue to self carries the value and the virtual sender */
	install(SIGUSR2);
	MUST(sigqueue(getpid(), SIGUSR2, val) == 0);
	OUT_INT("handler.sigqueue.si_pid", got_pid);
	OUT_INT("handler.sigqueue.si_value", got_value);
	OUT_INT("handler.sigqueue.si_code_is_queue", got_code == SI_QUEUE);

	/* the old action is the application's handler */
	MUST(sigaction(SIGUSR1, NULL, &old) == 0);
	OUT_INT("sigaction.old_is_handler", old.sa_sigaction == on_info);
	OUT_INT("signal.old_is_handler", (void *)signal(SIGUSR2, SIG_DFL) == (void *)on_info);
	OUT_INT("signal.then_old_is_dfl", signal(SIGUSR2, SIG_IGN) == SIG_DFL);
	signal(SIGUSR2, SIG_DFL);

	/* a child signals its parent: sigwaitinfo sees the child's virtual pid */
	set_mask(SIG_BLOCK, SIGUSR1);
	set_mask(SIG_BLOCK, SIGCHLD);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		CHECK(kill(getppid(), SIGUSR1) == 0);
		vt_child_exit(3);
	}
	OUT_INT("fork", pid);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	memset(&si, 0, sizeof(si));
	sig = sigwaitinfo(&set, &si);
	OUT_INT("sigwaitinfo", sig);
	OUT_INT("sigwaitinfo.si_pid", si.si_pid);
	/* ...and its SIGCHLD names it too, before it is reaped */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	memset(&si, 0, sizeof(si));
	sig = sigtimedwait(&set, &si, &ten_s);
	OUT_INT("sigtimedwait", sig);
	OUT_INT("sigtimedwait.si_pid", si.si_pid);
	OUT_INT("sigtimedwait.si_status", si.si_status);
	OUT_INT("sigtimedwait.si_code_is_exited", si.si_code == CLD_EXITED);
	OUT_INT("waitpid.status", vt_exit_code(vt_wait(pid)));

	/* a SIGCHLD handler sees the child's virtual pid */
	got_sig = got_pid = 0;
	install(SIGCHLD);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0)
		vt_child_exit(5);
	OUT_INT("fork.2", pid);
	sigemptyset(&empty);
	while (got_sig != SIGCHLD)
		sigsuspend(&empty);
	OUT_INT("handler.sigchld.si_pid", got_pid);
	OUT_INT("handler.sigchld.si_status", got_status);
	OUT_INT("waitpid.2.status", vt_exit_code(vt_wait(pid)));

	/* a queued signal from a child: handler and value */
	got_sig = got_pid = got_value = 0;
	set_mask(SIG_BLOCK, SIGUSR2);
	install(SIGUSR2);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		union sigval v = { .sival_int = 99 };

		CHECK(sigqueue(getppid(), SIGUSR2, v) == 0);
		vt_child_exit(0);
	}
	OUT_INT("fork.3", pid);
	sigfillset(&empty);
	sigdelset(&empty, SIGUSR2);
	while (got_sig != SIGUSR2)
		sigsuspend(&empty);
	OUT_INT("handler.child_sigqueue.si_pid", got_pid);
	OUT_INT("handler.child_sigqueue.si_value", got_value);
	OUT_INT("waitpid.3.status", vt_exit_code(vt_wait(pid)));
	return vt_done();
}
