/*
 * The layer's quiesce signal, SIGRTMAX - 1, is hidden as glibc hides its
 * own: sigaction and signal on it fail EINVAL; no mask the program sets
 * holds it (sigprocmask, pthread_sigmask, a handler's sa_mask, signalfd),
 * and the kernel's view (/proc/self/status) agrees: caught, not blocked.
 * Other real-time signals are the program's.
 */
#include "vt.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#define QUIESCE_SIGNAL (SIGRTMAX - 1)

/* "caught blocked" for sig, from the kernel. */
static void out_kernel_view(const char *name, int sig)
{
	char line[256], label[64];
	unsigned long long cgt = 0, blk = 0;
	FILE *f = fopen("/proc/self/status", "r");

	MUST(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "SigCgt: %llx", &cgt);
		sscanf(line, "SigBlk: %llx", &blk);
	}
	fclose(f);
	snprintf(label, sizeof(label), "%s.caught", name);
	OUT_INT(label, (cgt >> (sig - 1)) & 1);
	snprintf(label, sizeof(label), "%s.blocked", name);
	OUT_INT(label, (blk >> (sig - 1)) & 1);
}

static void on_signal(int sig)
{
	(void)sig;
}

int main(void)
{
	struct sigaction sa, old;
	sigset_t all, now;
	int rc, fd;

	OUT_INT("signal", QUIESCE_SIGNAL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	rc = sigaction(QUIESCE_SIGNAL, &sa, NULL);
	OUT_ERR("sigaction.set", rc);
	rc = sigaction(QUIESCE_SIGNAL, NULL, &old);
	OUT_ERR("sigaction.query", rc);
	errno = 0;
	OUT_INT("signal.sig_err", signal(QUIESCE_SIGNAL, on_signal) == SIG_ERR);
	OUT_STR("signal.errno", vt_errname(errno));
	rc = sigaction(SIGRTMAX - 2, &sa, NULL);
	OUT_ERR("sigaction.other_rt", rc);

	sigfillset(&all);
	rc = sigprocmask(SIG_BLOCK, &all, NULL);
	OUT_ERR("sigprocmask.block_all", rc);
	MUST(sigprocmask(SIG_BLOCK, NULL, &now) == 0);
	OUT_INT("sigprocmask.holds", sigismember(&now, QUIESCE_SIGNAL));
	OUT_INT("sigprocmask.holds_other_rt", sigismember(&now, SIGRTMAX - 2));
	out_kernel_view("after_sigprocmask", QUIESCE_SIGNAL);
	MUST(sigprocmask(SIG_SETMASK, &all, NULL) == 0);
	out_kernel_view("after_setmask", QUIESCE_SIGNAL);
	MUST(pthread_sigmask(SIG_SETMASK, &all, NULL) == 0);
	MUST(pthread_sigmask(SIG_BLOCK, NULL, &now) == 0);
	OUT_INT("pthread_sigmask.holds", sigismember(&now, QUIESCE_SIGNAL));
	out_kernel_view("after_pthread_sigmask", QUIESCE_SIGNAL);

	/* A handler's full sa_mask leaves the signal out too. */
	sa.sa_mask = all;
	MUST(sigaction(SIGUSR1, &sa, NULL) == 0);
	MUST(sigaction(SIGUSR1, NULL, &old) == 0);
	OUT_INT("sa_mask.holds", sigismember(&old.sa_mask, QUIESCE_SIGNAL));
	OUT_INT("sa_mask.holds_other_rt", sigismember(&old.sa_mask, SIGRTMAX - 2));

	fd = signalfd(-1, &all, SFD_CLOEXEC);
	OUT_INT("signalfd.ok", fd >= 0);
	return vt_done();
}
