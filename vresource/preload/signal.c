/*
 * Signals carry pids: si_pid names the sender of kill() and sigqueue() and
 * the child of SIGCHLD.  SA_SIGINFO handlers get a trampoline that turns
 * that pid virtual before the handler sees it.
 */
#include <string.h>

#include "vrid.h"

typedef void (*sigaction_fn)(int, siginfo_t *, void *);

/* The application's SA_SIGINFO handler for each signal we wrap, or NULL. */
static sigaction_fn user_action[_NSIG];

/* si_pid is a pid only for these codes; for timers the same word is a timer id. */
static int siginfo_has_pid(const siginfo_t *info)
{
	switch (info->si_code) {
	case SI_USER:
	case SI_QUEUE:
	case SI_TKILL:
	case SI_MESGQ:
		return 1;
	case CLD_EXITED:
	case CLD_KILLED:
	case CLD_DUMPED:
	case CLD_TRAPPED:
	case CLD_STOPPED:
	case CLD_CONTINUED:
		return info->si_signo == SIGCHLD;
	default:
		return 0;
	}
}

void vrid_siginfo_out(siginfo_t *info)
{
	if (info && siginfo_has_pid(info))
		info->si_pid = vrid_pid_out(info->si_pid);
}

void vrid_siginfo_in(siginfo_t *info)
{
	pid_t spid;

	if (info && siginfo_has_pid(info))
		info->si_pid = vrid_pid_in(info->si_pid, &spid) == 0 ? spid : 0;
}

static void trampoline(int sig, siginfo_t *info, void *ucontext)
{
	sigaction_fn action = __atomic_load_n(&user_action[sig], __ATOMIC_ACQUIRE);
	int saved_errno = errno;

	vrid_siginfo_out(info);
	errno = saved_errno;
	if (action)
		action(sig, info, ucontext);
}

static int wants_trampoline(const struct sigaction *act)
{
	return act && (act->sa_flags & SA_SIGINFO) &&
	       act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
}

VRID_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction wrapped;
	sigaction_fn prev;
	int ret;

	VRID_PASS(real.sigaction(sig, act, old));
	if (sig <= 0 || sig >= _NSIG)
		return real.sigaction(sig, act, old);
	prev = __atomic_load_n(&user_action[sig], __ATOMIC_ACQUIRE);
	if (wants_trampoline(act)) {
		/* Publish the handler first: the signal may come the moment it is installed. */
		__atomic_store_n(&user_action[sig], act->sa_sigaction, __ATOMIC_RELEASE);
		wrapped = *act;
		wrapped.sa_sigaction = trampoline;
		act = &wrapped;
	}
	ret = real.sigaction(sig, act, old);
	if (ret < 0 && act == &wrapped)
		__atomic_store_n(&user_action[sig], prev, __ATOMIC_RELEASE);
	if (ret == 0 && old && (old->sa_flags & SA_SIGINFO) && old->sa_sigaction == trampoline)
		old->sa_sigaction = prev;
	return ret;
}

/*
 * glibc's signal() installs through its private sigaction and would hand
 * back our trampoline as the old handler; do it through ours instead.
 */
VRID_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction act, old;

	memset(&act, 0, sizeof(act));
	act.sa_handler = handler;
	act.sa_flags = SA_RESTART;
	sigemptyset(&act.sa_mask);
	if (sig > 0 && sig < _NSIG)
		sigaddset(&act.sa_mask, sig);
	if (sigaction(sig, &act, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

VRID_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	int sig;

	VRID_PASS(real.sigwaitinfo(set, info));
	sig = real.sigwaitinfo(set, info);
	if (sig > 0)
		vrid_siginfo_out(info);
	return sig;
}

VRID_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	int sig;

	VRID_PASS(real.sigtimedwait(set, info, timeout));
	sig = real.sigtimedwait(set, info, timeout);
	if (sig > 0)
		vrid_siginfo_out(info);
	return sig;
}
