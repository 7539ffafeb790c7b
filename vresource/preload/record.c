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

#include "table.h"

#define LOG_PREFIX "record: "

static struct vrid_ipc_record *record_at(const struct vrid_table *t, uint32_t i)
{
	return &t->records->records[i];
}

/* used, as the chain may have left it, bounded by what attach measured. */
static uint32_t used_bound(const struct vrid_table *t)
{
	uint32_t used = __atomic_load_n(&t->records->used, __ATOMIC_RELAXED);

	return used < t->records_cap ? used : t->records_cap;
}

static struct vrid_ipc_record *find_locked(struct vrid_table *t, uint32_t type, int32_t sys)
{
	uint32_t used = used_bound(t);

	for (uint32_t i = 0; i < used; i++)
		if (record_at(t, i)->type == type && record_at(t, i)->sys == sys)
			return record_at(t, i);
	return NULL;
}

/* Frees the records whose entry is gone: the object went behind our back. */
static void collect_records_locked(struct vrid_table *t)
{
	uint32_t used = used_bound(t);
	int32_t unused;

	for (uint32_t i = 0; i < used; i++) {
		struct vrid_ipc_record *r = record_at(t, i);

		if (r->type != 0 && (r->type >= VRID_NTYPES ||
				     vrid_sys_to_virt(t, (enum vrid_type)r->type, r->sys, &unused) < 0))
			__atomic_store_n(&r->type, 0, __ATOMIC_RELEASE);
	}
}

static struct vrid_ipc_record *free_record_locked(struct vrid_table *t)
{
	uint32_t used = used_bound(t);

	for (uint32_t i = 0; i < used; i++)
		if (record_at(t, i)->type == 0)
			return record_at(t, i);
	if (used == t->records_cap)
		return NULL;
	/* Past used, a record is free whatever it holds. */
	__atomic_store_n(&record_at(t, used)->type, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->records->used, used + 1, __ATOMIC_RELEASE);
	return record_at(t, used);
}

int vrid_record_put_locked(struct vrid_table *t, const struct vrid_ipc_record *rec)
{
	struct vrid_ipc_record *r;

	if (!t->records)
		return -ENOSPC;
	r = find_locked(t, rec->type, rec->sys);
	if (!r && !(r = free_record_locked(t))) {
		collect_records_locked(t);
		r = free_record_locked(t);
	}
	if (!r) {
		vrid_log(VRID_LOG_WARN, LOG_PREFIX "no room to record %s id %d; teardown will leave it",
			 vrid_type_name((enum vrid_type)rec->type), rec->sys);
		return -ENOSPC;
	}
	__atomic_store_n(&r->type, 0, __ATOMIC_RELEASE);
	memcpy((char *)r + sizeof(r->type), (const char *)rec + sizeof(rec->type),
	       sizeof(*r) - sizeof(r->type));
	__atomic_store_n(&r->type, rec->type, __ATOMIC_RELEASE);
	return 0;
}

void vrid_record_drop_locked(struct vrid_table *t, enum vrid_type type, int32_t sys)
{
	struct vrid_ipc_record *r;

	if (t->records && (r = find_locked(t, type, sys)))
		__atomic_store_n(&r->type, 0, __ATOMIC_RELEASE);
}

void vrid_record_ctime(struct vrid_table *t, enum vrid_type type, int32_t sys)
{
	struct vrid_ipc_record now = { .ctime = 0 }, *r;
	int saved_errno = errno;
	sigset_t saved;

	vrid_record_fill(t, type, sys, &now);
	if (t->records && vrid_lock(t, &saved) == 0) {
		if ((r = find_locked(t, type, sys)))
			r->ctime = now.ctime;
		vrid_unlock(t, &saved);
	}
	errno = saved_errno;
}

/*
 * Without the lock: each record is copied whole or not at all, read
 * after its type, which a writer sets last; used and capacity are the
 * chain's to write, so the size attach measured bounds them.
 */
uint32_t vrid_records_copy(const struct vrid_table *t, struct vrid_ipc_record *out, uint32_t cap)
{
	uint32_t used, n = 0;

	if (!t->records)
		return 0;
	used = used_bound(t);
	if (used > __atomic_load_n(&t->records->capacity, __ATOMIC_RELAXED))
		used = __atomic_load_n(&t->records->capacity, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < used && n < cap; i++) {
		const struct vrid_ipc_record *r = record_at(t, i);
		uint32_t type = __atomic_load_n(&r->type, __ATOMIC_ACQUIRE);

		if (type != VRID_SEM && type != VRID_SHM && type != VRID_MSG)
			continue;
		out[n] = *r;
		out[n++].type = type;
	}
	return n;
}
