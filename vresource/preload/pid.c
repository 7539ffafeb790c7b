/*
 * Process ids: the calls that hand out or take a pid, tid, process group
 * or session id.  All of them share the one pid table, as the kernel keeps
 * them in one pid space.
 *
 * Output ids of processes outside the chain read as 0, as a pid namespace
 * shows a parent outside it.  Input ids the chain does not know fail with
 * ESRCH (ECHILD for the wait family), as for a process that is gone.
 */
#include <pthread.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrid.h"

#define LOG_PREFIX "pid: "

/* Whether a pid names a process, a thread or a group in this chain's kernel view. */
static int pid_sys_alive(int32_t sys)
{
	return vrid_sys2(SYS_kill, sys, 0) != -ESRCH || vrid_sys2(SYS_kill, -sys, 0) != -ESRCH;
}

int vrid_pid_in(pid_t vpid, pid_t *spid)
{
	if (vpid == 0) {
		*spid = 0;
		return 0;
	}
	if (vpid < 0)
		return -ESRCH;
	return vrid_virt_to_sys(&vrid.tab, VRID_PID, vpid, spid) == 0 ? 0 : -ESRCH;
}

pid_t vrid_pid_out(pid_t spid)
{
	pid_t vpid;

	if (spid <= 0)
		return spid;
	return vrid_sys_to_virt(&vrid.tab, VRID_PID, spid, &vpid) == 0 ? vpid : 0;
}

pid_t vrid_pid_bind(pid_t spid)
{
	pid_t vpid;
	int err = vrid_bind(&vrid.tab, VRID_PID, spid, &vpid);

	if (err < 0) {
		vrid_log(VRID_LOG_ERROR, LOG_PREFIX "cannot record process %d: %s", spid,
			 err == -ENOSPC ? "pid table full" : "table error");
		return err;
	}
	return vpid;
}

/*
 * A reaped child's id may live on as the id of its process group; the
 * entry goes only when nothing answers to it any more.
 */
void vrid_pid_reaped(pid_t spid)
{
	int32_t vpid;

	/* Its undo list was applied when it exited: its record goes now, group or not. */
	if (unlikely(vrid_semadj_used(&vrid.tab)) &&
	    vrid_sys_to_virt(&vrid.tab, VRID_PID, spid, &vpid) == 0)
		vrid_semadj_drop_pid(&vrid.tab, vpid);
	if (vrid_sys2(SYS_kill, -spid, 0) == -ESRCH)
		vrid_remove_sys(&vrid.tab, VRID_PID, spid);
}

/* ---- who am I ------------------------------------------------------- */

/*
 * Caches hold sys << 32 | virt.  Comparing the cached system id with the
 * kernel's makes them right after fork, vfork and restore without hooks.
 */
static uint64_t pid_cache;
static __thread uint64_t tid_cache __attribute__((tls_model("initial-exec")));
static pthread_key_t tid_key;
static pthread_once_t tid_key_once = PTHREAD_ONCE_INIT;

static inline int cache_hit(uint64_t cache, pid_t sys)
{
	return cache && (uint32_t)(cache >> 32) == (uint32_t)sys;
}

static inline uint64_t cache_of(pid_t sys, pid_t virt)
{
	return (uint64_t)(uint32_t)sys << 32 | (uint32_t)virt;
}

/* A process with no virtual id cannot go on consistently: it is a bug or a full table. */
static pid_t bind_self_or_die(pid_t sys)
{
	pid_t virt = vrid_pid_bind(sys);

	if (virt < 0)
		vrid_sys(SYS_exit_group, 127, 0, 0, 0, 0, 0);
	return virt;
}

VRID_EXPORT pid_t getpid(void)
{
	pid_t sys = (pid_t)vrid_sys0(SYS_getpid);
	uint64_t cache;

	if (!vrid_on())
		return sys;
	cache = __atomic_load_n(&pid_cache, __ATOMIC_RELAXED);
	if (likely(cache_hit(cache, sys)))
		return (pid_t)(uint32_t)cache;
	cache = cache_of(sys, bind_self_or_die(sys));
	__atomic_store_n(&pid_cache, cache, __ATOMIC_RELAXED);
	return (pid_t)(uint32_t)cache;
}

static void forget_thread(void *unused)
{
	(void)unused;
	vrid_remove_sys(&vrid.tab, VRID_PID, (pid_t)vrid_sys0(SYS_gettid));
}

static void make_tid_key(void)
{
	pthread_key_create(&tid_key, forget_thread);
}

VRID_EXPORT pid_t gettid(void)
{
	pid_t sys = (pid_t)vrid_sys0(SYS_gettid);
	pid_t virt;

	if (!vrid_on())
		return sys;
	if (likely(cache_hit(tid_cache, sys)))
		return (pid_t)(uint32_t)tid_cache;
	if (sys == (pid_t)vrid_sys0(SYS_getpid)) {
		virt = getpid();
	} else {
		virt = bind_self_or_die(sys);
		/* A thread's id dies with it; the key's destructor removes it. */
		pthread_once(&tid_key_once, make_tid_key);
		pthread_setspecific(tid_key, (void *)1);
	}
	tid_cache = cache_of(sys, virt);
	return virt;
}

