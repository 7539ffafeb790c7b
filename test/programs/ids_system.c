/*
 * Run with --ids system (the default): a virtual id is the system id
 * whenever that value is free in the chain, so a chain that was never
 * restored sees the ids the kernel gave.  The kernel's own text in /proc
 * is the reference.
 */
#include "vt.h"

#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

/* Whether /proc/sysvipc/<file> has a row with id in column id_col and want in column col. */
static int sysvipc_has(const char *file, int id_col, long id, int col, long want)
{
	char path[64], line[512];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sysvipc/%s", file);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		long v[16];
		int n = 0;
		char *p = line, *end;

		while (n < 16) {
			v[n] = strtol(p, &end, 10);
			if (end == p)
				break;
			p = end;
			n++;
		}
		found = n > id_col && n > col && v[id_col] == id && v[col] == want;
	}
	fclose(f);
	return found;
}

int main(void)
{
	struct { long type; char text[77]; } m = { 1, "x" };
	int ready[2], sem, shm, msg;
	pid_t pid;
	char c;

	OUT_INT("getpid.is_system", getpid() == vt_sys_pid());
	OUT_INT("gettid.is_system", gettid() == vt_sys_pid());
	OUT_INT("getppid", getppid());
	OUT_INT("getpgrp.is_self", getpgrp() == getpid());

	MUST(pipe(ready) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		OUT_INT("child.getpid.is_system", getpid() == vt_sys_pid());
		fflush(stdout);
		MUST(write(ready[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	MUST(read(ready[0], &c, 1) == 1);
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		/* fork returned the child's system pid */
		FILE *f = fopen(path, "r");
		long first = -1;

		if (f) {
			if (fscanf(f, "%ld", &first) != 1)
				first = -1;
			fclose(f);
		}
		OUT_INT("fork.is_system", first == pid);
	}
	kill(pid, SIGKILL);
	OUT_INT("waitpid.is_fork", waitpid(pid, NULL, 0) == pid);

	sem = semget(IPC_PRIVATE, 7, IPC_CREAT | 0600);
	OUT_INT("semget.is_system", sysvipc_has("sem", 1, sem, 3, 7));
	shm = shmget(IPC_PRIVATE, 12345, IPC_CREAT | 0600);
	OUT_INT("shmget.is_system", sysvipc_has("shm", 1, shm, 3, 12345));
	msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	CHECK(msgsnd(msg, &m, sizeof(m.text), 0) == 0);
	OUT_INT("msgget.is_system", sysvipc_has("msg", 1, msg, 3, 77));
	CHECK(semctl(sem, 0, IPC_RMID) == 0);
	CHECK(shmctl(shm, IPC_RMID, NULL) == 0);
	CHECK(msgctl(msg, IPC_RMID, NULL) == 0);
	return vt_done();
}
