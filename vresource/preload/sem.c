/*
 * System V semaphore sets.  semop is the hot path: one lock-free lookup
 * before the real call.
 */
#include <stdarg.h>
#include <sys/syscall.h>

#include "vrid.h"

/* The caller defines union semun (POSIX says so); this is its shape. */
union semctl_arg {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *info;
};

/* Commands that read semctl's fourth argument. */
static int semctl_has_arg(int cmd)
{
	switch (cmd) {
	case IPC_STAT:
	case IPC_SET:
	case IPC_INFO:
	case SEM_INFO:
	case SEM_STAT:
	case SEM_STAT_ANY:
	case GETALL:
	case SETALL:
	case SETVAL:
		return 1;
	default:
		return 0;
	}
}

/* Commands whose first argument is a kernel array index, not an id. */
static int semctl_takes_index(int cmd)
{
	return cmd == SEM_STAT || cmd == SEM_STAT_ANY;
}

/* Commands about the whole system, with no id at all. */
static int semctl_takes_nothing(int cmd)
{
	return cmd == IPC_INFO || cmd == SEM_INFO;
}

static int sem_get(key_t skey, int flags, const void *arg)
{
	return real.semget(skey, *(const int *)arg, flags);
}

VRID_EXPORT int semget(key_t vkey, int nsems, int flags)
{
	VRID_GUARD(-1, real.semget(vkey, nsems, flags));
	return vrid_ipc_get(VRID_SEM, vkey, flags, sem_get, &nsems);
}

/*
 * A wait the quiesce signal cut short waits again (blocked.c), and looks
 * the id up again: a restore in between rebinds it.
 */
VRID_EXPORT int semop(int vid, struct sembuf *sops, size_t nsops)
{
	unsigned seen;
	int sid, ret;

	VRID_GUARD(-1, real.semop(vid, sops, nsops));
	do {
		if (unlikely(vrid_ipc_id_in(VRID_SEM, vid, &sid) < 0))
			return vrid_fail(-EINVAL);
		seen = vrid_quiesce_seen();
		ret = real.semop(sid, sops, nsops);
	} while (unlikely(ret < 0) && vrid_quiesce_cut(seen));
	return ret;
}

VRID_EXPORT int semtimedop(int vid, struct sembuf *sops, size_t nsops, const struct timespec *timeout)
{
	struct vrid_deadline end;
	struct timespec left;
	unsigned seen;
	int sid, ret;

	VRID_GUARD(-1, real.semtimedop(vid, sops, nsops, timeout));
	vrid_deadline_start(&end, timeout);
	for (;;) {
		if (vrid_ipc_id_in(VRID_SEM, vid, &sid) < 0)
			return vrid_fail(-EINVAL);
		seen = vrid_quiesce_seen();
		ret = real.semtimedop(sid, sops, nsops, timeout);
		if (ret == 0 || !vrid_quiesce_cut(seen))
			return ret;
		timeout = vrid_deadline_left(&end, &left);
	}
}

static void sem_stat_out(struct semid_ds *ds)
{
	ds->sem_perm.__key = vrid_key_out(ds->sem_perm.__key);
}

static int sem_rmid(int sid)
{
	struct semid_ds ds;
	key_t skey = IPC_PRIVATE;

	if (real.semctl(sid, 0, IPC_STAT, &ds) == 0)
		skey = ds.sem_perm.__key;
	if (real.semctl(sid, 0, IPC_RMID) < 0)
		return -1;
	vrid_ipc_removed(VRID_SEM, sid, skey);
	return 0;
}

VRID_EXPORT int semctl(int vid, int semnum, int cmd, ...)
{
	union semctl_arg arg = { 0 };
	int32_t sid, virt;
	va_list ap;
	int ret, err;

	if (semctl_has_arg(cmd)) {
		va_start(ap, cmd);
		arg = va_arg(ap, union semctl_arg);
		va_end(ap);
	}
	VRID_GUARD(-1, real.semctl(vid, semnum, cmd, arg));
	if (semctl_takes_nothing(cmd)) {
		ret = real.semctl(0, semnum, cmd, arg);
		return ret < 0 ? ret : vrid_ipc_info_out(VRID_SEM, cmd, arg.info);
	}
	if (semctl_takes_index(cmd)) {
		if ((err = vrid_ipc_nth(VRID_SEM, vid, &virt, &sid)) < 0)
			return vrid_fail(err);
		if (real.semctl(sid, 0, IPC_STAT, arg) < 0)
			return -1;
		sem_stat_out(arg.buf);
		return virt;
	}
	if (vrid_ipc_id_in(VRID_SEM, vid, &sid) < 0)
		return vrid_fail(-EINVAL);
	switch (cmd) {
	case IPC_RMID:
		return sem_rmid(sid);
	case IPC_STAT:
		ret = real.semctl(sid, semnum, cmd, arg);
		if (ret == 0)
			sem_stat_out(arg.buf);
		return ret;
	case GETPID:
		ret = real.semctl(sid, semnum, cmd);
		return ret <= 0 ? ret : vrid_pid_out(ret);
	case GETVAL:
	case GETNCNT:
	case GETZCNT:
		/* No structure to convert: the system call is libc's whole work. */
		ret = (int)vrid_sys(SYS_semctl, sid, semnum, cmd, 0, 0, 0);
		return ret < 0 ? vrid_fail(ret) : ret;
	default:
		return real.semctl(sid, semnum, cmd, arg);
	}
}

static int sem_sys_alive(int32_t sid)
{
	struct semid_ds ds;

	return vrid_sys(SYS_semctl, sid, 0, IPC_STAT, (long)&ds, 0, 0) == 0;
}

/* sem_ctime changes at SETVAL and SETALL too: a set is known by its size. */
static void sem_record(int32_t sid, struct vrid_ipc_record *rec)
{
	struct semid_ds ds;

	if (vrid_sys(SYS_semctl, sid, 0, IPC_STAT, (long)&ds, 0, 0) < 0)
		return;
	rec->key = ds.sem_perm.__key;
	rec->cuid = ds.sem_perm.cuid;
	rec->cgid = ds.sem_perm.cgid;
	rec->size = ds.sem_nsems;
}

const struct vrid_type_ops sem_type_ops = {
	.type = VRID_SEM,
	.name = "sem",
	.sys_alive = sem_sys_alive,
	.record = sem_record,
};
