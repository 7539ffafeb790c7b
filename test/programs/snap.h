/*
 * Shared part of the snap_* programs, zdtm-style checks across a
 * snapshot and restore: the report file, a FAIL line per broken check,
 * and the wait for the test's SIGUSR1 (sent once the chain is restored).
 */
#ifndef SNAP_H
#define SNAP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>

static FILE *report;
static int failed;
static volatile sig_atomic_t woken;

static void on_usr(int sig)
{
	(void)sig;
	woken = 1;
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(report, "FAIL ");
	vfprintf(report, fmt, ap);
	fprintf(report, "\n");
	va_end(ap);
	fflush(report);
	failed = 1;
}

/* Opens the report argv[1] names and blocks SIGUSR1 for snap_wait; 0, or 2 for bad usage. */
static inline int snap_start(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr };
	sigset_t usr;

	if (argc != 2 || !(report = fopen(argv[1], "a")))
		return 2;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr, NULL);
	return 0;
}

/* Waits for a SIGUSR1 or SIGUSR2 the caller blocks, letting it in only here. */
static inline void snap_wait(void)
{
	sigset_t none;

	sigemptyset(&none);
	while (!woken)
		sigsuspend(&none);
	woken = 0;
}

/* Ends the report: the after line the caller printed, then the verdict. */
static int snap_done(void)
{
	fprintf(report, failed ? "FAILED\n" : "PASS\n");
	fclose(report);
	return failed;
}

#endif