VRID_EXPORT pid_t getppid(void)
{
	pid_t sys = (pid_t)vrid_sys0(SYS_getppid);

	return vrid_on() ? vrid_pid_out(sys) : sys;
}

/*
 * A new child that can't take the writer lock (its process dropped the
 * rights to open the table file) waits for its parent, which records
 * every child it forks (vrid_child_out), to record it; it dies if the
 * parent goes first.
 */
static pid_t recorded_by_parent(pid_t sys)
{
	long parent = vrid_sys0(SYS_getppid);
	pid_t virt;

	while (vrid_sys_to_virt(&vrid.tab, VRID_PID, sys, &virt) != 0) {
		if (vrid_sys0(SYS_getppid) != parent)
			vrid_sys(SYS_exit_group, 127, 0, 0, 0, 0, 0);
		vrid_sys0(SYS_sched_yield);
	}
	return virt;
}

/* Called in a new child before anything else runs there. */
void vrid_pid_child(void)
{
	pid_t sys = (pid_t)vrid_sys0(SYS_getpid);
	pid_t virt = vrid_lock_after_fork(&vrid.tab) < 0 ? recorded_by_parent(sys) : bind_self_or_die(sys);

	__atomic_store_n(&pid_cache, cache_of(sys, virt), __ATOMIC_RELAXED);
	tid_cache = 0;
}

/* ---- signals to processes -------------------------------------------- */

/* kill(-1): every process of the chain but the caller, as in a pid namespace. */
struct kill_all {
	int sig;
	pid_t self;
	int sent, err;
};

static int kill_one(int32_t virt, int32_t sys, void *arg)
{
	struct kill_all *k = arg;
	long ret;

	(void)virt;
	/* Threads and dead group ids are in the table too: signal each process once. */
	if (sys == k->self || vrid_sys3(SYS_tgkill, sys, sys, 0) < 0)
		return 0;
	ret = vrid_sys2(SYS_kill, sys, k->sig);
	if (ret == 0)
		k->sent++;
	else
		k->err = (int)ret;
	return 0;
}

static int kill_chain(int sig)
{
	struct kill_all k = { .sig = sig, .self = (pid_t)vrid_sys0(SYS_getpid) };

	vrid_each(&vrid.tab, VRID_PID, kill_one, &k);
	if (k.sent > 0)
		return 0;
	return vrid_fail(k.err ? k.err : -ESRCH);
}

/* Translates a kill()-style target: pid, 0, -1 or -pgid. */
static int kill_target_in(pid_t vpid, pid_t *spid)
{
	int err;

	if (vpid == 0 || vpid == -1) {
		*spid = vpid;
		return 0;
	}
	if (vpid == INT32_MIN)
		return -ESRCH;
	err = vrid_pid_in(vpid < 0 ? -vpid : vpid, spid);
	if (vpid < 0)
		*spid = -*spid;
	return err;
}

VRID_EXPORT int kill(pid_t vpid, int sig)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.kill(vpid, sig));
	if (vpid == -1)
		return kill_chain(sig);
	err = kill_target_in(vpid, &spid);
	if (err == 0)
		err = (int)vrid_sys2(SYS_kill, spid, sig);	/* libc's kill is this call, and no cancellation point */
	return err < 0 ? vrid_fail(err) : 0;
}

VRID_EXPORT int killpg(pid_t vpgrp, int sig)
{
	pid_t spgrp;
	int err;

	VRID_GUARD(-1, real.kill(-vpgrp, sig));
	if (vpgrp < 0)
		return vrid_fail(-EINVAL);
	err = vrid_pid_in(vpgrp, &spgrp);
	return err < 0 ? vrid_fail(err) : real.kill(-spgrp, sig);
}

VRID_EXPORT int tgkill(pid_t vtgid, pid_t vtid, int sig)
{
	pid_t stgid, stid;
	int err;

	VRID_GUARD(-1, real.tgkill(vtgid, vtid, sig));
	if ((err = vrid_pid_in(vtgid, &stgid)) < 0 || (err = vrid_pid_in(vtid, &stid)) < 0)
		return vrid_fail(err);
	return real.tgkill(stgid, stid, sig);
}

VRID_EXPORT int sigqueue(pid_t vpid, int sig, const union sigval value)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sigqueue(vpid, sig, value));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sigqueue(spid, sig, value);
}

VRID_EXPORT int pidfd_open(pid_t vpid, unsigned int flags)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.pidfd_open(vpid, flags));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.pidfd_open(spid, flags);
}

/* ---- process groups and sessions ------------------------------------ */

VRID_EXPORT pid_t getpgid(pid_t vpid)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.getpgid(vpid));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : vrid_pid_out(real.getpgid(spid));
}

VRID_EXPORT pid_t getpgrp(void)
{
	return getpgid(0);
}

