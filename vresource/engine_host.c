/*
 * The table engine on the host: what the layer gets from the rest of the
 * preload library (type ops, logging), and the guard every call of Go
 * runs under.
 *
 * The guard.  A process of the chain can truncate the table file under
 * the host's shared mapping; the next access past the end raises SIGBUS
 * in C code, which the Go runtime would turn into a crash.  Go forwards a
 * SIGBUS raised in C code to the handler installed before the runtime
 * started, which is on_sigbus below (a constructor runs before the
 * runtime, as runc's nsexec does): if the thread is inside a guarded call
 * and the fault lies in that call's table, it jumps back out of the call,
 * which gives the lock back and fails with -EFAULT.  Any other SIGBUS
 * kills the process, as it would have without the handler.
 */
#include "engine_strict.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "engine_host.h"

/* Go makes errors of results, with more context than a log line has. */
void vrid_log(enum vrid_level level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

/* An entry of the pid table also stands for the process group and session of that id. */
static int pid_alive(int32_t sys)
{
	return vrid_sys2(SYS_kill, sys, 0) != -ESRCH || vrid_sys2(SYS_kill, -sys, 0) != -ESRCH;
}

/*
 * The host is not in the chain's IPC namespace, so it can't tell a live
 * object from a dead one: it never drops an IPC entry to make room.
 */
static int ipc_alive(int32_t sys)
{
	(void)sys;
	return 1;
}

static const struct vrid_type_ops host_pid = { VRID_PID, "pid", pid_alive, NULL };
static const struct vrid_type_ops host_sem = { VRID_SEM, "sem", ipc_alive, NULL };
static const struct vrid_type_ops host_shm = { VRID_SHM, "shm", ipc_alive, NULL };
static const struct vrid_type_ops host_msg = { VRID_MSG, "msg", ipc_alive, NULL };
static const struct vrid_type_ops host_ipckey = { VRID_IPCKEY, "ipckey", ipc_alive, NULL };
static const struct vrid_type_ops *const host_ops[VRID_NTYPES] = {
	[VRID_PID] = &host_pid,
	[VRID_SEM] = &host_sem,
	[VRID_SHM] = &host_shm,
	[VRID_MSG] = &host_msg,
	[VRID_IPCKEY] = &host_ipckey,
};

/* ---- the guard -------------------------------------------------------- */

struct guard {
	sigjmp_buf env;
	const char *lo, *hi;	/* the mapping the call works on */
	uintptr_t addr;		/* where it faulted */
	sigset_t mask;		/* the thread's mask before the fault */
};

/* The guard of the call this thread is in, or NULL.  volatile: set around the call. */
static __thread struct guard *volatile current;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct guard *g = current;

	if (g && (const char *)si->si_addr >= g->lo && (const char *)si->si_addr < g->hi) {
		current = NULL;
		g->addr = (uintptr_t)si->si_addr;
		g->mask = ((ucontext_t *)uc)->uc_sigmask;
		siglongjmp(g->env, 1);
	}
	/* Not a fault of a guarded call: the instruction runs again, and the process dies of it. */
	signal(sig, SIG_DFL);
}

__attribute__((constructor)) static void install_guard(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

static void arm(struct vrid_host *h, struct guard *g)
{
	g->lo = (const char *)h->t.hdr;
	g->hi = g->lo + h->t.size;
	current = g;
}

static int disarm(int ret)
{
	current = NULL;
	return ret;
}

/*
 * After a fault: the signal mask of before it, and the lock given back if
 * the call held it.  The write it was making is left marked; the file is
 * unusable anyway.
 */
static int faulted(struct vrid_host *h, struct guard *g)
{
	vrid_sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&g->mask, 0, _NSIG / 8, 0, 0);
	h->fault_off = g->addr - (uintptr_t)h->t.hdr;
	if (h->t.thread_owner == (uint32_t)vrid_sys0(SYS_gettid)) {
		sigset_t unused;

		vrid_unlock(&h->t, &unused);
	}
	return -EFAULT;
}

/* Opens a guarded call: a fault in the table returns -EFAULT from the caller. */
#define GUARD(h, g)					\
	do {						\
		if (sigsetjmp((g)->env, 0))		\
			return faulted(h, g);		\
		arm(h, g);				\
	} while (0)

/* ---- calls ------------------------------------------------------------ */

int vrid_host_open(struct vrid_host *h, void *mem, uint64_t size, const char *path, int lock_fd,
		   unsigned flags, int64_t wait_ns, struct vrid_header *hdr, char *why, size_t len)
{
	struct guard g;

	memset(h, 0, sizeof(*h));
	h->t.hdr = mem;
	h->t.size = size;
	h->t.flags = flags;
	h->t.ops = host_ops;
	h->t.wait_ns = wait_ns;
	h->t.lock_fd = -1;
	if (strlen(path) >= sizeof(h->t.path)) {
		snprintf(why, len, "path too long");
		return -EINVAL;
	}
	strcpy(h->t.path, path);
	GUARD(h, &g);
	if (vrid_table_check(&h->t, mem, size, why, len) < 0)
		return disarm(-EINVAL);
	memcpy(hdr, mem, sizeof(*hdr));
	h->t.generation = hdr->generation;
	if (lock_fd >= 0) {
		struct stat st;

		if (vrid_sys2(SYS_fstat, lock_fd, &st) < 0)
			return disarm(-EBADF);
		h->t.dev = st.st_dev;
		h->t.ino = st.st_ino;
		vrid_lock_adopt(&h->t, lock_fd);
	}
	return disarm(0);
}

