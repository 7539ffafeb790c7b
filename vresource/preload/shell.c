/*
 * system() and popen(): glibc starts and reaps their shells with private
 * calls, out of our reach, so a reaped shell would stay in the pid table.
 * Here they start through our posix_spawn and are reaped through our
 * waitpid, with glibc's signal handling: SIGINT and SIGQUIT ignored and
 * SIGCHLD blocked while system() waits.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "vrid.h"

extern char **environ;

#define SHELL "/bin/sh"
/* popen streams open at once in one process; beyond that popen fails EMFILE. */
#define POPEN_MAX 64

static int reap(pid_t vpid)
{
	int status;

	while (waitpid(vpid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

VRID_EXPORT int system(const char *cmd)
{
	struct sigaction ignore = { .sa_handler = SIG_IGN }, old_int, old_quit;
	sigset_t chld, old_mask, defaults;
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	posix_spawnattr_t attr;
	int status, err;
	pid_t vpid;

	VRID_PASS(real.system(cmd));
	if (!cmd)
		return real.system(cmd);
	sigemptyset(&ignore.sa_mask);
	real.sigaction(SIGINT, &ignore, &old_int);
	real.sigaction(SIGQUIT, &ignore, &old_quit);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old_mask);

	sigemptyset(&defaults);
	if (old_int.sa_handler != SIG_IGN)
		sigaddset(&defaults, SIGINT);
	if (old_quit.sa_handler != SIG_IGN)
		sigaddset(&defaults, SIGQUIT);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setsigmask(&attr, &old_mask);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	err = posix_spawn(&vpid, SHELL, NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	/* As glibc: a shell that could not start reads as one that exited 127. */
	status = err ? W_EXITCODE(127, 0) : reap(vpid);

	real.sigaction(SIGINT, &old_int, NULL);
	real.sigaction(SIGQUIT, &old_quit, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	if (err)
		errno = err;
	return status;
}

/* The shell behind each open popen stream; f is claimed with a CAS. */
static struct {
	FILE *f;
	pid_t vpid;
} popened[POPEN_MAX];

#define CLAIMING ((FILE *)1)

static int claim_slot(void)
{
	for (int i = 0; i < POPEN_MAX; i++) {
		FILE *none = NULL;

		if (__atomic_compare_exchange_n(&popened[i].f, &none, CLAIMING, 0,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return i;
	}
	return -1;
}

static void release_slot(int i)
{
	__atomic_store_n(&popened[i].f, NULL, __ATOMIC_RELEASE);
}

/* mode is "r" or "w", then maybe "e" (close-on-exec), as glibc takes it. */
static int popen_mode(const char *mode, int *reading, int *cloexec)
{
	if (!mode || (mode[0] != 'r' && mode[0] != 'w'))
		return -1;
	*reading = mode[0] == 'r';
	*cloexec = strchr(mode + 1, 'e') != NULL;
	return 0;
}

VRID_EXPORT FILE *popen(const char *cmd, const char *mode)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	posix_spawn_file_actions_t actions;
	int reading, cloexec, fds[2], ours, theirs, slot, err;
	pid_t vpid;
	FILE *f;

	VRID_PASS(real.popen(cmd, mode));
	if (popen_mode(mode, &reading, &cloexec) < 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((slot = claim_slot()) < 0) {
		errno = EMFILE;
		return NULL;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		release_slot(slot);
		return NULL;
	}
	ours = reading ? fds[0] : fds[1];
	theirs = reading ? fds[1] : fds[0];
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, theirs, reading ? STDOUT_FILENO : STDIN_FILENO);
	err = posix_spawn(&vpid, SHELL, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	close(theirs);
	if (err || !(f = fdopen(ours, reading ? "r" : "w"))) {
		close(ours);
		if (!err)
			reap(vpid);
		release_slot(slot);
		if (err)
			errno = err;
		return NULL;
	}
	if (!cloexec)
		fcntl(ours, F_SETFD, 0);
	popened[slot].vpid = vpid;
	__atomic_store_n(&popened[slot].f, f, __ATOMIC_RELEASE);
	return f;
}

VRID_EXPORT int pclose(FILE *f)
{
	pid_t vpid;
	int status;

	VRID_PASS(real.pclose(f));
	for (int i = 0; i < POPEN_MAX; i++) {
		if (f == NULL || __atomic_load_n(&popened[i].f, __ATOMIC_ACQUIRE) != f)
			continue;
		vpid = popened[i].vpid;
		release_slot(i);
		fclose(f);
		status = reap(vpid);
		return status;
	}
	/* A stream libc's own popen opened, before the layer was on. */
	return real.pclose(f);
}
