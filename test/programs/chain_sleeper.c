/*
 * A chain that stays up until it is killed, for `vrid ps` and `vrid
 * tables`: the root (1000) makes a semaphore set with key 0x4242 (virtual
 * id 1) and a child (1001), says ready, and both sleep.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/sem.h>

int main(void)
{
	pid_t pid;
	int sem;

	sem = semget(0x4242, 1, IPC_CREAT | 0600);
	OUT_INT("semget", sem);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	OUT_INT("fork", pid);
	OUT_INT("ready", 1);
	fflush(stdout);
	for (;;)
		pause();
}
