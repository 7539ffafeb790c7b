/*
 * The translation tables: lookups in both directions, binds and removals.
 *
 * Lookups are lock-free: one atomic load per probed slot.  Writers (bind,
 * remove) take the table's writer lock, a word in the shared header that
 * holds the writer's system tid, with every signal blocked so that a
 * handler in the same thread can never wait on its own lock.
 */
#include <sched.h>
#include <sys/syscall.h>

#include "vrid.h"

#define LOG_PREFIX "table: "

/* A table counts as full at 3/4 of its slots, to keep probes short. */
#define FULL(idx) ((idx)->mask - ((idx)->mask >> 2))

static const struct vrid_type_ops *const type_ops[VRID_NTYPES] = {
	[VRID_PID] = &pid_type_ops,
	[VRID_SEM] = &sem_type_ops,
	[VRID_SHM] = &shm_type_ops,
	[VRID_MSG] = &msg_type_ops,
	[VRID_IPCKEY] = &ipckey_type_ops,
};

const char *vrid_type_name(enum vrid_type type)
{
	return type_ops[type]->name;
}

static inline uint32_t enc(int32_t key)
{
	return (uint32_t)key ^ VRID_KEY_BIAS;
}

static inline uint32_t home(const struct vrid_index *idx, uint32_t k)
{
	return (k * VRID_HASH_MUL) >> idx->shift;
}

static int find(const struct vrid_index *idx, const uint64_t *index,
		int32_t key, int32_t *val)
{
	uint32_t k = enc(key), i = home(idx, k);

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		uint64_t s = __atomic_load_n(&index[i], __ATOMIC_ACQUIRE);

		if (s == 0)
			return -ENOENT;
		if ((uint32_t)(s >> 32) == k) {
			*val = (int32_t)(uint32_t)s;
			return 0;
		}
	}
	return -ENOENT;
}

int vrid_virt_to_sys(enum vrid_type type, int32_t virt, int32_t *sys)
{
	return find(&vrid.idx[type], vrid.idx[type].by_virt, virt, sys);
}

int vrid_sys_to_virt(enum vrid_type type, int32_t sys, int32_t *virt)
{
	return find(&vrid.idx[type], vrid.idx[type].by_sys, sys, virt);
}

/* ---- writers ---------------------------------------------------------- */

static int tid_alive(uint32_t tid)
{
	return vrid_sys2(SYS_kill, tid, 0) != -ESRCH;
}

void vrid_lock(sigset_t *saved)
{
	sigset_t all;
	uint32_t me = (uint32_t)vrid_sys0(SYS_gettid);

	sigfillset(&all);
	vrid_sys(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)saved,
		 _NSIG / 8, 0, 0);
	for (unsigned spins = 1;; spins++) {
		uint32_t owner = 0;

		if (__atomic_compare_exchange_n(&vrid.hdr->writer, &owner, me, 0,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		/* A writer killed inside its few instructions leaves its tid. */
		if (spins % 256 == 0 && !tid_alive(owner)) {
			vrid_log(VRID_LOG_WARN, LOG_PREFIX "taking the lock of dead writer %u", owner);
			__atomic_compare_exchange_n(&vrid.hdr->writer, &owner, 0, 0,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		}
		vrid_sys0(SYS_sched_yield);
	}
}

void vrid_unlock(const sigset_t *saved)
{
	__atomic_store_n(&vrid.hdr->writer, 0, __ATOMIC_RELEASE);
	vrid_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, _NSIG / 8, 0, 0);
}

/* Writes key -> val into the first free slot of key's probe run. */
static int put(struct vrid_index *idx, uint64_t *index, int32_t key, int32_t val)
{
	uint32_t k = enc(key), i = home(idx, k);

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		uint64_t s = index[i];

		if (s == 0 || s == VRID_SLOT_TOMB) {
			__atomic_store_n(&index[i],
					 (uint64_t)k << 32 | (uint32_t)val, __ATOMIC_RELEASE);
			return 0;
		}
	}
	return -ENOSPC;
}

/*
 * Marks key's slot removed.  A removed slot followed by an empty one ends
 * every probe that reaches it, so such a run can become empty again: that
 * keeps probes short however many processes come and go.
 */
static void del(struct vrid_index *idx, uint64_t *index, int32_t key)
{
	uint32_t k = enc(key), i = home(idx, k);
	uint32_t n;

	for (n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		if (index[i] == 0)
			return;
		if ((uint32_t)(index[i] >> 32) == k)
			break;
	}
	if (n > idx->mask)
		return;
	__atomic_store_n(&index[i], VRID_SLOT_TOMB, __ATOMIC_RELEASE);
	while (index[i] == VRID_SLOT_TOMB && index[(i + 1) & idx->mask] == 0) {
		__atomic_store_n(&index[i], 0, __ATOMIC_RELEASE);
		i = (i - 1) & idx->mask;
	}
}

static void insert_locked(struct vrid_index *idx, int32_t virt, int32_t sys)
{
	put(idx, idx->by_virt, virt, sys);
	put(idx, idx->by_sys, sys, virt);
	idx->desc->live++;
}

static void remove_locked(struct vrid_index *idx, int32_t virt, int32_t sys)
{
	del(idx, idx->by_sys, sys);
	del(idx, idx->by_virt, virt);
	idx->desc->live--;
}

