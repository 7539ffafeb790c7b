/*
 * The writer lock of a chain's tables.  Processes exclude each other
 * with an OFD write lock on the file's first byte: the kernel drops it
 * when its holder dies, and it means the same in every pid namespace.
 * The threads of one process share that lock's description, so they
 * first exclude each other with a word of their own.
 *
 * In the layer every signal is blocked meanwhile: a handler never waits
 * on its own thread's lock.  On the host (VRID_TABLE_BOUNDED) nothing is
 * blocked, and every wait ends after wait_ns: a process of the chain that
 * holds the lock forever, or keeps a rebuild running, costs the host an
 * error, never a hang.
 *
 * A restore rebinds ids and bumps the header's generation, and it may put
 * a copy of the file in place.  A process that finds either checks the
 * file again and adopts it (renew, reattach) instead of failing.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "table.h"

#define LOG_PREFIX "lock: "

#define PAUSE_FIRST_NS	20000ll		/* bounded waits sleep this long first, */
#define PAUSE_MAX_NS	10000000ll	/* then twice as long each time, up to this */

static int64_t now_ns(void)
{
	struct timespec ts;

	vrid_sys2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Sleeps *pause, and doubles it for the next time. */
static void pause_grow(int64_t *pause)
{
	struct timespec ts = { .tv_sec = *pause / 1000000000, .tv_nsec = *pause % 1000000000 };

	vrid_sys2(SYS_nanosleep, &ts, NULL);
	*pause = *pause * 2 < PAUSE_MAX_NS ? *pause * 2 : PAUSE_MAX_NS;
}

static void close_fd(long fd)
{
	vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
}

void vrid_lock_adopt(struct vrid_table *t, int fd)
{
	t->lock_fd = fd;
	t->lock_fd_pid = (pid_t)vrid_sys0(SYS_getpid);
}

static int is_table_fd(const struct vrid_table *t, int fd)
{
	struct stat st;

	return vrid_sys2(SYS_fstat, fd, &st) == 0 && st.st_dev == t->dev && st.st_ino == t->ino;
}

/*
 * Why the file open at fd is not a newer copy of the table t maps, with
 * the same layout, or NULL: only such a copy is adopted.  h is its header.
 */
static const char *not_newer_copy(const struct vrid_table *t, const struct vrid_header *h,
				  const struct stat *st)
{
	if (h->magic != VRID_MAGIC || h->version != VRID_VERSION || h->aid != t->hdr->aid)
		return "another chain's or no table";
	if (h->generation <= t->generation)
		return "not a newer generation";
	if (h->file_size != t->size || (uint64_t)st->st_size != t->size)
		return "another size";
	for (int type = 0; type < VRID_NTYPES; type++)
		if (h->tables[type].slots != t->idx[type].mask + 1 ||
		    h->tables[type].by_virt_off != (uint64_t)((char *)t->idx[type].by_virt - (char *)t->hdr))
			return "another layout";
	return NULL;
}

/*
 * The path names another file than the one this process checked: a
 * restore put a copy in place.  A newer copy, laid out alike, is mapped
 * over the old mapping, so that every pointer into it stays good, and
 * checked again.  0, or -ESTALE for a file this process can't use.
 */
static int reattach(struct vrid_table *t, int fd, const struct stat *st)
{
	struct vrid_header h;
	const char *why = NULL;
	char buf[160];
	long mem;

	if (vrid_sys(SYS_pread64, fd, (long)&h, sizeof(h), 0, 0, 0) != (long)sizeof(h))
		why = "shorter than a header";
	if (!why)
		why = not_newer_copy(t, &h, st);
	if (!why) {
		mem = vrid_sys(SYS_mmap, (long)t->hdr, (long)t->size, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, fd, 0);
		if ((unsigned long)mem > -4096ul)
			why = "cannot map it";
		else if (vrid_table_check(t, t->hdr, t->size, buf, sizeof(buf)) < 0)
			why = buf;
	}
	if (why) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "%s names another file now, not adopted: %s",
			 t->path, why);
		return -ESTALE;
	}
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	vrid_log(VRID_LOG_INFO, LOG_PREFIX "%s replaced by a restore: attached to generation %u",
		 t->path, h.generation);
	return 0;
}

/* A new description of the file at the path, which must be the table's or a newer copy. */
static int open_table(struct vrid_table *t)
{
	long fd = vrid_sys(SYS_openat, AT_FDCWD, (long)t->path, O_RDWR | O_CLOEXEC, 0, 0, 0);
	struct stat st;
	int err;

	if (fd < 0)
		return (int)fd;
	if ((err = (int)vrid_sys2(SYS_fstat, fd, &st)) == 0 &&
	    (st.st_dev != t->dev || st.st_ino != t->ino))
		err = reattach(t, (int)fd, &st);
	if (err < 0) {
		close_fd(fd);
		return err;
	}
	return (int)fd;
}

