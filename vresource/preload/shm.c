/*
 * System V shared memory.  A segment removed while still attached lives
 * on until its last detach, and so does its entry: shmdt sweeps those
 * only while the header says some are pending.
 */
#include <sys/syscall.h>

#include "vrid.h"

/* Sweeps at most this many gone segments per shmdt. */
#define SWEEP_BATCH 32

static int shmctl_takes_index(int cmd)
{
	return cmd == SHM_STAT || cmd == SHM_STAT_ANY;
}

static int shmctl_takes_nothing(int cmd)
{
	return cmd == IPC_INFO || cmd == SHM_INFO;
}

static int shm_get(key_t skey, int flags, const void *arg)
{
	return real.shmget(skey, *(const size_t *)arg, flags);
}

VRID_EXPORT int shmget(key_t vkey, size_t size, int flags)
{
	VRID_GUARD(-1, real.shmget(vkey, size, flags));
	return vrid_ipc_get(VRID_SHM, vkey, flags, shm_get, &size);
}

VRID_EXPORT void *shmat(int vid, const void *addr, int flags)
{
	int sid;

	VRID_GUARD((void *)-1, real.shmat(vid, addr, flags));
	if (unlikely(vrid_ipc_id_in(VRID_SHM, vid, &sid) < 0)) {
		errno = EINVAL;
		return (void *)-1;
	}
	return real.shmat(sid, addr, flags);
}

static int shm_sys_alive(int32_t sid)
{
	struct shmid_ds ds;

	return vrid_sys3(SYS_shmctl, sid, IPC_STAT, &ds) == 0;
}

struct sweep {
	int32_t gone[SWEEP_BATCH];
	int n;
};

static int sweep_step(int32_t virt, int32_t sid, void *arg)
{
	struct sweep *s = arg;

	(void)virt;
	if (!shm_sys_alive(sid))
		s->gone[s->n++] = sid;
	return s->n == SWEEP_BATCH;
}

static void sweep_doomed(void)
{
	struct sweep s = { .n = 0 };

	vrid_each(&vrid.tab, VRID_SHM, sweep_step, &s);
	for (int i = 0; i < s.n; i++)
		if (vrid_remove_sys(&vrid.tab, VRID_SHM, s.gone[i]) == 0)
			__atomic_sub_fetch(&vrid.tab.hdr->shm_doomed, 1, __ATOMIC_RELAXED);
}

VRID_EXPORT int shmdt(const void *addr)
{
	int ret;

	VRID_GUARD(-1, real.shmdt(addr));
	ret = real.shmdt(addr);
	if (ret == 0 && unlikely(__atomic_load_n(&vrid.tab.hdr->shm_doomed, __ATOMIC_RELAXED))) {
		int saved_errno = errno;

		sweep_doomed();
		errno = saved_errno;
	}
	return ret;
}

static void shm_stat_out(struct shmid_ds *ds)
{
	ds->shm_perm.__key = vrid_key_out(ds->shm_perm.__key);
	ds->shm_cpid = vrid_pid_out(ds->shm_cpid);
	ds->shm_lpid = vrid_pid_out(ds->shm_lpid);
}

static int shm_rmid(int sid)
{
	struct shmid_ds ds;
	int attached;

	if (real.shmctl(sid, IPC_STAT, &ds) < 0)
		return -1;
	attached = ds.shm_nattch > 0;
	if (real.shmctl(sid, IPC_RMID, NULL) < 0)
		return -1;
	if (attached) {
		/* The id stays usable until the last shmdt; the sweep forgets it then. */
		__atomic_add_fetch(&vrid.tab.hdr->shm_doomed, 1, __ATOMIC_RELAXED);
		vrid_key_forget_if_unused(ds.shm_perm.__key);
		return 0;
	}
	vrid_ipc_removed(VRID_SHM, sid, ds.shm_perm.__key);
	return 0;
}

VRID_EXPORT int shmctl(int vid, int cmd, struct shmid_ds *buf)
{
	int32_t sid, virt;
	int ret, err;

	VRID_GUARD(-1, real.shmctl(vid, cmd, buf));
	if (shmctl_takes_nothing(cmd)) {
		ret = real.shmctl(0, cmd, buf);
		return ret < 0 ? ret : vrid_ipc_info_out(VRID_SHM, cmd, buf);
	}
	if (shmctl_takes_index(cmd)) {
		if ((err = vrid_ipc_nth(VRID_SHM, vid, &virt, &sid)) < 0)
			return vrid_fail(err);
		if (real.shmctl(sid, IPC_STAT, buf) < 0)
			return -1;
		shm_stat_out(buf);
		return virt;
	}
	if (vrid_ipc_id_in(VRID_SHM, vid, &sid) < 0)
		return vrid_fail(-EINVAL);
	switch (cmd) {
	case IPC_RMID:
		return shm_rmid(sid);
	case IPC_STAT:
		ret = real.shmctl(sid, cmd, buf);
		if (ret == 0)
			shm_stat_out(buf);
		return ret;
	case IPC_SET:
		ret = real.shmctl(sid, cmd, buf);
		if (ret == 0)
			vrid_record_ctime(&vrid.tab, VRID_SHM, sid);
		return ret;
	default:
		return real.shmctl(sid, cmd, buf);
	}
}

/* shm_cpid and the size never change; shm_ctime only at IPC_SET. */
static void shm_record(int32_t sid, struct vrid_ipc_record *rec)
{
	struct shmid_ds ds;

	if (vrid_sys3(SYS_shmctl, sid, IPC_STAT, &ds) < 0)
		return;
	rec->key = ds.shm_perm.__key;
	rec->cuid = ds.shm_perm.cuid;
	rec->cgid = ds.shm_perm.cgid;
	rec->cpid = ds.shm_cpid;
	rec->ctime = ds.shm_ctime;
	rec->size = ds.shm_segsz;
}

const struct vrid_type_ops shm_type_ops = {
	.type = VRID_SHM,
	.name = "shm",
	.sys_alive = shm_sys_alive,
	.record = shm_record,
};
