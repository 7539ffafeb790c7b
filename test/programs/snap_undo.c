/*
 * snap_undo: case (d), a semaphore held with SEM_UNDO across a snapshot
 * (zdtm-style).  A set of two semaphores starts at {1, 0}.  The child
 * "holder" takes semaphore 0 with SEM_UNDO (a lock: 1 -> 0), the child
 * "releaser" adds 2 to semaphore 1 with SEM_UNDO (2), and the parent
 * takes 1 from semaphore 1 with SEM_UNDO and gives it back with
 * SEM_UNDO, which leaves it no adjustment.  It prints "ready ..." and
 * waits for SIGUSR1, sent once the chain is restored.  Then it checks
 * the values, kills the holder, which gives the lock back (0 -> 1), and
 * the releaser, whose 2 the kernel takes back (2 -> 0), as the kernel
 * would have without the snapshot, reporting the values at each step.
 * Usage: snap_undo REPORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap.h"

/* A child that makes one semop with SEM_UNDO, tells the parent, and waits to be killed. */
static pid_t child_op(int sem, int fd, unsigned short num, short op)
{
	struct sembuf sb = { num, op, SEM_UNDO };
	pid_t pid = fork();

	if (pid == 0) {
		char ok = semop(sem, &sb, 1) == 0 ? 'y' : 'n';

		if (write(fd, &ok, 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	return pid;
}

static int child_done(int fd)
{
	char ok = 0;

	return read(fd, &ok, 1) == 1 && ok == 'y';
}

static void values(int sem, char *out, size_t len)
{
	unsigned short v[2];

	if (semctl(sem, 0, GETALL, v) < 0)
		snprintf(out, len, "error:%s", strerror(errno));
	else
		snprintf(out, len, "%u,%u", v[0], v[1]);
}

/* Kills a child and reaps it; its undo list is applied as it exits. */
static void kill_child(pid_t pid, const char *what)
{
	int status;

	if (kill(pid, SIGKILL) < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail("kill %s %d: %s, status %#x", what, pid, strerror(errno), status);
}

int main(int argc, char **argv)
{
	struct sembuf take = { 1, -1, SEM_UNDO }, give = { 1, 1, SEM_UNDO };
	unsigned short start[2] = { 1, 0 };
	char before[32], held[32], holder_killed[32], releaser_killed[32];
	pid_t holder, releaser;
	int sem, fds[2];

	if (snap_start(argc, argv))
		return 2;

	sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	if (sem < 0 || semctl(sem, 0, SETALL, start) < 0 || pipe(fds) < 0) {
		fail("make the set: %s", strerror(errno));
		return snap_done();
	}
	fflush(report);
	holder = child_op(sem, fds[1], 0, -1);
	releaser = child_op(sem, fds[1], 1, 2);
	if (!child_done(fds[0]) || !child_done(fds[0]))
		fail("a child's semop failed");
	if (semop(sem, &take, 1) < 0 || semop(sem, &give, 1) < 0)
		fail("the parent's semops: %s", strerror(errno));
	values(sem, held, sizeof(held));
	fprintf(report, "ready holder=%d releaser=%d sem=%d values=%s\n", holder, releaser, sem, held);
	fflush(report);
	snap_wait();

	values(sem, before, sizeof(before));
	kill_child(holder, "holder");
	values(sem, holder_killed, sizeof(holder_killed));
	kill_child(releaser, "releaser");
	values(sem, releaser_killed, sizeof(releaser_killed));
	fprintf(report, "after holder=%d releaser=%d sem=%d values=%s holder-killed=%s releaser-killed=%s\n",
		holder, releaser, sem, before, holder_killed, releaser_killed);
	semctl(sem, 0, IPC_RMID);
	return snap_done();
}
