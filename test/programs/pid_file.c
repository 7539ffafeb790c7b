/*
 * A daemon's pid file, for `vrid exec`: the root (1000) forks a child
 * (1001), which writes its virtual pid to the file argv[1] (a temp file,
 * then rename), waits for SIGUSR1, says so and exits; the root exits with
 * its status.  The sender is not printed: it may be gone, and its entry
 * with it, before the child reads si_pid (docs/limits.md).  Outside the chain the
 * file's pid names nothing of the chain: only a command of the chain can
 * use it, as pg_ctl and nginx -s do.
 */
#include "vt.h"

#include <signal.h>

int main(int argc, char **argv)
{
	char tmp[4096];
	sigset_t set;
	FILE *f;
	pid_t pid;
	int status;

	MUST(argc == 2);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	MUST(sigprocmask(SIG_BLOCK, &set, NULL) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		MUST(snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]) < (int)sizeof(tmp));
		MUST((f = fopen(tmp, "w")) != NULL);
		fprintf(f, "%d\n", getpid());
		MUST(fclose(f) == 0);
		MUST(rename(tmp, argv[1]) == 0);
		MUST(sigwaitinfo(&set, NULL) == SIGUSR1);
		OUT_INT("usr1", 1);
		vt_child_exit(0);
	}
	OUT_INT("fork", pid);
	MUST(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	OUT_INT("child.status", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return vt_failed;
}
