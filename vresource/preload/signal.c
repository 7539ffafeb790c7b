/*
 * Signals carry pids: si_pid names the sender of kill() and sigqueue() and
 * the child of SIGCHLD.  SA_SIGINFO handlers get a trampoline that turns
 * that pid virtual before the handler sees it.
 *
 * The layer keeps VRID_SIGNAL for itself (quiesce.c) and hides it as glibc
 * hides its own internal signals: sigaction on it fails EINVAL, and no
 * mask the application sets (sigprocmask, pthread_sigmask, a handler's
 * sa_mask, sigsuspend, ppoll, pselect, epoll_pwait, signalfd, sigwait and
 * its kin) ever holds it, so that it always reaches the layer's handler.
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

const sigset_t *vrid_sigset_in(const sigset_t *set, sigset_t *out)
{
	if (!set || !sigismember(set, VRID_SIGNAL))
		return set;
	*out = *set;
	sigdelset(out, VRID_SIGNAL);
	return out;
}

VRID_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction wrapped;
	sigaction_fn prev;
	int ret;

	VRID_PASS(real.sigaction(sig, act, old));
	if (sig <= 0 || sig >= _NSIG)
		return real.sigaction(sig, act, old);
	if (sig == VRID_SIGNAL)
		return vrid_fail(-EINVAL);
	prev = __atomic_load_n(&user_action[sig], __ATOMIC_ACQUIRE);
	if (act && (wants_trampoline(act) || sigismember(&act->sa_mask, VRID_SIGNAL))) {
		wrapped = *act;
		sigdelset(&wrapped.sa_mask, VRID_SIGNAL);
		if (wants_trampoline(act)) {
			/* Publish the handler first: the signal may come the moment it is installed. */
			__atomic_store_n(&user_action[sig], act->sa_sigaction, __ATOMIC_RELEASE);
			wrapped.sa_sigaction = trampoline;
		}
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

VRID_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t own;

	VRID_PASS(real.sigprocmask(how, set, old));
	return real.sigprocmask(how, vrid_sigset_in(set, &own), old);
}

VRID_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	sigset_t own;

	VRID_PASS(real.pthread_sigmask(how, set, old));
	return real.pthread_sigmask(how, vrid_sigset_in(set, &own), old);
}

VRID_EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
	sigset_t own;

	VRID_PASS(real.signalfd(fd, mask, flags));
	return real.signalfd(fd, vrid_sigset_in(mask, &own), flags);
}

/* glibc's sigwait waits again after EINTR itself. */
VRID_EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t own;

	VRID_PASS(real.sigwait(set, sig));
	return real.sigwait(vrid_sigset_in(set, &own), sig);
}

VRID_EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t own;
	unsigned seen;
	int sig;

	VRID_PASS(real.sigwaitinfo(set, info));
	set = vrid_sigset_in(set, &own);
	do {
		seen = vrid_quiesce_seen();
		sig = real.sigwaitinfo(set, info);
	} while (sig < 0 && vrid_quiesce_cut(seen));
	if (sig > 0)
		vrid_siginfo_out(info);
	return sig;
}

VRID_EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
	struct vrid_deadline end;
	struct timespec left;
	sigset_t own;
	unsigned seen;
	int sig;

	VRID_PASS(real.sigtimedwait(set, info, timeout));
	set = vrid_sigset_in(set, &own);
	vrid_deadline_start(&end, timeout);
	for (;;) {
		seen = vrid_quiesce_seen();
		sig = real.sigtimedwait(set, info, timeout);
		if (sig >= 0 || !vrid_quiesce_cut(seen))
			break;
		timeout = vrid_deadline_left(&end, &left);
	}
	if (sig > 0)
		vrid_siginfo_out(info);
	return sig;
}

/*
 * The waits that take a mask only lose VRID_SIGNAL from it: like any
 * signal, it ends them with EINTR, which their callers expect.
 */
VRID_EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
		      const sigset_t *mask)
{
	sigset_t own;

	VRID_PASS(real.ppoll(fds, nfds, timeout, mask));
	return real.ppoll(fds, nfds, timeout, vrid_sigset_in(mask, &own));
}

VRID_EXPORT int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *timeout,
			const sigset_t *mask)
{
	sigset_t own;

	VRID_PASS(real.pselect(nfds, rd, wr, ex, timeout, mask));
	return real.pselect(nfds, rd, wr, ex, timeout, vrid_sigset_in(mask, &own));
}

VRID_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
			    const sigset_t *mask)
{
	sigset_t own;

	VRID_PASS(real.epoll_pwait(epfd, events, max, timeout, mask));
	return real.epoll_pwait(epfd, events, max, timeout, vrid_sigset_in(mask, &own));
}

VRID_EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max,
			     const struct timespec *timeout, const sigset_t *mask)
{
	sigset_t own;

	VRID_PASS(real.epoll_pwait2(epfd, events, max, timeout, mask));
	return real.epoll_pwait2(epfd, events, max, timeout, vrid_sigset_in(mask, &own));
}
