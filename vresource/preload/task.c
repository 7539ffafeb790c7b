/*
 * The other calls that name a process by pid: its capabilities, its
 * memory, its I/O priority and CPU clock, who may trace it, and how two
 * processes share resources.  Those libc has no wrapper for come here
 * from syscall().  Unknown pids fail as the kernel fails them for a
 * process that is gone.
 */
#include <linux/ioprio.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

#include "vrid.h"

/* ---- capabilities ---------------------------------------------------- */

/*
 * The header names the process; after a version it does not know, the
 * kernel writes back the one it prefers.
 */
static int cap_call(int set, cap_user_header_t hdr, cap_user_data_t data)
{
	struct __user_cap_header_struct shdr;
	int ret, err;

	if (!hdr)
		return set ? real.capset(hdr, data) : real.capget(hdr, data);
	shdr = *hdr;
	if ((err = vrid_pid_in(hdr->pid, &shdr.pid)) < 0)
		return vrid_fail(err);
	ret = set ? real.capset(&shdr, data) : real.capget(&shdr, data);
	hdr->version = shdr.version;
	return ret;
}

VRID_EXPORT int capget(cap_user_header_t hdr, cap_user_data_t data)
{
	VRID_GUARD(-1, real.capget(hdr, data));
	return cap_call(0, hdr, data);
}

VRID_EXPORT int capset(cap_user_header_t hdr, const cap_user_data_t data)
{
	VRID_GUARD(-1, real.capset(hdr, data));
	return cap_call(1, hdr, data);
}

/* ---- who may trace us ------------------------------------------------ */

static int prctl_names_pid(int option, unsigned long arg2)
{
	return option == PR_SET_PTRACER && arg2 != 0 && arg2 != PR_SET_PTRACER_ANY;
}

VRID_EXPORT int prctl(int option, ...)
{
	unsigned long a2, a3, a4, a5;
	va_list ap;
	pid_t spid;

	va_start(ap, option);
	a2 = va_arg(ap, unsigned long);
	a3 = va_arg(ap, unsigned long);
	a4 = va_arg(ap, unsigned long);
	a5 = va_arg(ap, unsigned long);
	va_end(ap);
	if (unlikely(!vrid_on())) {
		if (vrid_broken() && prctl_names_pid(option, a2))
			return vrid_fail(-ENOTRECOVERABLE);
		return real.prctl(option, a2, a3, a4, a5);
	}
	if (prctl_names_pid(option, a2)) {
		/* Yama answers EINVAL for a tracer it cannot find. */
		if (vrid_pid_in((pid_t)a2, &spid) < 0)
			return vrid_fail(-EINVAL);
		a2 = (unsigned long)spid;
	}
	return real.prctl(option, a2, a3, a4, a5);
}

/* ---- another process's memory, clock and signals ------------------------ */

VRID_EXPORT ssize_t process_vm_readv(pid_t vpid, const struct iovec *local, unsigned long nlocal,
				     const struct iovec *remote, unsigned long nremote,
				     unsigned long flags)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.process_vm_readv(vpid, local, nlocal, remote, nremote, flags));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err)
		       : real.process_vm_readv(spid, local, nlocal, remote, nremote, flags);
}

VRID_EXPORT ssize_t process_vm_writev(pid_t vpid, const struct iovec *local, unsigned long nlocal,
				      const struct iovec *remote, unsigned long nremote,
				      unsigned long flags)
{
	pid_t spid;
	int err;

	VRID_GUARD(-1, real.process_vm_writev(vpid, local, nlocal, remote, nremote, flags));
	err = vrid_pid_in(vpid, &spid);
	return err < 0 ? vrid_fail(err)
		       : real.process_vm_writev(spid, local, nlocal, remote, nremote, flags);
}

/* The clock id libc builds holds the system pid; it returns an error number, not -1. */
VRID_EXPORT int clock_getcpuclockid(pid_t vpid, clockid_t *clock)
{
	pid_t spid;

	VRID_GUARD(ENOTRECOVERABLE, real.clock_getcpuclockid(vpid, clock));
	if (vrid_pid_in(vpid, &spid) < 0)
		return ESRCH;
	return real.clock_getcpuclockid(spid, clock);
}

/* The pidfd names the process; a siginfo the caller built names the sender. */
VRID_EXPORT int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{
	siginfo_t sinfo;

	VRID_GUARD(-1, real.pidfd_send_signal(pidfd, sig, info, flags));
	if (!info)
		return real.pidfd_send_signal(pidfd, sig, info, flags);
	sinfo = *info;
	vrid_siginfo_in(&sinfo);
	return real.pidfd_send_signal(pidfd, sig, &sinfo, flags);
}

/* ---- system calls without a libc wrapper ---------------------------- */

/* ioprio_get and ioprio_set: a[0] says whether a[1] is a pid, a group or a uid. */
long vrid_raw_ioprio(long nr, const long a[6])
{
	pid_t swho = (pid_t)a[1];
	int err;

	if ((a[0] == IOPRIO_WHO_PROCESS || a[0] == IOPRIO_WHO_PGRP) &&
	    (err = vrid_pid_in((pid_t)a[1], &swho)) < 0)
		return vrid_fail(err);
	return real.syscall(nr, a[0], (long)swho, a[2]);
}

/* kcmp names two processes first. */
long vrid_raw_kcmp(const long a[6])
{
	pid_t s1, s2;
	int err;

	if ((err = vrid_pid_in((pid_t)a[0], &s1)) < 0 || (err = vrid_pid_in((pid_t)a[1], &s2)) < 0)
		return vrid_fail(err);
	return real.syscall(SYS_kcmp, (long)s1, (long)s2, a[2], a[3], a[4]);
}

/*
 * rt_sigqueueinfo(tgid, sig, info) and rt_tgsigqueueinfo(tgid, tid, sig,
 * info): the target, and the sender the caller wrote into info.
 */
long vrid_raw_sigqueueinfo(long nr, const long a[6])
{
	int tg = nr == SYS_rt_tgsigqueueinfo;
	const siginfo_t *vinfo = (const siginfo_t *)a[tg ? 3 : 2];
	siginfo_t sinfo;
	pid_t stgid, stid = 0;
	int err;

	if ((err = vrid_pid_in((pid_t)a[0], &stgid)) < 0 ||
	    (tg && (err = vrid_pid_in((pid_t)a[1], &stid)) < 0))
		return vrid_fail(err);
	if (!vinfo)
		return real.syscall(nr, (long)stgid, tg ? (long)stid : a[1], a[2], a[3]);
	sinfo = *vinfo;
	vrid_siginfo_in(&sinfo);
	if (tg)
		return real.syscall(nr, (long)stgid, (long)stid, a[2], (long)&sinfo);
	return real.syscall(nr, (long)stgid, a[1], (long)&sinfo);
}

/* pid -1 is every process; with PERF_FLAG_PID_CGROUP the pid is a cgroup's fd. */
long vrid_raw_perf_event_open(const long a[6])
{
	pid_t spid = (pid_t)a[1];
	int err;

	if (spid > 0 && !(a[4] & PERF_FLAG_PID_CGROUP) && (err = vrid_pid_in(spid, &spid)) < 0)
		return vrid_fail(err);
	return real.syscall(SYS_perf_event_open, a[0], (long)spid, a[2], a[3], a[4]);
}
