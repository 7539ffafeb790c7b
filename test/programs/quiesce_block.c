/*
 * Blocked calls across a quiesce (test/core/quiesce_test.go).  Every
 * process inherits one shm attachment from the root, so the test's
 * Detach and Attach signal each of them while it waits:
 *
 *   1001 semop on semaphore 0, at 0    1004 pause
 *   1002 semtimedop on semaphore 1,    1005 nanosleep of an hour
 *        for an hour                   1006 waitpid for 1007
 *   1003 msgrcv of type 1              1007 pause, until SIGTERM
 *   the root's second thread: msgrcv of type 2; its main thread: read
 *
 * None may return for the quiesce signal: each prints one line when its
 * own event comes, which the root makes on a line of stdin ("post SEM",
 * "send TYPE TEXT", "kill VPID SIG"); "end" reaps them all.
 */
#include "vt.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <time.h>

struct message {
	long type;
	char text[32];
};

static int sem, queue;
static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

static void catch_usr1(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	MUST(sigaction(SIGUSR1, &sa, NULL) == 0);
}

/* Tells the root this process is about to wait, then prints one line and exits. */
static void ready(int fd)
{
	MUST(write(fd, "r", 1) == 1);
	close(fd);
}

static void wait_semop(int fd)
{
	struct sembuf down = { 0, -1, 0 };

	ready(fd);
	OUT_INT("semop", semop(sem, &down, 1));
	vt_child_exit(0);
}

static void wait_semtimedop(int fd)
{
	struct sembuf down = { 1, -1, 0 };
	struct timespec hour = { 3600, 0 };

	ready(fd);
	OUT_INT("semtimedop", semtimedop(sem, &down, 1, &hour));
	vt_child_exit(0);
}

static void wait_msgrcv(int fd)
{
	struct message m;
	ssize_t n;

	ready(fd);
	n = msgrcv(queue, &m, sizeof(m.text), 1, 0);
	MUST(n > 0);
	OUT_STR("msgrcv", m.text);
	vt_child_exit(0);
}

static void wait_pause(int fd)
{
	int rc;

	catch_usr1();
	ready(fd);
	rc = pause();
	printf("pause=%d errno=%s usr1=%d\n", rc, vt_errname(errno), (int)usr1);
	vt_child_exit(0);
}

static void wait_nanosleep(int fd)
{
	struct timespec hour = { 3600, 0 }, rem = { 0, 0 };
	int rc;

	catch_usr1();
	ready(fd);
	rc = nanosleep(&hour, &rem);
	printf("nanosleep=%d errno=%s usr1=%d rem.left=%d\n", rc, vt_errname(errno), (int)usr1,
	       rem.tv_sec > 0 && rem.tv_sec < 3600);
	vt_child_exit(0);
}

static void wait_child(int fd)
{
	pid_t pid = vt_fork();
	int status;

	MUST(pid >= 0);
	if (pid == 0) {
		ready(fd);
		pause();
		vt_child_exit(1);
	}
	close(fd);
	MUST(waitpid(pid, &status, 0) == pid);
	printf("waitpid=%d signal=%d\n", (int)pid, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	vt_child_exit(0);
}

static void *thread_msgrcv(void *arg)
{
	struct message m;

	(void)arg;
	MUST(msgrcv(queue, &m, sizeof(m.text), 2, 0) > 0);
	OUT_STR("thread.msgrcv", m.text);
	fflush(stdout);
	return NULL;
}

int main(void)
{
	static void (*const waits[])(int) = { wait_semop, wait_semtimedop, wait_msgrcv, wait_pause,
						    wait_nanosleep, wait_child };
	const int nwaits = sizeof(waits) / sizeof(waits[0]);
	pid_t pids[sizeof(waits) / sizeof(waits[0])];
	char line[128], text[32];
	int seg, fds[2], vpid, sig, type, num;
	struct sembuf up = { 0, 1, 0 };
	struct message m;
	pthread_t thread;
	char c;

	seg = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	MUST(seg >= 0 && shmat(seg, NULL, 0) != (void *)-1);
	sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	queue = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	MUST(sem >= 0 && queue >= 0);
	MUST(pipe(fds) == 0);
	for (int i = 0; i < nwaits; i++) {
		pids[i] = vt_fork();
		MUST(pids[i] >= 0);
		if (pids[i] == 0) {
			close(fds[0]);
			waits[i](fds[1]);
		}
	}
	close(fds[1]);
	/* One byte from each waiter (the grandchild's for waitpid). */
	for (int i = 0; i < nwaits; i++)
		MUST(read(fds[0], &c, 1) == 1);
	MUST(pthread_create(&thread, NULL, thread_msgrcv, NULL) == 0);
	OUT_INT("ready", 1);
	fflush(stdout);

	while (fgets(line, sizeof(line), stdin)) {
		if (sscanf(line, "post %d", &num) == 1) {
			up.sem_num = (unsigned short)num;
			MUST(semop(sem, &up, 1) == 0);
		} else if (sscanf(line, "send %d %31s", &type, text) == 2) {
			m.type = type;
			strcpy(m.text, text);
			MUST(msgsnd(queue, &m, sizeof(m.text), 0) == 0);
		} else if (sscanf(line, "kill %d %d", &vpid, &sig) == 2) {
			MUST(kill(vpid, sig) == 0);
		} else if (strcmp(line, "end\n") == 0) {
			break;
		}
	}
	MUST(pthread_join(thread, NULL) == 0);
	for (int i = 0; i < nwaits; i++) {
		char label[32];

		snprintf(label, sizeof(label), "exit.%d", (int)pids[i]);
		OUT_INT(label, vt_exit_code(vt_wait(pids[i])));
	}
	CHECK(shmctl(seg, IPC_RMID, NULL) == 0);
	CHECK(semctl(sem, 0, IPC_RMID) == 0);
	CHECK(msgctl(queue, IPC_RMID, NULL) == 0);
	return vt_done();
}
