/*
 * The IPC records: what identified each System V object the chain made,
 * written when its system id enters the table, so that teardown can tell
 * it from a later object that got the same id.  The records are an array
 * in a section of the table file; records[0..used) may be live.  Every
 * write holds the writer lock.  A record is freed before it is written
 * and gets its type last, so a writer that dies leaves it whole or free:
 * no repair is needed.  Scans are linear in the records ever live at
 * once, which is small, and happen only when an object is made or
 * removed.
 */
#include <string.h>

#include "vrid.h"

#define LOG_PREFIX "record: "

static struct vrid_ipc_record *record_at(uint32_t i)
{
	return &vrid.records->records[i];
}

/* used, as the chain may have left it, bounded by what attach measured. */
static uint32_t used_bound(void)
{
	uint32_t used = __atomic_load_n(&vrid.records->used, __ATOMIC_RELAXED);

	return used < vrid.records_cap ? used : vrid.records_cap;
}

static struct vrid_ipc_record *find_locked(uint32_t type, int32_t sys)
{
	uint32_t used = used_bound();

	for (uint32_t i = 0; i < used; i++)
		if (record_at(i)->type == type && record_at(i)->sys == sys)
			return record_at(i);
	return NULL;
}

/* Frees the records whose entry is gone: the object went behind our back. */
static void collect_records_locked(void)
{
	uint32_t used = used_bound();
	int32_t unused;

	for (uint32_t i = 0; i < used; i++) {
		struct vrid_ipc_record *r = record_at(i);

		if (r->type != 0 && (r->type >= VRID_NTYPES ||
				     vrid_sys_to_virt((enum vrid_type)r->type, r->sys, &unused) < 0))
			__atomic_store_n(&r->type, 0, __ATOMIC_RELEASE);
	}
}

static struct vrid_ipc_record *free_record_locked(void)
{
	uint32_t used = used_bound();

	for (uint32_t i = 0; i < used; i++)
		if (record_at(i)->type == 0)
			return record_at(i);
	if (used == vrid.records_cap)
		return NULL;
	/* Past used, a record is free whatever it holds. */
	__atomic_store_n(&record_at(used)->type, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&vrid.records->used, used + 1, __ATOMIC_RELEASE);
	return record_at(used);
}

void vrid_record_put_locked(const struct vrid_ipc_record *rec)
{
	struct vrid_ipc_record *r;

	if (!vrid.records)
		return;
	r = find_locked(rec->type, rec->sys);
	if (!r && !(r = free_record_locked())) {
		collect_records_locked();
		r = free_record_locked();
	}
	if (!r) {
		vrid_log(VRID_LOG_WARN, LOG_PREFIX "no room to record %s id %d; teardown will leave it",
			 vrid_type_name((enum vrid_type)rec->type), rec->sys);
		return;
	}
	__atomic_store_n(&r->type, 0, __ATOMIC_RELEASE);
	memcpy((char *)r + sizeof(r->type), (const char *)rec + sizeof(rec->type),
	       sizeof(*r) - sizeof(r->type));
	__atomic_store_n(&r->type, rec->type, __ATOMIC_RELEASE);
}

void vrid_record_drop_locked(enum vrid_type type, int32_t sys)
{
	struct vrid_ipc_record *r;

	if (vrid.records && (r = find_locked(type, sys)))
		__atomic_store_n(&r->type, 0, __ATOMIC_RELEASE);
}

void vrid_record_ctime(enum vrid_type type, int32_t sys)
{
	struct vrid_ipc_record now = { .ctime = 0 }, *r;
	int saved_errno = errno;
	sigset_t saved;

	vrid_record_fill(type, sys, &now);
	if (vrid.records && vrid_lock(&saved) == 0) {
		if ((r = find_locked(type, sys)))
			r->ctime = now.ctime;
		vrid_unlock(&saved);
	}
	errno = saved_errno;
}
