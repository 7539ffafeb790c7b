/*
 * Threads: gettid gives each thread the next virtual id, tgkill reaches a
 * thread by it, and a thread's id is forgotten when the thread exits.
 */
#include "vt.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct seen {
	pid_t tid, pid, raw_tid, again;
	int proc_task_stat;
	int sig, sender;
};

static sigset_t usr1;
static pthread_barrier_t ready;

static void *record(void *arg)
{
	struct seen *s = arg;
	char path[64];
	struct stat st;
	siginfo_t si;

	s->tid = gettid();
	s->pid = getpid();
	s->raw_tid = (pid_t)syscall(SYS_gettid);
	s->again = gettid();
	snprintf(path, sizeof(path), "/proc/%d/task/%d", s->pid, s->tid);
	s->proc_task_stat = stat(path, &st);
	pthread_barrier_wait(&ready);
	/* main sends SIGUSR1 to this thread by its virtual tid */
	s->sig = sigwaitinfo(&usr1, &si);
	s->sender = si.si_pid;
	return NULL;
}

/* A thread forks: the child is a process of its own, with the next id. */
static void *forker(void *arg)
{
	pid_t *child = arg;

	*child = vt_fork();
	if (*child == 0) {
		OUT_INT("thread_fork.child.getpid", getpid());
		OUT_INT("thread_fork.child.gettid", gettid());
		OUT_INT("thread_fork.child.getppid", getppid());
		vt_child_exit(4);
	}
	return NULL;
}

int main(void)
{
	struct seen a = { 0 }, b = { 0 };
	pthread_t t;
	int rc;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	MUST(pthread_sigmask(SIG_BLOCK, &usr1, NULL) == 0);
	OUT_INT("main.gettid", gettid());

	pthread_barrier_init(&ready, NULL, 2);
	MUST(pthread_create(&t, NULL, record, &a) == 0);
	pthread_barrier_wait(&ready);
	rc = tgkill(getpid(), a.tid, SIGUSR1);
	OUT_INT("tgkill.thread1", rc);
	pthread_join(t, NULL);
	OUT_INT("thread1.gettid", a.tid);
	OUT_INT("thread1.getpid", a.pid);
	OUT_INT("thread1.syscall_gettid", a.raw_tid);
	OUT_INT("thread1.gettid_again", a.again);
	OUT_INT("thread1.stat_proc_task", a.proc_task_stat);
	OUT_INT("thread1.sigwaitinfo", a.sig);
	OUT_INT("thread1.si_pid", a.sender);
	/* the joined thread's id is gone */
	rc = tgkill(getpid(), a.tid, 0);
	OUT_ERR("tgkill.joined", rc);

	MUST(pthread_create(&t, NULL, record, &b) == 0);
	pthread_barrier_wait(&ready);
	rc = tgkill(getpid(), b.tid, SIGUSR1);
	OUT_INT("tgkill.thread2", rc);
	pthread_join(t, NULL);
	OUT_INT("thread2.gettid", b.tid);
	OUT_INT("thread2.getpid", b.pid);
	OUT_INT("thread2.si_pid", b.sender);


	/* fork from a thread that never asked for its tid */
	{
		pid_t child = -1;

		MUST(pthread_create(&t, NULL, forker, &child) == 0);
		pthread_join(t, NULL);
		MUST(child > 0);
		OUT_INT("thread_fork", child);
		OUT_INT("thread_fork.status", vt_exit_code(vt_wait(child)));
	}
	return vt_done();
}
