/*
 * Quiescing a process for a snapshot.  CRIU refuses to dump a process
 * with a System V shm mapping unless the process lives in an IPC
 * namespace of its own, which a chain does not.  So the host asks each
 * such process, over the signal the layer keeps (VRID_SIGNAL, vrid_abi.h),
 * to detach its segments around the dump, and afterwards to attach them
 * again at the same addresses.
 *
 * The thread that takes DETACH leads.  It parks every other thread of the
 * process in this handler, with all their signals blocked, so that no
 * thread touches a range while it is detached; reads its attachments from
 * /proc/self/maps; and maps an anonymous PROT_NONE reservation over each,
 * which detaches it in the same call and keeps anything else from landing
 * there.  It then waits, every signal blocked, for ATTACH, attaches each
 * segment again over its reservation through the table (after a restore
 * the table names the new segment), and lets the threads go.
 *
 * Why /proc/self/maps and not a list kept at shmat and shmdt: the host
 * picks the processes and sees the detach done in /proc/<pid>/maps, and
 * the handler reads the same thing, so the two cannot disagree (an
 * attachment made through a raw system call, one the application unmapped
 * in part or re-protected); and shmat and shmdt keep no shared list for
 * threads and this handler to race on.
 *
 * After a restore the host also asks each process, with UNDO, to give
 * its undo list back the adjustments the table recorded (sem.c); a
 * detached process does it while it waits for ATTACH, its threads parked.
 *
 * Everything here runs in a signal handler: raw system calls, static
 * buffers, no locks but the table's writer lock, which blocks every
 * signal while it is held, so a handler never waits on its own thread.
 */
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "vrid.h"

#define LOG_PREFIX "quiesce: "

#define MAX_PIECES 256		/* System V mappings (VMAs) of one process */
#define MAX_THREADS 4096	/* threads of one process */
/* si_value of a park request: tag | session << 16 | thread slot. */
#define PARK_TAG 0x57000000
#define PARK_TAG_MASK 0xff000000
#define PAGE 4096ul

__thread unsigned vrid_quiesce_hits __attribute__((tls_model("initial-exec")));

enum thread_state { SIGNALLED, PARKED, GONE };

/* One VMA of an attachment, as /proc/self/maps shows it. */
struct piece {
	uintptr_t start, end;
	int prot;
};

/* One shmat: pieces[first .. first + n) cover base .. base + len. */
struct attachment {
	uintptr_t base, len;
	int32_t shm_sys;	/* as detached; attach looks shm_virt up again */
	int32_t shm_virt;
	uint64_t segsz;
	int shmflg;		/* SHM_RDONLY, SHM_EXEC, as the pieces allow */
	int first, n;
};

/*
 * The quiesce in progress.  owner is pid << 32 | tid of the leading
 * thread, or 0; a fork child, which starts with a copy, sees another pid
 * there and knows it is not its own.  Only the leader writes the rest,
 * but for thread_state[i], which parked thread i sets.
 */
static struct {
	uint64_t owner;
	unsigned session;
	unsigned release;	/* futex word: bumped to let parked threads go */
	int nthreads;
	pid_t tid[MAX_THREADS];
	int thread_state[MAX_THREADS];
	int npieces, nattach;
	struct piece pieces[MAX_PIECES];
	struct attachment attach[MAX_PIECES];
} q;

/* The leader's: only one thread of a process leads at a time. */
static char read_buf[8192];

static uint64_t signal_bit(void)
{
	return 1ull << (VRID_SIGNAL - 1);
}

static int is_request(const siginfo_t *si, int value)
{
	return si->si_code == SI_QUEUE && si->si_value.sival_int == value;
}

/* ---- reading /proc/self ------------------------------------------------ */

static const char *parse_hex(const char *s, uint64_t *v)
{
	const char *begin = s;

	for (*v = 0;; s++) {
		if (*s >= '0' && *s <= '9')
			*v = *v << 4 | (uint64_t)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			*v = *v << 4 | (uint64_t)(*s - 'a' + 10);
		else
			break;
	}
	return s == begin ? NULL : s;
}

