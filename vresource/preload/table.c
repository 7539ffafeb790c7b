/*
 * The translation tables: lookups in both directions, binds and removals.
 *
 * Lookups are lock-free: one atomic load per probed slot, and a look at
 * the index's rebuild count when they miss.  Writers (bind, remove) take
 * the writer lock (lock.c) and mark the table they change in the header,
 * so that the next writer repairs it if they die halfway.
 */
#include <sched.h>
#include <sys/syscall.h>

#include "vrid.h"

#define LOG_PREFIX "table: "

/* An index counts as full at 3/4 of its slots, to keep probes short. */
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

void vrid_record_fill(enum vrid_type type, int32_t sys, struct vrid_ipc_record *rec)
{
	if (type_ops[type]->record)
		type_ops[type]->record(sys, rec);
}

static inline uint32_t enc(int32_t key)
{
	return (uint32_t)key ^ VRID_KEY_BIAS;
}

static inline uint32_t home(const struct vrid_index *idx, uint32_t k)
{
	return (k * VRID_HASH_MUL) >> idx->shift;
}

/* One probe of key's run: 0 and *val, or -ENOENT. */
static int probe(const struct vrid_index *idx, const uint64_t *index, uint32_t k, int32_t *val)
{
	uint32_t i = home(idx, k);

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

/*
 * A hit is always right: a rebuild moves entries but never changes one.
 * A miss is only believed if no rebuild ran during the probe.
 */
static int find(const struct vrid_index *idx, const uint64_t *index, int32_t key, int32_t *val)
{
	uint32_t k = enc(key);

	if (unlikely(k == 0))
		return -ENOENT;
	for (unsigned spins = 1;; spins++) {
		uint32_t seq = __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_ACQUIRE);

		if (probe(idx, index, k, val) == 0)
			return 0;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(seq & 1) && __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_RELAXED) == seq)
			return -ENOENT;
		/* A rebuild this long is one whose writer died: the lock repairs it. */
		if (spins % 1024 == 0) {
			sigset_t saved;

			if (vrid_lock(&saved) == 0)
				vrid_unlock(&saved);
		}
		vrid_sys0(SYS_sched_yield);
	}
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

/* Writes key -> val into the first free slot of key's run. */
static void put(struct vrid_index *idx, uint64_t *index, uint32_t *tombs, uint32_t k, int32_t val)
{
	uint32_t i = home(idx, k);

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		uint64_t s = index[i];

		if (s == 0 || s == VRID_SLOT_TOMB) {
			if (s == VRID_SLOT_TOMB)
				(*tombs)--;
			__atomic_store_n(&index[i], (uint64_t)k << 32 | (uint32_t)val, __ATOMIC_RELEASE);
			return;
		}
	}
}

/*
 * Marks key's slot removed.  A removed slot followed by an empty one ends
 * every probe that reaches it, so such a run can become empty again.
 */
static void del(struct vrid_index *idx, uint64_t *index, uint32_t *tombs, int32_t key)
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
	(*tombs)++;
	while (index[i] == VRID_SLOT_TOMB && index[(i + 1) & idx->mask] == 0) {
		__atomic_store_n(&index[i], 0, __ATOMIC_RELEASE);
		(*tombs)--;
		i = (i - 1) & idx->mask;
	}
}

static void insert_locked(struct vrid_index *idx, int32_t virt, int32_t sys)
{
	put(idx, idx->by_virt, &idx->desc->tombs_by_virt, enc(virt), sys);
	put(idx, idx->by_sys, &idx->desc->tombs_by_sys, enc(sys), virt);
	idx->desc->live++;
}

static void remove_locked(struct vrid_index *idx, int32_t virt, int32_t sys)
{
	enum vrid_type type = (enum vrid_type)(idx - vrid.idx);

	del(idx, idx->by_sys, &idx->desc->tombs_by_sys, sys);
	del(idx, idx->by_virt, &idx->desc->tombs_by_virt, virt);
	idx->desc->live--;
	if (type_ops[type]->record)
		vrid_record_drop_locked(type, sys);
}

/*
 * Empties every removed slot, then puts each entry back from its home, run
 * by run, starting after a slot that was empty before: no run crosses it,
 * so each entry lands at or before where it was, behind entries that stay.
 */
static void rebuild_index(struct vrid_index *idx, uint64_t *index, uint32_t *tombs)
{
	uint32_t start = 0, unused = 0;

	/* room_locked rebuilds before removed and live slots fill 3/4: one is empty. */
	while (start < idx->mask && index[start] != 0)
		start++;
	for (uint32_t i = 0; i <= idx->mask; i++)
		if (index[i] == VRID_SLOT_TOMB)
			__atomic_store_n(&index[i], 0, __ATOMIC_RELAXED);
	for (uint32_t n = 1; n <= idx->mask; n++) {
		uint32_t i = (start + n) & idx->mask;
		uint64_t s = index[i];

		if (s == 0)
			continue;
		__atomic_store_n(&index[i], 0, __ATOMIC_RELAXED);
		put(idx, index, &unused, (uint32_t)(s >> 32), (int32_t)(uint32_t)s);
	}
	*tombs = 0;
}

