/*
 * One key for a semaphore set, a segment and a queue: the chain maps it to
 * one private system key, which stays while any object still uses it.
 * IPC_CREAT without IPC_EXCL opens what exists.  INT32_MIN cannot be a
 * key (vrid_abi.h: its encoding is the empty slot).
 */
#include "vt.h"

#include <limits.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

#define KEY 0x7777

int main(void)
{
	struct shmid_ds hds;
	struct msqid_ds qds;
	int sem, shm, msg, rc;

	sem = semget(KEY, 1, IPC_CREAT | 0600);
	OUT_INT("semget", sem);
	OUT_INT("semget.creat_existing", semget(KEY, 1, IPC_CREAT | 0600));
	shm = shmget(KEY, 4096, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("shmget", shm);
	msg = msgget(KEY, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("msgget", msg);

	/* the set goes; the segment and the queue keep the key */
	OUT_INT("sem.rmid", semctl(sem, 0, IPC_RMID));
	rc = semget(KEY, 0, 0);
	OUT_ERR("semget.after_rmid", rc);
	OUT_INT("shmget.after_sem_rmid", shmget(KEY, 0, 0));
	OUT_INT("msgget.after_sem_rmid", msgget(KEY, 0));
	CHECK(shmctl(shm, IPC_STAT, &hds) == 0);
	OUT_INT("shm.ipc_stat.key", hds.shm_perm.__key);
	OUT_INT("shm.rmid", shmctl(shm, IPC_RMID, NULL));
	OUT_INT("msgget.after_shm_rmid", msgget(KEY, 0));
	CHECK(msgctl(msg, IPC_STAT, &qds) == 0);
	OUT_INT("msg.ipc_stat.key", qds.msg_perm.__key);
	/* a new set under the key meets the queue's private key */
	sem = semget(KEY, 1, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("semget.again", sem);
	OUT_INT("sem.again.rmid", semctl(sem, 0, IPC_RMID));
	OUT_INT("msg.rmid", msgctl(msg, IPC_RMID, NULL));
	rc = msgget(KEY, 0);
	OUT_ERR("msgget.after_all_rmid", rc);

	/* negative keys are keys too */
	sem = semget(-5, 1, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("semget.negative_key", sem);
	OUT_INT("semget.negative_key.open", semget(-5, 0, 0));
	OUT_INT("semget.negative_key.rmid", semctl(sem, 0, IPC_RMID));
	rc = semget(INT_MIN, 1, IPC_CREAT | 0600);
	OUT_ERR("semget.int_min", rc);
	return vt_done();
}
