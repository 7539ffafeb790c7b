/*
 * exec keeps the process in its chain whatever environment it passes:
 * every exec variant, one after the other, in one process that stays 1000,
 * and a forked child that execs and stays 1001.  Each stage is argv[1].
 */
#include "vt.h"

#include <fcntl.h>

extern char **environ;

static char self[4096];
static char *const empty_env[] = { NULL };

/* What every stage checks: same virtual pid, still under the layer. */
static void report(const char *stage)
{
	char name[128];
	const char *preload = getenv("LD_PRELOAD");

	snprintf(name, sizeof(name), "%s.getpid", stage);
	OUT_INT(name, getpid());
	snprintf(name, sizeof(name), "%s.getppid", stage);
	OUT_INT(name, getppid());
	snprintf(name, sizeof(name), "%s.vrid_env", stage);
	OUT_INT(name, getenv("VRID_AID") != NULL && getenv("VRID_TABLE") != NULL);
	snprintf(name, sizeof(name), "%s.preload", stage);
	OUT_INT(name, preload && strstr(preload, "libvrid.so") != NULL);
	fflush(stdout);
}

static void exec_failed(const char *how)
{
	fprintf(stderr, "FAIL %s: %s\n", how, vt_errname(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	const char *stage = argc > 1 ? argv[1] : "start";
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int fd, status;
	pid_t pid;

	MUST(n > 0);
	self[n] = '\0';
	report(stage);
	if (strcmp(stage, "start") == 0) {
		execle(self, "pid_exec", "execle", (char *)NULL, empty_env);
		exec_failed("execle");
	}
	if (strcmp(stage, "execle") == 0) {
		char *const argv2[] = { "pid_exec", "execve", NULL };
		/* stale vrid variables are replaced, not trusted */
		char *const env[] = { "VT_MARK=kept", "LD_PRELOAD=libm.so.6", "VRID_AID=999",
				      "VRID_TABLE=/nonexistent", NULL };

		execve(self, argv2, env);
		exec_failed("execve");
	}
	if (strcmp(stage, "execve") == 0) {
		char *const argv2[] = { "pid_exec", "execv", NULL };

		OUT_STR("execve.VT_MARK", getenv("VT_MARK") ? getenv("VT_MARK") : "(unset)");
		/* the program's own preload stays, after ours */
		OUT_INT("execve.preload_keeps_theirs",
			getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "libvrid.so ") &&
			strstr(getenv("LD_PRELOAD"), " libm.so.6"));
		fflush(stdout);
		environ = (char **)empty_env;
		execv(self, argv2);
		exec_failed("execv");
	}
	if (strcmp(stage, "execv") == 0) {
		execl(self, "pid_exec", "execl", (char *)NULL);
		exec_failed("execl");
	}
	if (strcmp(stage, "execl") == 0) {
		char *const argv2[] = { "pid_exec", "execvp", NULL };

		/* a name with a slash is a path for the p variants */
		execvp(self, argv2);
		exec_failed("execvp");
	}
	if (strcmp(stage, "execvp") == 0) {
		execlp(self, "pid_exec", "execlp", (char *)NULL);
		exec_failed("execlp");
	}
	if (strcmp(stage, "execlp") == 0) {
		char *const argv2[] = { "pid_exec", "execvpe", NULL };

		execvpe(self, argv2, empty_env);
		exec_failed("execvpe");
	}
	if (strcmp(stage, "execvpe") == 0) {
		char *const argv2[] = { "pid_exec", "fexecve", NULL };

		fd = open(self, O_RDONLY);
		MUST(fd >= 0);
		fexecve(fd, argv2, empty_env);
		exec_failed("fexecve");
	}
	if (strcmp(stage, "fexecve") == 0) {
		char *const argv2[] = { "pid_exec", "execveat", NULL };

		fd = open(self, O_RDONLY);
		MUST(fd >= 0);
		execveat(fd, "", argv2, empty_env, AT_EMPTY_PATH);
		exec_failed("execveat");
	}
	if (strcmp(stage, "execveat") == 0) {
		/* a child that execs: still 1001, its parent still 1000 */
		pid = vt_fork();
		MUST(pid >= 0);
		if (pid == 0) {
			execle(self, "pid_exec", "child", (char *)NULL, empty_env);
			exec_failed("execle in child");
		}
		OUT_INT("fork", pid);
		status = vt_wait(pid);
		OUT_INT("child.status", vt_exit_code(status));
		return vt_done();
	}
	if (strcmp(stage, "child") == 0)
		return 3;
	fprintf(stderr, "FAIL unknown stage %s\n", stage);
	return 1;
}