/* "/proc/self/fd/<fd>" in link, 32 bytes, without snprintf (the host's engine has no libc log). */
static void fd_link(char *link, int fd)
{
	char digits[12];
	int n = 0, len = 14;

	memcpy(link, "/proc/self/fd/", 14);
	do
		digits[n++] = (char)('0' + fd % 10);
	while ((fd /= 10) > 0);
	while (n > 0)
		link[len++] = digits[--n];
	link[len] = 0;
}

long vrid_reopen(int fd)
{
	char link[32];

	fd_link(link, fd);
	return vrid_sys(SYS_openat, AT_FDCWD, (long)link, O_RDWR | O_CLOEXEC, 0, 0, 0);
}

/*
 * A description of our own through the inherited fd, for a process that
 * may not reach the table by its path any more: its parent dropped root
 * before forking it, and the state directory is root's alone.  The
 * magic link skips the path; the file's own mode (0666) lets it open.
 */
static int reopen_inherited(struct vrid_table *t, int inherited)
{
	long fd = vrid_reopen(inherited);

	if (fd >= 0 && !is_table_fd(t, (int)fd)) {
		close_fd(fd);
		return -ESTALE;
	}
	return (int)fd;
}

/*
 * The path is gone, and the description this process holds names a file
 * elsewhere: a restore gave the chain a new AID, and CRIU reopened the
 * table at its new path.  That path is taken if the file there is a
 * newer copy of this table (open_table adopts only such a one).
 */
static int follow_moved(struct vrid_table *t, int held)
{
	char link[32], old_path[sizeof(t->path)];
	long got;
	int fd;

	fd_link(link, held);
	memcpy(old_path, t->path, sizeof(old_path));
	got = vrid_sys(SYS_readlinkat, AT_FDCWD, (long)link, (long)t->path, sizeof(t->path) - 1, 0, 0);
	if (got <= 0 || t->path[0] != '/') {
		memcpy(t->path, old_path, sizeof(old_path));
		return -ENOENT;
	}
	t->path[got] = 0;
	if ((fd = open_table(t)) < 0)
		memcpy(t->path, old_path, sizeof(old_path));
	return fd;
}

/*
 * A description of this process's own, in place of the one it has: after
 * fork, or when the generation moved (a restore rebound ids, and this
 * process may be a restored one, holding an fd CRIU opened, or the file a
 * copy, which is adopted).  On failure the old one stays, for
 * lock_fd_get to judge.
 */
static int renew(struct vrid_table *t)
{
	int old = t->lock_fd, was_table = old >= 0 && is_table_fd(t, old);
	int fd = open_table(t);

	if ((fd == -EACCES || fd == -EPERM) && was_table)
		fd = reopen_inherited(t, old);
	if (fd == -ENOENT && old >= 0)
		fd = follow_moved(t, old);
	if (fd < 0)
		return fd;
	/* Of the file as checked before, or as adopted now (CRIU's): ours either way. */
	if (old >= 0 && (was_table || is_table_fd(t, old)))
		close_fd(old);
	vrid_lock_adopt(t, fd);
	t->generation = __atomic_load_n(&t->hdr->generation, __ATOMIC_ACQUIRE);
	return fd;
}

/*
 * In a new child only the forking thread exists, so no other holds the
 * word.  The inherited fd shares the parent's lock, which the child must
 * not keep alive should the parent die holding it: the child opens its
 * own now, by path, or through the inherited fd when its rights no
 * longer reach the path.
 */
int vrid_lock_after_fork(struct vrid_table *t)
{
	int fd;

	__atomic_store_n(&t->thread_owner, 0, __ATOMIC_RELAXED);
	fd = renew(t);
	return fd < 0 ? fd : 0;
}

/*
 * Our fd, checked: the program may have closed it, and a child of fork
 * has its parent's description, which would exclude nothing.
 */
static int lock_fd_get(struct vrid_table *t)
{
	pid_t me = (pid_t)vrid_sys0(SYS_getpid);
	int fd;

	if (unlikely(__atomic_load_n(&t->hdr->generation, __ATOMIC_ACQUIRE) != t->generation))
		return renew(t);
	if (t->lock_fd >= 0 && !is_table_fd(t, t->lock_fd))
		t->lock_fd = -1;	/* closed under us: the number is not ours any more */
	if (t->lock_fd >= 0 && t->lock_fd_pid != me) {
		close_fd(t->lock_fd);
		t->lock_fd = -1;
	}
	if (t->lock_fd >= 0)
		return t->lock_fd;
	if ((fd = open_table(t)) < 0)
		return fd;
	vrid_lock_adopt(t, fd);
	return fd;
}