void vrid_host_close(struct vrid_host *h)
{
	if (h->t.lock_fd >= 0)
		vrid_sys(SYS_close, h->t.lock_fd, 0, 0, 0, 0, 0);
	h->t.lock_fd = -1;
}

int vrid_host_lookup(struct vrid_host *h, uint32_t type, int32_t id, int by_sys, int32_t *out)
{
	struct guard g;

	GUARD(h, &g);
	if (by_sys)
		return disarm(vrid_sys_to_virt(&h->t, (enum vrid_type)type, id, out));
	return disarm(vrid_virt_to_sys(&h->t, (enum vrid_type)type, id, out));
}

int vrid_host_bind(struct vrid_host *h, uint32_t type, int32_t sys, int32_t *virt)
{
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_bind(&h->t, (enum vrid_type)type, sys, virt));
}

int vrid_host_bind_key(struct vrid_host *h, int32_t vkey, uint32_t attempt, int32_t *skey, int *created)
{
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_bind_key(&h->t, vkey, attempt, skey, created));
}

int vrid_host_insert(struct vrid_host *h, uint32_t type, int32_t virt, int32_t sys)
{
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_insert(&h->t, (enum vrid_type)type, virt, sys));
}

int vrid_host_rebind(struct vrid_host *h, uint32_t type, int32_t virt, int32_t new_sys)
{
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_rebind(&h->t, (enum vrid_type)type, virt, new_sys));
}

int vrid_host_remove(struct vrid_host *h, uint32_t type, int32_t id, int by_sys)
{
	struct guard g;

	GUARD(h, &g);
	if (by_sys)
		return disarm(vrid_remove_sys(&h->t, (enum vrid_type)type, id));
	return disarm(vrid_remove_virt(&h->t, (enum vrid_type)type, id));
}

int vrid_host_list(struct vrid_host *h, uint32_t type, int32_t *out, uint32_t cap, uint32_t *n)
{
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_list(&h->t, (enum vrid_type)type, out, cap, n));
}

int vrid_host_records(struct vrid_host *h, struct vrid_ipc_record *out, uint32_t cap, uint32_t *n)
{
	struct guard g;

	GUARD(h, &g);
	*n = vrid_records_copy(&h->t, out, cap);
	return disarm(0);
}

/* Records of objects a restore made, as the layer records its own. */
int vrid_host_add_records(struct vrid_host *h, const struct vrid_ipc_record *recs, uint32_t n, uint32_t *added)
{
	struct guard g;
	sigset_t saved;
	int err;

	*added = 0;
	GUARD(h, &g);
	if ((err = vrid_lock(&h->t, &saved)) < 0)
		return disarm(err);
	while (*added < n && vrid_record_put_locked(&h->t, &recs[*added]) == 0)
		(*added)++;
	vrid_unlock(&h->t, &saved);
	return disarm(0);
}

int vrid_host_semadj(struct vrid_host *h, struct vrid_semadj *out, uint32_t cap, uint32_t *n, uint32_t *lost)
{
	struct guard g;

	GUARD(h, &g);
	*n = vrid_semadj_copy(&h->t, out, cap);
	*lost = h->t.semadj ? __atomic_load_n(&h->t.semadj->lost, __ATOMIC_ACQUIRE) : 0;
	return disarm(0);
}

/* After a restore rebound the pids: adjustments of processes not restored go. */
int vrid_host_semadj_prune(struct vrid_host *h)
{
	struct guard g;
	sigset_t saved;
	int err;

	GUARD(h, &g);
	if (!vrid_semadj_used(&h->t))
		return disarm(0);
	if ((err = vrid_lock(&h->t, &saved)) < 0)
		return disarm(err);
	vrid_semadj_prune_locked(&h->t);
	vrid_unlock(&h->t, &saved);
	return disarm(0);
}

int vrid_host_desc(struct vrid_host *h, uint32_t type, struct vrid_table_desc *out)
{
	struct guard g;

	GUARD(h, &g);
	memcpy(out, h->t.idx[type].desc, sizeof(*out));
	out->live = __atomic_load_n(&h->t.idx[type].desc->live, __ATOMIC_RELAXED);
	return disarm(0);
}

int vrid_host_generation(struct vrid_host *h, uint32_t *generation)
{
	struct guard g;

	GUARD(h, &g);
	*generation = __atomic_load_n(&h->t.hdr->generation, __ATOMIC_ACQUIRE);
	return disarm(0);
}

int vrid_host_bump_generation(struct vrid_host *h, uint32_t *generation)
{
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_bump_generation(&h->t, generation));
}

int vrid_host_settle(struct vrid_host *h)
{
	int64_t since = 0;
	struct guard g;

	GUARD(h, &g);
	return disarm(vrid_settle(&h->t, &since));
}
