/*
 * ns per call of the interposed calls on hot paths, native against under
 * vrid, side by side in one process: run under `vrid run`, each call goes
 * once through the layer (the symbol as linked) and once straight to libc
 * (the same symbol looked up in libc.so.6 itself), in alternating blocks.
 * The IPC objects of the native side are made natively, so each side
 * names its own with the ids it knows.  Run without vrid, both sides are
 * libc: a check that the method is fair.
 *
 * Output: "name native_ns vrid_ns" per call, each the fastest block.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One side's functions and the objects it made. */
struct side {
	pid_t (*getpid)(void);
	pid_t (*gettid)(void);
	int (*kill)(pid_t, int);
	pid_t (*fork)(void);
	pid_t (*waitpid)(pid_t, int *, int);
	int (*semget)(key_t, int, int);
	int (*semop)(int, struct sembuf *, size_t);
	int (*semctl)(int, int, int, ...);
	int (*shmget)(key_t, size_t, int);
	void *(*shmat)(int, const void *, int);
	int (*shmdt)(const void *);
	int (*shmctl)(int, int, struct shmid_ds *);
	int (*msgget)(key_t, int);
	int (*msgsnd)(int, const void *, size_t, int);
	ssize_t (*msgrcv)(int, void *, size_t, long, int);
	int (*msgctl)(int, int, struct msqid_ds *);
	int (*fcntl)(int, int, ...);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	pid_t self;
	int sem, shm, msg;
	int sock[2];
};

static struct side linked = {
	getpid, gettid, kill, fork, waitpid, semget, semop, semctl,
	shmget, shmat, shmdt, shmctl, msgget, msgsnd, msgrcv, msgctl,
	fcntl, sendmsg, recvmsg,
};
static struct side native;
static volatile long sink;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void *libc_fn(void *libc, const char *name)
{
	void *fn = dlsym(libc, name);

	if (!fn)
		die(name);
	return fn;
}

static void resolve_native(void)
{
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);

	if (!libc)
		die("dlopen libc.so.6");
	native.getpid = libc_fn(libc, "getpid");
	native.gettid = libc_fn(libc, "gettid");
	native.kill = libc_fn(libc, "kill");
	native.fork = libc_fn(libc, "fork");
	native.waitpid = libc_fn(libc, "waitpid");
	native.semget = libc_fn(libc, "semget");
	native.semop = libc_fn(libc, "semop");
	native.semctl = libc_fn(libc, "semctl");
	native.shmget = libc_fn(libc, "shmget");
	native.shmat = libc_fn(libc, "shmat");
	native.shmdt = libc_fn(libc, "shmdt");
	native.shmctl = libc_fn(libc, "shmctl");
	native.msgget = libc_fn(libc, "msgget");
	native.msgsnd = libc_fn(libc, "msgsnd");
	native.msgrcv = libc_fn(libc, "msgrcv");
	native.msgctl = libc_fn(libc, "msgctl");
	native.fcntl = libc_fn(libc, "fcntl");
	native.sendmsg = libc_fn(libc, "sendmsg");
	native.recvmsg = libc_fn(libc, "recvmsg");
}

static void make_objects(struct side *s)
{
	s->self = s->getpid();
	s->sem = s->semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	s->shm = s->shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	s->msg = s->msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (s->sem < 0 || s->shm < 0 || s->msg < 0)
		die("create IPC objects");
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, s->sock) < 0)
		die("socketpair");
}

static void remove_objects(struct side *s)
{
	s->semctl(s->sem, 0, IPC_RMID);
	s->shmctl(s->shm, IPC_RMID, NULL);
	s->msgctl(s->msg, IPC_RMID, NULL);
	close(s->sock[0]);
	close(s->sock[1]);
}

static void run_getpid(struct side *s, long n)
{
	for (long i = 0; i < n; i++)
		sink += s->getpid();
}

static void run_gettid(struct side *s, long n)
{
	for (long i = 0; i < n; i++)
		sink += s->gettid();
}

