/*
 * snap_shm: several System V segments across a snapshot, zdtm-style.  The
 * root makes three segments of different sizes, one with a fixed key,
 * attaches them, fills each with its own pattern and forks a child that
 * inherits the attachments and keeps writing a counter into the first.
 * It prints "ready ..." to the report file and waits for SIGUSR1.  Then
 * it checks that every segment is at its old address, intact and
 * distinct, that the child still shares the first (it answers a request
 * written there) and that shmget of the fixed key finds the same id.
 * Usage: snap_shm REPORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap.h"

#define NSEG 3

static const size_t sizes[NSEG] = { 4096 + 1, 65536, 1 << 20 };
static const key_t keys[NSEG] = { IPC_PRIVATE, 0x7171, IPC_PRIVATE };

static unsigned char pattern(int seg, size_t i)
{
	return (unsigned char)(i * (seg + 3) + seg * 11 + 1);
}

/* The child's protocol in the first segment's first words. */
struct words { volatile uint64_t counter, request, answer; };

int main(int argc, char **argv)
{
	sigset_t none;
	int ids[NSEG], status;
	unsigned char *at[NSEG];
	struct words *w;
	pid_t child;

	if (snap_start(argc, argv))
		return 2;
	sigemptyset(&none);
	for (int s = 0; s < NSEG; s++) {
		ids[s] = shmget(keys[s], sizes[s], IPC_CREAT | IPC_EXCL | 0600);
		at[s] = ids[s] < 0 ? (void *)-1 : shmat(ids[s], NULL, 0);
		if (at[s] == (void *)-1) {
			fail("segment %d: %s", s, strerror(errno));
			return 1;
		}
		for (size_t i = sizeof(struct words); i < sizes[s]; i++)
			at[s][i] = pattern(s, i);
	}
	w = (struct words *)at[0];
	fflush(report);
	child = fork();
	if (child == 0) {
		/* Keep writing; answer each request with request + 1. */
		for (;;) {
			w->counter++;
			if (w->request && w->answer != w->request + 1)
				w->answer = w->request + 1;
			if (w->request == UINT64_MAX)
				_exit(0);
			usleep(1000);
		}
	}
	while (w->counter == 0)
		usleep(1000);
	fprintf(report, "ready shm=%d,%d,%d at=%p,%p,%p\n", ids[0], ids[1], ids[2], at[0], at[1], at[2]);
	fflush(report);
	while (!woken)
		sigsuspend(&none);

	for (int s = 0; s < NSEG; s++) {
		struct shmid_ds ds;

		if (shmctl(ids[s], IPC_STAT, &ds) < 0 || ds.shm_segsz != sizes[s])
			fail("segment %d (%d): size %zu: %s", s, ids[s], ds.shm_segsz, strerror(errno));
		for (size_t i = sizeof(struct words); i < sizes[s]; i++)
			if (at[s][i] != pattern(s, i)) {
				fail("segment %d byte %zu is %d, want %d", s, i, at[s][i], pattern(s, i));
				break;
			}
	}
	if (shmget(0x7171, 0, 0) != ids[1])
		fail("shmget(0x7171) %d, want %d", shmget(0x7171, 0, 0), ids[1]);
	w->request = 41;
	while (w->answer != 42)
		usleep(1000);
	w->request = UINT64_MAX;
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("child %d: status %#x", child, status);
	for (int s = 0; s < NSEG; s++) {
		shmdt(at[s]);
		shmctl(ids[s], IPC_RMID, NULL);
	}
	fprintf(report, "after shm=%d,%d,%d at=%p,%p,%p\n", ids[0], ids[1], ids[2], at[0], at[1], at[2]);
	return snap_done();
}
