/*
 * Run directly (not through vrid run) with VRID_TABLE naming unusable
 * tables: the layer must not guess.  Translating calls fail with
 * ENOTRECOVERABLE and getpid() answers the system pid, which the test
 * compares with the pid it started.
 */
#include "vt.h"

#include <signal.h>
#include <spawn.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/msg.h>

extern char **environ;

int main(void)
{
	char *const args[] = { "true", NULL };
	pid_t pid;
	int rc;

	OUT_INT("getpid", getpid());
	rc = kill(getpid(), 0);
	OUT_ERR("kill", rc);
	rc = waitpid(-1, NULL, WNOHANG);
	OUT_ERR("waitpid", rc);
	rc = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	OUT_ERR("semget", rc);
	rc = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	OUT_ERR("shmget", rc);
	rc = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	OUT_ERR("msgget", rc);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(0);
	OUT_ERR("fork", pid);
	rc = posix_spawnp(&pid, "true", NULL, NULL, args, environ);
	OUT_STR("posix_spawnp", rc ? vt_errname(rc) : "0");
	return vt_done();
}
