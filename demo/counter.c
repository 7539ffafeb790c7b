/*
 * The demo application: a small multi-process service that uses every
 * kind of id vrid virtualizes.  The root creates a semaphore, a shared
 * counter and a message queue under fixed keys, forks workers that add to
 * the counter under the semaphore and report through the queue, and then
 * keeps running until it is told to stop, so that its tables can be read.
 *
 *   counter [WORKERS] [ROUNDS]
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY 0x5644	/* the same in every instance: vrid keeps them apart */

struct report {
	long type;
	pid_t worker;
	long added;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void work(int sem, long *counter, int queue, int rounds)
{
	struct sembuf lock = { 0, -1, 0 }, unlock = { 0, 1, 0 };
	struct report r = { .type = 1, .worker = getpid() };

	for (int i = 0; i < rounds; i++) {
		if (semop(sem, &lock, 1) < 0)
			die("semop");
		(*counter)++;
		r.added++;
		if (semop(sem, &unlock, 1) < 0)
			die("semop");
	}
	if (msgsnd(queue, &r, sizeof(r) - sizeof(long), 0) < 0)
		die("msgsnd");
	exit(0);
}

int main(int argc, char **argv)
{
	int workers = argc > 1 ? atoi(argv[1]) : 3, rounds = argc > 2 ? atoi(argv[2]) : 10000;
	int sem, shm, queue, status;
	long *counter;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	sem = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	shm = shmget(KEY, sizeof(long), IPC_CREAT | IPC_EXCL | 0600);
	queue = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	if (sem < 0 || shm < 0 || queue < 0)
		die("create the service's objects");
	if (semctl(sem, 0, SETVAL, 1) < 0 || (counter = shmat(shm, NULL, 0)) == (void *)-1)
		die("set up");
	printf("service pid %d: semaphore %d, shared memory %d, queue %d (key 0x%x)\n",
	       getpid(), sem, shm, queue, KEY);
	for (int i = 0; i < workers; i++) {
		pid_t pid = fork();

		if (pid == 0)
			work(sem, counter, queue, rounds);
		if (pid < 0)
			die("fork");
		printf("started worker %d\n", pid);
	}
	for (int i = 0; i < workers; i++) {
		struct report r;

		if (msgrcv(queue, &r, sizeof(r) - sizeof(long), 0, 0) < 0)
			die("msgrcv");
		printf("worker %d added %ld\n", r.worker, r.added);
	}
	while (waitpid(-1, &status, 0) > 0)
		;
	printf("counter = %ld (want %ld)\n", *counter, (long)workers * rounds);
	printf("ready\n");
	while (!stop)
		pause();
	shmdt(counter);
	semctl(sem, 0, IPC_RMID);
	shmctl(shm, IPC_RMID, NULL);
	msgctl(queue, IPC_RMID, NULL);
	return 0;
}