/* Readers that miss while the count is odd, or changed, probe again. */
static void begin_rebuild(struct vrid_index *idx)
{
	if (!(idx->desc->rebuilds & 1))
		__atomic_add_fetch(&idx->desc->rebuilds, 1, __ATOMIC_RELAXED);
	/* The odd count is seen before any slot this rebuild empties. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void end_rebuild(struct vrid_index *idx)
{
	__atomic_add_fetch(&idx->desc->rebuilds, 1, __ATOMIC_RELEASE);
}

static void rebuild_locked(struct vrid_index *idx)
{
	begin_rebuild(idx);
	rebuild_index(idx, idx->by_virt, &idx->desc->tombs_by_virt);
	rebuild_index(idx, idx->by_sys, &idx->desc->tombs_by_sys);
	end_rebuild(idx);
}

/* Puts back into to every pair from that it lacks. */
static void fill_from(struct vrid_index *idx, uint64_t *to, const uint64_t *from, uint32_t *tombs)
{
	for (uint32_t i = 0; i <= idx->mask; i++) {
		uint64_t s = from[i];
		int32_t key_of_to = (int32_t)(uint32_t)s, unused;

		if (s == 0 || s == VRID_SLOT_TOMB)
			continue;
		if (probe(idx, to, enc(key_of_to), &unused) == -ENOENT)
			put(idx, to, tombs, enc(key_of_to), (int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS));
	}
}

static uint32_t count_entries(const struct vrid_index *idx, const uint64_t *index)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i <= idx->mask; i++)
		n += index[i] != 0 && index[i] != VRID_SLOT_TOMB;
	return n;
}

/* Whether every entry is the first its own probe finds: no hole, no twin. */
static int index_sound(const struct vrid_index *idx, const uint64_t *index)
{
	for (uint32_t i = 0; i <= idx->mask; i++) {
		uint64_t s = index[i];
		uint32_t j;

		if (s == 0 || s == VRID_SLOT_TOMB)
			continue;
		for (j = home(idx, (uint32_t)(s >> 32)); j != i; j = (j + 1) & idx->mask)
			if (index[j] == 0 || (uint32_t)(index[j] >> 32) == (uint32_t)(s >> 32))
				return 0;
	}
	return 1;
}

static void clear_index(struct vrid_index *idx, uint64_t *index, uint32_t *tombs)
{
	for (uint32_t i = 0; i <= idx->mask; i++)
		__atomic_store_n(&index[i], 0, __ATOMIC_RELAXED);
	*tombs = 0;
}

/*
 * A writer died inside a write (only SIGKILL can stop one there).  An
 * insert or removal cut short leaves one pair in one index only; a
 * rebuild cut short leaves one index unsound but the other whole.  So an
 * unsound index is emptied, both are rebuilt, and each is filled from the
 * other.
 */
static void repair_type_locked(enum vrid_type type)
{
	struct vrid_index *idx = &vrid.idx[type];
	struct vrid_table_desc *d = idx->desc;

	vrid_log(VRID_LOG_WARN, LOG_PREFIX "repairing the %s table after a writer died in a write",
		 type_ops[type]->name);
	begin_rebuild(idx);
	if (!index_sound(idx, idx->by_virt))
		clear_index(idx, idx->by_virt, &d->tombs_by_virt);
	else if (!index_sound(idx, idx->by_sys))
		clear_index(idx, idx->by_sys, &d->tombs_by_sys);
	rebuild_index(idx, idx->by_virt, &d->tombs_by_virt);
	rebuild_index(idx, idx->by_sys, &d->tombs_by_sys);
	fill_from(idx, idx->by_virt, idx->by_sys, &d->tombs_by_virt);
	fill_from(idx, idx->by_sys, idx->by_virt, &d->tombs_by_sys);
	d->live = count_entries(idx, idx->by_virt);
	end_rebuild(idx);
}

void vrid_repair_locked(void)
{
	uint32_t dirty = vrid.hdr->dirty;

	if (unlikely(dirty != 0)) {
		if (dirty <= VRID_NTYPES)
			repair_type_locked((enum vrid_type)(dirty - 1));
		vrid.hdr->dirty = 0;
	}
	/* An odd count with no mark: a rebuild no reader should wait on. */
	for (int t = 0; t < VRID_NTYPES; t++)
		if (unlikely(vrid.idx[t].desc->rebuilds & 1))
			repair_type_locked((enum vrid_type)t);
}

