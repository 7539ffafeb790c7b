/*
 * The other calls that name a process: capget and capset headers,
 * process_vm_readv/writev, clock_getcpuclockid, prctl(PR_SET_PTRACER),
 * pidfd_send_signal's siginfo, waitid(P_PIDFD), and through syscall()
 * ioprio_get/set, kcmp, perf_event_open, get_robust_list, migrate_pages,
 * move_pages, sched_getattr and rt_tgsigqueueinfo.
 */
#include "vt.h"

#include <linux/capability.h>
#include <linux/ioprio.h>
#include <linux/kcmp.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>

int capget(cap_user_header_t hdr, cap_user_data_t data);
int capset(cap_user_header_t hdr, const cap_user_data_t data);

static volatile long marker = 1;
static volatile sig_atomic_t queued_pid;

static void on_queued(int sig, siginfo_t *info, void *ctx)
{
	(void)sig;
	(void)ctx;
	queued_pid = info->si_pid;
}

static void set_marker(void *arg)
{
	(void)arg;
	marker = 2;
}

static void caps(pid_t child)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	int rc;

	hdr.pid = getpid();
	OUT_INT("capget.self", capget(&hdr, data));
	OUT_INT("capget.self.header_pid", hdr.pid);
	hdr.pid = child;
	OUT_INT("capget.child", capget(&hdr, data));
	hdr.pid = 4242;
	rc = capget(&hdr, data);
	OUT_ERR("capget.unknown", rc);
	hdr.pid = getpid();
	OUT_INT("capget.self.again", capget(&hdr, data));
	OUT_INT("capset.self", capset(&hdr, data));
	OUT_INT("SYS_capset.self", syscall(SYS_capset, &hdr, data));
	hdr.pid = 4242;
	rc = (int)syscall(SYS_capget, &hdr, data);
	OUT_ERR("SYS_capget.unknown", rc);
	/* an unknown version is answered with the one the kernel prefers */
	hdr.version = 0;
	hdr.pid = getpid();
	rc = capget(&hdr, NULL);
	OUT_ERR("capget.version_probe", rc);
	OUT_INT("capget.version_probe.version_is_3", hdr.version == _LINUX_CAPABILITY_VERSION_3);
}

static void memory(pid_t child)
{
	long value = 0, other = 3;
	struct iovec local = { &value, sizeof(value) };
	struct iovec remote = { (void *)&marker, sizeof(marker) };
	unsigned long nodes = 1;
	ssize_t n;

	n = process_vm_readv(child, &local, 1, &remote, 1, 0);
	OUT_INT("process_vm_readv.child", n);
	OUT_INT("process_vm_readv.child.marker", value);
	n = process_vm_readv(4242, &local, 1, &remote, 1, 0);
	OUT_ERR("process_vm_readv.unknown", n);
	local.iov_base = &other;
	OUT_INT("process_vm_writev.child", process_vm_writev(child, &local, 1, &remote, 1, 0));
	local.iov_base = &value;
	OUT_INT("SYS_process_vm_readv.child", syscall(SYS_process_vm_readv, child, &local, 1, &remote, 1, 0));
	OUT_INT("SYS_process_vm_readv.child.marker", value);
	n = syscall(SYS_process_vm_writev, 4242, &local, 1, &remote, 1, 0);
	OUT_ERR("SYS_process_vm_writev.unknown", n);
	OUT_INT("migrate_pages.child", syscall(SYS_migrate_pages, child, 8 * sizeof(nodes), &nodes, &nodes));
	n = syscall(SYS_migrate_pages, 4242, 8 * sizeof(nodes), &nodes, &nodes);
	OUT_ERR("migrate_pages.unknown", n);
	OUT_INT("move_pages.child", syscall(SYS_move_pages, child, 0, NULL, NULL, NULL, 0));
	n = syscall(SYS_move_pages, 4242, 0, NULL, NULL, NULL, 0);
	OUT_ERR("move_pages.unknown", n);
}