static const char *parse_dec(const char *s, uint64_t *v)
{
	const char *begin = s;

	for (*v = 0; *s >= '0' && *s <= '9'; s++)
		*v = *v * 10 + (uint64_t)(*s - '0');
	return s == begin ? NULL : s;
}

/* Calls fn on each line of path until fn returns non-zero; returns that, or a negative errno. */
static int each_line(const char *path, int (*fn)(const char *line))
{
	long fd = vrid_sys(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
	size_t have = 0;
	int ret = 0;

	if (fd < 0)
		return (int)fd;
	while (ret == 0) {
		long n = vrid_sys3(SYS_read, fd, read_buf + have, sizeof(read_buf) - 1 - have);
		char *line = read_buf, *nl;

		if (n == -EINTR)
			continue;
		if (n < 0) {
			ret = (int)n;
			break;
		}
		have += (size_t)n;
		read_buf[have] = 0;
		while (ret == 0 && (nl = memchr(line, '\n', have - (size_t)(line - read_buf)))) {
			*nl = 0;
			ret = fn(line);
			line = nl + 1;
		}
		have -= (size_t)(line - read_buf);
		memmove(read_buf, line, have);
		if (n == 0) {
			if (ret == 0 && have > 0) {
				read_buf[have] = 0;
				ret = fn(read_buf);
			}
			break;
		}
		if (have == sizeof(read_buf) - 1)
			ret = -E2BIG;
	}
	vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	return ret;
}

/* Adds one System V line of /proc/self/maps to the pieces and attachments. */
static int maps_line(const char *s)
{
	uint64_t start, end, off, ino;
	struct attachment *a = q.nattach ? &q.attach[q.nattach - 1] : NULL;
	struct piece *p;
	const char *perm;

	if (!(s = parse_hex(s, &start)) || *s++ != '-' || !(s = parse_hex(s, &end)) || *s++ != ' ')
		return 0;
	perm = s;
	if (strnlen(perm, 5) < 5 || perm[4] != ' ' || !(s = parse_hex(perm + 5, &off)) || *s++ != ' ')
		return 0;
	if (!(s = strchr(s, ' ')) || !(s = parse_dec(s + 1, &ino)))
		return 0;
	while (*s == ' ')
		s++;
	if (strncmp(s, "/SYSV", 5) != 0)
		return 0;
	if (q.npieces == MAX_PIECES)
		return -E2BIG;
	p = &q.pieces[q.npieces++];
	p->start = start;
	p->end = end;
	p->prot = (perm[0] == 'r' ? PROT_READ : 0) | (perm[1] == 'w' ? PROT_WRITE : 0) |
		  (perm[2] == 'x' ? PROT_EXEC : 0);
	/* The next VMA of the same shmat, split off by mprotect, say. */
	if (a && a->shm_sys == (int32_t)ino && a->base == start - off && a->base + a->len == start) {
		a->len = end - a->base;
		a->n++;
		return 0;
	}
	a = &q.attach[q.nattach++];
	memset(a, 0, sizeof(*a));
	a->base = start - off;
	a->len = end - a->base;
	a->shm_sys = (int32_t)ino;
	a->first = q.npieces - 1;
	a->n = 1;
	return 0;
}

static int thread_state_line(const char *line)
{
	const char *paren = strrchr(line, ')');

	/* "tid (comm) S ...": a thread that has exited will never park. */
	return !paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X' ? 1 : 2;
}

static int thread_gone(pid_t tid)
{
	char path[64] = "/proc/self/task/";
	char digits[16];
	int n = 0, len = (int)strlen(path);

	do
		digits[n++] = (char)('0' + tid % 10);
	while ((tid /= 10) > 0);
	while (n > 0)
		path[len++] = digits[--n];
	memcpy(path + len, "/stat", 6);
	return each_line(path, thread_state_line) != 2;
}

/* ---- parking the other threads ---------------------------------------- */

static long send_self(pid_t tid, int value)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = VRID_SIGNAL;
	si.si_code = SI_QUEUE;
	si.si_pid = (pid_t)(q.owner >> 32);
	si.si_uid = (uid_t)vrid_sys0(SYS_getuid);
	si.si_value.sival_int = value;
	return vrid_sys(SYS_rt_tgsigqueueinfo, si.si_pid, tid, VRID_SIGNAL, (long)&si, 0, 0);
}

