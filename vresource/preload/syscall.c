/*
 * syscall(SYS_...): programs that bypass the libc wrappers still pass and
 * get ids.  The pid and IPC calls go to our wrappers; where the kernel's
 * result differs from libc's (getpriority, raw clone), the id is
 * translated around the real system call instead.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vrid.h"

/* System calls whose first argument is a pid and whose others hold none. */
static long pid_arg_then(long nr, const long a[6])
{
	pid_t spid;
	int err = vrid_pid_in((pid_t)a[0], &spid);

	return err < 0 ? vrid_fail(err) : real.syscall(nr, (long)spid, a[1], a[2], a[3], a[4], a[5]);
}

static long priority_then(long nr, long which, long vwho, long prio)
{
	id_t swho;
	int err = vrid_priority_who_in((int)which, (id_t)vwho, &swho);

	return err < 0 ? vrid_fail(err) : real.syscall(nr, which, (long)swho, prio);
}

/* clone without CLONE_VM returns twice like fork; with it, the child runs on another stack. */
static long raw_clone(long nr, long flags, long a1, long a2, long a3, long a4)
{
	long ret = real.syscall(nr, flags, a1, a2, a3, a4);

	if (ret == 0 && !(flags & CLONE_VM))
		vrid_pid_child();
	return ret <= 0 ? ret : vrid_child_out((pid_t)ret);
}

static long raw_waitid(long idtype, long vid, siginfo_t *info, long options, long usage)
{
	pid_t sid = (pid_t)vid;
	long ret;

	if ((idtype == P_PID || (idtype == P_PGID && vid != 0)) && vrid_pid_in((pid_t)vid, &sid) < 0)
		return vrid_fail(-ECHILD);
	ret = real.syscall(SYS_waitid, idtype, (long)sid, (long)info, options, usage);
	if (ret == 0 && info && info->si_pid > 0)
		info->si_pid = vrid_waited_out(info->si_pid, vrid_siginfo_reaped(info, (int)options));
	return ret;
}

VRID_EXPORT long syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	VRID_GUARD(-1, real.syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
	switch (nr) {
	case SYS_getpid:
		return getpid();
	case SYS_getppid:
		return getppid();
	case SYS_gettid:
		return gettid();
	case SYS_fork:
	case SYS_vfork:
		return fork();
	case SYS_clone:
		return raw_clone(nr, a[0], a[1], a[2], a[3], a[4]);
	case SYS_kill:
		return kill((pid_t)a[0], (int)a[1]);
	case SYS_tgkill:
		return tgkill((pid_t)a[0], (pid_t)a[1], (int)a[2]);
	case SYS_getpgid:
		return getpgid((pid_t)a[0]);
	case SYS_getsid:
		return getsid((pid_t)a[0]);
	case SYS_tkill:
	case SYS_pidfd_open:
	case SYS_sched_setaffinity:
	case SYS_sched_getaffinity:
	case SYS_sched_setparam:
	case SYS_sched_getparam:
	case SYS_sched_setscheduler:
	case SYS_sched_getscheduler:
	case SYS_sched_rr_get_interval:
	case SYS_prlimit64:
	case SYS_sched_setattr:
	case SYS_sched_getattr:
	case SYS_get_robust_list:
	case SYS_migrate_pages:
	case SYS_move_pages:
	case SYS_process_vm_readv:
	case SYS_process_vm_writev:
		return pid_arg_then(nr, a);
	case SYS_kcmp:
		return vrid_raw_kcmp(a);
	case SYS_rt_sigqueueinfo:
	case SYS_rt_tgsigqueueinfo:
		return vrid_raw_sigqueueinfo(nr, a);
	case SYS_ioprio_get:
	case SYS_ioprio_set:
		return vrid_raw_ioprio(nr, a);
	case SYS_perf_event_open:
		return vrid_raw_perf_event_open(a);
	case SYS_ptrace:
		return vrid_ptrace(1, a[0], (pid_t)a[1], (void *)a[2], (void *)a[3]);
	case SYS_capget:
		return capget((cap_user_header_t)a[0], (cap_user_data_t)a[1]);
	case SYS_capset:
		return capset((cap_user_header_t)a[0], (cap_user_data_t)a[1]);
	case SYS_prctl:
		return prctl((int)a[0], a[1], a[2], a[3], a[4]);
	case SYS_pidfd_send_signal:
		return pidfd_send_signal((int)a[0], (int)a[1], (siginfo_t *)a[2], (unsigned int)a[3]);
	case SYS_fcntl:
		return fcntl((int)a[0], (int)a[1], a[2]);
	case SYS_ioctl:
		return ioctl((int)a[0], (unsigned long)a[1], a[2]);
	case SYS_getsockopt:
		return getsockopt((int)a[0], (int)a[1], (int)a[2], (void *)a[3], (socklen_t *)a[4]);
	case SYS_recvmsg:
		return recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]);
	case SYS_sendmsg:
		return sendmsg((int)a[0], (const struct msghdr *)a[1], (int)a[2]);
	case SYS_setpgid:
		return setpgid((pid_t)a[0], (pid_t)a[1]);
	case SYS_getpgrp:
		return getpgrp();
	case SYS_setsid:
		return setsid();
	case SYS_getpriority:
	case SYS_setpriority:
		return priority_then(nr, a[0], a[1], a[2]);
	case SYS_wait4:
		return wait4((pid_t)a[0], (int *)a[1], (int)a[2], (struct rusage *)a[3]);
	case SYS_waitid:
		return raw_waitid(a[0], a[1], (siginfo_t *)a[2], a[3], a[4]);
	case SYS_semget:
		return semget((key_t)a[0], (int)a[1], (int)a[2]);
	case SYS_semop:
		return semop((int)a[0], (struct sembuf *)a[1], (size_t)a[2]);
	case SYS_semtimedop:
		return semtimedop((int)a[0], (struct sembuf *)a[1], (size_t)a[2],
				  (const struct timespec *)a[3]);
	case SYS_semctl:
		return semctl((int)a[0], (int)a[1], (int)a[2], a[3]);
	case SYS_shmget:
		return shmget((key_t)a[0], (size_t)a[1], (int)a[2]);
	case SYS_shmat:
		return (long)shmat((int)a[0], (const void *)a[1], (int)a[2]);
	case SYS_shmdt:
		return shmdt((const void *)a[0]);
	case SYS_shmctl:
		return shmctl((int)a[0], (int)a[1], (struct shmid_ds *)a[2]);
	case SYS_msgget:
		return msgget((key_t)a[0], (int)a[1]);
	case SYS_msgsnd:
		return msgsnd((int)a[0], (const void *)a[1], (size_t)a[2], (int)a[3]);
	case SYS_msgrcv:
		return msgrcv((int)a[0], (void *)a[1], (size_t)a[2], a[3], (int)a[4]);
	case SYS_msgctl:
		return msgctl((int)a[0], (int)a[1], (struct msqid_ds *)a[2]);
	default:
		return real.syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}