VRID_EXPORT int setpgid(pid_t vpid, pid_t vpgid)
{
	pid_t spid, spgid;
	int err;

	VRID_GUARD(-1, real.setpgid(vpid, vpgid));
	if ((err = vrid_pid_in(vpid, &spid)) < 0)
		return vrid_fail(err);
	/* A group id nobody in the chain has is refused, as by the kernel. */
	if ((err = vrid_pid_in(vpgid, &spgid)) < 0)
		return vrid_fail(vpgid < 0 ? -EINVAL : -EPERM);
	return real.setpgid(spid, spgid);
}

VRID_EXPORT int setpgrp(void)
{
	return setpgid(0, 0);
}

VRID_EXPORT pid_t getsid(pid_t vpid)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.getsid(vpid));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : vrid_pid_out(real.getsid(spid));
}

VRID_EXPORT pid_t setsid(void)
{
	pid_t ssid;

	VRID_GUARD(-1, real.setsid());
	ssid = real.setsid();
	return ssid < 0 ? ssid : vrid_pid_out(ssid);
}

VRID_EXPORT pid_t tcgetpgrp(int fd)
{
	pid_t spgrp;

	VRID_GUARD(-1, real.tcgetpgrp(fd));
	spgrp = real.tcgetpgrp(fd);
	return spgrp < 0 ? spgrp : vrid_pid_out(spgrp);
}

VRID_EXPORT int tcsetpgrp(int fd, pid_t vpgrp)
{
	pid_t spgrp;
	int err;

	VRID_GUARD(-1, real.tcsetpgrp(fd, vpgrp));
	if (vpgrp <= 0)
		return real.tcsetpgrp(fd, vpgrp);
	err = vrid_pid_in(vpgrp, &spgrp);
	return err < 0 ? vrid_fail(-EPERM) : real.tcsetpgrp(fd, spgrp);
}

/* ---- scheduling and limits ------------------------------------------ */

VRID_EXPORT int sched_setaffinity(pid_t vpid, size_t size, const cpu_set_t *set)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_setaffinity(vpid, size, set));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_setaffinity(spid, size, set);
}

VRID_EXPORT int sched_getaffinity(pid_t vpid, size_t size, cpu_set_t *set)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_getaffinity(vpid, size, set));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_getaffinity(spid, size, set);
}

VRID_EXPORT int sched_setparam(pid_t vpid, const struct sched_param *param)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_setparam(vpid, param));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_setparam(spid, param);
}

VRID_EXPORT int sched_getparam(pid_t vpid, struct sched_param *param)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_getparam(vpid, param));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_getparam(spid, param);
}

VRID_EXPORT int sched_setscheduler(pid_t vpid, int policy, const struct sched_param *param)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_setscheduler(vpid, policy, param));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_setscheduler(spid, policy, param);
}

VRID_EXPORT int sched_getscheduler(pid_t vpid)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_getscheduler(vpid));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_getscheduler(spid);
}

VRID_EXPORT int sched_rr_get_interval(pid_t vpid, struct timespec *interval)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.sched_rr_get_interval(vpid, interval));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.sched_rr_get_interval(spid, interval);
}

/* PRIO_PROCESS and PRIO_PGRP name pids; PRIO_USER names a uid. */
int vrid_priority_who_in(int which, id_t vwho, id_t *swho)
{
	pid_t spid = 0;
	int err;

	*swho = vwho;
	if (which == PRIO_USER)
		return 0;
	err = vrid_pid_in((pid_t)vwho, &spid);
	*swho = (id_t)spid;
	return err;
}

VRID_EXPORT int getpriority(__priority_which_t which, id_t vwho)
{
	id_t swho;
	int err;

	VRID_GUARD(-1, real.getpriority(which, vwho));
	err = vrid_priority_who_in(which, vwho, &swho);
	return err < 0 ? vrid_fail(err) : real.getpriority(which, swho);
}

VRID_EXPORT int setpriority(__priority_which_t which, id_t vwho, int prio)
{
	id_t swho;
	int err;

	VRID_GUARD(-1, real.setpriority(which, vwho, prio));
	err = vrid_priority_who_in(which, vwho, &swho);
	return err < 0 ? vrid_fail(err) : real.setpriority(which, swho, prio);
}

VRID_EXPORT int prlimit(pid_t vpid, __rlimit_resource_t resource, const struct rlimit *new_limit,
	    struct rlimit *old_limit)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.prlimit(vpid, resource, new_limit, old_limit));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err) : real.prlimit(spid, resource, new_limit, old_limit);
}

VRID_EXPORT int prlimit64(pid_t vpid, __rlimit_resource_t resource, const struct rlimit64 *new_limit,
	      struct rlimit64 *old_limit)
{
	return prlimit(vpid, resource, (const struct rlimit *)new_limit, (struct rlimit *)old_limit);
}

const struct vrid_type_ops pid_type_ops = {
	.type = VRID_PID,
	.name = "pid",
	.sys_alive = pid_sys_alive,
};