/* Marks the table a locked write changes, until the write is whole. */
static void begin_write(enum vrid_type type)
{
	__atomic_store_n(&vrid.hdr->dirty, (uint32_t)type + 1, __ATOMIC_RELAXED);
	/* The mark lands before any change it covers. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void end_write(void)
{
	__atomic_store_n(&vrid.hdr->dirty, 0, __ATOMIC_RELEASE);
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

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Room for one more entry: dead ones collected, removed slots reclaimed. */
static int room_locked(enum vrid_type type)
{
	struct vrid_index *idx = &vrid.idx[type];
	struct vrid_table_desc *d = idx->desc;

	if (d->live >= FULL(idx))
		collect_locked(type);
	if (d->live < FULL(idx) && d->live + max_u32(d->tombs_by_virt, d->tombs_by_sys) >= FULL(idx))
		rebuild_locked(idx);
	if (d->live < FULL(idx))
		return 0;
	vrid_log(VRID_LOG_ERROR, LOG_PREFIX "%s table full (%u entries in %u slots); "
		 "raise [tables] %s_slots in config.toml",
		 type_ops[type]->name, idx->desc->live, idx->mask + 1, type_ops[type]->name);
	return -ENOSPC;
}

/*
 * The next fresh virtual id that nobody in the chain uses.  A lap of the
 * range, or more candidates than the index has entries, finds one if any.
 */
static int fresh_locked(struct vrid_index *idx, int32_t *virt)
{
	struct vrid_table_desc *d = idx->desc;
	uint64_t tries = (uint64_t)d->fresh_max - d->fresh_base + 1;
	int32_t unused;

	if (tries > (uint64_t)idx->mask + 1)
		tries = (uint64_t)idx->mask + 1;
	while (tries-- > 0) {
		int32_t v = (int32_t)d->fresh_next;

		d->fresh_next = d->fresh_next >= d->fresh_max ? d->fresh_base : d->fresh_next + 1;
		if (probe(idx, idx->by_virt, enc(v), &unused) == -ENOENT) {
			*virt = v;
			return 0;
		}
	}
	vrid_log(VRID_LOG_ERROR, LOG_PREFIX "no fresh virtual id left in %u..%u",
		 d->fresh_base, d->fresh_max);
	return -ENOSPC;
}

/*
 * The system id keeps its own value as virtual id when that value is free
 * in the chain, so an unrestored chain sees the ids the OS gave.
 */
int vrid_bind(enum vrid_type type, int32_t sys, int32_t *virt)
{
	return vrid_bind_record(type, sys, NULL, virt);
}

/* A new entry gets rec, in the same write: no entry of a new object lacks one. */
int vrid_bind_record(enum vrid_type type, int32_t sys, const struct vrid_ipc_record *rec,
		     int32_t *virt)
{
	struct vrid_index *idx = &vrid.idx[type];
	int32_t unused;
	sigset_t saved;
	int err;

	if (vrid_sys_to_virt(type, sys, virt) == 0)
		return 0;
	if (enc(sys) == 0)
		return -EINVAL;
	if ((err = vrid_lock(&saved)) < 0)
		return err;
	begin_write(type);
	err = probe(idx, idx->by_sys, enc(sys), virt);
	if (err == -ENOENT && (err = room_locked(type)) == 0) {
		if (!(vrid.hdr->flags & VRID_FLAG_SEQUENTIAL) &&
		    probe(idx, idx->by_virt, enc(sys), &unused) == -ENOENT) {
			*virt = sys;
		} else {
			err = fresh_locked(idx, virt);
		}
		if (err == 0)
			insert_locked(idx, *virt, sys);
		if (err == 0 && rec)
			vrid_record_put_locked(rec);
	}
	end_write();
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
	if (enc(vkey) == 0)
		return -EINVAL;
	if ((err = vrid_lock(&saved)) < 0)
		return err;
	begin_write(VRID_IPCKEY);
	err = probe(idx, idx->by_virt, enc(vkey), skey);
	if (err == -ENOENT && (err = room_locked(VRID_IPCKEY)) == 0) {
		do
			*skey = derive_key(vkey, attempt++);
		while (*skey == IPC_PRIVATE || *skey == INT32_MIN ||
		       probe(idx, idx->by_sys, enc(*skey), &unused) == 0);
		insert_locked(idx, vkey, *skey);
		*created = 1;
	}
	end_write();
	vrid_unlock(&saved);
	return err;
}

static int remove_by(enum vrid_type type, int32_t id, int by_sys)
{
	struct vrid_index *idx = &vrid.idx[type];
	int32_t other;
	sigset_t saved;
	int err;

	if (enc(id) == 0)
		return -ENOENT;
	if ((err = vrid_lock(&saved)) < 0)
		return err;
	begin_write(type);
	err = probe(idx, by_sys ? idx->by_sys : idx->by_virt, enc(id), &other);
	if (err == 0) {
		if (by_sys)
			remove_locked(idx, other, id);
		else
			remove_locked(idx, id, other);
	}
	end_write();
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

/*
 * Under the lock: no rebuild moves an entry past the walk, and callers
 * such as kill(-1) reach every process once.
 */
int vrid_each(enum vrid_type type, int (*fn)(int32_t virt, int32_t sys, void *arg), void *arg)
{
	const struct vrid_index *idx = &vrid.idx[type];
	sigset_t saved;
	int ret = 0;

	if (vrid_lock(&saved) < 0)
		return 0;
	for (uint32_t i = 0; i <= idx->mask && ret == 0; i++) {
		uint64_t s = idx->by_virt[i];

		if (s != 0 && s != VRID_SLOT_TOMB)
			ret = fn((int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS), (int32_t)(uint32_t)s, arg);
	}
	vrid_unlock(&saved);
	return ret;
}