static int thread_known(pid_t tid)
{
	for (int i = 0; i < q.nthreads; i++)
		if (q.tid[i] == tid)
			return 1;
	return 0;
}

/* Asks each thread not asked yet to park; returns how many, or a negative errno. */
static int ask_new_threads(pid_t self)
{
	long fd = vrid_sys(SYS_openat, AT_FDCWD, (long)"/proc/self/task",
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
	int asked = 0;
	long n;

	if (fd < 0)
		return (int)fd;
	while ((n = vrid_sys3(SYS_getdents64, fd, read_buf, sizeof(read_buf))) > 0) {
		for (long off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(read_buf + off);
			uint64_t tid;
			int i;

			off += d->d_reclen;
			if (!parse_dec(d->d_name, &tid) || (pid_t)tid == self || thread_known((pid_t)tid))
				continue;
			if (q.nthreads == MAX_THREADS) {
				n = -EMFILE;
				break;
			}
			i = q.nthreads++;
			q.tid[i] = (pid_t)tid;
			__atomic_store_n(&q.thread_state[i], SIGNALLED, __ATOMIC_SEQ_CST);
			if (send_self((pid_t)tid, PARK_TAG | (int)(q.session & 0xff) << 16 | i) < 0)
				q.thread_state[i] = GONE;
			asked++;
		}
		if (n < 0)
			break;
	}
	vrid_sys(SYS_close, fd, 0, 0, 0, 0, 0);
	return n < 0 ? (int)n : asked;
}

static int all_parked(void)
{
	int all = 1;

	for (int i = 0; i < q.nthreads; i++) {
		if (__atomic_load_n(&q.thread_state[i], __ATOMIC_SEQ_CST) != SIGNALLED)
			continue;
		if (thread_gone(q.tid[i]))
			q.thread_state[i] = GONE;
		else
			all = 0;
	}
	return all;
}

/*
 * Until every thread is parked; a thread made meanwhile is asked too.  An
 * ATTACH first (the host gave up on this process) cancels: -ECANCELED.
 */
static int park_all(pid_t self)
{
	struct timespec tick = { 0, 2 * 1000 * 1000 };
	uint64_t only = signal_bit();
	siginfo_t si;

	for (;;) {
		int asked = ask_new_threads(self);

		if (asked < 0)
			return asked;
		if (asked == 0 && all_parked())
			return 0;
		if (vrid_sys(SYS_rt_sigtimedwait, (long)&only, (long)&si, (long)&tick, 8, 0, 0) ==
		    VRID_SIGNAL && is_request(&si, VRID_QUIESCE_ATTACH))
			return -ECANCELED;
	}
}

/* A parked thread waits here, every signal blocked, until the leader is done. */
static void park(int value)
{
	unsigned release = __atomic_load_n(&q.release, __ATOMIC_SEQ_CST);
	uint64_t owner = __atomic_load_n(&q.owner, __ATOMIC_SEQ_CST);
	int slot = value & 0xffff;

	if ((pid_t)(owner >> 32) != (pid_t)vrid_sys0(SYS_getpid) ||
	    (unsigned)(value >> 16 & 0xff) != (q.session & 0xff) || slot >= q.nthreads ||
	    q.tid[slot] != (pid_t)vrid_sys0(SYS_gettid))
		return;	/* a request of a quiesce that is over */
	__atomic_store_n(&q.thread_state[slot], PARKED, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&q.release, __ATOMIC_SEQ_CST) == release)
		vrid_sys(SYS_futex, (long)&q.release, FUTEX_WAIT_PRIVATE, release, 0, 0, 0);
}

