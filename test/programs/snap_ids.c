/*
 * snap_ids: a chain that remembers its ids before a snapshot and checks
 * them after the restore (zdtm-style).  It makes a semaphore set with a
 * fixed key, a private queue with two messages and a private segment
 * with a pattern (not attached across the snapshot), forks a child that
 * waits in pause(), prints "ready ..." to the report file and waits for
 * SIGUSR1.  Then it checks that every id it holds still works and means
 * the same: its pid, its child's, the values, the messages in order, the
 * segment's bytes, a signal to the child and its exit status.  It prints
 * "PASS" or a "FAIL" line per broken check.
 * Usage: snap_ids REPORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap.h"

#define SEG_SIZE (3 * 4096 + 100)


struct msgbuf_ { long mtype; char text[32]; };

/*
 * A restored process forks, and its child execs a shell that must see
 * the parent's virtual pid as $PPID: the layer followed its table to the
 * restored chain, and hands the exec'd program the chain's new table.
 */
static void fork_and_exec_after(pid_t pid)
{
	char want[16];
	int status;
	pid_t child;

	snprintf(want, sizeof(want), "%d", pid);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		fail("fork after restore: %s", strerror(errno));
		return;
	}
	if (child == 0) {
		if (getppid() != pid)
			_exit(9);
		execl("/bin/sh", "sh", "-c", "[ \"$PPID\" = \"$1\" ] && exit 7 || exit 8", "sh", want, (char *)NULL);
		_exit(10);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 7)
		fail("child forked after restore (%d): status %#x", child, status);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr };
	sigset_t usr;
	pid_t pid, child;
	int sem, msg, shm, status;
	unsigned short vals[2] = { 3, 7 }, got[2];
	struct msgbuf_ m1 = { 5, "first" }, m2 = { 9, "second" }, in;
	unsigned char *seg;

	if (argc != 2 || !(report = fopen(argv[1], "a")))
		return 2;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr, NULL);

	pid = getpid();
	sem = semget(0x5151, 2, IPC_CREAT | IPC_EXCL | 0600);
	msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	shm = shmget(IPC_PRIVATE, SEG_SIZE, IPC_CREAT | 0600);
	if (sem < 0 || msg < 0 || shm < 0) {
		fail("create sem=%d msg=%d shm=%d: %s", sem, msg, shm, strerror(errno));
		return 1;
	}
	semctl(sem, 0, SETALL, vals);
	msgsnd(msg, &m1, sizeof(m1.text), 0);
	msgsnd(msg, &m2, sizeof(m2.text), 0);
	seg = shmat(shm, NULL, 0);
	for (int i = 0; i < SEG_SIZE; i++)
		seg[i] = (unsigned char)(i * 7 + 1);
	shmdt(seg);

	fflush(report);
	child = fork();
	if (child == 0) {
		snap_wait();
		_exit(getppid() == pid ? 42 : 43);
	}
	fprintf(report, "ready pid=%d child=%d sem=%d msg=%d shm=%d\n", pid, child, sem, msg, shm);
	fflush(report);
	snap_wait();

	if (getpid() != pid)
		fail("getpid %d, was %d", getpid(), pid);
	if (semctl(sem, 0, GETALL, got) < 0 || got[0] != 3 || got[1] != 7)
		fail("sem %d values %d %d: %s", sem, got[0], got[1], strerror(errno));
	if (semget(0x5151, 0, 0) != sem)
		fail("semget(0x5151) %d, want %d: %s", semget(0x5151, 0, 0), sem, strerror(errno));
	if (msgrcv(msg, &in, sizeof(in.text), 0, IPC_NOWAIT) < 0 || in.mtype != 5 || strcmp(in.text, "first"))
		fail("msg %d first message: type %ld %s", msg, in.mtype, strerror(errno));
	if (msgrcv(msg, &in, sizeof(in.text), 0, IPC_NOWAIT) < 0 || in.mtype != 9 || strcmp(in.text, "second"))
		fail("msg %d second message: type %ld %s", msg, in.mtype, strerror(errno));
	seg = shmat(shm, NULL, 0);
	if (seg == (void *)-1) {
		fail("shmat %d: %s", shm, strerror(errno));
	} else {
		for (int i = 0; i < SEG_SIZE; i++)
			if (seg[i] != (unsigned char)(i * 7 + 1)) {
				fail("shm %d byte %d is %d", shm, i, seg[i]);
				break;
			}
		shmdt(seg);
	}
	if (kill(child, SIGUSR2) < 0)
		fail("kill child %d: %s", child, strerror(errno));
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 42)
		fail("waitpid child %d: status %#x %s", child, status, strerror(errno));
	fork_and_exec_after(pid);
	semctl(sem, 0, IPC_RMID);
	msgctl(msg, IPC_RMID, NULL);
	shmctl(shm, IPC_RMID, NULL);
	fprintf(report, "after pid=%d child=%d sem=%d msg=%d shm=%d\n", getpid(), child, sem, msg, shm);
	return snap_done();
}
