/*
 * The wait family: a pid argument names a child or a group, and the result
 * names the child that changed state.  A reaped child leaves the pid table
 * here, since nobody can name it any more.
 */
#include <sys/syscall.h>

#include "vrid.h"

/* waitpid()-style target: > 0 a child, 0 or -1 as is, < -1 a group. */
static int wait_target_in(pid_t vpid, pid_t *spid)
{
	pid_t s;

	if (vpid == 0 || vpid == -1) {
		*spid = vpid;
		return 0;
	}
	if (vpid == INT32_MIN || vrid_pid_in(vpid < 0 ? -vpid : vpid, &s) < 0)
		return -ECHILD;
	*spid = vpid < 0 ? -s : s;
	return 0;
}

/* The child that changed state, in virtual terms; a reaped one is forgotten. */
pid_t vrid_waited_out(pid_t spid, int reaped)
{
	pid_t vpid;

	if (spid <= 0)
		return spid;
	if (vrid_tracing())
		return vrid_tracer_waited_out(spid);
	/* Children the chain never saw (forked inside libc, say) get an id now. */
	vpid = vrid_pid_out(spid);
	if (vpid == 0)
		vpid = vrid_pid_bind(spid);
	if (reaped)
		vrid_pid_reaped(spid);
	return vpid;
}

static int status_reaped(int status)
{
	return WIFEXITED(status) || WIFSIGNALED(status);
}

VRID_EXPORT pid_t wait4(pid_t vpid, int *wstatus, int options, struct rusage *usage)
{
	pid_t spid, ret;
	int status = 0, err;

	VRID_GUARD(-1, real.wait4(vpid, wstatus, options, usage));
	if ((err = wait_target_in(vpid, &spid)) < 0)
		return vrid_fail(err);
	ret = real.wait4(spid, &status, options, usage);
	if (ret > 0 && wstatus)
		*wstatus = status;
	return ret <= 0 ? ret : vrid_waited_out(ret, status_reaped(status));
}

VRID_EXPORT pid_t waitpid(pid_t vpid, int *wstatus, int options)
{
	return wait4(vpid, wstatus, options, NULL);
}

VRID_EXPORT pid_t wait(int *wstatus)
{
	return wait4(-1, wstatus, 0, NULL);
}

VRID_EXPORT pid_t wait3(int *wstatus, int options, struct rusage *usage)
{
	return wait4(-1, wstatus, options, usage);
}

int vrid_siginfo_reaped(const siginfo_t *info, int options)
{
	return !(options & WNOWAIT) &&
	       (info->si_code == CLD_EXITED || info->si_code == CLD_KILLED ||
		info->si_code == CLD_DUMPED);
}

VRID_EXPORT int waitid(idtype_t idtype, id_t vid, siginfo_t *info, int options)
{
	pid_t sid = (pid_t)vid;
	int ret;

	VRID_GUARD(-1, real.waitid(idtype, vid, info, options));
	if ((idtype == P_PID || (idtype == P_PGID && vid != 0)) &&
	    vrid_pid_in((pid_t)vid, &sid) < 0)
		return vrid_fail(-ECHILD);
	ret = real.waitid(idtype, (id_t)sid, info, options);
	if (ret == 0 && info && info->si_pid > 0)
		info->si_pid = vrid_waited_out(info->si_pid, vrid_siginfo_reaped(info, options));
	return ret;
}
