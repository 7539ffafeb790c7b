/*
 * snap_threads: threads across a snapshot onto new tids, zdtm-style.  Two
 * threads wait in sigsuspend for SIGUSR2; the root prints "ready ..." and
 * waits for SIGUSR1.  Then pthread_kill must reach each thread (glibc
 * signals the tid it cached), an error-checking mutex must say EDEADLK
 * to its owner and EPERM to another thread, and a robust mutex left
 * locked by a thread that exits must come back EOWNERDEAD (the kernel
 * matches the tid glibc wrote into it).
 * Usage: snap_threads REPORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "snap.h"

static __thread volatile sig_atomic_t hit;
static volatile sig_atomic_t hits[2];
static pthread_mutex_t errchk, robust;

/* on_usr, and a mark for the thread that took the signal. */
static void on_usr_thread(int sig)
{
	on_usr(sig);
	hit = 1;
}


static void *waiter(void *arg)
{
	sigset_t none;

	sigemptyset(&none);
	while (!hit)
		sigsuspend(&none);
	hits[(long)arg] = 1;
	return NULL;
}

static void *try_errchk(void *arg)
{
	(void)arg;
	return (void *)(long)pthread_mutex_unlock(&errchk);
}

static void *die_holding(void *arg)
{
	(void)arg;
	return (void *)(long)pthread_mutex_lock(&robust);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr_thread };
	pthread_mutexattr_t attr;
	pthread_t th[2], t;
	sigset_t usr, none;
	void *ret;
	int err;

	if (argc != 2 || !(report = fopen(argv[1], "a")))
		return 2;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr, NULL);
	sigemptyset(&none);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&errchk, &attr);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&robust, &attr);
	for (long i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, waiter, (void *)i);
	fprintf(report, "ready pid=%d\n", getpid());
	fflush(report);
	while (!woken)
		sigsuspend(&none);

	for (int i = 0; i < 2; i++) {
		if ((err = pthread_kill(th[i], SIGUSR2)) != 0)
			fail("pthread_kill thread %d: %s", i, strerror(err));
		pthread_join(th[i], NULL);
		if (!hits[i])
			fail("thread %d ended without its signal", i);
	}
	if ((err = pthread_mutex_lock(&errchk)) != 0)
		fail("errorcheck lock: %s", strerror(err));
	if ((err = pthread_mutex_lock(&errchk)) != EDEADLK)
		fail("errorcheck relock: %s, want EDEADLK", strerror(err));
	pthread_create(&t, NULL, try_errchk, NULL);
	pthread_join(t, &ret);
	if ((long)ret != EPERM)
		fail("errorcheck unlock by another thread: %s, want EPERM", strerror((int)(long)ret));
	if ((err = pthread_mutex_unlock(&errchk)) != 0)
		fail("errorcheck unlock: %s", strerror(err));
	pthread_create(&t, NULL, die_holding, NULL);
	pthread_join(t, &ret);
	if ((long)ret != 0)
		fail("robust lock in a thread: %s", strerror((int)(long)ret));
	if ((err = pthread_mutex_trylock(&robust)) != EOWNERDEAD)
		fail("robust mutex of a dead thread: %s, want EOWNERDEAD", strerror(err));
	fprintf(report, "after pid=%d\n", getpid());
	return snap_done();
}