/* Drops the entries whose system object is gone; returns how many. */
static uint32_t collect_locked(enum vrid_type type)
{
	struct vrid_index *idx = &vrid.idx[type];
	uint32_t freed = 0;

	for (uint32_t i = 0; i <= idx->mask; i++) {
		uint64_t s = idx->by_sys[i];
		int32_t sys, virt;

		if (s == 0 || s == VRID_SLOT_TOMB)
			continue;
		sys = (int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS);
		virt = (int32_t)(uint32_t)s;
		if (type_ops[type]->sys_alive(sys))
			continue;
		remove_locked(idx, virt, sys);
		freed++;
	}
	return freed;
}

static int room_locked(enum vrid_type type)
{
	struct vrid_index *idx = &vrid.idx[type];

	if (idx->desc->live < FULL(idx))
		return 0;
	if (collect_locked(type) > 0 && idx->desc->live < FULL(idx))
		return 0;
	vrid_log(VRID_LOG_ERROR, LOG_PREFIX "%s table full (%u entries in %u slots); "
		 "raise [tables] %s_slots in config.toml",
		 type_ops[type]->name, idx->desc->live, idx->mask + 1, type_ops[type]->name);
	return -ENOSPC;
}

/* The next fresh virtual id that nobody in the chain uses. */
static int32_t fresh_locked(struct vrid_index *idx)
{
	struct vrid_table_desc *d = idx->desc;
	int32_t unused;

	for (;;) {
		int32_t v = (int32_t)d->fresh_next;

		d->fresh_next = d->fresh_next >= d->fresh_max ? d->fresh_base : d->fresh_next + 1;
		if (find(idx, idx->by_virt, v, &unused) == -ENOENT)
			return v;
	}
}

/*
 * The system id keeps its own value as virtual id when that value is free
 * in the chain, so an unrestored chain sees the ids the OS gave.
 */
int vrid_bind(enum vrid_type type, int32_t sys, int32_t *virt)
{
	struct vrid_index *idx = &vrid.idx[type];
	int32_t unused;
	sigset_t saved;
	int err;

	if (vrid_sys_to_virt(type, sys, virt) == 0)
		return 0;
	vrid_lock(&saved);
	err = vrid_sys_to_virt(type, sys, virt);
	if (err == -ENOENT && (err = room_locked(type)) == 0) {
		if (!(vrid.hdr->flags & VRID_FLAG_SEQUENTIAL) &&
		    find(idx, idx->by_virt, sys, &unused) == -ENOENT)
			*virt = sys;
		else
			*virt = fresh_locked(idx);
		insert_locked(idx, *virt, sys);
	}
	vrid_unlock(&saved);
	return err;
}

/*
 * A private system key for a virtual key: a hash of the AID and the key,
 * so that two chains using one fixed key get two objects.  attempt picks
 * another candidate when a foreign object already owns the first.
 */
static int32_t derive_key(int32_t vkey, uint32_t attempt)
{
	uint64_t x = vrid.hdr->aid * 0x9e3779b97f4a7c15ull ^ (uint32_t)vkey;

	x += (uint64_t)attempt * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 29;
	return (int32_t)(uint32_t)x;
}

int vrid_bind_key(int32_t vkey, uint32_t attempt, int32_t *skey, int *created)
{
	struct vrid_index *idx = &vrid.idx[VRID_IPCKEY];
	int32_t unused;
	sigset_t saved;
	int err;

	*created = 0;
	if (vrid_virt_to_sys(VRID_IPCKEY, vkey, skey) == 0)
		return 0;
	vrid_lock(&saved);
	err = vrid_virt_to_sys(VRID_IPCKEY, vkey, skey);
	if (err == -ENOENT && (err = room_locked(VRID_IPCKEY)) == 0) {
		do
			*skey = derive_key(vkey, attempt++);
		while (*skey == IPC_PRIVATE || *skey == INT32_MIN ||
		       find(idx, idx->by_sys, *skey, &unused) == 0);
		insert_locked(idx, vkey, *skey);
		*created = 1;
	}
	vrid_unlock(&saved);
	return err;
}

static int remove_by(enum vrid_type type, int32_t id, int by_sys)
{
	struct vrid_index *idx = &vrid.idx[type];
	int32_t other;
	sigset_t saved;
	int err;

	vrid_lock(&saved);
	err = find(idx, by_sys ? idx->by_sys : idx->by_virt, id, &other);
	if (err == 0) {
		if (by_sys)
			remove_locked(idx, other, id);
		else
			remove_locked(idx, id, other);
	}
	vrid_unlock(&saved);
	return err;
}

int vrid_remove_sys(enum vrid_type type, int32_t sys)
{
	return remove_by(type, sys, 1);
}

int vrid_remove_virt(enum vrid_type type, int32_t virt)
{
	return remove_by(type, virt, 0);
}

uint32_t vrid_live(enum vrid_type type)
{
	return __atomic_load_n(&vrid.idx[type].desc->live, __ATOMIC_RELAXED);
}

int vrid_each(enum vrid_type type, int (*fn)(int32_t virt, int32_t sys, void *arg),
	      void *arg)
{
	const struct vrid_index *idx = &vrid.idx[type];

	for (uint32_t i = 0; i <= idx->mask; i++) {
		uint64_t s = __atomic_load_n(&idx->by_virt[i], __ATOMIC_ACQUIRE);
		int ret;

		if (s == 0 || s == VRID_SLOT_TOMB)
			continue;
		ret = fn((int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS),
			 (int32_t)(uint32_t)s, arg);
		if (ret)
			return ret;
	}
	return 0;
}
