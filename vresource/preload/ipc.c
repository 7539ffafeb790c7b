/*
 * What System V semaphores, shared memory and message queues have in
 * common: keys private to the chain, ids in both directions, the *_STAT
 * commands that walk the ids by index, and the ipc-key table's ops.
 *
 * A virtual key maps to a system key derived from the AID, so two chains
 * using one fixed key get two objects, while the processes of one chain
 * meet on theirs.
 */
#include <sys/syscall.h>
#include <sched.h>

#include "vrid.h"

#define LOG_PREFIX "ipc: "

/* Tries before giving up on keys taken by objects outside vrid. */
#define KEY_ATTEMPTS 8
/* How long a racing process of our chain may take to record its new object. */
#define OWNER_WAIT_YIELDS 200

int vrid_ipc_id_in(enum vrid_type type, int vid, int *sid)
{
	if (vid < 0 || vrid_virt_to_sys(&vrid.tab, type, vid, sid) < 0)
		return -EINVAL;
	return 0;
}

/*
 * An id new to the chain is an object a process of the chain has just
 * made: what identifies it is recorded with its entry.  What the caller
 * knows stands where IPC_STAT can't tell (the mode may deny reading).
 */
int vrid_ipc_id_out(enum vrid_type type, key_t skey, int sid)
{
	struct vrid_ipc_record rec;
	int32_t vid;
	int err;

	if (sid < 0)
		return sid;
	if (vrid_sys_to_virt(&vrid.tab, type, sid, &vid) == 0)
		return vid;
	rec = (struct vrid_ipc_record){
		.type = type,
		.sys = sid,
		.key = skey,
		.cuid = (uint32_t)vrid_sys0(SYS_geteuid),
		.cgid = (uint32_t)vrid_sys0(SYS_getegid),
	};
	vrid_record_fill(&vrid.tab, type, sid, &rec);
	err = vrid_bind_record(&vrid.tab, type, sid, &rec, &vid);
	if (err < 0) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot record %s id %d: table %s", vrid_type_name(type),
			 sid, err == -ENOSPC ? "full" : "error");
		return vrid_fail(err);
	}
	return vid;
}

key_t vrid_key_out(key_t skey)
{
	int32_t vkey;

	if (skey == IPC_PRIVATE || vrid_sys_to_virt(&vrid.tab, VRID_IPCKEY, skey, &vkey) < 0)
		return skey;
	return vkey;
}

static int key_in_use(key_t skey)
{
	return vrid_sys3(SYS_semget, skey, 0, 0) != -ENOENT ||
	       vrid_sys3(SYS_shmget, skey, 0, 0) != -ENOENT ||
	       vrid_sys2(SYS_msgget, skey, 0) != -ENOENT;
}

void vrid_key_forget_if_unused(key_t skey)
{
	if (skey != IPC_PRIVATE && !key_in_use(skey))
		vrid_remove_sys(&vrid.tab, VRID_IPCKEY, skey);
}

void vrid_ipc_removed(enum vrid_type type, int sid, key_t skey)
{
	vrid_remove_sys(&vrid.tab, type, sid);
	vrid_key_forget_if_unused(skey);
}

static int owned_by_chain(enum vrid_type type, int sid)
{
	int32_t vid;

	for (int i = 0; i < OWNER_WAIT_YIELDS; i++) {
		if (vrid_sys_to_virt(&vrid.tab, type, sid, &vid) == 0)
			return 1;
		vrid_sys0(SYS_sched_yield);
	}
	return 0;
}

/*
 * A key the chain has not used before may still be taken on this host by
 * an object outside vrid; IPC_EXCL tells, and the next derived key is
 * tried.  A process of our own chain creating the same key at the same
 * moment is told apart by the table.
 */
static int get_fresh_key(enum vrid_type type, key_t vkey, key_t skey, int flags,
			 ipc_get_fn get, const void *arg)
{
	int sid = get(skey, flags | IPC_EXCL, arg);

	if (sid >= 0 || errno != EEXIST)
		return sid;
	sid = get(skey, flags & ~(IPC_CREAT | IPC_EXCL), arg);
	if (sid >= 0 && owned_by_chain(type, sid)) {
		if (flags & IPC_EXCL)
			return vrid_fail(-EEXIST);
		return sid;
	}
	vrid_remove_virt(&vrid.tab, VRID_IPCKEY, vkey);
	return vrid_fail(-EAGAIN);
}

int vrid_ipc_get(enum vrid_type type, key_t vkey, int flags, ipc_get_fn get, const void *arg)
{
	int32_t skey;
	int created, sid = -1, err;

	if (vkey == IPC_PRIVATE)
		return vrid_ipc_id_out(type, IPC_PRIVATE, get(IPC_PRIVATE, flags, arg));
	for (uint32_t attempt = 0; attempt < KEY_ATTEMPTS; attempt++) {
		err = vrid_bind_key(&vrid.tab, vkey, attempt, &skey, &created);
		if (err < 0)
			return vrid_fail(err);
		if (!created)
			return vrid_ipc_id_out(type, skey, get(skey, flags, arg));
		if (!(flags & IPC_CREAT)) {
			vrid_remove_virt(&vrid.tab, VRID_IPCKEY, vkey);
			return vrid_fail(-ENOENT);
		}
		sid = get_fresh_key(type, vkey, skey, flags, get, arg);
		if (sid >= 0)
			return vrid_ipc_id_out(type, skey, sid);
		if (errno != EAGAIN) {
			int saved = errno;

			if (!key_in_use(skey))
				vrid_remove_virt(&vrid.tab, VRID_IPCKEY, vkey);
			return vrid_fail(-saved);
		}
	}
	vrid_log(VRID_LOG_ERROR, LOG_PREFIX "key %d: every private key tried is taken on this host",
		 vkey);
	return vrid_fail(-ENOSPC);
}

/* ---- *_STAT by index and *_INFO -------------------------------------- */

struct nth_scan {
	int32_t above;		/* smallest virtual id greater than this */
	int32_t best_virt, best_sys;
	int found;
};

static int nth_step(int32_t virt, int32_t sys, void *arg)
{
	struct nth_scan *s = arg;

	if (virt > s->above && (!s->found || virt < s->best_virt)) {
		s->best_virt = virt;
		s->best_sys = sys;
		s->found = 1;
	}
	return 0;
}

/*
 * The kernel's *_STAT commands walk its own id array by index; the chain
 * sees its own objects only, in virtual id order.  Quadratic, and rare.
 */
int vrid_ipc_nth(enum vrid_type type, int index, int32_t *virt, int32_t *sys)
{
	struct nth_scan s = { .above = -1 };

	if (index < 0)
		return -EINVAL;
	for (int i = 0; i <= index; i++) {
		s.found = 0;
		vrid_each(&vrid.tab, type, nth_step, &s);
		if (!s.found)
			return -EINVAL;
		s.above = s.best_virt;
	}
	*virt = s.best_virt;
	*sys = s.best_sys;
	return 0;
}

/* What IPC_INFO and *_INFO return: the highest index in use. */
int vrid_ipc_max_index(enum vrid_type type)
{
	uint32_t live = vrid_live(&vrid.tab, type);

	return live > 0 ? (int)live - 1 : 0;
}

static int ipckey_sys_alive(int32_t skey)
{
	return key_in_use(skey);
}

const struct vrid_type_ops ipckey_type_ops = {
	.type = VRID_IPCKEY,
	.name = "ipckey",
	.sys_alive = ipckey_sys_alive,
};