static void scheduling(pid_t child)
{
	struct perf_event_attr attr;
	unsigned int sched_attr[32];
	void *head;
	size_t len;
	clockid_t clock;
	long rc;
	int fd;

	OUT_INT("ioprio_set.child", syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, child,
					     IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 3)));
	rc = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, child);
	OUT_INT("ioprio_get.child.class", IOPRIO_PRIO_CLASS(rc));
	OUT_INT("ioprio_get.child.data", IOPRIO_PRIO_DATA(rc));
	rc = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
	OUT_INT("ioprio_get.self.untouched", rc != IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 3));
	OUT_INT("ioprio_get.pgrp.ok", syscall(SYS_ioprio_get, IOPRIO_WHO_PGRP, getpgrp()) >= 0);
	rc = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 4242);
	OUT_ERR("ioprio_get.unknown", rc);
	rc = syscall(SYS_ioprio_get, IOPRIO_WHO_PGRP, 4242);
	OUT_ERR("ioprio_get.unknown_pgrp", rc);

	OUT_INT("get_robust_list.child", syscall(SYS_get_robust_list, child, &head, &len));
	rc = syscall(SYS_get_robust_list, 4242, &head, &len);
	OUT_ERR("get_robust_list.unknown", rc);
	OUT_INT("sched_getattr.child", syscall(SYS_sched_getattr, child, sched_attr, sizeof(sched_attr), 0));
	rc = syscall(SYS_sched_getattr, 4242, sched_attr, sizeof(sched_attr), 0);
	OUT_ERR("sched_getattr.unknown", rc);

	OUT_INT("kcmp.self_self", syscall(SYS_kcmp, getpid(), getpid(), KCMP_VM, 0, 0));
	OUT_INT("kcmp.self_child.differ", syscall(SYS_kcmp, getpid(), child, KCMP_VM, 0, 0) > 0);
	OUT_INT("kcmp.self_child.fd0", syscall(SYS_kcmp, getpid(), child, KCMP_FILE, 0, 0));
	rc = syscall(SYS_kcmp, getpid(), 4242, KCMP_VM, 0, 0);
	OUT_ERR("kcmp.unknown", rc);

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.disabled = 1;
	fd = (int)syscall(SYS_perf_event_open, &attr, child, -1, -1, 0);
	OUT_INT("perf_event_open.child.ok", fd >= 0);
	if (fd >= 0)
		close(fd);
	rc = syscall(SYS_perf_event_open, &attr, 4242, -1, -1, 0);
	OUT_ERR("perf_event_open.unknown", rc);

	OUT_INT("clock_getcpuclockid.child", clock_getcpuclockid(child, &clock));
	OUT_INT("clock_getcpuclockid.unknown", clock_getcpuclockid(4242, &clock));

	/* without Yama every PR_SET_PTRACER is EINVAL; with it, only an unknown one */
	rc = prctl(PR_SET_PTRACER, 4242, 0, 0, 0);
	OUT_ERR("prctl.set_ptracer.unknown", rc);
}

static void signals(void)
{
	struct sigaction act;
	siginfo_t si;
	pid_t pid;
	int pidfd;
	sigset_t set;

	memset(&act, 0, sizeof(act));
	act.sa_sigaction = on_queued;
	act.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &act, NULL);

	/* a siginfo built with our virtual pid reaches the handler so */
	pidfd = pidfd_open(getpid(), 0);
	MUST(pidfd >= 0);
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGUSR1;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	OUT_INT("pidfd_send_signal.self", pidfd_send_signal(pidfd, SIGUSR1, &si, 0));
	OUT_INT("pidfd_send_signal.caller_kept", si.si_pid);
	OUT_INT("pidfd_send_signal.handler_si_pid", queued_pid);
	close(pidfd);

	queued_pid = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	OUT_INT("SYS_rt_tgsigqueueinfo.self", syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGUSR1, &si));
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	OUT_INT("SYS_rt_tgsigqueueinfo.handler_si_pid", queued_pid);
	OUT_ERR("SYS_rt_tgsigqueueinfo.unknown",
		syscall(SYS_rt_tgsigqueueinfo, getpid(), 4242, SIGUSR1, &si));
	queued_pid = 0;
	sigprocmask(SIG_BLOCK, &set, NULL);
	OUT_INT("SYS_rt_sigqueueinfo.self", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si));
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	OUT_INT("SYS_rt_sigqueueinfo.handler_si_pid", queued_pid);
	OUT_ERR("SYS_rt_sigqueueinfo.unknown", syscall(SYS_rt_sigqueueinfo, 4242, SIGUSR1, &si));

	/* waitid(P_PIDFD) names the child by its pidfd, and si_pid is virtual */
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0)
		_exit(4);
	pidfd = pidfd_open(pid, 0);
	MUST(pidfd >= 0);
	memset(&si, 0, sizeof(si));
	OUT_INT("waitid.pidfd.child", pid);
	OUT_INT("waitid.pidfd", waitid(P_PIDFD, pidfd, &si, WEXITED));
	OUT_INT("waitid.pidfd.si_pid", si.si_pid);
	OUT_INT("waitid.pidfd.si_status", si.si_status);
	close(pidfd);
}

int main(void)
{
	int release;
	pid_t child;

	child = vt_fork_held(set_marker, NULL, &release);
	OUT_INT("child", child);
	caps(child);
	memory(child);
	scheduling(child);
	close(release);
	OUT_INT("child.status", vt_exit_code(vt_wait(child)));
	signals();
	return vt_done();
}
