/* fork, vfork and the wait family: virtual ids out, virtual ids in. */
#include "vt.h"

#include <signal.h>
#include <sys/pidfd.h>
#include <sys/resource.h>

static pid_t child_exiting(int code)
{
	pid_t pid = vt_fork();

	MUST(pid >= 0);
	if (pid == 0)
		vt_child_exit(code);
	return pid;
}

int main(void)
{
	struct rusage ru;
	siginfo_t si;
	pid_t pid, ret;
	int status, rc;

	/* fork: the child sees itself and its parent by virtual pid. */
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		OUT_INT("child.getpid", getpid());
		OUT_INT("child.getppid", getppid());
		CHECK(getpid() == 1001);
		vt_child_exit(7);
	}
	OUT_INT("fork", pid);
	ret = waitpid(pid, &status, 0);
	OUT_INT("waitpid", ret);
	OUT_INT("waitpid.status", WEXITSTATUS(status));
	CHECK(ret == pid && WIFEXITED(status));

	/* A reaped child is gone; a pid the chain never had is no child. */
	rc = waitpid(pid, &status, 0);
	OUT_ERR("waitpid.again", rc);
	rc = waitpid(4242, &status, 0);
	OUT_ERR("waitpid.unknown", rc);
	rc = waitpid(-1, &status, WNOHANG);
	OUT_ERR("waitpid.none", rc);

	/* wait */
	pid = child_exiting(2);
	OUT_INT("fork.2", pid);
	ret = wait(&status);
	OUT_INT("wait", ret);
	OUT_INT("wait.status", WEXITSTATUS(status));
	CHECK(ret == pid);

	/* wait3 */
	pid = child_exiting(3);
	ret = wait3(&status, 0, &ru);
	OUT_INT("wait3", ret);
	OUT_INT("wait3.status", WEXITSTATUS(status));
	CHECK(ret == pid);

	/* wait4 by pid */
	pid = child_exiting(4);
	ret = wait4(pid, &status, 0, &ru);
	OUT_INT("wait4", ret);
	OUT_INT("wait4.status", WEXITSTATUS(status));
	CHECK(ret == pid);

	/* waitid by pid: si_pid is virtual */
	pid = child_exiting(5);
	memset(&si, 0, sizeof(si));
	rc = waitid(P_PID, pid, &si, WEXITED);
	OUT_INT("waitid.rc", rc);
	OUT_INT("waitid.si_pid", si.si_pid);
	OUT_INT("waitid.si_status", si.si_status);
	CHECK(si.si_pid == pid);
	rc = waitid(P_PID, 4242, &si, WEXITED);
	OUT_ERR("waitid.unknown", rc);

	/* waitid WNOWAIT leaves the child for waitpid, under the same id */
	pid = child_exiting(6);
	memset(&si, 0, sizeof(si));
	rc = waitid(P_ALL, 0, &si, WEXITED | WNOWAIT);
	OUT_INT("waitid.nowait.si_pid", si.si_pid);
	ret = waitpid(-1, &status, 0);
	OUT_INT("waitid.nowait.then_waitpid", ret);
	CHECK(rc == 0 && si.si_pid == pid && ret == pid);

	/* vfork runs as fork; the child reports its pid in its status */
	fflush(stdout);
	pid = vfork();
	MUST(pid >= 0);
	if (pid == 0)
		_exit(getpid() - 1000);
	OUT_INT("vfork", pid);
	status = vt_wait(pid);
	OUT_INT("vfork.child_getpid_minus_1000", vt_exit_code(status));

	/* wait for any child of my process group, by -pgid and by 0 */
	pid = child_exiting(8);
	ret = waitpid(-getpgrp(), &status, 0);
	OUT_INT("waitpid.group", ret);
	CHECK(ret == pid);
	pid = child_exiting(9);
	ret = waitpid(0, &status, 0);
	OUT_INT("waitpid.0", ret);
	CHECK(ret == pid);
	rc = waitpid(-4242, &status, 0);
	OUT_ERR("waitpid.unknown_group", rc);

	/* waitid by process group */
	pid = child_exiting(10);
	memset(&si, 0, sizeof(si));
	rc = waitid(P_PGID, getpgrp(), &si, WEXITED);
	OUT_INT("waitid.pgid.si_pid", si.si_pid);
	OUT_INT("waitid.pgid.si_status", si.si_status);
	CHECK(rc == 0 && si.si_pid == pid);
	rc = waitid(P_PGID, 4242, &si, WEXITED);
	OUT_ERR("waitid.pgid.unknown", rc);

	/* waitid on a pidfd: si_pid is the child's virtual pid */
	pid = child_exiting(11);
	{
		int fd = pidfd_open(pid, 0);

		MUST(fd >= 0);
		memset(&si, 0, sizeof(si));
		rc = waitid(P_PIDFD, fd, &si, WEXITED);
		OUT_INT("waitid.pidfd.si_pid", si.si_pid);
		OUT_INT("waitid.pidfd.si_status", si.si_status);
		CHECK(rc == 0 && si.si_pid == pid);
		close(fd);
	}

	/* a stopped child is reported, not reaped: it keeps its id */
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	OUT_INT("fork.stopped", pid);
	CHECK(kill(pid, SIGSTOP) == 0);
	ret = waitpid(pid, &status, WUNTRACED);
	OUT_INT("waitpid.stopped", ret);
	OUT_INT("waitpid.stopped.stopsig", WIFSTOPPED(status) ? WSTOPSIG(status) : -1);
	OUT_INT("kill.stopped.cont", kill(pid, SIGCONT));
	memset(&si, 0, sizeof(si));
	rc = waitid(P_PID, pid, &si, WCONTINUED);
	OUT_INT("waitid.continued.si_pid", si.si_pid);
	OUT_INT("waitid.continued.is_cld_continued", si.si_code == CLD_CONTINUED);
	CHECK(kill(pid, SIGSTOP) == 0);
	memset(&si, 0, sizeof(si));
	rc = waitid(P_PID, pid, &si, WSTOPPED);
	OUT_INT("waitid.stopped.si_pid", si.si_pid);
	OUT_INT("waitid.stopped.si_status", si.si_status);
	OUT_INT("kill.stopped.kill", kill(pid, SIGKILL));
	ret = waitpid(pid, &status, 0);
	OUT_INT("waitpid.stopped.killed", ret);
	OUT_INT("waitpid.stopped.killed.termsig", WIFSIGNALED(status) ? WTERMSIG(status) : -1);

	/* a child killed by a signal */
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	OUT_INT("fork.sleeper", pid);
	CHECK(kill(pid, SIGKILL) == 0);
	ret = waitpid(pid, &status, 0);
	OUT_INT("waitpid.sleeper", ret);
	OUT_INT("waitpid.sleeper.termsig", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	return vt_done();
}
