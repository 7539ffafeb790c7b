/*
 * System V semaphore sets.  semop is the hot path: one lock-free lookup
 * before the real call.  A semop with SEM_UNDO also records, under the
 * writer lock, what the kernel will give back when this process exits
 * (semadj.c), since nothing else can tell a snapshot.
 */
#include <stdarg.h>
#include <sys/syscall.h>

#include "vrid.h"

#define LOG_PREFIX "sem: "

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

/* ---- SEM_UNDO adjustments (semadj.c keeps them) -------------------- */

static int has_undo(const struct sembuf *sops, size_t nsops)
{
	for (size_t i = 0; i < nsops; i++)
		if (unlikely(sops[i].sem_flg & SEM_UNDO))
			return 1;
	return 0;
}

/*
 * Gives this process's undo list adj again on semaphore num of set sid,
 * and leaves the value as it is: one semop that adds |adj| and takes it
 * back, the SEM_UNDO half making the kernel's semadj grow by adj.  The
 * value goes up first, or, when that would pass SEMVMX, down first.
 */
static long reapply_one(int32_t sid, uint16_t num, int adj)
{
	short mag = (short)(adj < 0 ? -adj : adj);
	struct sembuf up = { num, mag, IPC_NOWAIT }, down = { num, (short)-mag, IPC_NOWAIT };
	struct sembuf ops[2];
	long ret;

	/* The SEM_UNDO operation is -adj. */
	if (adj > 0)
		down.sem_flg |= SEM_UNDO;
	else
		up.sem_flg |= SEM_UNDO;
	ops[0] = up;
	ops[1] = down;
	ret = vrid_sys(SYS_semtimedop, sid, (long)ops, 2, 0, 0, 0);
	if (ret != -ERANGE)
		return ret;
	ops[0] = down;
	ops[1] = up;
	return vrid_sys(SYS_semtimedop, sid, (long)ops, 2, 0, 0, 0);
}

/*
 * Under the lock: the entries of process me that a restore left for it
 * to apply again (their generation is older than the table's).  Through
 * the raw call: the entries already hold these adjustments.
 */
static void reapply_locked(int32_t me)
{
	uint32_t gen = vrid.tab.hdr->generation;
	struct vrid_semadj *e;
	int32_t sid;
	long ret;

	for (uint32_t i = 0; (e = vrid_semadj_at(&vrid.tab, i)) != NULL; i++) {
		if (e->pid_virt != me || e->generation == gen)
			continue;
		ret = vrid_virt_to_sys(&vrid.tab, VRID_SEM, e->sem_virt, &sid);
		if (ret == 0)
			ret = reapply_one(sid, e->num, e->adj);
		if (ret == 0) {
			e->generation = gen;
		} else if (ret == -ENOENT || ret == -EINVAL || ret == -EIDRM) {
			vrid_semadj_free_locked(e);	/* the set is gone, and its undo with it */
		} else {
			vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot apply the SEM_UNDO adjustment %d of sem %d "
				 "semaphore %u again: errno %ld", e->adj, e->sem_virt, e->num, -ret);
		}
	}
}

void vrid_semadj_reapply(void)
{
	int saved_errno = errno;
	sigset_t saved;

	if (vrid_semadj_used(&vrid.tab) && vrid_lock(&vrid.tab, &saved) == 0) {
		reapply_locked(getpid());
		vrid_unlock(&vrid.tab, &saved);
	}
	errno = saved_errno;
}

/*
 * After a semop with SEM_UNDO succeeded: the kernel's semadj of each
 * semaphore moved by minus its operations, and so does the record.  Any
 * adjustment a restore left is applied first, so the record's sum is the
 * kernel's.  A table without the section (made before it existed) records
 * nothing.
 */
static void semadj_commit(int vid, const struct sembuf *sops, size_t nsops)
{
	int saved_errno = errno;
	int32_t me;
	sigset_t saved;

	if (!vrid.tab.semadj)
		return;
	me = getpid();
	if (vrid_lock(&vrid.tab, &saved) < 0) {
		errno = saved_errno;
		return;
	}
	reapply_locked(me);
	for (size_t i = 0; i < nsops; i++)
		if (sops[i].sem_flg & SEM_UNDO)
			vrid_semadj_add_locked(&vrid.tab, me, vid, sops[i].sem_num, -sops[i].sem_op);
	vrid_unlock(&vrid.tab, &saved);
	errno = saved_errno;
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
	if (ret == 0 && has_undo(sops, nsops))
		semadj_commit(vid, sops, nsops);
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
		if (ret == 0 && has_undo(sops, nsops))
			semadj_commit(vid, sops, nsops);
		if (ret == 0 || !vrid_quiesce_cut(seen))
			return ret;
		timeout = vrid_deadline_left(&end, &left);
	}
}

static void sem_stat_out(struct semid_ds *ds)
{
	ds->sem_perm.__key = vrid_key_out(ds->sem_perm.__key);
}

static int sem_rmid(int vid, int sid)
{
	struct semid_ds ds;
	key_t skey = IPC_PRIVATE;

	if (real.semctl(sid, 0, IPC_STAT, &ds) == 0)
		skey = ds.sem_perm.__key;
	if (real.semctl(sid, 0, IPC_RMID) < 0)
		return -1;
	vrid_ipc_removed(VRID_SEM, sid, skey);
	vrid_semadj_clear(&vrid.tab, vid, -1);
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
		return sem_rmid(vid, sid);
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
	case SETVAL:
	case SETALL:
		/* The kernel sets every process's semadj of the semaphores to 0. */
		ret = real.semctl(sid, semnum, cmd, arg);
		if (ret == 0)
			vrid_semadj_clear(&vrid.tab, vid, cmd == SETVAL ? semnum : -1);
		return ret;
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
