/*
 * The writer lock of the chain's tables.  Processes exclude each other
 * with an OFD write lock on the file's first byte: the kernel drops it
 * when its holder dies, and it means the same in every pid namespace.
 * The threads of one process share that lock's description, so they
 * first exclude each other with a word of their own.  Every signal is
 * blocked meanwhile: a handler never waits on its own thread's lock.
 */
#include <fcntl.h>
#include <sys/syscall.h>

#include "vrid.h"

#define LOG_PREFIX "lock: "

/* The system tid of the thread of this process that holds the lock, or 0. */
static uint32_t thread_owner;
/* The description this process locks through, opened by this process. */
static int lock_fd = -1;
static pid_t lock_fd_pid;

void vrid_lock_adopt(int fd)
{
	lock_fd = fd;
	lock_fd_pid = (pid_t)vrid_sys0(SYS_getpid);
}

static int is_table_fd(int fd)
{
	struct stat st;

	return vrid_sys2(SYS_fstat, fd, &st) == 0 && st.st_dev == vrid.dev && st.st_ino == vrid.ino;
}

static int open_table(void)
{
	long fd = vrid_sys(SYS_openat, AT_FDCWD, (long)vrid.path, O_RDWR | O_CLOEXEC, 0, 0, 0);

	if (fd >= 0 && !is_table_fd((int)fd)) {
		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return -ESTALE;	/* the path names another file now */
	}
	return (int)fd;
}

/*
 * A description of our own through the inherited fd, for a process that
 * may not reach the table by its path any more: its parent dropped root
 * before forking it, and the state directory is root's alone.  The
 * magic link skips the path; the file's own mode (0666) lets it open.
 */
static int reopen_inherited(int inherited)
{
	char link[32] = "/proc/self/fd/";
	char digits[12];
	int n = 0, len = 14;
	long fd;

	do
		digits[n++] = (char)('0' + inherited % 10);
	while ((inherited /= 10) > 0);
	while (n > 0)
		link[len++] = digits[--n];
	link[len] = 0;
	fd = vrid_sys(SYS_openat, AT_FDCWD, (long)link, O_RDWR | O_CLOEXEC, 0, 0, 0);
	if (fd >= 0 && !is_table_fd((int)fd)) {
		vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
		return -ESTALE;
	}
	return (int)fd;
}

/*
 * In a new child only the forking thread exists, so no other holds the
 * word.  The inherited fd shares the parent's lock, which the child must
 * not keep alive should the parent die holding it: the child opens its
 * own now, by path, or through the inherited fd when its rights no
 * longer reach the path.
 */
void vrid_lock_after_fork(void)
{
	int inherited = lock_fd >= 0 && is_table_fd(lock_fd) ? lock_fd : -1;
	int fd;

	__atomic_store_n(&thread_owner, 0, __ATOMIC_RELAXED);
	fd = open_table();
	if ((fd == -EACCES || fd == -EPERM) && inherited >= 0)
		fd = reopen_inherited(inherited);
	if (inherited >= 0)
		vrid_sys(SYS_close, inherited, 0, 0, 0, 0, 0);
	lock_fd = fd >= 0 ? fd : -1;
	if (lock_fd >= 0)
		lock_fd_pid = (pid_t)vrid_sys0(SYS_getpid);
}

/*
 * Our fd, checked: the program may have closed it, and a child of fork
 * has its parent's description, which would exclude nothing.
 */
static int lock_fd_get(void)
{
	pid_t me = (pid_t)vrid_sys0(SYS_getpid);
	long fd;

	if (lock_fd >= 0 && !is_table_fd(lock_fd))
		lock_fd = -1;	/* closed under us: the number is not ours any more */
	if (lock_fd >= 0 && lock_fd_pid != me) {
		vrid_sys(SYS_close, lock_fd, 0, 0, 0, 0, 0);
		lock_fd = -1;
	}
	if (lock_fd >= 0)
		return lock_fd;
	fd = open_table();
	if (fd < 0)
		return (int)fd;
	vrid_lock_adopt((int)fd);
	return lock_fd;
}

static void lock_threads(void)
{
	uint32_t me = (uint32_t)vrid_sys0(SYS_gettid);
	long self = vrid_sys0(SYS_getpid);

	for (unsigned spins = 1;; spins++) {
		uint32_t owner = 0;

		if (__atomic_compare_exchange_n(&thread_owner, &owner, me, 0,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		/*
		 * Not a thread of ours any more: a child of fork inherits the
		 * word of a thread that stayed in the parent.
		 */
		if (spins % 64 == 0 && vrid_sys3(SYS_tgkill, self, owner, 0) == -ESRCH)
			__atomic_compare_exchange_n(&thread_owner, &owner, 0, 0,
						    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		vrid_sys0(SYS_sched_yield);
	}
}

static void unlock_threads(void)
{
	__atomic_store_n(&thread_owner, 0, __ATOMIC_RELEASE);
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
	lock_threads();
	fd = lock_fd_get();
	err = fd < 0 ? fd : ofd_lock(fd, F_WRLCK);
	if (err < 0) {
		unlock_threads();
		vrid_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, _NSIG / 8, 0, 0);
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot lock %s: errno %d", vrid.path, -err);
		return err;
	}
	vrid_repair_locked();
	return 0;
}

void vrid_unlock(const sigset_t *saved)
{
	ofd_lock(lock_fd, F_UNLCK);
	unlock_threads();
	vrid_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)saved, 0, _NSIG / 8, 0, 0);
}
