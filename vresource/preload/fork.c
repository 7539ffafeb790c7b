/*
 * New processes: fork, vfork, clone and posix_spawn.  The parent records
 * the child's system pid before it returns, and the child records itself
 * before it runs a line of the application, so both agree on the virtual
 * id whichever runs first.
 */
#include <sched.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrid.h"

#define LOG_PREFIX "fork: "

/* A child we cannot name would be unreachable: take it back and fail. */
pid_t vrid_child_out(pid_t spid)
{
	pid_t vpid = vrid_pid_bind(spid);

	if (vpid >= 0)
		return vpid;
	vrid_sys2(SYS_kill, spid, SIGKILL);
	vrid_sys(SYS_wait4, spid, 0, 0, 0, 0, 0);
	return vrid_fail(-EAGAIN);
}

VRID_EXPORT pid_t fork(void)
{
	pid_t spid;

	VRID_GUARD(-1, real.fork());
	spid = real.fork();
	if (spid == 0)
		vrid_pid_child();
	return spid <= 0 ? spid : vrid_child_out(spid);
}

/*
 * vfork's child may only exec or _exit, and a forked child can do both, so
 * a real fork keeps the caller's promises and keeps us out of a borrowed
 * stack frame.
 */
VRID_EXPORT pid_t vfork(void)
{
	return fork();
}

VRID_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	pid_t *ptid, *ctid;
	void *tls;
	va_list ap;
	int stid;

	va_start(ap, arg);
	ptid = va_arg(ap, pid_t *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, pid_t *);
	va_end(ap);
	VRID_GUARD(-1, real.clone(fn, stack, flags, arg, ptid, tls, ctid));
	/*
	 * The child starts in fn on its own stack: its getpid() sees a pid the
	 * cache does not know and records itself then.
	 */
	stid = real.clone(fn, stack, flags, arg, ptid, tls, ctid);
	if (stid <= 0)
		return stid;
	stid = vrid_child_out(stid);
	if (stid > 0 && (flags & CLONE_PARENT_SETTID) && ptid)
		*ptid = stid;
	return stid;
}

static int spawned_out(int ret, pid_t *pid)
{
	pid_t vpid;

	if (ret != 0 || !pid)
		return ret;
	vpid = vrid_child_out(*pid);
	if (vpid < 0)
		return errno;
	*pid = vpid;
	return 0;
}

VRID_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
		const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	VRID_GUARD(ENOTRECOVERABLE, real.posix_spawn(pid, path, actions, attr, argv, envp));
	VRID_WITH_ENV(envp, fixed);
	return spawned_out(real.posix_spawn(pid, path, actions, attr, argv, fixed), pid);
}

VRID_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
		 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	VRID_GUARD(ENOTRECOVERABLE, real.posix_spawnp(pid, file, actions, attr, argv, envp));
	VRID_WITH_ENV(envp, fixed);
	return spawned_out(real.posix_spawnp(pid, file, actions, attr, argv, fixed), pid);
}
