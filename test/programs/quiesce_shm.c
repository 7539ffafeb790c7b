/*
 * System V shm across a quiesce (test/core/quiesce_test.go): three
 * segments of different sizes, one with a fixed key, attached by the root
 * and inherited by a child, with a pattern in each; a thread of the root
 * keeps writing the pattern into the largest meanwhile.  The test
 * detaches, dumps and attaches the chain between "ready=1" and the line
 * "check" on stdin.  Then each process checks its patterns, the child
 * writes new ones, and the root reads them.
 *
 * With the argument "block", the root blocks the quiesce signal through a
 * raw rt_sigprocmask (no wrapper lets it) before it makes the thread, and
 * so never detaches, until the line "unblock".
 */
#include "vt.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#define NSEG 3
#define QUIESCE_SIGNAL (SIGRTMAX - 1)

static const size_t sizes[NSEG] = { 4096, 3 * 4096 + 100, 256 * 1024 };
static const key_t keys[NSEG] = { IPC_PRIVATE, 0x5151, IPC_PRIVATE };
static unsigned char *seg[NSEG];
static int stop_writer, writer_ran;

static unsigned char pattern(int s, size_t i, int round)
{
	return (unsigned char)(i * (round ? 13 : 7) + (size_t)s + (size_t)round);
}

static void fill(int s, int round)
{
	for (size_t i = 0; i < sizes[s]; i++)
		seg[s][i] = pattern(s, i, round);
}

static const char *holds(int s, int round)
{
	for (size_t i = 0; i < sizes[s]; i++)
		if (seg[s][i] != pattern(s, i, round))
			return "bad";
	return "ok";
}

static void *writer(void *arg)
{
	long passes = 0;

	(void)arg;
	while (!__atomic_load_n(&stop_writer, __ATOMIC_ACQUIRE)) {
		fill(NSEG - 1, 0);
		passes++;
		__atomic_store_n(&writer_ran, 1, __ATOMIC_RELEASE);
		usleep(200);
	}
	return (void *)passes;
}

static void block_signal(int how)
{
	unsigned long long set = 1ull << (QUIESCE_SIGNAL - 1);

	MUST(syscall(SYS_rt_sigprocmask, how, &set, NULL, 8) == 0);
}

static void child(int cmd, int reply)
{
	char label[32], c;

	MUST(read(cmd, &c, 1) == 1 && c == 'c');
	for (int s = 0; s < NSEG; s++) {
		snprintf(label, sizeof(label), "child.check.%d", s);
		OUT_STR(label, holds(s, 0));
		fill(s, 1);
	}
	fflush(stdout);
	MUST(write(reply, "d", 1) == 1);
	MUST(read(cmd, &c, 1) == 1 && c == 'x');
	vt_child_exit(0);
}

int main(int argc, char **argv)
{
	int block = argc > 1 && strcmp(argv[1], "block") == 0;
	int to_child[2], from_child[2], ids[NSEG];
	char line[64], label[32], c;
	pthread_t thread;
	void *passes;
	pid_t pid;

	for (int s = 0; s < NSEG; s++) {
		ids[s] = shmget(keys[s], sizes[s], IPC_CREAT | IPC_EXCL | 0600);
		MUST(ids[s] >= 0);
		seg[s] = shmat(ids[s], NULL, 0);
		MUST(seg[s] != (void *)-1);
		fill(s, 0);
	}
	MUST(pipe(to_child) == 0 && pipe(from_child) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0)
		child(to_child[0], from_child[1]);
	if (block)
		block_signal(SIG_BLOCK);
	MUST(pthread_create(&thread, NULL, writer, NULL) == 0);
	/* Ready once the writer writes: "check" may come at once after. */
	while (!__atomic_load_n(&writer_ran, __ATOMIC_ACQUIRE))
		usleep(100);
	OUT_INT("ready", 1);
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "unblock\n") == 0) {
			block_signal(SIG_UNBLOCK);
			OUT_INT("unblocked", 1);
			fflush(stdout);
			continue;
		}
		if (strcmp(line, "check\n") == 0)
			break;
	}
	__atomic_store_n(&stop_writer, 1, __ATOMIC_RELEASE);
	MUST(pthread_join(thread, &passes) == 0);
	OUT_INT("writer.ran", (long)passes > 0);
	for (int s = 0; s < NSEG; s++) {
		snprintf(label, sizeof(label), "root.check.%d", s);
		OUT_STR(label, holds(s, 0));
	}
	fflush(stdout);
	MUST(write(to_child[1], "c", 1) == 1);
	MUST(read(from_child[0], &c, 1) == 1 && c == 'd');
	for (int s = 0; s < NSEG; s++) {
		snprintf(label, sizeof(label), "root.sees_child.%d", s);
		OUT_STR(label, holds(s, 1));
	}
	MUST(write(to_child[1], "x", 1) == 1);
	OUT_INT("child.status", vt_exit_code(vt_wait(pid)));
	for (int s = 0; s < NSEG; s++)
		CHECK(shmctl(ids[s], IPC_RMID, NULL) == 0);
	return vt_done();
}
