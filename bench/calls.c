/*
 * ns per call of the interposed calls that sit on hot paths.  Run it
 * natively and under vrid, side by side: bench/calls.sh does.
 * Output: one "name ns" line per call.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Each bench runs n iterations and returns the total calls it made. */
struct bench {
	const char *name;
	long n;
	void (*run)(long n);
};

static pid_t self;
static int sem_id, shm_id, msg_id;
static volatile long sink;

static void bench_getpid(long n)
{
	for (long i = 0; i < n; i++)
		sink += getpid();
}

static void bench_gettid(long n)
{
	for (long i = 0; i < n; i++)
		sink += gettid();
}

static void bench_kill0(long n)
{
	for (long i = 0; i < n; i++)
		if (kill(self, 0) < 0)
			die("kill");
}

static void bench_fork_wait(long n)
{
	for (long i = 0; i < n; i++) {
		pid_t child = fork();
		int status;

		if (child == 0)
			_exit(0);
		if (child < 0 || waitpid(child, &status, 0) != child)
			die("fork+waitpid");
	}
}

static void bench_semop(long n)
{
	struct sembuf up = { 0, 1, 0 }, down = { 0, -1, 0 };

	for (long i = 0; i < n; i += 2)
		if (semop(sem_id, &up, 1) < 0 || semop(sem_id, &down, 1) < 0)
			die("semop");
}

static void bench_semctl_getval(long n)
{
	for (long i = 0; i < n; i++)
		sink += semctl(sem_id, 0, GETVAL);
}

static void bench_shmat_shmdt(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = shmat(shm_id, NULL, 0);

		if (p == (void *)-1 || shmdt(p) < 0)
			die("shmat+shmdt");
	}
}

static void bench_msgsnd_msgrcv(long n)
{
	struct { long type; char text[16]; } msg = { 1, "x" };

	for (long i = 0; i < n; i++)
		if (msgsnd(msg_id, &msg, sizeof(msg.text), 0) < 0 ||
		    msgrcv(msg_id, &msg, sizeof(msg.text), 0, 0) < 0)
			die("msgsnd+msgrcv");
}

static const struct bench benches[] = {
	{ "getpid", 2000000, bench_getpid },
	{ "gettid", 2000000, bench_gettid },
	{ "kill(pid,0)", 1000000, bench_kill0 },
	{ "fork+waitpid", 2000, bench_fork_wait },
	{ "semop", 1000000, bench_semop },
	{ "semctl(GETVAL)", 1000000, bench_semctl_getval },
	{ "shmat+shmdt", 200000, bench_shmat_shmdt },
	{ "msgsnd+msgrcv", 500000, bench_msgsnd_msgrcv },
};

int main(int argc, char **argv)
{
	double scale = argc > 1 ? atof(argv[1]) : 1.0;

	self = getpid();
	sem_id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	shm_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	msg_id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (sem_id < 0 || shm_id < 0 || msg_id < 0)
		die("create IPC objects");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		long n = (long)(benches[i].n * scale);
		double t0;

		if (n < 2)
			n = 2;
		benches[i].run(n / 10);	/* warm up */
		t0 = now_ns();
		benches[i].run(n);
		printf("%s %.1f\n", benches[i].name, (now_ns() - t0) / n);
	}
	semctl(sem_id, 0, IPC_RMID);
	shmctl(shm_id, IPC_RMID, NULL);
	msgctl(msg_id, IPC_RMID, NULL);
	return 0;
}