static void release_threads(void)
{
	__atomic_store_n(&q.owner, 0, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&q.release, 1, __ATOMIC_SEQ_CST);
	vrid_sys3(SYS_futex, (long)&q.release, FUTEX_WAKE_PRIVATE, INT32_MAX);
}

/* ---- detach and attach -------------------------------------------------- */

/* Fills in each attachment what attach needs; a reason it can't be detached, or NULL. */
static const char *plan(void)
{
	static char why[128];

	for (int i = 0; i < q.nattach; i++) {
		struct attachment *a = &q.attach[i];
		const struct piece *p = &q.pieces[a->first];
		struct shmid_ds ds;
		int writable = 0, exec = 0;

		for (int j = 0; j < a->n; j++) {
			writable |= p[j].prot & PROT_WRITE;
			exec |= p[j].prot & PROT_EXEC;
		}
		a->shmflg = (writable ? 0 : SHM_RDONLY) | (exec ? SHM_EXEC : 0);
		if (vrid_sys3(SYS_shmctl, a->shm_sys, IPC_STAT, &ds) < 0) {
			snprintf(why, sizeof(why), "segment %d at %#lx is gone", a->shm_sys, (unsigned long)a->base);
			return why;
		}
		a->segsz = ds.shm_segsz;
		/* Its last detach would destroy it. */
		if (ds.shm_perm.mode & SHM_DEST) {
			snprintf(why, sizeof(why), "segment %d at %#lx was removed while attached",
				 a->shm_sys, (unsigned long)a->base);
			return why;
		}
		/* Attaching the whole segment again must not cover anything else. */
		if (p->start != a->base || a->len < ds.shm_segsz || a->len - ds.shm_segsz >= PAGE) {
			snprintf(why, sizeof(why), "segment %d at %#lx is mapped in part",
				 a->shm_sys, (unsigned long)a->base);
			return why;
		}
		if (vrid_sys_to_virt(&vrid.tab, VRID_SHM, a->shm_sys, &a->shm_virt) < 0) {
			snprintf(why, sizeof(why), "segment %d at %#lx is not the chain's",
				 a->shm_sys, (unsigned long)a->base);
			return why;
		}
	}
	return NULL;
}

/* Replaces the first n attachments with reservations; 0, or the index that failed. */
static int reserve(int n, long *err)
{
	for (int i = 0; i < n; i++) {
		struct attachment *a = &q.attach[i];
		long ret = vrid_sys(SYS_mmap, (long)a->base, (long)a->len, PROT_NONE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);

		if (ret != (long)a->base) {
			*err = ret;
			return i + 1;
		}
	}
	return 0;
}

/* Attaches the first n attachments again over their reservations. */
static void reattach(int n)
{
	for (int i = 0; i < n; i++) {
		struct attachment *a = &q.attach[i];
		int prot = PROT_READ | (a->shmflg & SHM_RDONLY ? 0 : PROT_WRITE) |
			   (a->shmflg & SHM_EXEC ? PROT_EXEC : 0);
		const struct piece *p = &q.pieces[a->first];
		struct shmid_ds ds;
		int32_t sys;
		long ret;

		if (vrid_virt_to_sys(&vrid.tab, VRID_SHM, a->shm_virt, &sys) < 0) {
			vrid_log(VRID_LOG_ERROR, LOG_PREFIX "shm %d at %#lx is no longer in the table; "
				 "its range stays reserved", a->shm_virt, (unsigned long)a->base);
			continue;
		}
		ret = vrid_sys3(SYS_shmctl, sys, IPC_STAT, &ds);
		if (ret == 0 && ds.shm_segsz != a->segsz)
			ret = -EINVAL;
		if (ret == 0)
			ret = vrid_sys3(SYS_shmat, sys, a->base, a->shmflg | SHM_REMAP);
		if (ret != (long)a->base) {
			vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot attach shm %d (system %d, %lu bytes) "
				 "at %#lx again: errno %ld; its range stays reserved", a->shm_virt, sys,
				 (unsigned long)a->segsz, (unsigned long)a->base, -ret);
			continue;
		}
		for (int j = 0; j < a->n; j++)
			if (p[j].prot != prot)
				vrid_sys3(SYS_mprotect, p[j].start, p[j].end - p[j].start, p[j].prot);
	}
}

