/*
 * Keys are private to a chain.  Run in two chains at once with the same
 * fixed key: both create with IPC_EXCL and succeed, each sees only its own
 * objects.  argv[1] is a value this chain stores in each object.  The
 * program says ready=1, then waits for a line on stdin (while the other
 * chain holds its objects), checks its values again and removes all.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#define KEY 0x4a11

struct message {
	long type;
	char text[16];
};

static int count_sem(void)
{
	struct semid_ds ds;
	int n = 0;

	while (semctl(n, 0, SEM_STAT, &ds) >= 0)
		n++;
	return n;
}

static int count_shm(void)
{
	struct shmid_ds ds;
	int n = 0;

	while (shmctl(n, SHM_STAT, &ds) >= 0)
		n++;
	return n;
}

static int count_msg(void)
{
	struct msqid_ds ds;
	int n = 0;

	while (msgctl(n, MSG_STAT, &ds) >= 0)
		n++;
	return n;
}

/* Reads the three objects back and prints what this chain stored. */
static void out_values(const char *stage, int sem, char *mem, int msg)
{
	struct message m = { 0 };
	char label[64];

	snprintf(label, sizeof(label), "%s.semget", stage);
	OUT_INT(label, semget(KEY, 0, 0));
	snprintf(label, sizeof(label), "%s.getval", stage);
	OUT_INT(label, semctl(sem, 0, GETVAL));
	snprintf(label, sizeof(label), "%s.shm", stage);
	OUT_STR(label, mem);
	snprintf(label, sizeof(label), "%s.msg", stage);
	if (msgrcv(msg, &m, sizeof(m.text), 0, IPC_NOWAIT) < 0)
		OUT_ERR(label, -1);
	else
		OUT_STR(label, m.text);
}

int main(int argc, char **argv)
{
	int value = argc > 1 ? atoi(argv[1]) : 1;
	struct message m = { 1, "" };
	struct semid_ds sds;
	struct shmid_ds hds;
	struct msqid_ds qds;
	struct seminfo info;
	int sem, shm, msg, priv;
	char line[16], *mem;
	pid_t pid;

	sem = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("semget", sem);
	shm = shmget(KEY, 4096, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("shmget", shm);
	msg = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("msgget", msg);
	MUST(sem >= 0 && shm >= 0 && msg >= 0);
	CHECK(semctl(sem, 0, IPC_STAT, &sds) == 0);
	OUT_INT("sem.ipc_stat.key", sds.sem_perm.__key);
	CHECK(shmctl(shm, IPC_STAT, &hds) == 0);
	OUT_INT("shm.ipc_stat.key", hds.shm_perm.__key);
	CHECK(msgctl(msg, IPC_STAT, &qds) == 0);
	OUT_INT("msg.ipc_stat.key", qds.msg_perm.__key);
	priv = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	OUT_INT("semget.private", priv);

	/* store this chain's value in each object */
	CHECK(semctl(sem, 0, SETVAL, value) == 0);
	mem = shmat(shm, NULL, 0);
	MUST(mem != (void *)-1);
	snprintf(mem, 16, "v%d", value);
	snprintf(m.text, sizeof(m.text), "v%d", value);
	CHECK(msgsnd(msg, &m, sizeof(m.text), 0) == 0);

	/* only this chain's objects are visible */
	OUT_INT("sem_stat.count", count_sem());
	OUT_INT("shm_stat.count", count_shm());
	OUT_INT("msg_stat.count", count_msg());
	OUT_INT("sem.ipc_info", semctl(0, 0, IPC_INFO, &info));
	OUT_INT("shm.ipc_info", shmctl(0, IPC_INFO, &hds));
	OUT_INT("msg.ipc_info", msgctl(0, IPC_INFO, &qds));

	OUT_INT("ready", 1);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		fprintf(stderr, "stdin closed before the go-ahead\n");

	/* the other chain has made its objects with the same key meanwhile */
	m.type = 1;
	CHECK(msgsnd(msg, &m, sizeof(m.text), 0) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		out_values("child", sem, mem, msg);
		vt_child_exit(0);
	}
	OUT_INT("child.status", vt_exit_code(vt_wait(pid)));
	out_values("after", sem, mem, msg);
	OUT_INT("sem_stat.count.after", count_sem());

	CHECK(shmdt(mem) == 0);
	OUT_INT("sem.rmid", semctl(sem, 0, IPC_RMID));
	OUT_INT("sem.private.rmid", semctl(priv, 0, IPC_RMID));
	OUT_INT("shm.rmid", shmctl(shm, IPC_RMID, NULL));
	OUT_INT("msg.rmid", msgctl(msg, IPC_RMID, NULL));
	OUT_INT("sem_stat.count.removed", count_sem());
	return vt_done();
}
