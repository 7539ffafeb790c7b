/*
 * The translation tables: lookups in both directions, binds, inserts,
 * rebinds and removals, on the table a handle names (table.h).
 *
 * Lookups are lock-free: one atomic load per probed slot, and a look at
 * the index's rebuild count when they miss.  Writers take the writer lock
 * (lock.c) and mark the table they change in the header, so that the
 * next writer repairs it if they die halfway.
 */
#include <sched.h>
#include <sys/ipc.h>
#include <sys/syscall.h>

#include "table.h"

#define LOG_PREFIX "table: "

/* An index counts as full at 3/4 of its slots, to keep probes short. */
#define FULL(idx) ((idx)->mask - ((idx)->mask >> 2))

/* Also the stems of the config keys ([tables] pid_slots). */
static const char *const type_names[VRID_NTYPES] = {
	[VRID_PID] = "pid",
	[VRID_SEM] = "sem",
	[VRID_SHM] = "shm",
	[VRID_MSG] = "msg",
	[VRID_IPCKEY] = "ipckey",
};

const char *vrid_type_name(enum vrid_type type)
{
	return type_names[type];
}

void vrid_record_fill(const struct vrid_table *t, enum vrid_type type, int32_t sys,
		      struct vrid_ipc_record *rec)
{
	if (t->ops[type]->record)
		t->ops[type]->record(sys, rec);
}

static inline uint32_t enc(int32_t key)
{
	return (uint32_t)key ^ VRID_KEY_BIAS;
}

int vrid_storable(int32_t id)
{
	return enc(id) != 0;
}

static inline uint32_t home(const struct vrid_index *idx, uint32_t k)
{
	return (k * VRID_HASH_MUL) >> idx->shift;
}

/* One walk of key k's run: k's slot, its contents in *s; or -1. */
static inline long slot_of(const struct vrid_index *idx, const uint64_t *index, uint32_t k, uint64_t *s)
{
	uint32_t i = home(idx, k);

	for (uint32_t n = 0; n <= idx->mask; n++, i = (i + 1) & idx->mask) {
		*s = __atomic_load_n(&index[i], __ATOMIC_ACQUIRE);
		if (*s == 0)
			return -1;
		if ((uint32_t)(*s >> 32) == k)
			return i;
	}
	return -1;
}

/* One probe of key's run: 0 and *val, or -ENOENT. */
static int probe(const struct vrid_index *idx, const uint64_t *index, uint32_t k, int32_t *val)
{
	uint64_t s;

	if (slot_of(idx, index, k, &s) < 0)
		return -ENOENT;
	*val = (int32_t)(uint32_t)s;
	return 0;
}

/* Probes of a miss, or listings, during rebuilds before the reader settles the table. */
#define SETTLE_SPINS 1024

/* Whether a read of idx that began at rebuild count seq saw no rebuild. */
static int read_settled(const struct vrid_index *idx, uint32_t seq)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return !(seq & 1) && __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_RELAXED) == seq;
}

/*
 * A hit is always right: a rebuild moves entries but never changes one.
 * A miss is only believed if no rebuild ran during the probe.  A rebuild
 * this long is one whose writer died: the lock repairs it (vrid_settle).
 */
static int find(struct vrid_table *t, const struct vrid_index *idx, const uint64_t *index,
		int32_t key, int32_t *val)
{
	uint32_t k = enc(key);
	int64_t since = 0;
	int err;

	if (unlikely(k == 0))
		return -ENOENT;
	for (unsigned spins = 1;; spins++) {
		uint32_t seq = __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_ACQUIRE);

		if (probe(idx, index, k, val) == 0)
			return 0;
		if (read_settled(idx, seq))
			return -ENOENT;
		if (spins % SETTLE_SPINS == 0 && (err = vrid_settle(t, &since)) < 0)
			return err;
		vrid_sys0(SYS_sched_yield);
	}
}

int vrid_virt_to_sys(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t *sys)
{
	return find(t, &t->idx[type], t->idx[type].by_virt, virt, sys);
}

