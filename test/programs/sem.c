/*
 * System V semaphores: semget, semop, semtimedop and semctl with virtual
 * ids from 1, private keys read back as the program wrote them, GETPID in
 * virtual pids, and SEM_STAT / IPC_INFO over the chain's own sets.  One
 * set is left behind on purpose: the harness must remove it.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/sem.h>

#define KEY 0x1234

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *info;
};

static void stat_walk(const char *name)
{
	struct semid_ds ds;
	char label[64];
	int index, id;

	for (index = 0;; index++) {
		id = semctl(index, 0, SEM_STAT, (union semun){ .buf = &ds });
		snprintf(label, sizeof(label), "%s.%d", name, index);
		if (id < 0) {
			OUT_ERR(label, id);
			break;
		}
		OUT_INT(label, id);
		snprintf(label, sizeof(label), "%s.%d.key", name, index);
		OUT_INT(label, ds.sem_perm.__key);
	}
}

int main(void)
{
	unsigned short vals[2] = { 0, 0 };
	struct sembuf down = { .sem_num = 0, .sem_op = -1 };
	struct sembuf up = { .sem_num = 0, .sem_op = 1 };
	struct sembuf nowait = { .sem_num = 0, .sem_op = -1, .sem_flg = IPC_NOWAIT };
	struct timespec ts = { 0, 0 };
	struct seminfo info;
	struct semid_ds ds;
	int priv, keyed, again, rc, id, ready[2], done[2];
	pid_t pid;
	char c;

	priv = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	OUT_INT("semget.private", priv);
	keyed = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("semget.key", keyed);
	OUT_INT("semget.key.open", semget(KEY, 0, 0));
	rc = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	OUT_ERR("semget.key.excl", rc);
	rc = semget(0x5678, 1, 0);
	OUT_ERR("semget.missing", rc);

	/* IPC_STAT shows the key the program used */
	rc = semctl(keyed, 0, IPC_STAT, (union semun){ .buf = &ds });
	OUT_INT("ipc_stat", rc);
	OUT_INT("ipc_stat.key", ds.sem_perm.__key);
	OUT_INT("ipc_stat.nsems", ds.sem_nsems);
	rc = semctl(priv, 0, IPC_STAT, (union semun){ .buf = &ds });
	OUT_INT("ipc_stat.private.key", ds.sem_perm.__key);

	/* values, operations and GETPID */
	OUT_INT("setval", semctl(priv, 0, SETVAL, (union semun){ .val = 5 }));
	OUT_INT("getval", semctl(priv, 0, GETVAL));
	OUT_INT("semop.down", semop(priv, &down, 1));
	OUT_INT("semtimedop.down", semtimedop(priv, &down, 1, &ts));
	OUT_INT("getval.after", semctl(priv, 0, GETVAL));
	OUT_INT("getpid", semctl(priv, 0, GETPID));
	vals[0] = 9;
	vals[1] = 8;
	OUT_INT("setall", semctl(priv, 0, SETALL, (union semun){ .array = vals }));
	vals[0] = vals[1] = 0;
	OUT_INT("getall", semctl(priv, 0, GETALL, (union semun){ .array = vals }));
	OUT_INT("getall.0", vals[0]);
	OUT_INT("getall.1", vals[1]);
	OUT_INT("getncnt", semctl(priv, 0, GETNCNT));
	OUT_INT("getzcnt", semctl(priv, 1, GETZCNT));

	/* a forked child opens the chain's object by key and works on it */
	MUST(pipe(ready) == 0 && pipe(done) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		int child_id = semget(KEY, 0, 0);

		OUT_INT("child.semget.key", child_id);
		OUT_INT("child.semop.up", semop(child_id, &up, 1));
		fflush(stdout);
		MUST(write(ready[1], "r", 1) == 1);
		MUST(read(done[0], &c, 1) == 1);
		vt_child_exit(0);
	}
	MUST(read(ready[0], &c, 1) == 1);
	OUT_INT("child", pid);
	OUT_INT("getpid.child", semctl(keyed, 0, GETPID));
	OUT_INT("getval.child", semctl(keyed, 0, GETVAL));
	MUST(write(done[1], "d", 1) == 1);
	OUT_INT("child.status", vt_exit_code(vt_wait(pid)));
	/* once the child is reaped, its pid is nobody's in the chain */
	OUT_INT("getpid.child_reaped", semctl(keyed, 0, GETPID));
	OUT_INT("semtimedop.nowait", semtimedop(keyed, &nowait, 1, NULL));
	OUT_INT("getpid.self_again", semctl(keyed, 0, GETPID));

	/* unknown ids */
	rc = semop(99, &up, 1);
	OUT_ERR("semop.unknown", rc);
	rc = semtimedop(99, &up, 1, &ts);
	OUT_ERR("semtimedop.unknown", rc);
	rc = semctl(99, 0, IPC_STAT, (union semun){ .buf = &ds });
	OUT_ERR("semctl.unknown", rc);
	rc = semctl(99, 0, IPC_RMID);
	OUT_ERR("semctl.rmid.unknown", rc);
	rc = semop(-1, &up, 1);
	OUT_ERR("semop.negative", rc);

	/* IPC_SET goes to the right set */
	CHECK(semctl(keyed, 0, IPC_STAT, (union semun){ .buf = &ds }) == 0);
	ds.sem_perm.mode = 0640;
	OUT_INT("ipc_set", semctl(keyed, 0, IPC_SET, (union semun){ .buf = &ds }));
	CHECK(semctl(keyed, 0, IPC_STAT, (union semun){ .buf = &ds }) == 0);
	OUT_INT("ipc_set.mode_is_0640", (ds.sem_perm.mode & 0777) == 0640);

	/* the chain's own sets, by index, in virtual id order */
	stat_walk("sem_stat");
	OUT_INT("ipc_info", semctl(0, 0, IPC_INFO, (union semun){ .info = &info }));
	OUT_INT("sem_info", semctl(0, 0, SEM_INFO, (union semun){ .info = &info }));
	id = semctl(1, 0, SEM_STAT_ANY, (union semun){ .buf = &ds });
	OUT_INT("sem_stat_any.1", id);
	rc = semctl(-1, 0, SEM_STAT, (union semun){ .buf = &ds });
	OUT_ERR("sem_stat.negative", rc);

	/* removal */
	OUT_INT("rmid.private", semctl(priv, 0, IPC_RMID));
	rc = semop(priv, &up, 1);
	OUT_ERR("semop.removed", rc);
	stat_walk("sem_stat.after_rmid");
	OUT_INT("ipc_info.after_rmid", semctl(0, 0, IPC_INFO, (union semun){ .info = &info }));
	OUT_INT("rmid.key", semctl(keyed, 0, IPC_RMID));
	OUT_INT("ipc_info.none", semctl(0, 0, IPC_INFO, (union semun){ .info = &info }));
	rc = semctl(0, 0, SEM_STAT, (union semun){ .buf = &ds });
	OUT_ERR("sem_stat.none", rc);
	/* a removed key can be created again; ids are not reused */
	rc = semget(KEY, 0, 0);
	OUT_ERR("semget.key.removed", rc);
	again = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("semget.key.again", again);
	rc = semctl(again, 0, IPC_STAT, (union semun){ .buf = &ds });
	OUT_INT("ipc_stat.again.key", ds.sem_perm.__key);
	OUT_INT("semget.private.again", semget(IPC_PRIVATE, 1, IPC_CREAT | 0600));
	/* both sets stay behind for the harness to remove */
	return vt_done();
}
