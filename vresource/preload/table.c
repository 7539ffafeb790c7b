/*
 * The translation tables: lookups in both directions, binds and removals.
 *
 * Lookups are lock-free: one atomic load per probed slot, and a look at
 * the index's rebuild count when they miss.  Writers (bind, remove) take
 * the file's writer lock, an OFD lock on its first byte, with every
 * signal blocked so that a handler in the same thread never waits on its
 * own lock.
 */
#include <fcntl.h>
#include <pthread.h>
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
	for (;;) {
		uint32_t seq = __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_ACQUIRE);

		if (probe(idx, index, k, val) == 0)
			return 0;
		if (!(seq & 1) && __atomic_load_n(&idx->desc->rebuilds, __ATOMIC_ACQUIRE) == seq)
			return -ENOENT;
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

/* ---- the writer lock ---------------------------------------------------- */

/*
 * Each thread locks through its own open file description, so that the
 * OFD lock excludes threads as well as processes.  The fd is checked
 * before each use: the program may have closed it, or a child of fork
 * may have inherited its parent's.
 */
static __thread int lock_fd __attribute__((tls_model("initial-exec"))) = -1;
static __thread pid_t lock_fd_pid __attribute__((tls_model("initial-exec")));
static pthread_key_t lock_fd_key;
static pthread_once_t lock_fd_once = PTHREAD_ONCE_INIT;

static void close_lock_fd(void *fd_plus_one)
{
	vrid_sys(SYS_close, (long)fd_plus_one - 1, 0, 0, 0, 0, 0);
}

static void make_lock_fd_key(void)
{
	pthread_key_create(&lock_fd_key, close_lock_fd);
}

static int is_table_fd(int fd)
{
	struct stat st;

	return vrid_sys2(SYS_fstat, fd, &st) == 0 && st.st_dev == vrid.dev && st.st_ino == vrid.ino;
}

static int lock_fd_get(void)
{
	pid_t me = (pid_t)vrid_sys0(SYS_getpid);
	long fd;

	if (lock_fd >= 0 && !is_table_fd(lock_fd))
		lock_fd = -1;	/* closed under us; the number is not ours any more */
	if (lock_fd >= 0 && lock_fd_pid != me) {
		vrid_sys(SYS_close, lock_fd, 0, 0, 0, 0, 0);	/* the parent's description */
		lock_fd = -1;
	}
	if (lock_fd >= 0)
		return lock_fd;
	fd = vrid_sys(SYS_openat, AT_FDCWD, (long)vrid.path, O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (fd < 0)
		return (int)fd;
	lock_fd = (int)fd;
	lock_fd_pid = me;
	pthread_once(&lock_fd_once, make_lock_fd_key);
	pthread_setspecific(lock_fd_key, (void *)(fd + 1));
	return lock_fd;
}

static int ofd_lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	return (int)vrid_sys3(SYS_fcntl, fd, F_OFD_SETLKW, &fl);
}

int vrid_lock(sigset_t *saved)
{
	sigset_t all;
	int fd, err;

	sigfillset(&all);
	vrid_sys(SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)saved, _NSIG / 8, 0, 0);
	fd = lock_fd_get();
	err = fd < 0 ? fd : ofd_lock(fd, F_WRLCK);
	if (err < 0) {
		vrid_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, _NSIG / 8, 0, 0);
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot lock %s: errno %d", vrid.path, -err);
	}
	return err;
}

void vrid_unlock(const sigset_t *saved)
{
	ofd_lock(lock_fd, F_UNLCK);
	vrid_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, _NSIG / 8, 0, 0);
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
	del(idx, idx->by_sys, &idx->desc->tombs_by_sys, sys);
	del(idx, idx->by_virt, &idx->desc->tombs_by_virt, virt);
	idx->desc->live--;
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

static void rebuild_locked(struct vrid_index *idx)
{
	__atomic_add_fetch(&idx->desc->rebuilds, 1, __ATOMIC_ACQ_REL);
	rebuild_index(idx, idx->by_virt, &idx->desc->tombs_by_virt);
	rebuild_index(idx, idx->by_sys, &idx->desc->tombs_by_sys);
	__atomic_add_fetch(&idx->desc->rebuilds, 1, __ATOMIC_ACQ_REL);
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
	if (d->live + max_u32(d->tombs_by_virt, d->tombs_by_sys) >= FULL(idx))
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
	if (enc(vkey) == 0)
		return -EINVAL;
	if ((err = vrid_lock(&saved)) < 0)
		return err;
	err = probe(idx, idx->by_virt, enc(vkey), skey);
	if (err == -ENOENT && (err = room_locked(VRID_IPCKEY)) == 0) {
		do
			*skey = derive_key(vkey, attempt++);
		while (*skey == IPC_PRIVATE || *skey == INT32_MIN ||
		       probe(idx, idx->by_sys, enc(*skey), &unused) == 0);
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

	if (enc(id) == 0)
		return -ENOENT;
	if ((err = vrid_lock(&saved)) < 0)
		return err;
	err = probe(idx, by_sys ? idx->by_sys : idx->by_virt, enc(id), &other);
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
