/*
 * System V shared memory: shmget, shmat, shmdt and shmctl with virtual ids
 * from 1, the program's own key and virtual pids in IPC_STAT, SHM_STAT and
 * IPC_INFO over the chain's own segments, and a segment removed while
 * attached.  One segment is left behind on purpose: the harness must
 * remove it.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/shm.h>

#define KEY 0x2345

static void stat_walk(const char *name)
{
	struct shmid_ds ds;
	char label[64];
	int index, id;

	for (index = 0;; index++) {
		id = shmctl(index, SHM_STAT, &ds);
		snprintf(label, sizeof(label), "%s.%d", name, index);
		if (id < 0) {
			OUT_ERR(label, id);
			break;
		}
		OUT_INT(label, id);
		snprintf(label, sizeof(label), "%s.%d.key", name, index);
		OUT_INT(label, ds.shm_perm.__key);
	}
}

static void out_stat(const char *name, int id)
{
	struct shmid_ds ds;
	char label[64];
	int rc = shmctl(id, IPC_STAT, &ds);

	snprintf(label, sizeof(label), "%s.ipc_stat", name);
	if (rc < 0) {
		OUT_ERR(label, rc);
		return;
	}
	snprintf(label, sizeof(label), "%s.key", name);
	OUT_INT(label, ds.shm_perm.__key);
	snprintf(label, sizeof(label), "%s.cpid", name);
	OUT_INT(label, ds.shm_cpid);
	snprintf(label, sizeof(label), "%s.lpid", name);
	OUT_INT(label, ds.shm_lpid);
	snprintf(label, sizeof(label), "%s.nattch", name);
	OUT_INT(label, ds.shm_nattch);
	snprintf(label, sizeof(label), "%s.segsz", name);
	OUT_INT(label, ds.shm_segsz);
}

int main(void)
{
	struct shm_info sinfo;
	struct shminfo info;
	struct shmid_ds ds;
	int priv, keyed, again, rc, ready[2], done[2];
	char *mem, c;
	pid_t pid;

	priv = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	OUT_INT("shmget.private", priv);
	keyed = shmget(KEY, 8192, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("shmget.key", keyed);
	OUT_INT("shmget.key.open", shmget(KEY, 0, 0));
	rc = shmget(KEY, 4096, IPC_CREAT | IPC_EXCL | 0600);
	OUT_ERR("shmget.key.excl", rc);
	rc = shmget(0x5678, 4096, 0);
	OUT_ERR("shmget.missing", rc);

	mem = shmat(keyed, NULL, 0);
	MUST(mem != (void *)-1);
	strcpy(mem, "hello");
	out_stat("attached", keyed);

	/* a forked child opens the segment by key, reads and writes it */
	MUST(pipe(ready) == 0 && pipe(done) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		int id = shmget(KEY, 0, 0);
		char *m = shmat(id, NULL, 0);

		OUT_INT("child.shmget.key", id);
		MUST(m != (void *)-1);
		OUT_STR("child.read", m);
		strcpy(m, "world");
		OUT_INT("child.shmdt", shmdt(m));
		fflush(stdout);
		MUST(write(ready[1], "r", 1) == 1);
		MUST(read(done[0], &c, 1) == 1);
		vt_child_exit(0);
	}
	MUST(read(ready[0], &c, 1) == 1);
	OUT_INT("child", pid);
	OUT_STR("read.after_child", mem);
	out_stat("after_child", keyed);
	MUST(write(done[1], "d", 1) == 1);
	OUT_INT("child.status", vt_exit_code(vt_wait(pid)));
	out_stat("child_reaped", keyed);

	/* unknown ids */
	errno = 0;
	OUT_INT("shmat.unknown.failed", shmat(99, NULL, 0) == (void *)-1);
	OUT_STR("shmat.unknown.errno", vt_errname(errno));
	rc = shmctl(99, IPC_STAT, &ds);
	OUT_ERR("shmctl.unknown", rc);
	rc = shmctl(-1, IPC_STAT, &ds);
	OUT_ERR("shmctl.negative", rc);

	/* the chain's own segments, by index */
	stat_walk("shm_stat");
	OUT_INT("ipc_info", shmctl(0, IPC_INFO, (struct shmid_ds *)&info));
	OUT_INT("shm_info", shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo));
	OUT_INT("shm_stat_any.0", shmctl(0, SHM_STAT_ANY, &ds));

	/* removed while attached: usable until the last detach */
	OUT_INT("rmid.attached", shmctl(keyed, IPC_RMID, NULL));
	out_stat("removed_attached", keyed);
	rc = shmget(KEY, 0, 0);
	OUT_ERR("shmget.key.removed", rc);
	OUT_INT("shmdt.last", shmdt(mem));
	out_stat("removed_detached", keyed);
	stat_walk("shm_stat.after_rmid");
	OUT_INT("ipc_info.after_rmid", shmctl(0, IPC_INFO, (struct shmid_ds *)&info));

	OUT_INT("rmid.private", shmctl(priv, IPC_RMID, NULL));
	rc = shmctl(0, SHM_STAT, &ds);
	OUT_ERR("shm_stat.none", rc);
	OUT_INT("ipc_info.none", shmctl(0, IPC_INFO, (struct shmid_ds *)&info));

	/* the key again: a new segment with the next id, left for the harness */
	again = shmget(KEY, 4096, IPC_CREAT | IPC_EXCL | 0600);
	OUT_INT("shmget.key.again", again);
	out_stat("again", again);
	return vt_done();
}
