/*
 * A chain that stays up until it is killed, for `vrid ps` and `vrid
 * tables`: the root (1000) makes a semaphore set with key 0x4242 (virtual
 * id 1) and a child (1001), says ready once the child runs its own code
 * (the layer's work after fork is done), and both sleep.
 */
#include "vt.h"

#include <sys/ipc.h>
#include <sys/sem.h>

int main(void)
{
	int sem, running[2];
	pid_t pid;
	char c;

	sem = semget(0x4242, 1, IPC_CREAT | 0600);
	OUT_INT("semget", sem);
	MUST(pipe(running) == 0);
	pid = vt_fork();
	MUST(pid >= 0);
	if (pid == 0) {
		MUST(write(running[1], "r", 1) == 1);
		for (;;)
			pause();
	}
	MUST(read(running[0], &c, 1) == 1);
	close(running[0]);
	close(running[1]);
	OUT_INT("fork", pid);
	OUT_INT("ready", 1);
	fflush(stdout);
	for (;;)
		pause();
}
