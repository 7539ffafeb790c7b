/*
 * Scheduling, priorities, resource limits and pidfds by virtual pid:
 * sched_*affinity, sched_*param, sched_*scheduler, sched_rr_get_interval,
 * getpriority, setpriority, prlimit, prlimit64 and pidfd_open.
 */
#include "vt.h"

#include <sched.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/resource.h>

int main(void)
{
	struct sched_param param = { .sched_priority = 0 };
	struct rlimit rl, rl_again;
	struct rlimit64 rl64;
	struct timespec ts;
	pid_t self = getpid(), child;
	cpu_set_t set;
	int rc, fd;

	rc = sched_getaffinity(self, sizeof(set), &set);
	OUT_INT("sched_getaffinity.self", rc);
	OUT_INT("sched_setaffinity.self", sched_setaffinity(self, sizeof(set), &set));
	rc = sched_getaffinity(4242, sizeof(set), &set);
	OUT_ERR("sched_getaffinity.unknown", rc);
	rc = sched_setaffinity(4242, sizeof(set), &set);
	OUT_ERR("sched_setaffinity.unknown", rc);

	OUT_INT("sched_getscheduler.self", sched_getscheduler(self));
	rc = sched_getscheduler(4242);
	OUT_ERR("sched_getscheduler.unknown", rc);
	OUT_INT("sched_setscheduler.self", sched_setscheduler(self, SCHED_OTHER, &param));
	rc = sched_setscheduler(4242, SCHED_OTHER, &param);
	OUT_ERR("sched_setscheduler.unknown", rc);
	OUT_INT("sched_getparam.self", sched_getparam(self, &param));
	OUT_INT("sched_getparam.self.priority", param.sched_priority);
	rc = sched_getparam(4242, &param);
	OUT_ERR("sched_getparam.unknown", rc);
	OUT_INT("sched_setparam.self", sched_setparam(self, &param));
	rc = sched_setparam(4242, &param);
	OUT_ERR("sched_setparam.unknown", rc);
	OUT_INT("sched_rr_get_interval.self", sched_rr_get_interval(self, &ts));
	rc = sched_rr_get_interval(4242, &ts);
	OUT_ERR("sched_rr_get_interval.unknown", rc);

	/* priorities: PRIO_PROCESS and PRIO_PGRP take virtual ids */
	OUT_INT("setpriority.self", setpriority(PRIO_PROCESS, self, 7));
	errno = 0;
	OUT_INT("getpriority.self", getpriority(PRIO_PROCESS, self));
	OUT_INT("getpriority.0", getpriority(PRIO_PROCESS, 0));
	OUT_INT("getpriority.group", getpriority(PRIO_PGRP, getpgrp()));
	OUT_INT("setpriority.group", setpriority(PRIO_PGRP, getpgrp(), 8));
	OUT_INT("setpriority.group.then_self", getpriority(PRIO_PROCESS, self));
	errno = 0;
	rc = getpriority(PRIO_PROCESS, 4242);
	OUT_ERR("getpriority.unknown", rc);
	rc = setpriority(PRIO_PGRP, 4242, 1);
	OUT_ERR("setpriority.unknown_group", rc);
	/* PRIO_USER names a uid and passes through */
	errno = 0;
	rc = getpriority(PRIO_USER, getuid());
	CHECK(errno == 0);

	/* a child: its priority is reached through its virtual pid */
	child = vt_fork();
	MUST(child >= 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	OUT_INT("child", child);
	OUT_INT("child.getpriority.inherited", getpriority(PRIO_PROCESS, child));
	OUT_INT("child.setpriority", setpriority(PRIO_PROCESS, child, 11));
	OUT_INT("child.getpriority", getpriority(PRIO_PROCESS, child));
	OUT_INT("child.sched_getscheduler", sched_getscheduler(child));

	/* resource limits */
	OUT_INT("prlimit.self", prlimit(self, RLIMIT_NOFILE, NULL, &rl));
	OUT_INT("prlimit.self.set_same", prlimit(self, RLIMIT_NOFILE, &rl, NULL));
	OUT_INT("prlimit.child", prlimit(child, RLIMIT_NOFILE, NULL, &rl_again));
	CHECK(rl.rlim_cur == rl_again.rlim_cur && rl.rlim_max == rl_again.rlim_max);
	rc = prlimit(4242, RLIMIT_NOFILE, NULL, &rl);
	OUT_ERR("prlimit.unknown", rc);
	OUT_INT("prlimit64.self", prlimit64(self, RLIMIT_NOFILE, NULL, &rl64));
	rc = prlimit64(4242, RLIMIT_NOFILE, NULL, &rl64);
	OUT_ERR("prlimit64.unknown", rc);

	/* pidfds */
	fd = pidfd_open(self, 0);
	OUT_INT("pidfd_open.self.ok", fd >= 0);
	if (fd >= 0)
		close(fd);
	fd = pidfd_open(child, 0);
	OUT_INT("pidfd_open.child.ok", fd >= 0);
	if (fd >= 0) {
		OUT_INT("pidfd_send_signal.child", pidfd_send_signal(fd, SIGKILL, NULL, 0));
		close(fd);
	}
	rc = pidfd_open(4242, 0);
	OUT_ERR("pidfd_open.unknown", rc);
	kill(child, SIGKILL);
	OUT_INT("child.termsig", WTERMSIG(vt_wait(child)));
	return vt_done();
}