static void wait_for_attach(void)
{
	uint64_t only = signal_bit();
	siginfo_t si;

	/*
	 * Also woken, with EINTR, by a freeze or a dump; only ATTACH ends it.
	 * A restored process is asked for UNDO here first, while every thread
	 * is still parked.
	 */
	for (;;) {
		if (vrid_sys(SYS_rt_sigtimedwait, (long)&only, (long)&si, 0, 8, 0, 0) != VRID_SIGNAL)
			continue;
		if (is_request(&si, VRID_QUIESCE_ATTACH))
			return;
		if (is_request(&si, VRID_QUIESCE_UNDO))
			vrid_semadj_reapply();
	}
}

static void quiesce(void)
{
	const char *why = NULL;
	long err = 0;
	int failed;

	q.npieces = q.nattach = 0;
	err = each_line("/proc/self/maps", maps_line);
	if (err < 0) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot read /proc/self/maps: errno %ld; "
			 "nothing detached", -err);
		return;
	}
	if ((why = plan()) != NULL) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "%s; nothing detached", why);
		return;
	}
	failed = reserve(q.nattach, &err);
	if (failed) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot reserve %#lx: errno %ld; attaching again",
			 (unsigned long)q.attach[failed - 1].base, -err);
		reattach(failed - 1);
		return;
	}
	wait_for_attach();
	reattach(q.nattach);
}

static void lead(void)
{
	pid_t pid = (pid_t)vrid_sys0(SYS_getpid), tid = (pid_t)vrid_sys0(SYS_gettid);
	uint64_t owner = __atomic_load_n(&q.owner, __ATOMIC_SEQ_CST);
	int err;

	/* Another thread leads already; owner from another pid is a fork parent's. */
	if ((owner && (pid_t)(owner >> 32) == pid) ||
	    !__atomic_compare_exchange_n(&q.owner, &owner, (uint64_t)pid << 32 | (uint32_t)tid, 0,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	q.session++;
	q.nthreads = 0;
	err = park_all(tid);
	if (err == 0)
		quiesce();
	else if (err != -ECANCELED)
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot park the threads: errno %d; nothing detached", -err);
	release_threads();
}

static void quiesce_handler(int sig, siginfo_t *si, void *ucontext)
{
	int saved_errno = errno;

	(void)sig;
	(void)ucontext;
	__atomic_add_fetch(&vrid_quiesce_hits, 1, __ATOMIC_RELAXED);
	if (si->si_code == SI_QUEUE) {
		if (si->si_value.sival_int == VRID_QUIESCE_DETACH)
			lead();
		else if (si->si_value.sival_int == VRID_QUIESCE_UNDO)
			vrid_semadj_reapply();
		else if ((si->si_value.sival_int & PARK_TAG_MASK) == PARK_TAG)
			park(si->si_value.sival_int);
	}
	errno = saved_errno;
}

/*
 * Every process of the chain takes the signal from its start: the host
 * sends it to any process with a System V mapping.  A process spawned
 * with the signal blocked gets it unblocked.  SA_ONSTACK uses a thread's
 * alternate stack only where the application made one.
 */
__attribute__((constructor)) static void quiesce_init(void)
{
	struct sigaction sa;
	uint64_t bit = signal_bit();

	if (!vrid_on())
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = quiesce_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	if (real.sigaction(VRID_SIGNAL, &sa, NULL) < 0)
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot take signal %d: errno %d; "
			 "this process cannot be snapshotted with System V shm attached", VRID_SIGNAL, errno);
	vrid_sys(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&bit, 0, 8, 0, 0);
}
