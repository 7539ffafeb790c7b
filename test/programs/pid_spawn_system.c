/*
 * posix_spawn and posix_spawnp return virtual pids and keep the layer even
 * with an empty environment; system() and popen() spawn a shell inside
 * libc, which records itself when the layer loads into it.
 */
#include "vt.h"

#include <spawn.h>

extern char **environ;

static void report(const char *stage)
{
	char name[128];

	snprintf(name, sizeof(name), "%s.getpid", stage);
	OUT_INT(name, getpid());
	snprintf(name, sizeof(name), "%s.getppid", stage);
	OUT_INT(name, getppid());
	snprintf(name, sizeof(name), "%s.vrid_env", stage);
	OUT_INT(name, getenv("VRID_AID") != NULL);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char self[4096], line[256];
	char *const empty_env[] = { NULL };
	ssize_t n;
	pid_t pid;
	FILE *p;
	int rc, status;

	if (argc > 1) {
		report(argv[1]);
		return strcmp(argv[1], "spawn") == 0 ? 3 : 4;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	MUST(n > 0);
	self[n] = '\0';

	{
		char *const args[] = { "pid_spawn_system", "spawn", NULL };

		fflush(stdout);
		rc = posix_spawn(&pid, self, NULL, NULL, args, environ);
		OUT_INT("posix_spawn", rc);
		OUT_INT("posix_spawn.pid", pid);
		OUT_INT("posix_spawn.status", vt_exit_code(vt_wait(pid)));
	}
	{
		char *const args[] = { "pid_spawn_system", "spawnp", NULL };

		fflush(stdout);
		rc = posix_spawnp(&pid, self, NULL, NULL, args, empty_env);
		OUT_INT("posix_spawnp", rc);
		OUT_INT("posix_spawnp.pid", pid);
		OUT_INT("posix_spawnp.status", vt_exit_code(vt_wait(pid)));
	}
	{
		char *const args[] = { "no-such-program-vrid", NULL };

		rc = posix_spawnp(&pid, "no-such-program-vrid", NULL, NULL, args, environ);
		OUT_STR("posix_spawnp.missing", vt_errname(rc));
	}

	/* the shell of system() is a process of the chain too */
	fflush(stdout);
	status = system("echo system.sh.pid=$$; echo system.sh.ppid=$PPID; exit 5");
	OUT_INT("system.status", vt_exit_code(status));

	fflush(stdout);
	p = popen("echo popen.sh.pid=$$; echo popen.sh.ppid=$PPID", "r");
	MUST(p != NULL);
	while (fgets(line, sizeof(line), p))
		fputs(line, stdout);
	OUT_INT("pclose.status", vt_exit_code(pclose(p)));
	return vt_done();
}
