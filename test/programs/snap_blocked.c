/*
 * snap_blocked: calls blocked at snapshot time stay blocked after the
 * restore and wake on their event, zdtm-style.  Child A waits in semop,
 * B in msgrcv, C in waitpid for its child G, which waits in pause; the
 * root waits in sigsuspend for SIGUSR1.  After the restore the root finds
 * none of them done, then gives each its event in turn and wants each to
 * end then, with its own status.
 * Usage: snap_blocked REPORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <unistd.h>

#include "snap.h"


struct msg { long type; char text[8]; };

static void expect_exit(pid_t pid, const char *what, int code)
{
	int status = 0;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != code)
		fail("%s %d: status %#x, want exit %d", what, pid, status, code);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr };
	int sem, msg, fds[2], status;
	pid_t a, b, c, g = 0;
	sigset_t usr, none;
	struct msg m = { 3, "go" };

	if (argc != 2 || !(report = fopen(argv[1], "a")))
		return 2;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr, NULL);
	sigemptyset(&none);
	sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (sem < 0 || msg < 0 || pipe(fds) < 0)
		return 2;
	fflush(report);
	if ((a = fork()) == 0)
		_exit(semop(sem, &(struct sembuf){ .sem_num = 0, .sem_op = -1 }, 1) == 0 ? 10 : 11);
	if ((b = fork()) == 0) {
		struct msg in = { 0, "" };

		_exit(msgrcv(msg, &in, sizeof(in.text), 3, 0) > 0 && !strcmp(in.text, "go") ? 20 : 21);
	}
	if ((c = fork()) == 0) {
		if ((g = fork()) == 0) {
			signal(SIGUSR2, SIG_DFL);	/* which ends it */
			pause();
			_exit(99);
		}
		if (write(fds[1], &g, sizeof(g)) != sizeof(g))
			_exit(32);
		_exit(waitpid(g, &status, 0) == g && WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR2 ? 31 : 33);
	}
	if (read(fds[0], &g, sizeof(g)) != sizeof(g))
		return 2;
	usleep(100000);	/* let them block; a check below finds any that did not */
	fprintf(report, "ready a=%d b=%d c=%d g=%d sem=%d msg=%d\n", a, b, c, g, sem, msg);
	fflush(report);
	while (!woken)
		sigsuspend(&none);

	if (waitpid(-1, &status, WNOHANG) != 0)
		fail("a child ended before its event");
	semop(sem, &(struct sembuf){ .sem_num = 0, .sem_op = 1 }, 1);
	expect_exit(a, "semop waiter", 10);
	msgsnd(msg, &m, sizeof(m.text), 0);
	expect_exit(b, "msgrcv waiter", 20);
	if (kill(g, SIGUSR2) < 0)
		fail("kill %d: %s", g, strerror(errno));
	expect_exit(c, "waitpid waiter", 31);
	semctl(sem, 0, IPC_RMID);
	msgctl(msg, IPC_RMID, NULL);
	fprintf(report, "after a=%d b=%d c=%d g=%d sem=%d msg=%d\n", a, b, c, g, sem, msg);
	return snap_done();
}
