/*
 * The demo application: a small multi-process service that uses every
 * kind of id vrid virtualizes, and checks itself across a checkpoint and
 * restore.  The root creates a semaphore, a shared counter and a message
 * queue under a fixed key, and forks workers that each add ROUNDS to the
 * counter, one at a time under the semaphore and at a slow pace, so that
 * the demo can checkpoint the service while it counts.  Each worker then
 * reports through the queue how much it added.
 *
 *   counter OUT [WORKERS] [ROUNDS]
 *
 * It writes its reports into the directory OUT, each file whole and
 * renamed, so that no file there is open while it is checkpointed:
 *
 *   ready       its pid, its objects' ids and its workers' pids
 *   progress-N  on the Nth SIGUSR1: how far the counter has got
 *   done        once every worker reported: what each added, the total,
 *               and PASS, or FAIL with each check that failed
 *
 * The checks use only what the root remembered before any checkpoint:
 * its pid, its workers' pids (waitpid must give them back), its objects'
 * ids (the key must still find them, the semaphore must read 1 again)
 * and the total (the shared counter and the workers' reports must both
 * reach it).  Then it waits for SIGTERM, removes its objects and exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY 0x5644		/* the same in every instance: vrid keeps them apart */
#define MAX_WORKERS 16
#define PACE_US 4000		/* between two additions of a worker */

struct report {
	long type;
	pid_t worker;
	long added;
};

static volatile sig_atomic_t stop, asked;
static const char *out;

static char text[4096];
static size_t used;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		asked++;
	else
		stop = 1;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* vsay adds to the report being gathered; publish writes it out. */
static void vsay(const char *fmt, va_list ap)
{
	int n = vsnprintf(text + used, sizeof(text) - used, fmt, ap);

	if (n > 0)
		used = used + n < sizeof(text) ? used + n : sizeof(text) - 1;
}

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

/* publish writes the report to OUT/name, whole, and starts afresh. */
static void publish(const char *name)
{
	char tmp[4096], path[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", out, name);
	snprintf(path, sizeof(path), "%s/%s", out, name);
	f = fopen(tmp, "w");
	if (!f || fwrite(text, 1, used, f) != used || fclose(f) != 0 || rename(tmp, path) != 0)
		die(path);
	used = 0;
}

/* semop, again when a signal cut it short (it did nothing then). */
static int sem_add(int sem, short n)
{
	struct sembuf op = { 0, n, 0 };
	int rc;

	while ((rc = semop(sem, &op, 1)) < 0 && errno == EINTR)
		;
	return rc;
}

static void work(int sem, long *counter, int queue, int rounds)
{
	struct report r = { .type = 1, .worker = getpid() };

	for (int i = 0; i < rounds; i++) {
		if (sem_add(sem, -1) < 0)
			die("semop");
		(*counter)++;
		r.added++;
		if (sem_add(sem, 1) < 0)
			die("semop");
		usleep(PACE_US);
	}
	while (msgsnd(queue, &r, sizeof(r) - sizeof(long), 0) < 0)
		if (errno != EINTR)
			die("msgsnd");
	exit(0);
}

/* collect takes every worker's report, answering SIGUSR1 meanwhile. */
static long collect(int queue, const long *counter, long want, int workers, struct report *got)
{
	long sum = 0;
	int progress = 0;

	for (int n = 0; n < workers;) {
		if (asked > progress) {
			progress = asked;
			say("counted %ld of %ld\n", *counter, want);
			char name[32];
			snprintf(name, sizeof(name), "progress-%d", progress);
			publish(name);
		}
		if (msgrcv(queue, &got[n], sizeof(got[n]) - sizeof(long), 0, IPC_NOWAIT) >= 0) {
			sum += got[n++].added;
			continue;
		}
		if (errno != ENOMSG && errno != EINTR)
			die("msgrcv");
		usleep(20000);
	}
	return sum;
}

static int failed;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	failed = 1;
	say("FAIL: ");
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	say("\n");
}

static int forked(pid_t pid, const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int workers = argc > 2 ? atoi(argv[2]) : 3, rounds = argc > 3 ? atoi(argv[3]) : 1500;
	struct sigaction sa = { .sa_handler = on_signal };
	pid_t self, pids[MAX_WORKERS], reaped;
	struct report got[MAX_WORKERS];
	int sem, shm, queue, status, nreaped = 0;
	long *counter, want, sum;

	if (argc < 2 || workers < 1 || workers > MAX_WORKERS || rounds < 1) {
		fprintf(stderr, "usage: counter OUT [WORKERS (1-%d)] [ROUNDS]\n", MAX_WORKERS);
		return 2;
	}
	out = argv[1];
	want = (long)workers * rounds;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	self = getpid();
	sem = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	shm = shmget(KEY, sizeof(long), IPC_CREAT | IPC_EXCL | 0600);
	queue = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	if (sem < 0 || shm < 0 || queue < 0)
		die("create the service's objects");
	if (semctl(sem, 0, SETVAL, 1) < 0 || (counter = shmat(shm, NULL, 0)) == (void *)-1)
		die("set up");
	say("service pid %d: semaphore %d, shared memory %d, queue %d (key 0x%x)\n", self, sem, shm, queue, KEY);
	for (int i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			work(sem, counter, queue, rounds);
		if (pids[i] < 0)
			die("fork");
		say("started worker %d to add %d\n", pids[i], rounds);
	}
	publish("ready");

	sum = collect(queue, counter, want, workers, got);
	while ((reaped = waitpid(-1, &status, 0)) > 0 || errno == EINTR)
		if (reaped > 0) {
			check(forked(reaped, pids, workers), "waitpid gave %d, not a worker it forked", reaped);
			check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d ended with status 0x%x", reaped, status);
			nreaped++;
		}
	for (int i = 0; i < workers; i++)
		say("worker %d added %ld\n", got[i].worker, got[i].added);
	say("counter = %ld (want %ld)\n", *counter, want);
	check(*counter == want, "the shared counter is %ld, want %ld", *counter, want);
	check(sum == want, "the workers added %ld in all, want %ld", sum, want);
	for (int i = 0; i < workers; i++)
		check(forked(got[i].worker, pids, workers), "a report from %d, not a worker it forked", got[i].worker);
	check(nreaped == workers, "reaped %d workers, want %d", nreaped, workers);
	check(getpid() == self, "its pid is %d, was %d", getpid(), self);
	check(semctl(sem, 0, GETVAL) == 1, "semaphore %d reads %d, want 1", sem, semctl(sem, 0, GETVAL));
	check(semget(KEY, 1, 0) == sem, "key 0x%x finds semaphore %d, want %d", KEY, semget(KEY, 1, 0), sem);
	check(shmget(KEY, 0, 0) == shm, "key 0x%x finds shared memory %d, want %d", KEY, shmget(KEY, 0, 0), shm);
	check(msgget(KEY, 0) == queue, "key 0x%x finds queue %d, want %d", KEY, msgget(KEY, 0), queue);
	say("%s\n", failed ? "FAIL" : "PASS");
	publish("done");

	while (!stop)
		pause();
	shmdt(counter);
	semctl(sem, 0, IPC_RMID);
	shmctl(shm, IPC_RMID, NULL);
	msgctl(queue, IPC_RMID, NULL);
	return failed;
}
