/*
 * sem_undo_record: semops the layer records SEM_UNDO adjustments for, in
 * steps; it prints "ready", then after each step "step N" to the report
 * file, and waits for SIGUSR1 while the test reads the tables.
 *  1. set A = {5, 5, 5}.  A child (forked first) takes 2 from A0 and 1
 *     from A1; the parent takes 1 from A0 and adds 2 to A1 (semop), and a
 *     thread of the parent takes 1 from A2 (semtimedop): the child
 *     inherits nothing, the thread counts as its process.  A semop
 *     without SEM_UNDO, and one that fails, record nothing.
 *  2. SETVAL A0 clears everyone's adjustment of A0; the child is killed
 *     and reaped, which drops its own.
 *  3. SETALL A clears the rest; the parent takes 1 from A1 again, makes
 *     set B and adds 1 to B0, then removes A (IPC_RMID).
 *  4. The parent takes back 1 from B0: its adjustment is 0, and goes.
 * Usage: sem_undo_record REPORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snap.h"

static int set_a;

static void op(int sem, unsigned short num, short value, short flags)
{
	struct sembuf sb = { num, value, flags };

	if (semop(sem, &sb, 1) < 0)
		fail("semop sem %d [%u] %d: %s", sem, num, value, strerror(errno));
}

static void *thread_op(void *unused)
{
	struct sembuf sb = { 2, -1, SEM_UNDO };
	struct timespec ts = { 1, 0 };

	(void)unused;
	if (semtimedop(set_a, &sb, 1, &ts) < 0)
		fail("semtimedop: %s", strerror(errno));
	return NULL;
}

static void step(int n)
{
	fprintf(report, "step %d\n", n);
	fflush(report);
	snap_wait();
}

int main(int argc, char **argv)
{
	unsigned short five[3] = { 5, 5, 5 };
	struct sembuf too_much = { 0, -100, SEM_UNDO | IPC_NOWAIT };
	int fds[2], set_b, status;
	pthread_t thread;
	pid_t child;
	char c;

	if (snap_start(argc, argv))
		return 2;
	set_a = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
	if (set_a < 0 || semctl(set_a, 0, SETALL, five) < 0 || pipe(fds) < 0) {
		fail("make set A: %s", strerror(errno));
		return snap_done();
	}
	fprintf(report, "ready\n");
	fflush(report);
	child = fork();
	if (child == 0) {
		op(set_a, 0, -2, SEM_UNDO);
		op(set_a, 1, -1, SEM_UNDO);
		if (write(fds[1], "y", 1) != 1)
			_exit(3);
		for (;;)
			pause();
	}
	if (read(fds[0], &c, 1) != 1)
		fail("the child did not make its semops");
	op(set_a, 0, -1, SEM_UNDO);
	op(set_a, 1, 2, SEM_UNDO);
	op(set_a, 1, 1, 0);
	if (semop(set_a, &too_much, 1) == 0 || errno != EAGAIN)
		fail("a semop of -100 on 2: %s", strerror(errno));
	if (pthread_create(&thread, NULL, thread_op, NULL) != 0 || pthread_join(thread, NULL) != 0)
		fail("thread");
	step(1);

	if (semctl(set_a, 0, SETVAL, 4) < 0)
		fail("SETVAL: %s", strerror(errno));
	if (kill(child, SIGKILL) < 0 || waitpid(child, &status, 0) != child)
		fail("kill the child: %s", strerror(errno));
	step(2);

	if (semctl(set_a, 0, SETALL, five) < 0)
		fail("SETALL: %s", strerror(errno));
	op(set_a, 1, -1, SEM_UNDO);
	set_b = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	op(set_b, 0, 1, SEM_UNDO);
	if (semctl(set_a, 0, IPC_RMID) < 0)
		fail("IPC_RMID: %s", strerror(errno));
	step(3);

	op(set_b, 0, -1, SEM_UNDO);
	step(4);
	semctl(set_b, 0, IPC_RMID);
	return snap_done();
}