int vrid_sys_to_virt(struct vrid_table *t, enum vrid_type type, int32_t sys, int32_t *virt)
{
	return find(t, &t->idx[type], t->idx[type].by_sys, sys, virt);
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
	uint64_t s;
	long at = slot_of(idx, index, enc(key), &s);
	uint32_t i = (uint32_t)at;

	if (at < 0)
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

static void remove_locked(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t sys)
{
	struct vrid_index *idx = &t->idx[type];

	del(idx, idx->by_sys, &idx->desc->tombs_by_sys, sys);
	del(idx, idx->by_virt, &idx->desc->tombs_by_virt, virt);
	idx->desc->live--;
	if (t->ops[type]->record)
		vrid_record_drop_locked(t, type, sys);
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
static void repair_type_locked(struct vrid_table *t, enum vrid_type type)
{
	struct vrid_index *idx = &t->idx[type];
	struct vrid_table_desc *d = idx->desc;

	vrid_log(VRID_LOG_WARN, LOG_PREFIX "repairing the %s table after a writer died in a write",
		 vrid_type_name(type));
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

void vrid_repair_locked(struct vrid_table *t)
{
	uint32_t dirty = t->hdr->dirty;

	if (unlikely(dirty != 0)) {
		if (dirty <= VRID_NTYPES)
			repair_type_locked(t, (enum vrid_type)(dirty - 1));
		t->hdr->dirty = 0;
	}
	/* An odd count with no mark: a rebuild no reader should wait on. */
	for (int type = 0; type < VRID_NTYPES; type++)
		if (unlikely(t->idx[type].desc->rebuilds & 1))
			repair_type_locked(t, (enum vrid_type)type);
}

/* Marks the table a locked write changes, until the write is whole. */
static void begin_write(struct vrid_table *t, enum vrid_type type)
{
	__atomic_store_n(&t->hdr->dirty, (uint32_t)type + 1, __ATOMIC_RELAXED);
	/* The mark lands before any change it covers. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void end_write(struct vrid_table *t)
{
	__atomic_store_n(&t->hdr->dirty, 0, __ATOMIC_RELEASE);
}

/* Takes the lock and marks a write to type: 0, or the lock's error. */
static int write_begin(struct vrid_table *t, enum vrid_type type, sigset_t *saved)
{
	int err = vrid_lock(t, saved);

	if (err == 0)
		begin_write(t, type);
	return err;
}

static void write_end(struct vrid_table *t, const sigset_t *saved)
{
	end_write(t);
	vrid_unlock(t, saved);
}

/* Drops the entries whose system object is gone; returns how many. */
static uint32_t collect_locked(struct vrid_table *t, enum vrid_type type)
{
	struct vrid_index *idx = &t->idx[type];
	uint32_t freed = 0;

	for (uint32_t i = 0; i <= idx->mask; i++) {
		uint64_t s = idx->by_sys[i];
		int32_t sys, virt;

		if (s == 0 || s == VRID_SLOT_TOMB)
			continue;
		sys = (int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS);
		virt = (int32_t)(uint32_t)s;
		if (t->ops[type]->sys_alive(sys))
			continue;
		remove_locked(t, type, virt, sys);
		/* The kernel applied a dead process's undo list, and dropped a removed set's. */
		if (type == VRID_PID)
			vrid_semadj_drop_pid_locked(t, virt);
		else if (type == VRID_SEM)
			vrid_semadj_clear_locked(t, virt, -1);
		freed++;
	}
	return freed;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Whether live entries and either index's removed slots reach full. */
static int crowded(const struct vrid_index *idx)
{
	const struct vrid_table_desc *d = idx->desc;

	return d->live + max_u32(d->tombs_by_virt, d->tombs_by_sys) >= FULL(idx);
}

/*
 * Room for one more entry: dead ones collected if collect says so,
 * removed slots reclaimed.  A restore's inserts collect nothing: they may
 * name processes it has not started yet.
 */
static int room_locked(struct vrid_table *t, enum vrid_type type, int collect)
{
	struct vrid_index *idx = &t->idx[type];
	struct vrid_table_desc *d = idx->desc;

	if (collect && d->live >= FULL(idx))
		collect_locked(t, type);
	if (d->live < FULL(idx) && crowded(idx))
		rebuild_locked(idx);
	if (d->live < FULL(idx))
		return 0;
	vrid_log(VRID_LOG_ERROR, LOG_PREFIX "%s table full (%u entries in %u slots); "
		 "raise [tables] %s_slots in config.toml",
		 vrid_type_name(type), idx->desc->live, idx->mask + 1, vrid_type_name(type));
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
 * in the chain, so an unrestored chain sees the ids the OS gave.  Under
 * the sequential policy only a pid namespace's init keeps its pid 1: the
 * kernel gives pid 1 a meaning of its own (no default signal actions, the
 * reaper of orphans) and programs test for it.
 */
static int keeps_own_id(const struct vrid_table *t, enum vrid_type type, int32_t sys)
{
	if (t->hdr->flags & VRID_FLAG_SEQUENTIAL)
		return type == VRID_PID && sys == 1;
	return 1;
}

int vrid_bind(struct vrid_table *t, enum vrid_type type, int32_t sys, int32_t *virt)
{
	return vrid_bind_record(t, type, sys, NULL, virt);
}

/* A new entry gets rec, in the same write: no entry of a new object lacks one. */
int vrid_bind_record(struct vrid_table *t, enum vrid_type type, int32_t sys,
		     const struct vrid_ipc_record *rec, int32_t *virt)
{
	struct vrid_index *idx = &t->idx[type];
	int32_t unused;
	sigset_t saved;
	int err;

	if ((err = vrid_sys_to_virt(t, type, sys, virt)) != -ENOENT)
		return err;
	if (enc(sys) == 0)
		return -EINVAL;
	if ((err = write_begin(t, type, &saved)) < 0)
		return err;
	err = probe(idx, idx->by_sys, enc(sys), virt);
	if (err == -ENOENT && (err = room_locked(t, type, 1)) == 0) {
		if (keeps_own_id(t, type, sys) &&
		    probe(idx, idx->by_virt, enc(sys), &unused) == -ENOENT) {
			*virt = sys;
		} else {
			err = fresh_locked(idx, virt);
		}
		if (err == 0)
			insert_locked(idx, *virt, sys);
		if (err == 0 && rec)
			vrid_record_put_locked(t, rec);
	}
	write_end(t, &saved);
	return err;
}

int vrid_insert(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t sys)
{
	struct vrid_index *idx = &t->idx[type];
	int32_t other;
	sigset_t saved;
	int err;

	if (enc(virt) == 0 || enc(sys) == 0)
		return -EINVAL;
	if ((err = write_begin(t, type, &saved)) < 0)
		return err;
	if (probe(idx, idx->by_virt, enc(virt), &other) == 0 ||
	    probe(idx, idx->by_sys, enc(sys), &other) == 0)
		err = -EEXIST;
	else if ((err = room_locked(t, type, 0)) == 0)
		insert_locked(idx, virt, sys);
	write_end(t, &saved);
	return err;
}

/*
 * The by_virt slot is rewritten in place, so a lookup of virt never
 * misses meanwhile.  Each rebind may leave one more removed slot in
 * by_sys, with no insert to reclaim it, so crowded indexes are rebuilt
 * first, even in a full table, where room_locked gives up.  The steps
 * keep the table one that repair mends if the writer dies between two of
 * them: with the old pair gone from by_sys first, by_virt rewritten next,
 * and the new pair put in by_sys last, at most one index lacks one pair
 * of the other's.
 */
int vrid_rebind(struct vrid_table *t, enum vrid_type type, int32_t virt, int32_t new_sys)
{
	struct vrid_index *idx = &t->idx[type];
	int32_t old_sys, other;
	sigset_t saved;
	uint64_t s;
	int err;

	if (enc(virt) == 0 || enc(new_sys) == 0)
		return -EINVAL;
	if ((err = write_begin(t, type, &saved)) < 0)
		return err;
	err = probe(idx, idx->by_virt, enc(virt), &old_sys);
	if (err == 0 && old_sys != new_sys && probe(idx, idx->by_sys, enc(new_sys), &other) == 0)
		err = -EEXIST;
	if (err == 0 && old_sys != new_sys) {
		if (crowded(idx))
			rebuild_locked(idx);
		del(idx, idx->by_sys, &idx->desc->tombs_by_sys, old_sys);
		__atomic_store_n(&idx->by_virt[slot_of(idx, idx->by_virt, enc(virt), &s)],
				 (uint64_t)enc(virt) << 32 | (uint32_t)new_sys, __ATOMIC_RELEASE);
		put(idx, idx->by_sys, &idx->desc->tombs_by_sys, enc(new_sys), virt);
	}
	write_end(t, &saved);
	return err;
}

/*
 * A private system key for a virtual key: a hash of the AID and the key,
 * so that two chains using one fixed key get two objects.  attempt picks
 * another candidate when a foreign object already owns the first.
 */
static int32_t derive_key(uint64_t aid, int32_t vkey, uint32_t attempt)
{
	uint64_t x = aid * 0x9e3779b97f4a7c15ull ^ (uint32_t)vkey;

	x += (uint64_t)attempt * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 29;
	return (int32_t)(uint32_t)x;
}

int vrid_bind_key(struct vrid_table *t, int32_t vkey, uint32_t attempt, int32_t *skey, int *created)
{
	struct vrid_index *idx = &t->idx[VRID_IPCKEY];
	int32_t unused;
	sigset_t saved;
	int err;

	*created = 0;
	if ((err = vrid_virt_to_sys(t, VRID_IPCKEY, vkey, skey)) != -ENOENT)
		return err;
	if (enc(vkey) == 0)
		return -EINVAL;
	if ((err = write_begin(t, VRID_IPCKEY, &saved)) < 0)
		return err;
	err = probe(idx, idx->by_virt, enc(vkey), skey);
	if (err == -ENOENT && (err = room_locked(t, VRID_IPCKEY, 1)) == 0) {
		do
			*skey = derive_key(t->hdr->aid, vkey, attempt++);
		while (*skey == IPC_PRIVATE || *skey == INT32_MIN ||
		       probe(idx, idx->by_sys, enc(*skey), &unused) == 0);
		insert_locked(idx, vkey, *skey);
		*created = 1;
	}
	write_end(t, &saved);
	return err;
}

static int remove_by(struct vrid_table *t, enum vrid_type type, int32_t id, int by_sys)
{
	struct vrid_index *idx = &t->idx[type];
	int32_t other;
	sigset_t saved;
	int err;

	if (enc(id) == 0)
		return -ENOENT;
	if ((err = write_begin(t, type, &saved)) < 0)
		return err;
	err = probe(idx, by_sys ? idx->by_sys : idx->by_virt, enc(id), &other);
	if (err == 0) {
		if (by_sys)
			remove_locked(t, type, other, id);
		else
			remove_locked(t, type, id, other);
	}
	write_end(t, &saved);
	return err;
}

int vrid_remove_sys(struct vrid_table *t, enum vrid_type type, int32_t sys)
{
	return remove_by(t, type, sys, 1);
}

int vrid_remove_virt(struct vrid_table *t, enum vrid_type type, int32_t virt)
{
	return remove_by(t, type, virt, 0);
}

uint32_t vrid_live(const struct vrid_table *t, enum vrid_type type)
{
	return __atomic_load_n(&t->idx[type].desc->live, __ATOMIC_RELAXED);
}

int vrid_bump_generation(struct vrid_table *t, uint32_t *generation)
{
	sigset_t saved;
	int err;

	if ((err = vrid_lock(t, &saved)) < 0)
		return err;
	*generation = __atomic_add_fetch(&t->hdr->generation, 1, __ATOMIC_RELEASE);
	/* This process moved it: nothing of ours needs checking again. */
	t->generation = *generation;
	vrid_unlock(t, &saved);
	return 0;
}

/*
 * Under the lock: no rebuild moves an entry past the walk, and callers
 * such as kill(-1) reach every process once.
 */
int vrid_each(struct vrid_table *t, enum vrid_type type,
	      int (*fn)(int32_t virt, int32_t sys, void *arg), void *arg)
{
	const struct vrid_index *idx = &t->idx[type];
	sigset_t saved;
	int ret = 0;

	if (vrid_lock(t, &saved) < 0)
		return 0;
	for (uint32_t i = 0; i <= idx->mask && ret == 0; i++) {
		uint64_t s = idx->by_virt[i];

		if (s != 0 && s != VRID_SLOT_TOMB)
			ret = fn((int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS), (int32_t)(uint32_t)s, arg);
	}
	vrid_unlock(t, &saved);
	return ret;
}

int vrid_list(struct vrid_table *t, enum vrid_type type, int32_t *out, uint32_t cap, uint32_t *n)
{
	const struct vrid_index *idx = &t->idx[type];
	int64_t since = 0;
	int err;

	for (unsigned spins = 1;; spins++) {
		uint32_t seq = __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_ACQUIRE), k = 0;

		for (uint32_t i = 0; i <= idx->mask; i++) {
			uint64_t s = __atomic_load_n(&idx->by_virt[i], __ATOMIC_ACQUIRE);

			if (s == 0 || s == VRID_SLOT_TOMB)
				continue;
			if (k < cap) {
				out[2 * k] = (int32_t)((uint32_t)(s >> 32) ^ VRID_KEY_BIAS);
				out[2 * k + 1] = (int32_t)(uint32_t)s;
			}
			k++;
		}
		if (read_settled(idx, seq)) {
			*n = k;
			return 0;
		}
		if (spins % SETTLE_SPINS == 0 && (err = vrid_settle(t, &since)) < 0)
			return err;
		vrid_sys0(SYS_sched_yield);
	}
}
