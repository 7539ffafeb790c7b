/*
 * ckpt: a container's program that checks itself across a checkpoint and
 * restore, zdtm-style, through the ids it remembered.
 *
 *   ckpt OUT KEY
 *
 * It makes a semaphore set of two (KEY, the first set to 7), a segment of
 * 4097 bytes (KEY+1) and one of 1 MiB + 8 KiB (private), both filled with
 * a pattern, and a queue (KEY+2) holding one message of type 5, "hello".
 * It forks a child that keeps both segments attached, and writes
 * OUT/ready.  Each SIGUSR1 makes it check itself and write OUT/check-N
 * (N from 1), one value a line:
 *
 *   pid=P            its getpid()
 *   kill=ok          kill(child, SIGUSR1) on the pid it remembered
 *   child=C ppid=P   the child's getpid() and getppid(), which it writes
 *                    into the first segment and posts on the second
 *                    semaphore (a semop the parent waits in)
 *   sem=V            the first semaphore's value (7 at the first check),
 *                    then raised by one
 *   shm=ok           both segments intact, and shared with the child
 *   keys=ok          semget, shmget and msgget of the keys find the ids
 *                    it holds
 *   msg=hello        the message, taken and put back
 *   thread=ok        pthread_kill(T, 0) of a thread it started: glibc
 *                    signals the tid it cached, which a restore onto new
 *                    pids must have patched
 *
 * A check that fails prints what it saw instead.  SIGTERM ends it.  The
 * report files are written whole and renamed, and nothing in OUT stays
 * open, so that the directory never holds a file CRIU must dump.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#define NSEG 2

static const size_t sizes[NSEG] = { 4097, (1 << 20) + 8192 };

static volatile sig_atomic_t woken;

static void on_usr(int sig)
{
	(void)sig;
	woken = 1;
}

static unsigned char pattern(int seg, size_t i)
{
	return (unsigned char)(i * (seg + 5) + seg * 13 + 3);
}

/* The child's answer, in the first segment's first words. */
struct words { volatile int32_t pid, ppid; };

struct msg { long type; char text[16]; };

static char report[1024];
static size_t used;

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	used += vsnprintf(report + used, sizeof(report) - used, fmt, ap);
	va_end(ap);
	if (used >= sizeof(report))
		used = sizeof(report) - 1;
}

static void write_file(const char *dir, const char *name)
{
	char tmp[512], path[512];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(tmp, "w");
	if (!f)
		exit(3);
	fputs(report, f);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		exit(3);
	used = 0;
	report[0] = 0;
}

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int semop1(int id, unsigned short num, short op)
{
	struct sembuf b = { .sem_num = num, .sem_op = op };

	return semop(id, &b, 1);
}

static void child_loop(int sem, struct words *w)
{
	sigset_t none;

	sigemptyset(&none);
	for (;;) {
		while (!woken)
			sigsuspend(&none);
		woken = 0;
		w->pid = getpid();
		w->ppid = getppid();
		semop1(sem, 1, 1);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr };
	unsigned char *at[NSEG];
	int sem, shm[NSEG], msq, checks = 0;
	struct msg m = { .type = 5, .text = "hello" };
	sigset_t usr, none;
	pid_t self, child;
	pthread_t thread;
	key_t key;

	if (argc != 3)
		return 2;
	key = (key_t)strtol(argv[2], NULL, 0);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr, NULL);
	sigemptyset(&none);

	sem = semget(key, 2, IPC_CREAT | IPC_EXCL | 0600);
	if (sem < 0 || semctl(sem, 0, SETVAL, 7) < 0) {
		say("semget=%s\n", strerrorname_np(errno));
		write_file(argv[1], "ready");
		return 1;
	}
	for (int s = 0; s < NSEG; s++) {
		shm[s] = shmget(s == 0 ? key + 1 : IPC_PRIVATE, sizes[s], IPC_CREAT | IPC_EXCL | 0600);
		at[s] = shm[s] < 0 ? (void *)-1 : shmat(shm[s], NULL, 0);
		if (at[s] == (void *)-1) {
			say("shm%d=%s\n", s, strerrorname_np(errno));
			write_file(argv[1], "ready");
			return 1;
		}
		for (size_t i = sizeof(struct words); i < sizes[s]; i++)
			at[s][i] = pattern(s, i);
	}
	msq = msgget(key + 2, IPC_CREAT | IPC_EXCL | 0600);
	if (msq < 0 || msgsnd(msq, &m, strlen(m.text) + 1, 0) < 0) {
		say("msg=%s\n", strerrorname_np(errno));
		write_file(argv[1], "ready");
		return 1;
	}
	self = getpid();
	child = fork();
	if (child == 0)
		child_loop(sem, (struct words *)at[0]);
	if (child < 0) {
		say("fork=%s\n", strerrorname_np(errno));
		write_file(argv[1], "ready");
		return 1;
	}
	if ((errno = pthread_create(&thread, NULL, idle, NULL)) != 0) {
		say("thread=%s\n", strerrorname_np(errno));
		write_file(argv[1], "ready");
		return 1;
	}
	say("ready pid=%d child=%d\n", self, child);
	write_file(argv[1], "ready");

	for (;;) {
		struct words *w = (struct words *)at[0];
		char name[32];
		int val, bad = -1;

		while (!woken)
			sigsuspend(&none);
		woken = 0;
		say("pid=%d\n", getpid());
		w->pid = w->ppid = 0;
		if (kill(child, SIGUSR1) < 0)
			say("kill=%s\n", strerrorname_np(errno));
		else
			say("kill=ok\n");
		if (semop1(sem, 1, -1) < 0)
			say("semop=%s\n", strerrorname_np(errno));
		say("child=%d ppid=%d\n", w->pid, w->ppid);
		val = semctl(sem, 0, GETVAL);
		say("sem=%d\n", val < 0 ? -errno : val);
		semop1(sem, 0, 1);
		for (int s = 0; s < NSEG && bad < 0; s++)
			for (size_t i = sizeof(struct words); i < sizes[s]; i++)
				if (at[s][i] != pattern(s, i)) {
					bad = s;
					say("shm=segment %d byte %zu is %d\n", s, i, at[s][i]);
					break;
				}
		if (bad < 0)
			say("shm=ok\n");
		if (semget(key, 0, 0) == sem && shmget(key + 1, 0, 0) == shm[0] && msgget(key + 2, 0) == msq)
			say("keys=ok\n");
		else
			say("keys=sem %d shm %d msg %d, held %d %d %d\n", semget(key, 0, 0), shmget(key + 1, 0, 0),
			    msgget(key + 2, 0), sem, shm[0], msq);
		memset(&m, 0, sizeof(m));
		if (msgrcv(msq, &m, sizeof(m.text), 5, IPC_NOWAIT) < 0) {
			say("msg=%s\n", strerrorname_np(errno));
		} else {
			say("msg=%s\n", m.text);
			msgsnd(msq, &m, strlen(m.text) + 1, 0);
		}
		errno = pthread_kill(thread, 0);
		say("thread=%s\n", errno ? strerrorname_np(errno) : "ok");
		snprintf(name, sizeof(name), "check-%d", ++checks);
		write_file(argv[1], name);
	}
}
