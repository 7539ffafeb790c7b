/*
 * The SEM_UNDO adjustments: what the kernel will add to each semaphore
 * when each process of the chain exits, recorded because no interface
 * shows it (docs/sysv-state.md).  An array in a section of the table
 * file, keyed by (process, set, semaphore), as the IPC records are: every
 * write holds the writer lock; an entry is freed before it is written and
 * gets its process last, and a change of adj is one store, so a writer
 * that dies leaves each entry whole or free and nothing needs repair.
 * Scans are linear in the entries ever live at once, and only semops
 * with SEM_UNDO, SETVAL, SETALL, IPC_RMID and a process's end make them.
 */
#include <string.h>

#include "table.h"

#define LOG_PREFIX "semadj: "

/* used, as the chain may have left it, bounded by what attach measured. */
static uint32_t used_bound(const struct vrid_table *t)
{
	uint32_t used;

	if (!t->semadj)
		return 0;
	used = __atomic_load_n(&t->semadj->used, __ATOMIC_ACQUIRE);
	return used < t->semadj_cap ? used : t->semadj_cap;
}

int vrid_semadj_used(const struct vrid_table *t)
{
	return used_bound(t) != 0;
}

struct vrid_semadj *vrid_semadj_at(const struct vrid_table *t, uint32_t i)
{
	return i < used_bound(t) ? &t->semadj->entries[i] : NULL;
}

void vrid_semadj_free_locked(struct vrid_semadj *e)
{
	__atomic_store_n(&e->pid_virt, 0, __ATOMIC_RELEASE);
}

/* The entry of (pid, sem, num), else a free one in *free_slot (or NULL). */
static struct vrid_semadj *find_locked(struct vrid_table *t, int32_t pid_virt, int32_t sem_virt,
				       uint16_t num, struct vrid_semadj **free_slot)
{
	uint32_t used = used_bound(t);

	*free_slot = NULL;
	for (uint32_t i = 0; i < used; i++) {
		struct vrid_semadj *e = &t->semadj->entries[i];

		if (e->pid_virt == pid_virt && e->sem_virt == sem_virt && e->num == num)
			return e;
		if (e->pid_virt == 0 && !*free_slot)
			*free_slot = e;
	}
	return NULL;
}

/* A free entry past used, or NULL when the section is full. */
static struct vrid_semadj *grow_locked(struct vrid_table *t)
{
	uint32_t used = used_bound(t);
	struct vrid_semadj *e;

	if (used == t->semadj_cap)
		return NULL;
	/* Past used, an entry is free whatever it holds. */
	e = &t->semadj->entries[used];
	__atomic_store_n(&e->pid_virt, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&t->semadj->used, used + 1, __ATOMIC_RELEASE);
	return e;
}

/* A sum the kernel would have refused: semadj stays within a short. */
static int clamp_adj(int adj)
{
	return adj > INT16_MAX ? INT16_MAX : adj < INT16_MIN ? INT16_MIN : adj;
}

int vrid_semadj_add_locked(struct vrid_table *t, int32_t pid_virt, int32_t sem_virt, uint16_t num,
			   int delta)
{
	struct vrid_semadj *e, *free_slot;
	int adj;

	if (delta == 0)
		return 0;
	if (!t->semadj)
		return -ENOSPC;
	e = find_locked(t, pid_virt, sem_virt, num, &free_slot);
	if (e) {
		adj = clamp_adj(e->adj + delta);
		if (adj == 0)
			vrid_semadj_free_locked(e);
		else
			__atomic_store_n(&e->adj, (int16_t)adj, __ATOMIC_RELEASE);
		return 0;
	}
	if (!free_slot && !(free_slot = grow_locked(t))) {
		vrid_semadj_prune_locked(t);
		find_locked(t, pid_virt, sem_virt, num, &free_slot);
	}
	if (!free_slot && !(free_slot = grow_locked(t))) {
		__atomic_add_fetch(&t->semadj->lost, 1, __ATOMIC_RELEASE);
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "no room to record the SEM_UNDO adjustment of "
			 "process %d on sem %d semaphore %u; a snapshot of the chain will refuse",
			 pid_virt, sem_virt, num);
		return -ENOSPC;
	}
	e = free_slot;
	e->sem_virt = sem_virt;
	e->num = num;
	e->adj = (int16_t)clamp_adj(delta);
	e->generation = t->hdr->generation;
	__atomic_store_n(&e->pid_virt, pid_virt, __ATOMIC_RELEASE);
	return 0;
}

void vrid_semadj_clear_locked(struct vrid_table *t, int32_t sem_virt, int num)
{
	uint32_t used = used_bound(t);

	for (uint32_t i = 0; i < used; i++) {
		struct vrid_semadj *e = &t->semadj->entries[i];

		if (e->pid_virt != 0 && e->sem_virt == sem_virt && (num < 0 || e->num == num))
			vrid_semadj_free_locked(e);
	}
}

void vrid_semadj_drop_pid_locked(struct vrid_table *t, int32_t pid_virt)
{
	uint32_t used = used_bound(t);

	for (uint32_t i = 0; i < used; i++)
		if (t->semadj->entries[i].pid_virt == pid_virt)
			vrid_semadj_free_locked(&t->semadj->entries[i]);
}

void vrid_semadj_prune_locked(struct vrid_table *t)
{
	uint32_t used = used_bound(t);
	int32_t unused;

	for (uint32_t i = 0; i < used; i++) {
		struct vrid_semadj *e = &t->semadj->entries[i];

		if (e->pid_virt != 0 && vrid_virt_to_sys(t, VRID_PID, e->pid_virt, &unused) < 0)
			vrid_semadj_free_locked(e);
	}
}

/* The locking forms: errno is kept, and a table without entries takes no lock. */
void vrid_semadj_clear(struct vrid_table *t, int32_t sem_virt, int num)
{
	int saved_errno = errno;
	sigset_t saved;

	if (vrid_semadj_used(t) && vrid_lock(t, &saved) == 0) {
		vrid_semadj_clear_locked(t, sem_virt, num);
		vrid_unlock(t, &saved);
	}
	errno = saved_errno;
}

void vrid_semadj_drop_pid(struct vrid_table *t, int32_t pid_virt)
{
	int saved_errno = errno;
	sigset_t saved;

	if (vrid_semadj_used(t) && vrid_lock(t, &saved) == 0) {
		vrid_semadj_drop_pid_locked(t, pid_virt);
		vrid_unlock(t, &saved);
	}
	errno = saved_errno;
}

/* Each entry is copied whole or not at all, read after its process, which a writer sets last. */
uint32_t vrid_semadj_copy(const struct vrid_table *t, struct vrid_semadj *out, uint32_t cap)
{
	uint32_t used = used_bound(t), n = 0;

	for (uint32_t i = 0; i < used && n < cap; i++) {
		const struct vrid_semadj *e = &t->semadj->entries[i];
		int32_t pid_virt = __atomic_load_n(&e->pid_virt, __ATOMIC_ACQUIRE);

		if (pid_virt == 0)
			continue;
		out[n] = *e;
		out[n++].pid_virt = pid_virt;
	}
	return n;
}