static void run_kill0(struct side *s, long n)
{
	for (long i = 0; i < n; i++)
		if (s->kill(s->self, 0) < 0)
			die("kill");
}

static void run_fork_wait(struct side *s, long n)
{
	for (long i = 0; i < n; i++) {
		pid_t child = s->fork();
		int status;

		if (child == 0)
			_exit(0);
		if (child < 0 || s->waitpid(child, &status, 0) != child)
			die("fork+waitpid");
	}
}

static void run_semop(struct side *s, long n)
{
	struct sembuf up = { 0, 1, 0 }, down = { 0, -1, 0 };

	for (long i = 0; i < n; i += 2)
		if (s->semop(s->sem, &up, 1) < 0 || s->semop(s->sem, &down, 1) < 0)
			die("semop");
}

static void run_semctl_getval(struct side *s, long n)
{
	for (long i = 0; i < n; i++)
		sink += s->semctl(s->sem, 0, GETVAL);
}

static void run_shmat_shmdt(struct side *s, long n)
{
	for (long i = 0; i < n; i++) {
		void *p = s->shmat(s->shm, NULL, 0);

		if (p == (void *)-1 || s->shmdt(p) < 0)
			die("shmat+shmdt");
	}
}

static void run_msgsnd_msgrcv(struct side *s, long n)
{
	struct { long type; char text[16]; } m = { 1, "x" };

	for (long i = 0; i < n; i++)
		if (s->msgsnd(s->msg, &m, sizeof(m.text), 0) < 0 ||
		    s->msgrcv(s->msg, &m, sizeof(m.text), 0, 0) < 0)
			die("msgsnd+msgrcv");
}

static void run_fcntl_getfl(struct side *s, long n)
{
	for (long i = 0; i < n; i++)
		sink += s->fcntl(s->sock[0], F_GETFL);
}

/* A datagram with no control data: the common case the layer must not slow. */
static void run_sendmsg_recvmsg(struct side *s, long n)
{
	char byte = 'x';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	for (long i = 0; i < n; i++)
		if (s->sendmsg(s->sock[0], &msg, 0) != 1 || s->recvmsg(s->sock[1], &msg, 0) != 1)
			die("sendmsg+recvmsg");
}

static const struct {
	const char *name;
	long block;	/* calls per timed block */
	void (*run)(struct side *, long);
} benches[] = {
	{ "getpid", 20000, run_getpid },
	{ "gettid", 20000, run_gettid },
	{ "kill(pid,0)", 20000, run_kill0 },
	{ "fork+waitpid", 40, run_fork_wait },
	{ "semop", 20000, run_semop },
	{ "semctl(GETVAL)", 20000, run_semctl_getval },
	{ "shmat+shmdt", 4000, run_shmat_shmdt },
	{ "msgsnd+msgrcv", 10000, run_msgsnd_msgrcv },
	{ "fcntl(F_GETFL)", 20000, run_fcntl_getfl },
	{ "sendmsg+recvmsg", 10000, run_sendmsg_recvmsg },
};

static double block_ns(struct side *s, void (*run)(struct side *, long), long n)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	run(s, n);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 40;

	resolve_native();
	make_objects(&native);
	make_objects(&linked);
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		double best_native = 1e18, best_linked = 1e18;

		benches[i].run(&native, benches[i].block / 10);	/* warm up both */
		benches[i].run(&linked, benches[i].block / 10);
		for (int r = 0; r < rounds; r++) {
			/* Alternate which side goes first, so neither always follows the other. */
			struct side *first = r % 2 ? &linked : &native;
			struct side *second = r % 2 ? &native : &linked;
			double t1 = block_ns(first, benches[i].run, benches[i].block);
			double t2 = block_ns(second, benches[i].run, benches[i].block);
			double tn = first == &native ? t1 : t2, tl = first == &native ? t2 : t1;

			if (tn < best_native)
				best_native = tn;
			if (tl < best_linked)
				best_linked = tl;
		}
		printf("%s %.1f %.1f\n", benches[i].name, best_native, best_linked);
	}
	remove_objects(&native);
	remove_objects(&linked);
	return 0;
}