static int lock_threads(struct vrid_table *t)
{
	uint32_t me = (uint32_t)vrid_sys0(SYS_gettid);
	int64_t pause = PAUSE_FIRST_NS, deadline = 0;

	for (unsigned spins = 1;; spins++) {
		uint32_t owner = 0;

		if (__atomic_compare_exchange_n(&t->thread_owner, &owner, me, 0,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return 0;
		/*
		 * Not a thread of ours any more: a child of fork inherits the
		 * word of a thread that stayed in the parent.
		 */
		if (spins % 64 == 0 && vrid_sys3(SYS_tgkill, vrid_sys0(SYS_getpid), owner, 0) == -ESRCH)
			__atomic_compare_exchange_n(&t->thread_owner, &owner, 0, 0,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		/* The host's threads may wait long on a wedged chain: they sleep, and give up. */
		if ((t->flags & VRID_TABLE_BOUNDED) && spins >= 64) {
			if (deadline == 0)
				deadline = now_ns() + t->wait_ns;
			else if (now_ns() >= deadline)
				return -ETIMEDOUT;
			pause_grow(&pause);
			continue;
		}
		vrid_sys0(SYS_sched_yield);
	}
}

static void unlock_threads(struct vrid_table *t)
{
	__atomic_store_n(&t->thread_owner, 0, __ATOMIC_RELEASE);
}

static int ofd_lock(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

	return (int)vrid_sys3(SYS_fcntl, fd, cmd, &fl);
}

/*
 * The layer waits with F_OFD_SETLKW.  A bounded wait tries F_OFD_SETLK
 * again and again, with growing pauses, since nothing could interrupt
 * F_OFD_SETLKW in time; once one wait has run out, the next tries once.
 */
static int ofd_wrlock(struct vrid_table *t, int fd)
{
	int64_t pause = PAUSE_FIRST_NS, deadline = 0;
	int err;

	if (!(t->flags & VRID_TABLE_BOUNDED))
		return ofd_lock(fd, F_OFD_SETLKW, F_WRLCK);
	while ((err = ofd_lock(fd, F_OFD_SETLK, F_WRLCK)) == -EAGAIN || err == -EACCES ||
	       err == -EINTR) {
		if (deadline == 0)
			deadline = now_ns() + (t->wedged ? 0 : t->wait_ns);
		if (now_ns() >= deadline) {
			err = -ETIMEDOUT;
			break;
		}
		pause_grow(&pause);
	}
	t->wedged = err == -ETIMEDOUT;
	return err;
}

static void mask_signals(const struct vrid_table *t, int how, const sigset_t *set, sigset_t *old)
{
	if (!(t->flags & VRID_TABLE_BOUNDED))
		vrid_sys(SYS_rt_sigprocmask, how, (long)set, (long)old, _NSIG / 8, 0, 0);
}

int vrid_lock(struct vrid_table *t, sigset_t *saved)
{
	sigset_t all;
	int fd, err;

	sigfillset(&all);
	mask_signals(t, SIG_BLOCK, &all, saved);
	err = lock_threads(t);
	if (err == 0 && (t->flags & VRID_TABLE_PRIVATE)) {
		vrid_repair_locked(t);	/* a copy: nobody else writes it */
		return 0;
	}
	if (err == 0) {
		fd = lock_fd_get(t);
		err = fd < 0 ? fd : ofd_wrlock(t, fd);
		if (err < 0)
			unlock_threads(t);
	}
	if (err < 0) {
		mask_signals(t, SIG_SETMASK, saved, NULL);
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot lock %s: errno %d", t->path, -err);
		return err;
	}
	vrid_repair_locked(t);
	return 0;
}

void vrid_unlock(struct vrid_table *t, const sigset_t *saved)
{
	if (!(t->flags & VRID_TABLE_PRIVATE))
		ofd_lock(t->lock_fd, F_OFD_SETLKW, F_UNLCK);
	unlock_threads(t);
	mask_signals(t, SIG_SETMASK, saved, NULL);
}

int vrid_settle(struct vrid_table *t, int64_t *since)
{
	sigset_t saved;
	int err;

	if (t->flags & VRID_TABLE_BOUNDED) {
		int64_t now = now_ns();

		if (*since == 0)
			*since = now;
		else if (now - *since > t->wait_ns)
			return -EBUSY;	/* rebuilds go on, lock or no lock */
	}
	if ((err = vrid_lock(t, &saved)) < 0)
		return err;
	vrid_unlock(t, &saved);
	return 0;
}
