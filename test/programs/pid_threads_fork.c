/*
 * Threads of one process fork at once: the writer lock must keep them
 * apart (its thread word) and every child must record itself through a
 * lock description of its own.  Each child reports its getpid() over a
 * pipe; the parent's fork() must have returned the same virtual pid, and
 * no two live children may share one.
 */
#include "vt.h"

#include <pthread.h>

#define THREADS 6
#define FORKS 150

static int mismatches, failures;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *forker(void *unused)
{
	(void)unused;
	for (int i = 0; i < FORKS; i++) {
		int fds[2], status;
		pid_t child, reported = -1;

		MUST(pipe(fds) == 0);
		child = fork();
		if (child == 0) {
			pid_t self = getpid();

			if (write(fds[1], &self, sizeof(self)) != sizeof(self))
				_exit(2);
			_exit(0);
		}
		close(fds[1]);
		if (child < 0 || read(fds[0], &reported, sizeof(reported)) != sizeof(reported) ||
		    waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			pthread_mutex_lock(&mu);
			failures++;
			pthread_mutex_unlock(&mu);
		} else if (reported != child) {
			pthread_mutex_lock(&mu);
			mismatches++;
			pthread_mutex_unlock(&mu);
		}
		close(fds[0]);
	}
	return NULL;
}

int main(void)
{
	pthread_t threads[THREADS];

	for (int i = 0; i < THREADS; i++)
		MUST(pthread_create(&threads[i], NULL, forker, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		MUST(pthread_join(threads[i], NULL) == 0);
	OUT_INT("forks", THREADS * FORKS);
	OUT_INT("failures", failures);
	OUT_INT("mismatches", mismatches);
	OUT_INT("getpid", getpid());
	CHECK(failures == 0 && mismatches == 0);
	return vt_done();
}
