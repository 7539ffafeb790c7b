/*
 * syscall(SYS_...): the pid and System V IPC numbers are translated as the
 * libc calls are.
 */
#include "vt.h"

#include <sched.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>

int main(void)
{
	struct rlimit rl;
	siginfo_t si;
	long pid, ret, id;
	int status, rc;

	OUT_INT("SYS_getpid", syscall(SYS_getpid));
	OUT_INT("SYS_getppid", syscall(SYS_getppid));
	OUT_INT("SYS_gettid", syscall(SYS_gettid));
	OUT_INT("SYS_getpgid.0", syscall(SYS_getpgid, 0));
	OUT_INT("SYS_getpgid.self", syscall(SYS_getpgid, 1000));
	OUT_INT("SYS_getpgrp", syscall(SYS_getpgrp));
	OUT_INT("SYS_getsid.0", syscall(SYS_getsid, 0));
	OUT_INT("SYS_setpgid.self", syscall(SYS_setpgid, 0, 0));
	OUT_INT("SYS_kill.self", syscall(SYS_kill, 1000, 0));
	rc = (int)syscall(SYS_kill, 4242, 0);
	OUT_ERR("SYS_kill.unknown", rc);
	OUT_INT("SYS_tgkill.self", syscall(SYS_tgkill, 1000, 1000, 0));
	rc = (int)syscall(SYS_tgkill, 1000, 4242, 0);
	OUT_ERR("SYS_tgkill.unknown", rc);
	OUT_INT("SYS_tkill.self", syscall(SYS_tkill, 1000, 0));
	rc = (int)syscall(SYS_tkill, 4242, 0);
	OUT_ERR("SYS_tkill.unknown", rc);
	rc = (int)syscall(SYS_getpgid, 4242);
	OUT_ERR("SYS_getpgid.unknown", rc);
	OUT_INT("SYS_sched_getscheduler.self", syscall(SYS_sched_getscheduler, 1000));
	rc = (int)syscall(SYS_sched_getscheduler, 4242);
	OUT_ERR("SYS_sched_getscheduler.unknown", rc);
	OUT_INT("SYS_prlimit64.self", syscall(SYS_prlimit64, 1000, RLIMIT_NOFILE, NULL, &rl));
	rc = (int)syscall(SYS_prlimit64, 4242, RLIMIT_NOFILE, NULL, &rl);
	OUT_ERR("SYS_prlimit64.unknown", rc);
	rc = (int)syscall(SYS_pidfd_open, 1000, 0);
	OUT_INT("SYS_pidfd_open.self.ok", rc >= 0);
	if (rc >= 0)
		close(rc);
	rc = (int)syscall(SYS_pidfd_open, 4242, 0);
	OUT_ERR("SYS_pidfd_open.unknown", rc);
	/* the kernel's getpriority returns 20 - nice */
	OUT_INT("SYS_setpriority.self", syscall(SYS_setpriority, PRIO_PROCESS, 1000, 3));
	OUT_INT("SYS_getpriority.self", syscall(SYS_getpriority, PRIO_PROCESS, 1000));
	rc = (int)syscall(SYS_getpriority, PRIO_PROCESS, 4242);
	OUT_ERR("SYS_getpriority.unknown", rc);

	/* fork and wait4 */
	fflush(stdout);
	pid = syscall(SYS_fork);
	MUST(pid >= 0);
	if (pid == 0) {
		OUT_INT("fork.child.SYS_getpid", syscall(SYS_getpid));
		OUT_INT("fork.child.SYS_getppid", syscall(SYS_getppid));
		vt_child_exit(4);
	}
	OUT_INT("SYS_fork", pid);
	ret = syscall(SYS_wait4, pid, &status, 0, NULL);
	OUT_INT("SYS_wait4", ret);
	OUT_INT("SYS_wait4.status", WEXITSTATUS(status));
	rc = (int)syscall(SYS_wait4, 4242, &status, 0, NULL);
	OUT_ERR("SYS_wait4.unknown", rc);

	/* a raw clone without CLONE_VM is a fork */
	fflush(stdout);
	pid = syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	MUST(pid >= 0);
	if (pid == 0) {
		OUT_INT("clone.child.SYS_getpid", syscall(SYS_getpid));
		vt_child_exit(6);
	}
	OUT_INT("SYS_clone", pid);
	memset(&si, 0, sizeof(si));
	ret = syscall(SYS_waitid, P_PID, pid, &si, WEXITED, NULL);
	OUT_INT("SYS_waitid", ret);
	OUT_INT("SYS_waitid.si_pid", si.si_pid);
	OUT_INT("SYS_waitid.si_status", si.si_status);
	rc = (int)syscall(SYS_waitid, P_PID, 4242, &si, WEXITED, NULL);
	OUT_ERR("SYS_waitid.unknown", rc);

	/* System V IPC: virtual ids from 1, per kind */
	id = syscall(SYS_semget, IPC_PRIVATE, 1, IPC_CREAT | 0600);
	OUT_INT("SYS_semget", id);
	OUT_INT("SYS_semctl.setval", syscall(SYS_semctl, id, 0, SETVAL, 3));
	OUT_INT("SYS_semctl.getval", syscall(SYS_semctl, id, 0, GETVAL, 0));
	{
		struct sembuf op = { .sem_num = 0, .sem_op = -1 };

		OUT_INT("SYS_semop", syscall(SYS_semop, id, &op, 1));
		OUT_INT("SYS_semtimedop", syscall(SYS_semtimedop, id, &op, 1, NULL));
	}
	OUT_INT("SYS_semctl.getpid", syscall(SYS_semctl, id, 0, GETPID, 0));
	OUT_INT("SYS_semctl.rmid", syscall(SYS_semctl, id, 0, IPC_RMID, 0));
	rc = (int)syscall(SYS_semctl, id, 0, GETVAL, 0);
	OUT_ERR("SYS_semctl.removed", rc);

	id = syscall(SYS_shmget, IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	OUT_INT("SYS_shmget", id);
	{
		struct shmid_ds ds;
		long addr = syscall(SYS_shmat, id, NULL, 0);

		OUT_INT("SYS_shmat.ok", addr != -1);
		OUT_INT("SYS_shmctl.stat", syscall(SYS_shmctl, id, IPC_STAT, &ds));
		OUT_INT("SYS_shmctl.stat.cpid", ds.shm_cpid);
		OUT_INT("SYS_shmctl.stat.nattch", ds.shm_nattch);
		OUT_INT("SYS_shmdt", syscall(SYS_shmdt, addr));
	}
	OUT_INT("SYS_shmctl.rmid", syscall(SYS_shmctl, id, IPC_RMID, NULL));

	id = syscall(SYS_msgget, 0x5151, IPC_CREAT | 0600);
	OUT_INT("SYS_msgget", id);
	{
		struct { long type; char text[8]; } msg = { 1, "hi" }, in;
		struct msqid_ds ds;

		OUT_INT("SYS_msgsnd", syscall(SYS_msgsnd, id, &msg, sizeof(msg.text), 0));
		OUT_INT("SYS_msgctl.stat", syscall(SYS_msgctl, id, IPC_STAT, &ds));
		OUT_INT("SYS_msgctl.stat.key", ds.msg_perm.__key);
		OUT_INT("SYS_msgctl.stat.lspid", ds.msg_lspid);
		OUT_INT("SYS_msgrcv", syscall(SYS_msgrcv, id, &in, sizeof(in.text), 0, 0));
		OUT_STR("SYS_msgrcv.text", in.text);
	}
	OUT_INT("SYS_msgctl.rmid", syscall(SYS_msgctl, id, IPC_RMID, NULL));
	rc = (int)syscall(SYS_msgsnd, 4242, "x", 1, 0);
	OUT_ERR("SYS_msgsnd.unknown", rc);
	return vt_done();
}
