/*
 * System V message queues.
 */
#include <sys/syscall.h>

#include "vrid.h"

static int msgctl_takes_index(int cmd)
{
	return cmd == MSG_STAT || cmd == MSG_STAT_ANY;
}

static int msgctl_takes_nothing(int cmd)
{
	return cmd == IPC_INFO || cmd == MSG_INFO;
}

static int msg_get(key_t skey, int flags, const void *arg)
{
	(void)arg;
	return real.msgget(skey, flags);
}

VRID_EXPORT int msgget(key_t vkey, int flags)
{
	VRID_GUARD(-1, real.msgget(vkey, flags));
	return vrid_ipc_get(VRID_MSG, vkey, flags, msg_get, NULL);
}

/* As semop: a wait the quiesce signal cut short waits again, with the id looked up again. */
VRID_EXPORT int msgsnd(int vid, const void *msg, size_t size, int flags)
{
	unsigned seen;
	int sid, ret;

	VRID_GUARD(-1, real.msgsnd(vid, msg, size, flags));
	do {
		if (unlikely(vrid_ipc_id_in(VRID_MSG, vid, &sid) < 0))
			return vrid_fail(-EINVAL);
		seen = vrid_quiesce_seen();
		ret = real.msgsnd(sid, msg, size, flags);
	} while (unlikely(ret < 0) && vrid_quiesce_cut(seen));
	return ret;
}

VRID_EXPORT ssize_t msgrcv(int vid, void *msg, size_t size, long type, int flags)
{
	unsigned seen;
	ssize_t ret;
	int sid;

	VRID_GUARD(-1, real.msgrcv(vid, msg, size, type, flags));
	do {
		if (unlikely(vrid_ipc_id_in(VRID_MSG, vid, &sid) < 0))
			return vrid_fail(-EINVAL);
		seen = vrid_quiesce_seen();
		ret = real.msgrcv(sid, msg, size, type, flags);
	} while (unlikely(ret < 0) && vrid_quiesce_cut(seen));
	return ret;
}

static void msg_stat_out(struct msqid_ds *ds)
{
	ds->msg_perm.__key = vrid_key_out(ds->msg_perm.__key);
	ds->msg_lspid = vrid_pid_out(ds->msg_lspid);
	ds->msg_lrpid = vrid_pid_out(ds->msg_lrpid);
}

static int msg_rmid(int sid)
{
	struct msqid_ds ds;
	key_t skey = IPC_PRIVATE;

	if (real.msgctl(sid, IPC_STAT, &ds) == 0)
		skey = ds.msg_perm.__key;
	if (real.msgctl(sid, IPC_RMID, NULL) < 0)
		return -1;
	vrid_ipc_removed(VRID_MSG, sid, skey);
	return 0;
}

VRID_EXPORT int msgctl(int vid, int cmd, struct msqid_ds *buf)
{
	int32_t sid, virt;
	int ret, err;

	VRID_GUARD(-1, real.msgctl(vid, cmd, buf));
	if (msgctl_takes_nothing(cmd)) {
		ret = real.msgctl(0, cmd, buf);
		return ret < 0 ? ret : vrid_ipc_info_out(VRID_MSG, cmd, buf);
	}
	if (msgctl_takes_index(cmd)) {
		if ((err = vrid_ipc_nth(VRID_MSG, vid, &virt, &sid)) < 0)
			return vrid_fail(err);
		if (real.msgctl(sid, IPC_STAT, buf) < 0)
			return -1;
		msg_stat_out(buf);
		return virt;
	}
	if (vrid_ipc_id_in(VRID_MSG, vid, &sid) < 0)
		return vrid_fail(-EINVAL);
	switch (cmd) {
	case IPC_RMID:
		return msg_rmid(sid);
	case IPC_STAT:
		ret = real.msgctl(sid, cmd, buf);
		if (ret == 0)
			msg_stat_out(buf);
		return ret;
	case IPC_SET:
		ret = real.msgctl(sid, cmd, buf);
		if (ret == 0)
			vrid_record_ctime(&vrid.tab, VRID_MSG, sid);
		return ret;
	default:
		return real.msgctl(sid, cmd, buf);
	}
}

static int msg_sys_alive(int32_t sid)
{
	struct msqid_ds ds;

	return vrid_sys3(SYS_msgctl, sid, IPC_STAT, &ds) == 0;
}

/* msg_ctime changes only at IPC_SET, which msgctl records. */
static void msg_record(int32_t sid, struct vrid_ipc_record *rec)
{
	struct msqid_ds ds;

	if (vrid_sys3(SYS_msgctl, sid, IPC_STAT, &ds) < 0)
		return;
	rec->key = ds.msg_perm.__key;
	rec->cuid = ds.msg_perm.cuid;
	rec->cgid = ds.msg_perm.cgid;
	rec->ctime = ds.msg_ctime;
}

const struct vrid_type_ops msg_type_ops = {
	.type = VRID_MSG,
	.name = "msg",
	.sys_alive = msg_sys_alive,
	.record = msg_record,
};
